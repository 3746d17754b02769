//go:build !release

package kms

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
)

// TestRecipient: the document binds the key's SPKI, verifies under the
// simulator's root, names PCR0; wipe zeroes the key's secret numbers.
func TestRecipient(t *testing.T) {
	t.Parallel()
	sim, err := nsm.OpenSimulator(nsm.SimulatorConfig{PCRs: map[int][]byte{0: pcrGood}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := newRecipient(sim)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(sim.RootPEM())
	doc, err := attestation.Verify(r.doc, attestation.VerifyOptions{Time: time.Now(), Roots: roots})
	if err != nil {
		t.Fatalf("the recipient document does not verify: %v", err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&r.key.PublicKey)
	if !bytes.Equal(doc.PublicKey, spki) {
		t.Error("the document's public_key is not the recipient key's SPKI")
	}
	if r.key.N.BitLen() != recipientKeyBits {
		t.Errorf("recipient key has %d bits", r.key.N.BitLen())
	}
	if got := r.pcr0(); got != hex.EncodeToString(pcrGood) {
		t.Errorf("pcr0() = %s", got)
	}
	debug, err := nsm.OpenSimulator(nsm.SimulatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	debugDoc, err := debug.Attest(nsm.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if got := (&recipient{doc: debugDoc}).pcr0(); !strings.HasSuffix(got, "debug mode") {
		t.Errorf("pcr0() of a debug-mode enclave = %s", got)
	}
	if got := (&recipient{doc: []byte("junk")}).pcr0(); got != "unknown" {
		t.Errorf("pcr0() of junk = %s", got)
	}

	r.wipe()
	k := r.key
	for name, x := range map[string]interface{ Sign() int }{
		"D": k.D, "P": k.Primes[0], "Q": k.Primes[1], "Dp": k.Precomputed.Dp, "Dq": k.Precomputed.Dq, "Qinv": k.Precomputed.Qinv,
	} {
		if x.Sign() != 0 {
			t.Errorf("%s not wiped", name)
		}
	}
}
