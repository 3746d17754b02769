package attestation_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
)

func TestChainChecks(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts func(*pkiOptions)
		want string // in the ErrChain message; "" for a valid chain
	}{
		{"valid", func(*pkiOptions) {}, ""},
		{"leaf without digitalSignature", func(o *pkiOptions) { o.leafKeyUsage = x509.KeyUsageContentCommitment }, "digitalSignature"},
		{"leaf is a CA", func(o *pkiOptions) { o.leafIsCA = true; o.leafKeyUsage |= x509.KeyUsageCertSign }, "is a CA"},
		// crypto/x509 accepts a CA without a key usage extension; we do not.
		{"intermediate without key usage", func(o *pkiOptions) { o.interKeyUsage = 0 }, "keyCertSign"},
		// crypto/x509 refuses these parents while building the chain.
		{"intermediate without keyCertSign", func(o *pkiOptions) { o.interKeyUsage = x509.KeyUsageDigitalSignature }, "trusted root"},
		{"intermediate not a CA", func(o *pkiOptions) { o.interIsCA = false }, "trusted root"},
		{"leaf P-256", func(o *pkiOptions) { o.leafKey = keyGen(elliptic.P256()) }, "P-384"},
		{"leaf RSA", func(o *pkiOptions) {
			o.leafKey = func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }
		}, "P-384"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := defaultPKIOptions()
			c.opts(&o)
			p := newPKI(t, o)
			d := p.document()
			// Sign with a P-384 key even when the leaf has another: the
			// chain checks come first.
			payloadKey := p384(t)
			if k, ok := p.leafKey.(*ecdsa.PrivateKey); ok && k.Curve == elliptic.P384() {
				payloadKey = k
			}
			raw := signDoc(t, d, payloadKey)
			doc, err := p.verify(raw)
			checkChainOutcome(t, doc, err, c.want)
		})
	}
}

func keyGen(c elliptic.Curve) func() (crypto.Signer, error) {
	return func() (crypto.Signer, error) { return ecdsa.GenerateKey(c, rand.Reader) }
}

// signDoc signs d's payload with key, whatever d's certificate says.
func signDoc(t *testing.T, d *attestation.Document, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	m := map[string]any{
		"module_id": d.ModuleID, "digest": d.Digest, "timestamp": uint64(d.Timestamp.UnixMilli()),
		"pcrs": d.PCRs, "certificate": d.Certificate.Raw, "cabundle": d.CABundle,
		"public_key": d.PublicKey, "user_data": d.UserData, "nonce": d.Nonce,
	}
	raw, err := attestation.SignPayload(encode(t, m), key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func checkChainOutcome(t *testing.T, doc *attestation.Document, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil || doc == nil {
			t.Fatalf("valid chain refused: %v", err)
		}
		return
	}
	if doc != nil || !errors.Is(err, attestation.ErrChain) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Verify = %v, %v; want nil and ErrChain mentioning %q", doc != nil, err, want)
	}
}

func TestChainMustFollowBundle(t *testing.T) {
	t.Parallel()
	p := newPKI(t, defaultPKIOptions())
	other := newPKI(t, defaultPKIOptions())
	cases := map[string]struct {
		bundle [][]byte
		want   string
	}{
		"as issued":                  {p.bundle(), ""},
		"foreign root first":         {[][]byte{other.root.Raw, p.inter.Raw}, "cabundle"},
		"intermediate first":         {[][]byte{p.inter.Raw, p.inter.Raw}, "cabundle"},
		"extra certificate":          {[][]byte{p.root.Raw, p.inter.Raw, other.inter.Raw}, "cabundle"},
		"root only":                  {[][]byte{p.root.Raw}, "trusted root"},
		"foreign root, intermediate": {[][]byte{other.root.Raw, other.inter.Raw}, "trusted root"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := p.document()
			d.CABundle = c.bundle
			doc, err := p.verify(p.sign(t, d))
			checkChainOutcome(t, doc, err, c.want)
		})
	}
}

// TestBundleRootIsNotTrusted: a document that brings its own root in
// cabundle[0] fails against the default (AWS) roots and against a pool
// that lacks that root.
func TestBundleRootIsNotTrusted(t *testing.T) {
	t.Parallel()
	p := newPKI(t, defaultPKIOptions())
	raw := p.sign(t, p.document())
	for name, roots := range map[string]*x509.CertPool{"default": nil, "other": newPKI(t, defaultPKIOptions()).roots()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc, err := attestation.Verify(raw, attestation.VerifyOptions{Time: p.at(), Roots: roots})
			checkChainOutcome(t, doc, err, "trusted root")
		})
	}
}

func TestChainValidityWindow(t *testing.T) {
	t.Parallel()
	p := newPKI(t, defaultPKIOptions())
	raw := p.sign(t, p.document())
	cases := map[string]struct {
		at   time.Time
		want string
	}{
		"inside":            {p.at(), ""},
		"at leaf NotBefore": {p.leaf.NotBefore, ""},
		"before leaf":       {p.leaf.NotBefore.Add(-time.Second), "expired or not yet valid"},
		"after leaf":        {p.leaf.NotAfter.Add(time.Second), "expired or not yet valid"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc, err := attestation.Verify(raw, attestation.VerifyOptions{Time: c.at, Roots: p.roots()})
			checkChainOutcome(t, doc, err, c.want)
		})
	}
}

func TestSignatureByAnotherKey(t *testing.T) {
	t.Parallel()
	p := newPKI(t, defaultPKIOptions())
	raw := signDoc(t, p.document(), p384(t))
	doc, err := p.verify(raw)
	if doc != nil || !errors.Is(err, attestation.ErrSignature) {
		t.Fatalf("Verify = %v, %v; want nil, ErrSignature", doc != nil, err)
	}
}

func TestSignRefusesBadInput(t *testing.T) {
	t.Parallel()
	p := newPKI(t, defaultPKIOptions())
	key := p.ecdsaKey(t)
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(*attestation.Document)) *attestation.Document {
		d := p.document()
		f(d)
		return d
	}
	cases := map[string]struct {
		doc *attestation.Document
		key *ecdsa.PrivateKey
	}{
		"nil document":       {nil, key},
		"nil key":            {p.document(), nil},
		"P-256 key":          {p.document(), p256},
		"key of another":     {p.document(), p384(t)},
		"no certificate":     {mod(func(d *attestation.Document) { d.Certificate = nil }), key},
		"empty module_id":    {mod(func(d *attestation.Document) { d.ModuleID = "" }), key},
		"digest":             {mod(func(d *attestation.Document) { d.Digest = "SHA256" }), key},
		"timestamp zero":     {mod(func(d *attestation.Document) { d.Timestamp = time.Time{} }), key},
		"no PCRs":            {mod(func(d *attestation.Document) { d.PCRs = nil }), key},
		"PCR index 32":       {mod(func(d *attestation.Document) { d.PCRs[32] = make([]byte, 48) }), key},
		"PCR size":           {mod(func(d *attestation.Document) { d.PCRs[0] = make([]byte, 20) }), key},
		"empty bundle":       {mod(func(d *attestation.Document) { d.CABundle = nil }), key},
		"nil bundle entry":   {mod(func(d *attestation.Document) { d.CABundle[1] = nil }), key},
		"empty public key":   {mod(func(d *attestation.Document) { d.PublicKey = []byte{} }), key},
		"user data too long": {mod(func(d *attestation.Document) { d.UserData = make([]byte, 513) }), key},
		"nonce too long":     {mod(func(d *attestation.Document) { d.Nonce = make([]byte, 513) }), key},
		"payload too large": {mod(func(d *attestation.Document) {
			for i := range 15 {
				d.CABundle = append(d.CABundle, make([]byte, 1000+i))
			}
		}), key},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if raw, err := attestation.Sign(c.doc, c.key); err == nil {
				t.Fatalf("Sign succeeded (%d bytes)", len(raw))
			}
		})
	}
}

// TestSignedDocumentRoundTrips checks that Sign emits what Verify returns.
func TestSignedDocumentRoundTrips(t *testing.T) {
	t.Parallel()
	p := newPKI(t, defaultPKIOptions())
	d := p.document()
	d.PublicKey, d.UserData, d.Nonce = []byte("pk"), []byte{}, nil
	raw := p.sign(t, d)
	got, err := p.verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.ModuleID != d.ModuleID || !got.Timestamp.Equal(d.Timestamp) || string(got.PublicKey) != "pk" ||
		got.UserData == nil || len(got.UserData) != 0 || got.Nonce != nil || len(got.PCRs) != 16 {
		t.Fatalf("round trip changed the document: %+v", got)
	}
	if raw[0] != 0x84 || string(raw[1:7]) != "\x44\xa1\x01\x38\x22\xa0" {
		t.Fatalf("envelope % x", raw[:7])
	}
}

// TestPathLengthConstraint: an intermediate with pathLen 0 may not issue
// another CA, as on AWS's chain (regional 2, zonal 1, instance 0).
func TestPathLengthConstraint(t *testing.T) {
	t.Parallel()
	p := newPKI(t, defaultPKIOptions())
	rootKey, upperKey, lowerKey, leafKey := p384(t), p384(t), p384(t), p384(t)
	root := issue(t, caCert("root", x509.KeyUsageCertSign, true, pkiStart), nil, rootKey.Public(), rootKey)
	upperTmpl := caCert("upper", x509.KeyUsageCertSign, true, pkiStart)
	upperTmpl.MaxPathLenZero = true
	upper := issue(t, upperTmpl, root, upperKey.Public(), rootKey)
	lower := issue(t, caCert("lower", x509.KeyUsageCertSign, true, pkiStart), upper, lowerKey.Public(), upperKey)
	leaf := issue(t, leafCert(x509.KeyUsageDigitalSignature, false), lower, leafKey.Public(), lowerKey)

	d := p.document()
	d.Certificate, d.CABundle = leaf, [][]byte{root.Raw, upper.Raw, lower.Raw}
	raw, err := attestation.Sign(d, leafKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	doc, err := attestation.Verify(raw, attestation.VerifyOptions{Time: p.at(), Roots: pool})
	checkChainOutcome(t, doc, err, "path length")
}
