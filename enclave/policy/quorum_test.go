package policy

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
)

// admin is a test admin's key pair.
type admin struct {
	pub  crypto.PublicKey
	sign func(msg []byte) []byte
}

func ed25519Admin(t testing.TB) admin {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return admin{pub: pub, sign: func(msg []byte) []byte { return ed25519.Sign(priv, msg) }}
}

func p256Admin(t testing.TB) admin {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return admin{pub: &priv.PublicKey, sign: func(msg []byte) []byte {
		h := sha256.Sum256(msg)
		sig, err := ecdsa.SignASN1(rand.Reader, priv, h[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}}
}

func (a admin) approve(canonical []byte) Approval {
	return Approval{AdminKey: a.pub, Signature: a.sign(ApprovalMessage(canonical))}
}

func adminSet(threshold int, admins ...admin) AdminSet {
	s := AdminSet{Threshold: threshold}
	for _, a := range admins {
		s.Keys = append(s.Keys, a.pub)
	}
	return s
}

func TestVerifyApprovals(t *testing.T) {
	a, b, c := ed25519Admin(t), p256Admin(t), ed25519Admin(t)
	outsider := ed25519Admin(t)
	set := adminSet(2, a, b, c)
	doc := []byte(`{"version":2}`)
	other := []byte(`{"version":3}`)
	forged := a.approve(doc)
	forged.Signature = bytes.Clone(forged.Signature)
	forged.Signature[5] ^= 1
	for _, tc := range []struct {
		name      string
		approvals []Approval
		ok        bool
	}{
		{"two Ed25519", []Approval{a.approve(doc), c.approve(doc)}, true},
		{"Ed25519 and P-256", []Approval{b.approve(doc), a.approve(doc)}, true},
		{"all three", []Approval{a.approve(doc), b.approve(doc), c.approve(doc)}, true},
		{"invalid ones are skipped", []Approval{forged, outsider.approve(doc), a.approve(doc), b.approve(other), b.approve(doc)}, true},
		{"none", nil, false},
		{"M-1", []Approval{a.approve(doc)}, false},
		{"same Ed25519 admin twice", []Approval{a.approve(doc), a.approve(doc)}, false},
		{"same P-256 admin twice", []Approval{b.approve(doc), b.approve(doc)}, false},
		{"other document", []Approval{a.approve(other), b.approve(other)}, false},
		{"unknown key", []Approval{a.approve(doc), outsider.approve(doc)}, false},
		{"tampered signature", []Approval{forged, b.approve(doc)}, false},
		{"signature under the wrong key", []Approval{a.approve(doc), {AdminKey: c.pub, Signature: a.approve(doc).Signature}}, false},
		{"no label", []Approval{a.approve(doc), {AdminKey: c.pub, Signature: c.sign(doc)}}, false},
		{"nil key", []Approval{a.approve(doc), {Signature: c.approve(doc).Signature}}, false},
		{"nil ECDSA key", []Approval{a.approve(doc), {AdminKey: (*ecdsa.PublicKey)(nil), Signature: b.approve(doc).Signature}}, false},
		{"empty signature", []Approval{a.approve(doc), {AdminKey: c.pub}}, false},
		{"ECDSA key without point", []Approval{a.approve(doc), {AdminKey: &ecdsa.PublicKey{Curve: elliptic.P256()}, Signature: b.approve(doc).Signature}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyApprovals(doc, tc.approvals, set)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrQuorum)) {
				t.Fatalf("VerifyApprovals: %v, want ok=%v", err, tc.ok)
			}
		})
	}
	many := make([]Approval, MaxApprovals+1)
	for i := range many {
		many[i] = a.approve(doc)
	}
	if err := VerifyApprovals(doc, many, set); !errors.Is(err, ErrQuorum) {
		t.Fatalf("%d approvals: %v, want ErrQuorum", len(many), err)
	}
}

func TestApprovalMessage(t *testing.T) {
	doc := []byte(`{"version":1}`)
	h := sha256.Sum256(doc)
	want := append([]byte("nitro-cosigner/policy-approval/v1\x00"), h[:]...)
	if got := ApprovalMessage(doc); !bytes.Equal(got, want) {
		t.Fatalf("ApprovalMessage = %x, want %x", got, want)
	}
}

func TestAdminSetValidate(t *testing.T) {
	a, b := ed25519Admin(t), p256Admin(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bPub := b.pub.(*ecdsa.PublicKey)
	//lint:ignore SA1019 building an invalid key takes the raw coordinates
	offCurve := &ecdsa.PublicKey{Curve: elliptic.P256(), X: bPub.X, Y: new(big.Int).Add(bPub.Y, big.NewInt(1))}
	for name, set := range map[string]AdminSet{
		"empty":          {Threshold: 1},
		"threshold 0":    adminSet(0, a, b),
		"threshold > n":  adminSet(3, a, b),
		"duplicate key":  {Keys: []crypto.PublicKey{a.pub, b.pub, a.pub}, Threshold: 2},
		"RSA key":        {Keys: []crypto.PublicKey{a.pub, &rsaKey.PublicKey}, Threshold: 1},
		"P-384 key":      {Keys: []crypto.PublicKey{&p384.PublicKey}, Threshold: 1},
		"off-curve key":  {Keys: []crypto.PublicKey{offCurve}, Threshold: 1},
		"short Ed25519":  {Keys: []crypto.PublicKey{ed25519.PublicKey(make([]byte, 31))}, Threshold: 1},
		"nil key":        {Keys: []crypto.PublicKey{nil}, Threshold: 1},
		"nil ECDSA key":  {Keys: []crypto.PublicKey{(*ecdsa.PublicKey)(nil)}, Threshold: 1},
		"no point":       {Keys: []crypto.PublicKey{&ecdsa.PublicKey{Curve: elliptic.P256()}}, Threshold: 1},
		"ed25519 by ptr": {Keys: []crypto.PublicKey{&ed25519.PublicKey{}}, Threshold: 1},
	} {
		if err := set.Validate(); !errors.Is(err, ErrAdminSet) {
			t.Errorf("%s: %v, want ErrAdminSet", name, err)
		}
		if err := VerifyApprovals([]byte("{}"), nil, set); !errors.Is(err, ErrAdminSet) {
			t.Errorf("VerifyApprovals with %s: %v, want ErrAdminSet", name, err)
		}
	}
	if err := adminSet(2, a, b).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseAdminKey(t *testing.T) {
	for _, a := range []admin{ed25519Admin(t), p256Admin(t)} {
		der, err := x509.MarshalPKIXPublicKey(a.pub)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseAdminKey(der)
		if err != nil || !got.(interface{ Equal(crypto.PublicKey) bool }).Equal(a.pub) {
			t.Fatalf("ParseAdminKey: %v", err)
		}
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if _, err := ParseAdminKey(der); !errors.Is(err, ErrAdminSet) {
		t.Fatalf("RSA key: %v, want ErrAdminSet", err)
	}
	if _, err := ParseAdminKey([]byte("junk")); !errors.Is(err, ErrAdminSet) {
		t.Fatalf("junk: %v, want ErrAdminSet", err)
	}
}
