package apiclient_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// pki is everything a test server and its clients share: the simulated
// Nitro CA, the client CA and one client certificate, and the enclave
// image's PCRs.
type pki struct {
	sim      *attestsim.CA
	clientCA *x509.CertPool
	client   tls.Certificate
	pcrs     map[int][]byte
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	sim, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	caKey, caCert := selfSigned(t, "client CA", true)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	pcrs := map[int][]byte{}
	for i := range 3 {
		pcrs[i] = make([]byte, 48)
		pcrs[i][0] = byte(i + 1)
	}
	return &pki{sim: sim, clientCA: pool, client: clientCert(t, caCert, caKey), pcrs: pcrs}
}

func selfSigned(t *testing.T, cn string, isCA bool) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: isCA, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if !isCA {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func clientCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	role, _ := url.Parse("urn:nitro-cosigner:role:admin")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "test client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs: []*url.URL{role},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// enclave is what a test server attests: its ID, keys and certificate.
type enclave struct {
	id       string
	identity ed25519.PublicKey
	enc      []byte
	cert     tls.Certificate
	certSum  [sha256.Size]byte
}

func newEnclave(t *testing.T) *enclave {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, cert := selfSigned(t, "co-1", false)
	return &enclave{
		id: "co-1", identity: pub, enc: enc.PublicKey().Bytes(),
		cert:    tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key},
		certSum: sha256.Sum256(cert.Raw),
	}
}

// response is the genuine answer of e for nonce, with the document
// request changed by edit (if not nil).
func (e *enclave) response(t *testing.T, p *pki, nonce []byte, edit func(*attestsim.Request)) *cosignerv1.GetAttestationResponse {
	req := attestsim.Request{
		PCRs:     p.pcrs,
		Nonce:    nonce,
		UserData: wire.BindingUserData(e.id, e.identity, e.enc, e.certSum[:]),
	}
	if edit != nil {
		edit(&req)
	}
	doc, err := p.sim.Attest(req)
	if err != nil {
		t.Error(err)
	}
	return &cosignerv1.GetAttestationResponse{
		AttestationDocument: doc, CosignerId: e.id, IdentityPublicKey: e.identity,
		EncryptionPublicKey: e.enc, TlsCertificateSha256: e.certSum[:],
	}
}

// server serves AttestationService (answering with attest) and a
// KeyService whose GetKey answers NOT_FOUND, and records every call.
type server struct {
	cosignerv1.UnimplementedAttestationServiceServer
	cosignerv1.UnimplementedKeyServiceServer
	addr   string
	grpc   *grpc.Server
	attest func(ctx context.Context, nonce []byte) (*cosignerv1.GetAttestationResponse, error)

	mu    sync.Mutex
	calls []call
}

// call is one RPC the server received and the client address it came from.
type call struct{ method, from string }

func serve(t *testing.T, p *pki, cert tls.Certificate, lis net.Listener) *server {
	t.Helper()
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.clientCA,
	})))
	s := &server{addr: lis.Addr().String(), grpc: g}
	cosignerv1.RegisterAttestationServiceServer(g, s)
	cosignerv1.RegisterKeyServiceServer(g, s)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return s
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

// startEnclave serves e's genuine attestation.
func startEnclave(t *testing.T, p *pki, e *enclave) *server {
	s := serve(t, p, e.cert, listen(t, "127.0.0.1:0"))
	s.attest = func(_ context.Context, nonce []byte) (*cosignerv1.GetAttestationResponse, error) {
		return e.response(t, p, nonce, nil), nil
	}
	return s
}

func (s *server) record(ctx context.Context, method string) {
	p, _ := peer.FromContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call{method, p.Addr.String()})
}

func (s *server) received() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.calls...)
}

func (s *server) GetAttestation(ctx context.Context, req *cosignerv1.GetAttestationRequest) (*cosignerv1.GetAttestationResponse, error) {
	s.record(ctx, "GetAttestation")
	return s.attest(ctx, req.GetNonce())
}

func (s *server) GetKey(ctx context.Context, _ *cosignerv1.GetKeyRequest) (*cosignerv1.GetKeyResponse, error) {
	s.record(ctx, "GetKey")
	return nil, status.Error(codes.NotFound, "key not found")
}
