package attestsim

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// PEM block types of a saved CA.
const (
	pemRoot         = "ATTESTSIM ROOT CERTIFICATE"
	pemIntermediate = "ATTESTSIM INTERMEDIATE CERTIFICATE"
	pemKey          = "ATTESTSIM INTERMEDIATE PRIVATE KEY"
)

// ErrBadCA reports a saved CA that does not load.
var ErrBadCA = errors.New("attestsim: bad saved CA")

// MarshalPEM saves the CA — root and intermediate certificates and the
// intermediate's private key — so that several processes (a devnet's
// simulated enclaves, its KMS emulator) can share one test PKI. The output
// holds a private key of a TEST CA only; it must never be trusted outside
// development.
func (c *CA) MarshalPEM() ([]byte, error) {
	key, err := x509.MarshalPKCS8PrivateKey(c.interKey)
	if err != nil {
		return nil, fmt.Errorf("attestsim: encoding key: %w", err)
	}
	var out bytes.Buffer
	for _, b := range []*pem.Block{
		{Type: pemRoot, Bytes: c.root.Raw},
		{Type: pemIntermediate, Bytes: c.inter.Raw},
		{Type: pemKey, Bytes: key},
	} {
		if err := pem.Encode(&out, b); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

// LoadCA loads a CA saved by MarshalPEM. It checks that the intermediate is
// a CA signed by the root and that the key is the intermediate's.
func LoadCA(data []byte) (*CA, error) {
	blocks := map[string][]byte{}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if _, dup := blocks[b.Type]; dup {
			return nil, fmt.Errorf("%w: %s appears twice", ErrBadCA, b.Type)
		}
		blocks[b.Type] = b.Bytes
	}
	root, err := parseCA(blocks[pemRoot], "root")
	if err != nil {
		return nil, err
	}
	inter, err := parseCA(blocks[pemIntermediate], "intermediate")
	if err != nil {
		return nil, err
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("%w: intermediate is not signed by the root", ErrBadCA)
	}
	key, err := parseKey(blocks[pemKey], inter)
	if err != nil {
		return nil, err
	}
	return &CA{root: root, inter: inter, interKey: key}, nil
}

func parseCA(der []byte, what string) (*x509.Certificate, error) {
	if der == nil {
		return nil, fmt.Errorf("%w: no %s certificate", ErrBadCA, what)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil || !c.IsCA {
		return nil, fmt.Errorf("%w: %s is not a CA certificate", ErrBadCA, what)
	}
	return c, nil
}

func parseKey(der []byte, inter *x509.Certificate) (*ecdsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	key, ok := k.(*ecdsa.PrivateKey)
	if err != nil || !ok || key.Curve != elliptic.P384() {
		return nil, fmt.Errorf("%w: intermediate key is not a P-384 ECDSA key", ErrBadCA)
	}
	pub, ok := inter.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("%w: key does not match the intermediate certificate", ErrBadCA)
	}
	return key, nil
}
