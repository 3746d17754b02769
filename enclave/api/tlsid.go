package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"
)

// certLifetime is how long the server certificate is valid. It is made
// anew at every boot, and clients trust it through the attestation
// document that names its fingerprint, not through its dates.
const certLifetime = 365 * 24 * time.Hour

// ServerCert is the API's TLS identity: a P-256 key created inside the
// enclave at boot, which never leaves it, and a self-signed certificate
// for it. Clients trust it by checking that an attestation document from
// this enclave carries Fingerprint (see GetAttestation).
type ServerCert struct {
	TLS tls.Certificate
	// Fingerprint is SHA-256 of the certificate's DER encoding.
	Fingerprint [sha256.Size]byte
}

// NewServerCert creates the key and certificate for a cosigner; the
// certificate names the cosigner ID as its common name and DNS name.
func NewServerCert(cosignerID string, now time.Time) (*ServerCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("api: creating the TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("api: drawing a serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cosignerID, Organization: []string{"nitro-cosigner"}},
		DNSNames:     []string{cosignerID},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("api: creating the TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("api: parsing our own certificate: %w", err)
	}
	return &ServerCert{
		TLS:         tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		Fingerprint: sha256.Sum256(der),
	}, nil
}

// String never prints the key.
func (c *ServerCert) String() string {
	return fmt.Sprintf("api.ServerCert{fingerprint: %x}", c.Fingerprint)
}

// GoString never prints the key.
func (c *ServerCert) GoString() string { return c.String() }
