package sealed

import (
	"bytes"
	"errors"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
)

func TestWrappedRoundTrip(t *testing.T) {
	w := wrappedKey{KeyID: "arn:aws:kms:eu-west-1:111122223333:key/1234", CosignerID: "alice", Blob: []byte{1, 2, 3}}
	b, err := w.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeWrapped(b)
	if err != nil || got.KeyID != w.KeyID || got.CosignerID != w.CosignerID || !bytes.Equal(got.Blob, w.Blob) {
		t.Fatalf("decode(encode(w)) = %+v, %v", got, err)
	}
	for i := range b {
		if _, err := decodeWrapped(b[:i]); !errors.Is(err, errMalformed) {
			t.Errorf("truncated to %d bytes: %v", i, err)
		}
	}
	if _, err := decodeWrapped(append(b, 0)); !errors.Is(err, errMalformed) {
		t.Errorf("trailing byte: %v", err)
	}
	bad := bytes.Clone(b)
	bad[4] = 2
	if _, err := decodeWrapped(bad); !errors.Is(err, errMalformed) {
		t.Errorf("version 2: %v", err)
	}
}

func TestWrappedSizes(t *testing.T) {
	for name, w := range map[string]wrappedKey{
		"empty blob":     {KeyID: "k", CosignerID: "c"},
		"large blob":     {KeyID: "k", CosignerID: "c", Blob: make([]byte, kms.MaxWrappedKeySize+1)},
		"empty cosigner": {KeyID: "k", Blob: []byte{1}},
		"empty key":      {CosignerID: "c", Blob: []byte{1}},
	} {
		if _, err := w.encode(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	w := wrappedKey{KeyID: string(make([]byte, maxKeyIDSize)), CosignerID: string(make([]byte, kms.MaxCosignerIDSize)),
		Blob: make([]byte, kms.MaxWrappedKeySize)}
	b, err := w.encode()
	if err != nil || len(b) != maxWrappedObjectSize {
		t.Fatalf("largest object: %d bytes (max %d), %v", len(b), maxWrappedObjectSize, err)
	}
}

// FuzzDecodeWrapped: the decoder never panics, and accepts exactly one
// encoding of each value (decode then encode gives the same bytes).
func FuzzDecodeWrapped(f *testing.F) {
	seed, _ := wrappedKey{KeyID: "key", CosignerID: "alice", Blob: []byte("blob")}.encode()
	f.Add(seed)
	f.Add([]byte("NCWK\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decodeWrapped(b)
		if err != nil {
			if w.KeyID != "" || w.CosignerID != "" || w.Blob != nil {
				t.Fatal("data returned with an error")
			}
			return
		}
		again, err := w.encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %x vs %x (%v)", again, b, err)
		}
	})
}
