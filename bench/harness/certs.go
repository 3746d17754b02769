//go:build !release

package harness

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/devnet"
)

// clientCA is the devnet's API client CA, from its files in DIR. The bench
// issues one certificate per simulated client with it, so that every
// client is a caller of its own (the API rate-limits per client key).
type clientCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// roleURIPrefix starts the role URI SANs the API reads (enclave/api).
const roleURIPrefix = "urn:nitro-cosigner:role:"

func loadClientCA(files devnet.CertFiles) (*clientCA, error) {
	certDER, err := pemBlock(files.Cert, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	keyDER, err := pemBlock(files.Key, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	defer clear(keyDER)
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("client CA key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("client CA key: not a signing key")
	}
	return &clientCA{cert: cert, key: signer}, nil
}

func pemBlock(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("%s holds no %s", path, typ)
	}
	return blk.Bytes, nil
}

// issue makes a client certificate for role under a fresh P-256 key.
func (ca *clientCA) issue(cn, role string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	roleURI, err := url.Parse(roleURIPrefix + role)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs: []*url.URL{roleURI},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
