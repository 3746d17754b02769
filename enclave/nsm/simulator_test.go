//go:build !release

package nsm

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
)

func TestSimulatorDocumentsVerify(t *testing.T) {
	pcr0 := bytes.Repeat([]byte{0xAB}, 48)
	sim, err := OpenSimulator(SimulatorConfig{ModuleID: "i-sim-enc0", PCRs: map[int][]byte{0: pcr0}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	req := Request{UserData: []byte("identity-hash"), Nonce: []byte("nonce"), PublicKey: []byte("spki")}
	raw, err := sim.Attest(req)
	if err != nil {
		t.Fatal(err)
	}
	roots := poolFromPEM(t, sim.RootPEM())
	doc, err := attestation.Verify(raw, attestation.VerifyOptions{Time: time.Now(), Roots: roots})
	if err != nil {
		t.Fatalf("simulated document does not verify under its root: %v", err)
	}
	if doc.ModuleID != "i-sim-enc0" || !bytes.Equal(doc.PCRs[0], pcr0) ||
		!bytes.Equal(doc.UserData, req.UserData) || !bytes.Equal(doc.Nonce, req.Nonce) || !bytes.Equal(doc.PublicKey, req.PublicKey) {
		t.Fatalf("document does not carry what was asked: %+v", doc)
	}
	if _, err := attestation.Verify(raw, attestation.VerifyOptions{Time: time.Now()}); err == nil {
		t.Fatal("a simulated document verified under the pinned AWS root")
	}
}

func TestSimulatorRefusesOversizedRequest(t *testing.T) {
	sim, err := OpenSimulator(SimulatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Attest(Request{Nonce: make([]byte, MaxNonce+1)}); !errors.Is(err, ErrRequest) {
		t.Fatalf("err = %v, want ErrRequest", err)
	}
}

func TestSimulatorRandom(t *testing.T) {
	sim, err := OpenSimulator(SimulatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := make([]byte, 32), make([]byte, 32)
	if _, err := sim.Read(a); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Read(b); err != nil || bytes.Equal(a, b) {
		t.Fatalf("two random reads are equal or failed: %v", err)
	}
}

func poolFromPEM(t *testing.T, b []byte) *x509.CertPool {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("root PEM does not decode")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func TestSimulatorWithSavedCA(t *testing.T) {
	first, err := OpenSimulator(SimulatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	saved, err := first.ca.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	second, err := OpenSimulator(SimulatorConfig{CA: saved})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := second.Attest(Request{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attestation.Verify(raw, attestation.VerifyOptions{Time: time.Now(), Roots: poolFromPEM(t, first.RootPEM())}); err != nil {
		t.Fatalf("a simulator on the saved CA is not trusted under the first one's root: %v", err)
	}
	if _, err := OpenSimulator(SimulatorConfig{CA: []byte("junk")}); err == nil {
		t.Fatal("a junk CA was accepted")
	}
}
