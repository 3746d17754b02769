package attestation_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
)

// region is a named byte range of a raw document.
type region struct {
	name       string
	start, end int
}

// regions locates every part of a real (untagged) document: the COSE
// envelope, each payload field's value, the certificates and the signature.
func regions(t *testing.T, raw []byte, doc *attestation.Document) []region {
	t.Helper()
	rs := []region{
		{"COSE array head", 0, 1},
		{"protected header", 1, 6},
		{"unprotected header", 6, 7},
		{"payload head", 7, 10},
		{"signature", len(raw) - 96, len(raw)},
		{"signature head", len(raw) - 98, len(raw) - 96},
	}
	for _, key := range []string{"module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle", "public_key", "user_data", "nonce"} {
		rs = append(rs, fieldRegion(t, raw, key))
	}
	rs = append(rs, find(t, raw, "leaf certificate DER", doc.Certificate.Raw))
	for i, der := range doc.CABundle {
		rs = append(rs, find(t, raw, fmt.Sprintf("cabundle[%d] DER", i), der))
	}
	return rs
}

// fieldRegion covers a payload key and the head of its value.
func fieldRegion(t *testing.T, raw []byte, key string) region {
	t.Helper()
	enc := append([]byte{0x60 | byte(len(key))}, key...)
	return find(t, raw, "payload "+key, enc, 2)
}

func find(t *testing.T, raw []byte, name string, needle []byte, extra ...int) region {
	t.Helper()
	i := bytes.Index(raw, needle)
	if i < 0 {
		t.Fatalf("%s not found", name)
	}
	end := i + len(needle)
	for _, e := range extra {
		end += e
	}
	return region{name, i, end}
}

// TestMutations flips one bit at the start, middle and end of every region
// of every valid vector: each mutant must be refused.
func TestMutations(t *testing.T) {
	t.Parallel()
	for _, v := range validVectors() {
		t.Run(v.file, func(t *testing.T) {
			t.Parallel()
			raw := v.read(t)
			for _, r := range regions(t, raw, v.verify(t)) {
				for _, off := range []int{r.start, (r.start + r.end) / 2, r.end - 1} {
					t.Run(fmt.Sprintf("%s@%d", r.name, off), func(t *testing.T) {
						t.Parallel()
						mustRefuse(t, v, flip(raw, off))
					})
				}
			}
		})
	}
}

// TestEveryBitFlip flips, in turn, the low bit of every byte of one real
// document: every byte is either signed or checked, so none may survive.
// Under the race detector it samples every 11th byte.
func TestEveryBitFlip(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: one full verification per byte")
	}
	t.Parallel()
	v := indefMap
	raw := v.read(t)
	stride := 1
	if raceEnabled {
		stride = 11
	}
	const chunks = 8
	for c := range chunks {
		t.Run(fmt.Sprint("chunk", c), func(t *testing.T) {
			t.Parallel()
			for off := c * stride; off < len(raw); off += chunks * stride {
				mustRefuse(t, v, flip(raw, off))
			}
		})
	}
}

func flip(raw []byte, off int) []byte {
	m := bytes.Clone(raw)
	m[off] ^= 0x01
	return m
}

func mustRefuse(t *testing.T, v vector, raw []byte) {
	t.Helper()
	doc, err := attestation.Verify(raw, attestation.VerifyOptions{Time: v.time()})
	if err == nil || doc != nil {
		t.Fatalf("mutant verified (doc %v, err %v)", doc != nil, err)
	}
	if !isSentinel(err) {
		t.Fatalf("error %v wraps none of the sentinels", err)
	}
}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// TestSignatureMutationIsSignatureError pins the error class for each
// region where it is predictable.
func TestSignatureMutationIsSignatureError(t *testing.T) {
	t.Parallel()
	v := prodNoPK
	raw := v.read(t)
	cases := map[string]struct {
		off  int
		want error
	}{
		"signature r":        {len(raw) - 96, attestation.ErrSignature},
		"signature s":        {len(raw) - 1, attestation.ErrSignature},
		"protected alg":      {5, attestation.ErrMalformed},
		"unprotected header": {6, attestation.ErrMalformed},
		"module_id text":     {fieldRegion(t, raw, "module_id").end, attestation.ErrSignature},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := attestation.Verify(flip(raw, c.off), attestation.VerifyOptions{Time: v.time()})
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}
