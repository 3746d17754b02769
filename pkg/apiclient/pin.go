package apiclient

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"sync"
)

// errCertChanged fails a handshake whose server certificate is not the
// one the connection saw first.
var errCertChanged = errors.New("apiclient: the server certificate is not the attested one")

// leafPin remembers the first server certificate a Conn's handshakes saw
// and refuses every later handshake that presents another.
type leafPin struct {
	mu  sync.Mutex
	set bool
	sum [sha256.Size]byte
}

// verify is the tls.Config's VerifyConnection.
func (p *leafPin) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("apiclient: the server sent no certificate")
	}
	sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.set {
		p.set, p.sum = true, sum
		return nil
	}
	if subtle.ConstantTimeCompare(sum[:], p.sum[:]) != 1 {
		return errCertChanged
	}
	return nil
}

// clientTLSConfig is TLS 1.3 with the caller's certificate, trusting the
// server's certificate through pin and attestation only.
func clientTLSConfig(cert tls.Certificate, pin *leafPin) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The server's certificate is self-signed inside the enclave: no
		// CA can vouch for it, and its name and dates mean nothing. It is
		// trusted because the attestation document binds its SHA-256
		// (Verify), and pinned by VerifyConnection, which runs even with
		// InsecureSkipVerify.
		InsecureSkipVerify: true,
		VerifyConnection:   pin.verify,
		// Always offer the certificate, whatever CAs the server names, so
		// that a refusal comes from the server and says so.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		},
	}
}
