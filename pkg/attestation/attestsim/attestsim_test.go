package attestsim_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
)

var t0 = time.Date(2025, 8, 29, 23, 15, 59, 524_987_000, time.UTC)

func newCA(t *testing.T) *attestsim.CA {
	t.Helper()
	ca, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func attest(t *testing.T, ca *attestsim.CA, r attestsim.Request) []byte {
	t.Helper()
	raw, err := ca.Attest(r)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func verify(t *testing.T, ca *attestsim.CA, raw []byte, at time.Time) *attestation.Document {
	t.Helper()
	doc, err := attestation.Verify(raw, attestation.VerifyOptions{Time: at, Roots: ca.Roots()})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func pcr(b byte) []byte { return bytes.Repeat([]byte{b}, attestsim.PCRSize) }

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	req := attestsim.Request{
		ModuleID:  "i-05ebc0d9607fc96a5-enc0198f81c4577e221",
		PCRs:      map[int][]byte{0: pcr(1), 1: pcr(2), 2: pcr(3), 8: pcr(9)},
		UserData:  []byte("user data"),
		Nonce:     []byte("nonce"),
		PublicKey: bytes.Repeat([]byte{7}, 294),
		Time:      t0,
	}
	raw := attest(t, ca, req)
	doc := verify(t, ca, raw, t0)
	if doc.ModuleID != req.ModuleID || doc.Digest != "SHA384" || !doc.Timestamp.Equal(t0.Truncate(time.Millisecond)) {
		t.Errorf("header fields: %q %q %v", doc.ModuleID, doc.Digest, doc.Timestamp)
	}
	if !bytes.Equal(doc.UserData, req.UserData) || !bytes.Equal(doc.Nonce, req.Nonce) || !bytes.Equal(doc.PublicKey, req.PublicKey) {
		t.Error("optional fields differ")
	}
	if len(doc.PCRs) != attestsim.NumPCRs {
		t.Fatalf("%d PCRs", len(doc.PCRs))
	}
	for i, got := range doc.PCRs {
		want, ok := req.PCRs[i]
		if !ok {
			want = make([]byte, attestsim.PCRSize)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("PCR%d = %x", i, got)
		}
	}
	if len(doc.CABundle) != 2 || !bytes.Equal(doc.CABundle[0], ca.Root().Raw) {
		t.Error("cabundle is not [root, intermediate]")
	}
	if doc.IsDebug() {
		t.Error("document with PCR0-2 set is debug")
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	before := time.Now()
	raw := attest(t, ca, attestsim.Request{})
	doc := verify(t, ca, raw, time.Now())
	if doc.ModuleID != attestsim.DefaultModuleID {
		t.Errorf("ModuleID = %q", doc.ModuleID)
	}
	if doc.Timestamp.Before(before.Truncate(time.Millisecond)) || doc.Timestamp.After(time.Now()) {
		t.Errorf("Timestamp %v is not now", doc.Timestamp)
	}
	if doc.PublicKey != nil || doc.UserData != nil || doc.Nonce != nil {
		t.Error("unset optional fields are present")
	}
}

func TestEmptyOptionalFieldsArePresent(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	doc := verify(t, ca, attest(t, ca, attestsim.Request{Time: t0, UserData: []byte{}, Nonce: []byte{}}), t0)
	if doc.UserData == nil || doc.Nonce == nil || len(doc.UserData)+len(doc.Nonce) != 0 {
		t.Fatal("empty user_data or nonce became absent")
	}
}

func TestDebugDetection(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	production := attestation.Policy{}
	debugDoc := verify(t, ca, attest(t, ca, attestsim.Request{Time: t0, PCRs: map[int][]byte{3: pcr(4)}}), t0)
	if !debugDoc.IsDebug() {
		t.Error("zero PCR0-2 is not debug")
	}
	if err := production.Check(debugDoc, t0); !errors.Is(err, attestation.ErrDebug) {
		t.Errorf("production policy on a debug document: %v", err)
	}
	if err := (attestation.Policy{AllowDebug: true}).Check(debugDoc, t0); err != nil {
		t.Errorf("AllowDebug: %v", err)
	}
	prodDoc := verify(t, ca, attest(t, ca, attestsim.Request{Time: t0, PCRs: map[int][]byte{0: pcr(1)}}), t0)
	if prodDoc.IsDebug() {
		t.Error("PCR0 set, yet debug")
	}
	if err := (attestation.Policy{PCRs: map[int][]byte{0: pcr(1)}}).Check(prodDoc, t0); err != nil {
		t.Errorf("production policy: %v", err)
	}
}

func TestRefusedWithoutItsRoots(t *testing.T) {
	t.Parallel()
	ca, other := newCA(t), newCA(t)
	raw := attest(t, ca, attestsim.Request{Time: t0})
	for name, roots := range map[string]*x509.CertPool{"default AWS roots": nil, "another CA": other.Roots()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc, err := attestation.Verify(raw, attestation.VerifyOptions{Time: t0, Roots: roots})
			if doc != nil || !errors.Is(err, attestation.ErrChain) {
				t.Fatalf("Verify = %v, %v; want nil, ErrChain", doc != nil, err)
			}
		})
	}
}

func TestLeafLifetime(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	raw := attest(t, ca, attestsim.Request{Time: t0})
	verify(t, ca, raw, t0.Add(attestsim.LeafLifetime-2*time.Second))
	_, err := attestation.Verify(raw, attestation.VerifyOptions{Time: t0.Add(attestsim.LeafLifetime + time.Second), Roots: ca.Roots()})
	if !errors.Is(err, attestation.ErrChain) {
		t.Fatalf("after the leaf's lifetime: %v", err)
	}
}

// TestWireFormat checks the bytes against what real documents look like.
func TestWireFormat(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	raw := attest(t, ca, attestsim.Request{Time: t0, Nonce: []byte("n")})
	if !bytes.HasPrefix(raw, []byte{0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x59}) {
		t.Fatalf("first bytes % x, want 84 44 a1 01 38 22 a0 59", raw[:8])
	}
	var msg []cbor.RawMessage
	if err := cbor.Unmarshal(raw, &msg); err != nil || len(msg) != 4 {
		t.Fatalf("not a 4-item array: %v", err)
	}
	var payload []byte
	if err := cbor.Unmarshal(msg[2], &payload); err != nil {
		t.Fatal(err)
	}
	keys := mapKeys(t, payload)
	want := []string{"module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle", "public_key", "user_data", "nonce"}
	if len(keys) != len(want) {
		t.Fatalf("payload keys %v", keys)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Fatalf("payload keys %v, want %v", keys, want)
		}
	}
	var fields map[string]cbor.RawMessage
	if err := cbor.Unmarshal(payload, &fields); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fields["public_key"], []byte{0xf6}) || !bytes.Equal(fields["user_data"], []byte{0xf6}) {
		t.Error("absent fields are not CBOR null")
	}
}

// mapKeys returns the text keys of a CBOR map in encoded order.
func mapKeys(t *testing.T, payload []byte) []string {
	t.Helper()
	dec := cbor.NewDecoder(bytes.NewReader(payload[1:])) // skip the map head
	var keys []string
	for range 9 {
		var k string
		var v cbor.RawMessage
		if err := dec.Decode(&k); err != nil {
			t.Fatal(err)
		}
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if payload[0] != 0xa9 {
		t.Fatalf("payload head %x, want a definite map of 9", payload[0])
	}
	return keys
}

func TestLeafShape(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	doc := verify(t, ca, attest(t, ca, attestsim.Request{Time: t0}), t0)
	leaf := doc.Certificate
	if leaf.IsCA || leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 || len(leaf.ExtKeyUsage) != 0 {
		t.Errorf("leaf: CA %v, key usage %b, EKU %v", leaf.IsCA, leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != attestsim.LeafLifetime || leaf.NotBefore.After(t0) {
		t.Errorf("leaf valid %v from %v", got, leaf.NotBefore)
	}
	if len(leaf.Raw) > 1024 {
		t.Errorf("leaf is %d bytes", len(leaf.Raw))
	}
}

func TestInvalidRequests(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	cases := map[string]attestsim.Request{
		"PCR16":             {PCRs: map[int][]byte{16: pcr(1)}},
		"PCR-1":             {PCRs: map[int][]byte{-1: pcr(1)}},
		"32-byte PCR":       {PCRs: map[int][]byte{0: make([]byte, 32)}},
		"nil PCR":           {PCRs: map[int][]byte{0: nil}},
		"user data 513":     {UserData: make([]byte, attestation.MaxUserDataSize+1)},
		"nonce 513":         {Nonce: make([]byte, attestation.MaxNonceSize+1)},
		"public key 1025":   {PublicKey: make([]byte, attestation.MaxPublicKeySize+1)},
		"empty public key":  {PublicKey: []byte{}},
		"time before CA":    {Time: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)},
		"time after CA":     {Time: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)},
		"time before epoch": {Time: time.Unix(-1, 0)},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if raw, err := ca.Attest(r); err == nil {
				t.Fatalf("Attest succeeded (%d bytes)", len(raw))
			}
		})
	}
	if _, err := ca.Attest(attestsim.Request{
		UserData:  make([]byte, attestation.MaxUserDataSize),
		Nonce:     make([]byte, attestation.MaxNonceSize),
		PublicKey: make([]byte, attestation.MaxPublicKeySize),
	}); err != nil {
		t.Fatalf("fields at their limits: %v", err)
	}
}

func TestRootAccessors(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	block, _ := pem.Decode(ca.RootPEM())
	if block == nil || !bytes.Equal(block.Bytes, ca.Root().Raw) {
		t.Fatal("RootPEM is not the root")
	}
	root := ca.Root()
	if !root.IsCA || root.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("root: CA %v, %v", root.IsCA, root.PublicKeyAlgorithm)
	}
	root.Raw[len(root.Raw)-1] ^= 1 // must not reach the CA
	verify(t, ca, attest(t, ca, attestsim.Request{Time: t0}), t0)
	if r1, r2 := ca.Root(), ca.Root(); r1 == r2 {
		t.Fatal("Root returned a shared value")
	}
	if p1, p2 := ca.Roots(), ca.Roots(); p1 == p2 {
		t.Fatal("Roots returned a shared value")
	}
}

func TestConcurrentAttest(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			raw, err := ca.Attest(attestsim.Request{Time: t0, Nonce: []byte{byte(i)}})
			if err == nil {
				_, err = attestation.Verify(raw, attestation.VerifyOptions{Time: t0, Roots: ca.Roots()})
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
