// Package attestsim simulates the Nitro Security Module's attestation for
// development and tests. It mints documents in exactly the format of real
// ones (see package attestation), signed by a throwaway P-384 certificate
// authority instead of AWS's.
//
// Its documents verify only when the caller passes [CA.Roots] to
// attestation.Verify explicitly; with the default roots (the pinned AWS
// root) they fail. Binaries built for a release enclave must not link this
// package: gate its use behind a build tag in the wiring that chooses between
// the real NSM and the simulator.
//
// A CA is safe for concurrent use.
package attestsim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
)

const (
	// LeafLifetime is how long a minted document's leaf certificate is
	// valid, like AWS's (about 3 hours from just before the document).
	LeafLifetime = 3 * time.Hour

	// DefaultModuleID is the module_id of documents whose Request has none.
	// It has the shape of AWS's: instance ID, "-enc", enclave ID.
	DefaultModuleID = "i-00000000000000000-enc0000000000000000"

	// NumPCRs is the number of PCRs in every minted document, as on AWS.
	NumPCRs = 16

	// PCRSize is the size of every PCR (SHA-384).
	PCRSize = 48
)

// The CA is valid over a wide window so that tests can mint documents at any
// fixed time they like.
var (
	caNotBefore = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	caNotAfter  = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// CA is a simulated Nitro attestation PKI: a P-384 root and an intermediate
// that issues one short-lived leaf per document.
type CA struct {
	root     *x509.Certificate
	inter    *x509.Certificate
	interKey *ecdsa.PrivateKey
}

// NewCA returns a CA with a fresh random root and intermediate.
func NewCA() (*CA, error) {
	rootKey, root, err := newCert(caTemplate("attestsim root"), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("attestsim: creating root: %w", err)
	}
	interTmpl := caTemplate("attestsim intermediate")
	interTmpl.MaxPathLenZero = true // like AWS's last CA: it signs leaves only
	interKey, inter, err := newCert(interTmpl, root, rootKey)
	if err != nil {
		return nil, fmt.Errorf("attestsim: creating intermediate: %w", err)
	}
	return &CA{root: root, inter: inter, interKey: interKey}, nil
}

// Root returns a copy of the CA's root certificate.
func (c *CA) Root() *x509.Certificate {
	root, err := x509.ParseCertificate(c.root.Raw)
	if err != nil {
		panic("unreachable: the root was parsed when created")
	}
	return root
}

// RootPEM returns the root certificate in PEM form.
func (c *CA) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.root.Raw})
}

// Roots returns a new pool holding only the CA's root, to pass as
// attestation.VerifyOptions.Roots.
func (c *CA) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Root())
	return p
}

// Request describes a document to mint.
type Request struct {
	// ModuleID defaults to DefaultModuleID.
	ModuleID string
	// PCRs holds PCRs 0..15, each 48 bytes; the others are 48 zero bytes.
	// Leaving PCR0, PCR1 and PCR2 unset makes a debug-mode document.
	PCRs map[int][]byte
	// UserData (at most 512 bytes), Nonce (at most 512 bytes) and
	// PublicKey (1..1024 bytes) are absent (CBOR null) when nil. A non-nil
	// empty UserData or Nonce is present and empty.
	UserData, Nonce, PublicKey []byte
	// Time is the document's timestamp; zero means time.Now().
	Time time.Time
}

// Attest mints a document for r and returns its raw COSE_Sign1 bytes.
func (c *CA) Attest(r Request) ([]byte, error) {
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	pcrs, err := fillPCRs(r.PCRs)
	if err != nil {
		return nil, err
	}
	if t.Before(caNotBefore) || !t.Before(caNotAfter.Add(-LeafLifetime)) {
		return nil, errors.New("attestsim: Time is outside the CA's validity")
	}
	moduleID := r.ModuleID
	if moduleID == "" {
		moduleID = DefaultModuleID
	}
	leafKey, leaf, err := c.issueLeaf(moduleID, t)
	if err != nil {
		return nil, err
	}
	raw, err := attestation.Sign(&attestation.Document{
		ModuleID:    moduleID,
		Timestamp:   t,
		Digest:      "SHA384",
		PCRs:        pcrs,
		Certificate: leaf,
		CABundle:    [][]byte{c.root.Raw, c.inter.Raw},
		PublicKey:   r.PublicKey,
		UserData:    r.UserData,
		Nonce:       r.Nonce,
	}, leafKey)
	if err != nil {
		return nil, fmt.Errorf("attestsim: %w", err)
	}
	return raw, nil
}

// fillPCRs checks the requested PCRs and completes them to 0..15.
func fillPCRs(req map[int][]byte) (map[int][]byte, error) {
	pcrs := make(map[int][]byte, NumPCRs)
	for i := range NumPCRs {
		pcrs[i] = make([]byte, PCRSize)
	}
	for i, v := range req {
		if i < 0 || i >= NumPCRs {
			return nil, fmt.Errorf("attestsim: PCR%d: index not in 0..%d", i, NumPCRs-1)
		}
		if len(v) != PCRSize {
			return nil, fmt.Errorf("attestsim: PCR%d: %d bytes, want %d", i, len(v), PCRSize)
		}
		copy(pcrs[i], v)
	}
	return pcrs, nil
}

// issueLeaf issues the certificate that signs one document made at t.
// Like AWS's, it starts a little before the document (truncated to the
// second) and lasts LeafLifetime.
func (c *CA) issueLeaf(moduleID string, t time.Time) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	notBefore := t.UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		Subject:               leafName(moduleID),
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(LeafLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true,
	}
	key, leaf, err := newCert(tmpl, c.inter, c.interKey)
	if err != nil {
		return nil, nil, fmt.Errorf("attestsim: issuing leaf: %w", err)
	}
	return key, leaf, nil
}

func leafName(moduleID string) pkix.Name {
	return pkix.Name{
		Country:            []string{"US"},
		Organization:       []string{"nitro-cosigner attestsim"},
		OrganizationalUnit: []string{"simulated Nitro Enclaves"},
		CommonName:         moduleID + ".attestsim",
	}
}

func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject: pkix.Name{
			Country:            []string{"US"},
			Organization:       []string{"nitro-cosigner attestsim"},
			OrganizationalUnit: []string{"simulated Nitro Enclaves"},
			CommonName:         cn,
		},
		NotBefore:             caNotBefore,
		NotAfter:              caNotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// newCert creates a P-384 key and a certificate for it from tmpl, signed by
// parent's key, or self-signed when parent is nil. A nil SerialNumber makes
// crypto/x509 pick a random one.
func newCert(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}
