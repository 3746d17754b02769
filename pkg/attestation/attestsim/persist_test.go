package attestsim_test

import (
	"bytes"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
)

func TestSavedCAMintsVerifiableDocuments(t *testing.T) {
	ca, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	saved, err := ca.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := attestsim.LoadCA(saved)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(loaded.RootPEM(), ca.RootPEM()) {
		t.Fatal("loaded CA has another root")
	}
	raw, err := loaded.Attest(attestsim.Request{Nonce: []byte("n")})
	if err != nil {
		t.Fatal(err)
	}
	// The original CA's roots verify what the loaded one mints.
	if _, err := attestation.Verify(raw, attestation.VerifyOptions{Time: time.Now(), Roots: ca.Roots()}); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCARefusesBadInput(t *testing.T) {
	a, _ := attestsim.NewCA()
	b, _ := attestsim.NewCA()
	sa, _ := a.MarshalPEM()
	sb, _ := b.MarshalPEM()
	blocksA, blocksB := splitPEM(sa), splitPEM(sb)
	for name, data := range map[string][]byte{
		"empty":                  nil,
		"garbage":                []byte("not pem"),
		"no key":                 join(blocksA[0], blocksA[1]),
		"key of another CA":      join(blocksA[0], blocksA[1], blocksB[2]),
		"intermediate elsewhere": join(blocksA[0], blocksB[1], blocksB[2]),
		"duplicate block":        join(blocksA[0], blocksA[0], blocksA[1], blocksA[2]),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := attestsim.LoadCA(data); !errors.Is(err, attestsim.ErrBadCA) {
				t.Fatalf("err = %v, want ErrBadCA", err)
			}
		})
	}
}

func splitPEM(data []byte) [][]byte {
	var out [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		out = append(out, pem.EncodeToMemory(b))
	}
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
