package attestation

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// verifyChain runs checks 8 to 12 of Verify and returns the leaf's key.
func verifyChain(d *Document, opts VerifyOptions) (*ecdsa.PublicKey, error) {
	key, ok := d.Certificate.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P384() {
		return nil, chainError("leaf certificate: key is not ECDSA P-384")
	}
	bundle, err := parseBundle(d.CABundle)
	if err != nil {
		return nil, err
	}
	chains, err := d.Certificate.Verify(x509.VerifyOptions{
		Intermediates: pool(bundle[1:]),
		Roots:         rootsOrDefault(opts.Roots),
		CurrentTime:   opts.Time,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, chainError(describeX509(err, opts.Time))
	}
	chain := bundleChain(chains, bundle)
	if chain == nil {
		return nil, chainError("verified chain is not leaf, cabundle[n-1..1], cabundle[0]")
	}
	if err := checkKeyUsage(chain); err != nil {
		return nil, err
	}
	return key, nil
}

func parseBundle(der [][]byte) ([]*x509.Certificate, error) {
	certs := make([]*x509.Certificate, len(der))
	for i, b := range der {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, malformed(fmt.Sprintf("cabundle: entry %d is not an X.509 certificate", i))
		}
		certs[i] = c
	}
	return certs, nil
}

func pool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func rootsOrDefault(roots *x509.CertPool) *x509.CertPool {
	if roots != nil {
		return roots
	}
	return defaultRoots()
}

// bundleChain returns the chain that is exactly [leaf, bundle[n-1], ...,
// bundle[1], root] with root equal to bundle[0], or nil.
func bundleChain(chains [][]*x509.Certificate, bundle []*x509.Certificate) []*x509.Certificate {
	for _, chain := range chains {
		if followsBundle(chain, bundle) {
			return chain
		}
	}
	return nil
}

func followsBundle(chain, bundle []*x509.Certificate) bool {
	n := len(bundle)
	if len(chain) != n+1 {
		return false
	}
	for i := 1; i <= n; i++ {
		if !bytes.Equal(chain[i].Raw, bundle[n-i].Raw) {
			return false
		}
	}
	return true
}

// checkKeyUsage applies section 3.2.3.3 of the AWS specification, which
// crypto/x509 leaves to the caller.
func checkKeyUsage(chain []*x509.Certificate) error {
	leaf := chain[0]
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return chainError("leaf certificate: key usage lacks digitalSignature")
	}
	if leaf.IsCA {
		return chainError("leaf certificate: is a CA")
	}
	for i, c := range chain[1:] {
		if c.KeyUsage&x509.KeyUsageCertSign == 0 {
			return chainError(fmt.Sprintf("CA certificate %d above the leaf: key usage lacks keyCertSign", i+1))
		}
	}
	return nil
}

// describeX509 names a chain failure without quoting certificate contents.
func describeX509(err error, at time.Time) string {
	var (
		invalid x509.CertificateInvalidError
		unknown x509.UnknownAuthorityError
	)
	switch {
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "a certificate is expired or not yet valid at " + at.UTC().Format(time.RFC3339)
	case errors.As(err, &invalid) && invalid.Reason == x509.TooManyIntermediates:
		return "a path length constraint is violated"
	case errors.As(err, &unknown):
		return "does not chain to a trusted root"
	default:
		return "chain verification failed"
	}
}
