package apiclient_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func config(p *pki, s *server) apiclient.Config {
	return apiclient.Config{Addr: s.addr, ClientCertificate: p.client, Roots: p.sim.Roots(), PCRs: p.pcrs}
}

func dial(t *testing.T, cfg apiclient.Config) (*apiclient.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := apiclient.Dial(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// TestDialAttests: Dial returns what the document shows, and the next
// request goes over the connection the attestation came on.
func TestDialAttests(t *testing.T) {
	p, e := newPKI(t), newEnclave(t)
	s := startEnclave(t, p, e)
	cfg := config(p, s)
	cfg.CosignerID = "co-1"
	c, err := dial(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Attested()
	if a.CosignerID != "co-1" || !a.IdentityKey.Equal(e.identity) || !bytes.Equal(a.EncryptionKey, e.enc) ||
		a.TLSCertificateSHA256 != e.certSum || !bytes.Equal(a.Document.PCRs[0], p.pcrs[0]) || len(a.Document.Nonce) != apiclient.NonceSize {
		t.Errorf("Attested() = %+v", a)
	}
	_, err = cosignerv1.NewKeyServiceClient(c).GetKey(context.Background(), &cosignerv1.GetKeyRequest{Name: "keys/x"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("GetKey: %v", err)
	}
	calls := s.received()
	if len(calls) != 2 || calls[0].method != "GetAttestation" || calls[1].method != "GetKey" || calls[0].from != calls[1].from {
		t.Errorf("server received %v; want GetAttestation then GetKey from one connection", calls)
	}
}

// TestDialNonce: a nonce of the caller's own is the document's.
func TestDialNonce(t *testing.T) {
	p, e := newPKI(t), newEnclave(t)
	cfg := config(p, startEnclave(t, p, e))
	cfg.Nonce = []byte("my nonce")
	c, err := dial(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Attested().Document.Nonce) != "my nonce" {
		t.Errorf("nonce %q", c.Attested().Document.Nonce)
	}
	for _, bad := range [][]byte{{}, make([]byte, apiclient.MaxNonceSize+1)} {
		cfg.Nonce = bad
		if _, err := dial(t, cfg); err == nil {
			t.Errorf("nonce of %d bytes accepted", len(bad))
		}
	}
}

// TestDialRefuses: each way the attestation can be wrong fails the check
// that names it, and the server receives nothing but GetAttestation.
func TestDialRefuses(t *testing.T) {
	p, e := newPKI(t), newEnclave(t)
	genuine := startEnclave(t, p, e)
	otherSim, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	// mitm presents its own certificate and relays the genuine server's
	// answer for the client's nonce.
	mitm := serve(t, p, newEnclave(t).cert, listen(t, "127.0.0.1:0"))
	mitm.attest = func(ctx context.Context, nonce []byte) (*cosignerv1.GetAttestationResponse, error) {
		cfg := config(p, genuine)
		cfg.InsecureSkipAttestation = true
		c, err := apiclient.Dial(ctx, cfg)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return cosignerv1.NewAttestationServiceClient(c).GetAttestation(ctx, &cosignerv1.GetAttestationRequest{Nonce: nonce})
	}
	tests := []struct {
		name   string
		answer func(nonce []byte) *cosignerv1.GetAttestationResponse // nil: genuine
		target *server
		config func(*apiclient.Config)
		check  apiclient.Check
		detail string
	}{
		{name: "wrong PCR", config: func(c *apiclient.Config) { c.PCRs = map[int][]byte{1: make([]byte, 48)} },
			check: apiclient.CheckPCRs, detail: "PCR1"},
		{name: "simulator root not given", config: func(c *apiclient.Config) { c.Roots = nil },
			check: apiclient.CheckChain},
		{name: "wrong root", config: func(c *apiclient.Config) { c.Roots = otherSim.Roots() },
			check: apiclient.CheckChain},
		{name: "debug document", check: apiclient.CheckDebug, answer: func(n []byte) *cosignerv1.GetAttestationResponse {
			return e.response(t, p, n, func(r *attestsim.Request) { r.PCRs = nil })
		}},
		{name: "replayed nonce", check: apiclient.CheckNonce, answer: func([]byte) *cosignerv1.GetAttestationResponse {
			return e.response(t, p, []byte("an earlier nonce"), nil)
		}},
		{name: "no nonce", check: apiclient.CheckNonce, answer: func([]byte) *cosignerv1.GetAttestationResponse {
			return e.response(t, p, nil, nil)
		}},
		{name: "user_data binds another cosigner", check: apiclient.CheckUserData, answer: func(n []byte) *cosignerv1.GetAttestationResponse {
			r := e.response(t, p, n, nil)
			r.CosignerId = "co-2"
			return r
		}},
		{name: "user_data binds another certificate", check: apiclient.CheckUserData, answer: func(n []byte) *cosignerv1.GetAttestationResponse {
			r := e.response(t, p, n, nil)
			r.TlsCertificateSha256 = make([]byte, 32)
			return r
		}},
		{name: "short identity key", check: apiclient.CheckResponse, answer: func(n []byte) *cosignerv1.GetAttestationResponse {
			r := e.response(t, p, n, nil)
			r.IdentityPublicKey = r.IdentityPublicKey[:31]
			return r
		}},
		{name: "not a document", check: apiclient.CheckDocument, answer: func(n []byte) *cosignerv1.GetAttestationResponse {
			r := e.response(t, p, n, nil)
			r.AttestationDocument = []byte{0x84, 0x40}
			return r
		}},
		{name: "relayed by a MITM", target: mitm, check: apiclient.CheckTLSCertificate},
		{name: "other cosigner", config: func(c *apiclient.Config) { c.CosignerID = "co-9" },
			check: apiclient.CheckCosignerID, detail: `"co-1", not "co-9"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.target
			if s == nil {
				s = startEnclave(t, p, e)
			}
			if tt.answer != nil {
				s.attest = func(_ context.Context, n []byte) (*cosignerv1.GetAttestationResponse, error) {
					return tt.answer(n), nil
				}
			}
			cfg := config(p, s)
			if tt.config != nil {
				tt.config(&cfg)
			}
			before := len(s.received())
			c, err := dial(t, cfg)
			ae, ok := errors.AsType[*apiclient.AttestationError](err)
			if c != nil || !ok || ae.Check != tt.check || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("Dial = %v, %v; want check %q", c, err, tt.check)
			}
			if !strings.HasPrefix(err.Error(), "attestation check failed: "+string(tt.check)+": ") {
				t.Errorf("error %q does not name the check", err)
			}
			if calls := s.received()[before:]; len(calls) != 1 || calls[0].method != "GetAttestation" {
				t.Errorf("server received %v", calls)
			}
		})
	}
}

// TestDialRequestFails: a server that cannot attest fails the request
// check with its status; so does one that refuses the client.
func TestDialRequestFails(t *testing.T) {
	p, e := newPKI(t), newEnclave(t)
	s := startEnclave(t, p, e)
	s.attest = func(context.Context, []byte) (*cosignerv1.GetAttestationResponse, error) {
		return nil, status.Error(codes.Unavailable, "nsm unavailable")
	}
	_, err := dial(t, config(p, s))
	ae, ok := errors.AsType[*apiclient.AttestationError](err)
	if !ok || ae.Check != apiclient.CheckRequest || status.Code(err) != codes.Unavailable {
		t.Fatalf("Dial: %v", err)
	}

	other := newPKI(t) // a client certificate the server's CA did not issue
	cfg := config(p, startEnclave(t, p, e))
	cfg.ClientCertificate = other.client
	_, err = dial(t, cfg)
	if ae, ok := errors.AsType[*apiclient.AttestationError](err); !ok || ae.Check != apiclient.CheckRequest {
		t.Fatalf("Dial with a foreign client certificate: %v", err)
	}
}

// TestInsecureSkipAttestation sends no GetAttestation at all.
func TestInsecureSkipAttestation(t *testing.T) {
	p, e := newPKI(t), newEnclave(t)
	s := startEnclave(t, p, e)
	cfg := config(p, s)
	cfg.Roots, cfg.InsecureSkipAttestation = nil, true
	c, err := dial(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.Attested() != nil {
		t.Error("Attested() is set")
	}
	_, err = cosignerv1.NewKeyServiceClient(c).GetKey(context.Background(), &cosignerv1.GetKeyRequest{})
	if calls := s.received(); status.Code(err) != codes.NotFound || len(calls) != 1 || calls[0].method != "GetKey" {
		t.Errorf("GetKey: %v; server received %v", err, calls)
	}
}

// TestReconnectPinned: after the attested server goes away, a server on
// the same address with another certificate gets no request.
func TestReconnectPinned(t *testing.T) {
	p, e := newPKI(t), newEnclave(t)
	lis := listen(t, "127.0.0.1:0")
	addr := lis.Addr().String()
	first := serve(t, p, e.cert, lis)
	first.attest = func(_ context.Context, n []byte) (*cosignerv1.GetAttestationResponse, error) {
		return e.response(t, p, n, nil), nil
	}
	c, err := dial(t, config(p, first))
	if err != nil {
		t.Fatal(err)
	}
	first.grpc.Stop()
	impostor := serve(t, p, newEnclave(t).cert, listen(t, addr))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = cosignerv1.NewKeyServiceClient(c).GetKey(ctx, &cosignerv1.GetKeyRequest{})
	if err == nil || status.Code(err) == codes.NotFound || len(impostor.received()) != 0 {
		t.Fatalf("GetKey after the certificate changed: %v; impostor received %v", err, impostor.received())
	}
}

// TestApprove: both admin key types sign the documented message, and
// the PKIX key is the signer's.
func TestApprove(t *testing.T) {
	doc := []byte(`{"version":2}`)
	h := sha256.Sum256(doc)
	msg := append([]byte("nitro-cosigner/policy-approval/v1\x00"), h[:]...)
	if !bytes.Equal(apiclient.ApprovalMessage(doc), msg) {
		t.Fatal("ApprovalMessage differs from label || 0 || SHA-256(document)")
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ap, err := apiclient.Approve(doc, edKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(ap.AdminPublicKey)
	if err != nil || !edKey.Public().(ed25519.PublicKey).Equal(pub) || !ed25519.Verify(pub.(ed25519.PublicKey), msg, ap.Signature) {
		t.Errorf("Ed25519 approval does not verify: %v", err)
	}
	ap, err = apiclient.Approve(doc, ecKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, err = x509.ParsePKIXPublicKey(ap.AdminPublicKey)
	hm := sha256.Sum256(msg)
	if err != nil || !ecKey.PublicKey.Equal(pub) || !ecdsa.VerifyASN1(&ecKey.PublicKey, hm[:], ap.Signature) {
		t.Errorf("P-256 approval does not verify: %v", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := apiclient.Approve(doc, p384); err == nil {
		t.Error("a P-384 key approved")
	}
}

func TestIdempotencyKey(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := apiclient.NewIdempotencyKey(), apiclient.NewIdempotencyKey()
	if !uuid.MatchString(a) || a == b || !apiclient.ValidIdempotencyKey(a) {
		t.Errorf("NewIdempotencyKey: %q, %q", a, b)
	}
	for k, want := range map[string]bool{
		"a": true, strings.Repeat("~", 128): true, "": false, strings.Repeat("a", 129): false,
		"with space": false, "tab\t": false, "é": false,
	} {
		if apiclient.ValidIdempotencyKey(k) != want {
			t.Errorf("ValidIdempotencyKey(%q) = %v", k, !want)
		}
	}
}
