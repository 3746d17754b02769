package attestation_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
)

// absent marks an optional field that is CBOR null in a vector.
const absent = -1

// vector is one real document of testdata/ (see testdata/README.md).
type vector struct {
	file     string
	sha256   string // of the file: vectors are data, never edited
	ms       int64  // timestamp, milliseconds since the Unix epoch
	moduleID string
	pcr0     string // hex prefix of PCR0
	debug    bool
	badSig   bool
	// lengths of public_key, user_data and nonce, or absent
	publicKey, userData, nonce int
}

var vectors = []vector{
	{
		file:      "anjuna_2021-03-17_prod_nopk.cbor",
		sha256:    "234f1201a137f93d38d50c7ceaa560b4f73ecaf8e9d7849ab9a32f3b67a86f04",
		ms:        1616018515685,
		moduleID:  "i-078824548edcf6519-enc01784234ec227b58",
		pcr0:      "2d151586",
		publicKey: absent,
		userData:  absent,
		nonce:     absent,
	},
	{
		file:      "anjuna_2021-03-24_prod_rsa_pubkey.cbor",
		sha256:    "b9db80222e31b03e66c43c681a659f9c964698e9ccc6128aa59f1891346f2566",
		ms:        1616602241734,
		moduleID:  "i-0a6d65e7122308898-enc017846bcd2f820da",
		pcr0:      "672cd3c9",
		publicKey: 294,
		userData:  absent,
		nonce:     absent,
	},
	{
		file:      "anjuna_2023-09-21_prod_userdata.cbor",
		sha256:    "5a2eac9dac9d983e40ed0f5970ba41f71d2f336bd8e6d8290d0064608517dd54",
		ms:        1695337797673,
		moduleID:  "i-07ceff4b3ab54305f-enc018aba0189375080",
		pcr0:      "0f0b6b3e",
		publicKey: absent,
		userData:  13,
		nonce:     absent,
	},
	{
		file:      "anjuna_2024-01-24_debug_pk_ud_nonce.cbor",
		sha256:    "8d6106b49a1b5426aba6132037bdb685ff1cb04e66d853a9672eb45322c58fb0",
		ms:        1706120065635,
		moduleID:  "i-0e4fe5de7ee5abe78-enc018d3cadd7d66279",
		pcr0:      "00000000",
		debug:     true,
		publicKey: 294,
		userData:  13,
		nonce:     6,
	},
	{
		file:      "eternis_2024-09-09_debug_nonce.cbor",
		sha256:    "8056eefb696e0e5d178f9d6cb81f7ef0d4bb084cbac9507663b1a31d89e00385",
		ms:        1725911352400,
		moduleID:  "i-0bbf1bfe232b8c2ce-enc0191ba35c9d1b77a",
		pcr0:      "00000000",
		debug:     true,
		publicKey: 5,
		userData:  68,
		nonce:     20,
	},
	{
		file:      "eternis_2024-09-17_debug_nonce.cbor",
		sha256:    "a150ce35c12236fbbc05416d83c91e217da750343db8c221aa1833602d277ae1",
		ms:        1726606030288,
		moduleID:  "i-0bbf1bfe232b8c2ce-enc019201afdaee4f17",
		pcr0:      "00000000",
		debug:     true,
		publicKey: 5,
		userData:  68,
		nonce:     20,
	},
	{
		file:      "eternis_2024-07-23_BADSIG.cbor",
		sha256:    "5f42eb915e451a2fbefc541e068d71a23243d19a32241cd84dc28b8e9123e874",
		ms:        1721770180771,
		moduleID:  "i-0809070ca8037095f-enc0190e0c0368d490d",
		pcr0:      "00000000",
		debug:     true,
		badSig:    true,
		publicKey: 5,
		userData:  68,
		nonce:     20,
	},
	{
		file:      "misc_2025-08-29_prod_indefmap.cbor",
		sha256:    "7743a3dd95698ab329f46efd46246e3a0e8b98fbdce5658eaa932b96aca9ae02",
		ms:        1756509359524,
		moduleID:  "i-05ebc0d9607fc96a5-enc0198f81c4577e221",
		pcr0:      "5b6111e5",
		publicKey: 32,
		userData:  absent,
		nonce:     absent,
	},
}

// Vectors the tests single out, by what they carry.
var (
	prodNoPK     = vectorNamed("anjuna_2021-03-17_prod_nopk.cbor")
	prodRSA      = vectorNamed("anjuna_2021-03-24_prod_rsa_pubkey.cbor")
	prodUserData = vectorNamed("anjuna_2023-09-21_prod_userdata.cbor")
	debugAnjuna  = vectorNamed("anjuna_2024-01-24_debug_pk_ud_nonce.cbor")
	indefMap     = vectorNamed("misc_2025-08-29_prod_indefmap.cbor")
)

func vectorNamed(file string) vector {
	for _, v := range vectors {
		if v.file == file {
			return v
		}
	}
	panic("no vector " + file)
}

func (v vector) time() time.Time { return time.UnixMilli(v.ms) }

func (v vector) read(t testing.TB) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", v.file))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != v.sha256 {
		t.Fatalf("%s: SHA-256 changed: the vector was edited", v.file)
	}
	return raw
}

// verify verifies v at its own timestamp against the AWS root.
func (v vector) verify(t testing.TB) *attestation.Document {
	t.Helper()
	doc, err := attestation.Verify(v.read(t), attestation.VerifyOptions{Time: v.time()})
	if err != nil {
		t.Fatalf("Verify(%s): %v", v.file, err)
	}
	return doc
}

func validVectors() []vector {
	var out []vector
	for _, v := range vectors {
		if !v.badSig {
			out = append(out, v)
		}
	}
	return out
}

// pki is a test certificate chain root -> intermediate -> leaf, with knobs
// to make each certificate unfit for its place.
type pki struct {
	root, inter, leaf *x509.Certificate
	leafKey           crypto.Signer
	notBefore         time.Time
}

type pkiOptions struct {
	leafKeyUsage  x509.KeyUsage
	leafIsCA      bool
	interKeyUsage x509.KeyUsage
	interIsCA     bool
	leafKey       func() (crypto.Signer, error)
}

func defaultPKIOptions() pkiOptions {
	return pkiOptions{
		leafKeyUsage:  x509.KeyUsageDigitalSignature,
		interKeyUsage: x509.KeyUsageCertSign,
		interIsCA:     true,
		leafKey:       func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) },
	}
}

var pkiStart = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newPKI(t testing.TB, o pkiOptions) *pki {
	t.Helper()
	p := &pki{notBefore: pkiStart}
	rootKey := p384(t)
	p.root = issue(t, caCert("test root", x509.KeyUsageCertSign, true, pkiStart), nil, rootKey.Public(), rootKey)
	interKey := p384(t)
	p.inter = issue(t, caCert("test intermediate", o.interKeyUsage, o.interIsCA, pkiStart), p.root, interKey.Public(), rootKey)
	leafKey, err := o.leafKey()
	if err != nil {
		t.Fatal(err)
	}
	p.leafKey = leafKey
	p.leaf = issue(t, leafCert(o.leafKeyUsage, o.leafIsCA), p.inter, leafKey.Public(), interKey)
	return p
}

// leafCert is a leaf template shaped like AWS's: about 3 hours of validity.
func leafCert(ku x509.KeyUsage, isCA bool) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: "test leaf"},
		NotBefore:             pkiStart,
		NotAfter:              pkiStart.Add(3 * time.Hour),
		KeyUsage:              ku,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
}

func (p *pki) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.root)
	return pool
}

func (p *pki) bundle() [][]byte { return [][]byte{p.root.Raw, p.inter.Raw} }

// at is a time inside every certificate's validity.
func (p *pki) at() time.Time { return p.notBefore.Add(time.Hour) }

// document returns a valid document signed by p's leaf.
func (p *pki) document() *attestation.Document {
	pcrs := make(map[int][]byte)
	for i := range 16 {
		pcrs[i] = make([]byte, 48)
		pcrs[i][0] = byte(i + 1)
	}
	return &attestation.Document{
		ModuleID:    "i-0123456789abcdef0-enc0123456789abcdef",
		Timestamp:   p.at(),
		Digest:      "SHA384",
		PCRs:        pcrs,
		Certificate: p.leaf,
		CABundle:    p.bundle(),
	}
}

// sign signs d with p's leaf key, which must be P-384.
func (p *pki) sign(t testing.TB, d *attestation.Document) []byte {
	t.Helper()
	raw, err := attestation.Sign(d, p.ecdsaKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// signPayload wraps arbitrary payload bytes, signed by p's leaf key.
func (p *pki) signPayload(t testing.TB, payload []byte) []byte {
	t.Helper()
	raw, err := attestation.SignPayload(payload, p.ecdsaKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (p *pki) ecdsaKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, ok := p.leafKey.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatal("leaf key is not ECDSA")
	}
	return key
}

func (p *pki) verify(raw []byte) (*attestation.Document, error) {
	return attestation.Verify(raw, attestation.VerifyOptions{Time: p.at(), Roots: p.roots()})
}

func p384(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func caCert(cn string, ku x509.KeyUsage, isCA bool, start time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             start.Add(-24 * time.Hour),
		NotAfter:              start.Add(30 * 24 * time.Hour),
		KeyUsage:              ku,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
}

// issue signs tmpl for pub with signer, as parent (self-signed if nil).
func issue(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
