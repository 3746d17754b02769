// Package apiclient dials the cosigner's gRPC API (proto/cosigner/v1) over
// attested TLS.
//
// # Contract
//
// A cosigner's API certificate is self-signed, made inside the enclave at
// boot; no certificate authority vouches for it. [Dial] trusts it only
// through attestation: on the connection it has just opened, with the
// caller's client certificate, it asks AttestationService.GetAttestation
// for a document over a fresh nonce, and it returns a [Conn] only if the
// document is genuine, shows the expected enclave image, carries the nonce
// and binds the very certificate the server presented (see [Verify] for
// every check). Until then it sends no other request; on any failure it
// closes the connection and returns an [*AttestationError] naming the
// check.
//
// The first server certificate a Conn sees is pinned: a later TLS handshake
// of the same Conn (gRPC reconnects after a network failure) that presents
// another certificate fails, so every request goes to the enclave that was
// attested, whose certificate key never leaves it. A restarted enclave has
// a new certificate: Dial again.
//
// [Config.InsecureSkipAttestation] skips the attestation (the certificate
// is still pinned, but nothing says whose it is). It exists for
// development; callers must say so loudly when they use it.
//
// Also here, for every client: the policy approval message admins sign
// ([ApprovalMessage], [Approve]) and idempotency keys
// ([NewIdempotencyKey]).
package apiclient

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// NonceSize is the size of the nonce Dial draws when Config.Nonce is nil.
const NonceSize = 32

// MaxNonceSize is the largest nonce GetAttestation accepts.
const MaxNonceSize = 64

// Config says where to dial and what to accept.
type Config struct {
	// Addr is the server's HOST:PORT.
	Addr string

	// ClientCertificate is the caller's certificate and key, issued by
	// the cosigner's client CA; its role URIs decide what the caller may
	// do. Required.
	ClientCertificate tls.Certificate

	// Roots are the attestation roots. Nil means the pinned AWS Nitro
	// root G1 only; pass another pool only for a simulator.
	Roots *x509.CertPool

	// PCRs are the expected PCR values (index to 48 bytes). Each listed
	// PCR must match. With none, any enclave image signed by the root is
	// accepted, which proves little: set at least PCR0.
	PCRs map[int][]byte

	// AllowDebug accepts documents of debug-mode enclaves (PCR0, PCR1
	// and PCR2 all zero). Never set it in production.
	AllowDebug bool

	// CosignerID, if set, must be the attested cosigner ID.
	CosignerID string

	// Nonce is the nonce to attest with, 1 to MaxNonceSize bytes. Nil
	// draws NonceSize random bytes, which is what callers should do
	// unless they need a document for a nonce of their own.
	Nonce []byte

	// InsecureSkipAttestation skips the attestation: the server is not
	// authenticated at all. For development only.
	InsecureSkipAttestation bool

	// Now returns the time at which the document's certificate chain is
	// checked. Nil means time.Now.
	Now func() time.Time
}

// Conn is a gRPC connection to an attested cosigner. Pass it to the
// cosignerv1.New*Client constructors.
type Conn struct {
	*grpc.ClientConn
	attested *Attestation
}

// Attested returns what the attestation showed, or nil when it was
// skipped (Config.InsecureSkipAttestation).
func (c *Conn) Attested() *Attestation { return c.attested }

// Dial connects to cfg.Addr and attests the server as the package
// comment describes. The context bounds the attestation; the returned
// Conn outlives it. Close the Conn when done.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	nonce, err := cfg.nonce()
	if err != nil {
		return nil, err
	}
	pin := new(leafPin)
	creds := credentials.NewTLS(clientTLSConfig(cfg.ClientCertificate, pin))
	// passthrough: dial Addr as given, one address, no resolver of gRPC's.
	cc, err := grpc.NewClient("passthrough:///"+cfg.Addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("apiclient: %w", err)
	}
	c := &Conn{ClientConn: cc}
	if cfg.InsecureSkipAttestation {
		return c, nil
	}
	if c.attested, err = attest(ctx, cc, cfg, nonce); err != nil {
		cc.Close()
		return nil, err
	}
	return c, nil
}

// nonce checks cfg and returns the nonce to attest with.
func (cfg Config) nonce() ([]byte, error) {
	switch {
	case cfg.Addr == "":
		return nil, errors.New("apiclient: no address")
	case len(cfg.ClientCertificate.Certificate) == 0:
		return nil, errors.New("apiclient: no client certificate")
	case cfg.Nonce != nil && (len(cfg.Nonce) == 0 || len(cfg.Nonce) > MaxNonceSize):
		return nil, fmt.Errorf("apiclient: the nonce must be 1 to %d bytes", MaxNonceSize)
	case cfg.Nonce != nil:
		return append([]byte(nil), cfg.Nonce...), nil
	}
	nonce := make([]byte, NonceSize)
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	return nonce, nil
}

// attest asks for a document over nonce and verifies it against the
// certificate of the connection the answer came on.
func attest(ctx context.Context, cc *grpc.ClientConn, cfg Config, nonce []byte) (*Attestation, error) {
	var p peer.Peer
	resp, err := cosignerv1.NewAttestationServiceClient(cc).GetAttestation(ctx,
		&cosignerv1.GetAttestationRequest{Nonce: nonce}, grpc.Peer(&p))
	if err != nil {
		return nil, &AttestationError{Check: CheckRequest, Err: err}
	}
	leaf, err := peerLeaf(&p)
	if err != nil {
		return nil, &AttestationError{Check: CheckTLSCertificate, Err: err}
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	return Verify(resp, Expected{
		Nonce:      nonce,
		ServerCert: leaf,
		Roots:      cfg.Roots,
		PCRs:       cfg.PCRs,
		AllowDebug: cfg.AllowDebug,
		CosignerID: cfg.CosignerID,
		Time:       now(),
	})
}

// peerLeaf returns the DER leaf certificate the server presented on the
// connection a call used.
func peerLeaf(p *peer.Peer) ([]byte, error) {
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return nil, errors.New("the call carried no TLS server certificate")
	}
	return info.State.PeerCertificates[0].Raw, nil
}
