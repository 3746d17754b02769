//go:build !release

package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// clientPKI is a client CA and an auditor certificate it issued.
type clientPKI struct {
	caFile string
	cert   tls.Certificate
}

func newClientPKI(t *testing.T, dir string) clientPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	role, _ := url.Parse("urn:nitro-cosigner:role:auditor")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "auditor"}, URIs: []*url.URL{role},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := clientPKI{caFile: filepath.Join(dir, "client-ca.pem"), cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	return p
}

func writePEM(t *testing.T, path, typ string, der ...[]byte) {
	t.Helper()
	var b bytes.Buffer
	for _, d := range der {
		pem.Encode(&b, &pem.Block{Type: typ, Bytes: d})
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// otherMember is a roster entry for a cosigner that never shows up.
func otherMember(t *testing.T) ws.Member {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	enc, _ := ecdh.X25519().GenerateKey(rand.Reader)
	return ws.Member{ID: "bob", Identity: hex.EncodeToString(pub), Encryption: hex.EncodeToString(enc.PublicKey().Bytes()),
		PCRs: map[string]string{"0": hex.EncodeToString(pcrAllowed)}, Inbox: "bob"}
}

// cosignerSetup boots the enclave once to get its roster entry, then
// returns cfg for a cosigner with a bootstrapped workspace: this cosigner
// and one that never shows up, one admin (quorum 1) approving, and the
// client PKI's auditor certificate as the only API user.
func cosignerSetup(t *testing.T, cfg Config, dir string) (Config, ws.Member, clientPKI) {
	t.Helper()
	cfg.Cosigner.MemberOut = filepath.Join(dir, "alice.json")
	if _, err := runUntilReady(t, cfg); err != nil {
		t.Fatal(err)
	}
	var self ws.Member
	b, err := os.ReadFile(cfg.Cosigner.MemberOut)
	if err != nil || json.Unmarshal(b, &self) != nil || self.PCRs["0"] != hex.EncodeToString(pcrAllowed) {
		t.Fatalf("member file %s: %v", b, err)
	}
	pki := newClientPKI(t, dir)
	adminPub, adminKey, _ := ed25519.GenerateKey(rand.Reader)
	auditor, err := ws.NewUser("auditor", []string{"auditor"}, pki.cert.PrivateKey.(crypto.Signer).Public(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, raw, err := ws.NewDoc("test", []ws.Member{self, otherMember(t)}, []crypto.PublicKey{adminPub}, 1, []ws.User{auditor})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := ws.Approve(raw, adminKey)
	if err != nil {
		t.Fatal(err)
	}
	signed, _ := ws.Signed{Doc: raw, Approvals: []ws.Approval{ap}}.Encode()
	wsFile := filepath.Join(dir, "workspace.json")
	if err := os.WriteFile(wsFile, signed, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.State.Init = false
	cfg.Cosigner = CosignerConfig{Workspace: wsFile, ParentLink: freeAddr(t), APIListen: freeAddr(t), ClientCA: pki.caFile}
	return cfg, self, pki
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "tcp://" + l.Addr().String()
}

// A cosigner started without a roster reports its entry; started with
// one, it serves the API with TLS ending inside the enclave, and its
// attestation binds the identity of its entry and the certificate the
// client saw.
func TestCosignerServesAttestedAPI(t *testing.T) {
	env := newStateEnv(t)
	cfg, self, pki := cosignerSetup(t, env.config(t, pcrAllowed, true), t.TempDir())
	var logs testutil.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, testLogger(&logs)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v\n%s", err, logs.String())
		}
	}()
	for !strings.Contains(logs.String(), "API listening") {
		select {
		case err := <-done:
			t.Fatalf("Run = %v\n%s", err, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	checkAttestedAPI(t, strings.TrimPrefix(cfg.Cosigner.APIListen, "tcp://"), pki, self, env.ca)
}

func checkAttestedAPI(t *testing.T, addr string, pki clientPKI, self ws.Member, savedCA []byte) {
	t.Helper()
	var seen []byte
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pki.cert},
		InsecureSkipVerify: true, // trusted below through the attestation document, not a CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			seen = cs.PeerCertificates[0].Raw
			return nil
		}}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nonce := []byte("fresh nonce")
	att, err := pb.NewAttestationServiceClient(conn).GetAttestation(ctx, &pb.GetAttestationRequest{Nonce: nonce})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := attestsim.LoadCA(savedCA)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := attestation.Verify(att.AttestationDocument, attestation.VerifyOptions{Time: time.Now(), Roots: ca.Roots()})
	if err != nil {
		t.Fatal(err)
	}
	fp := sha256.Sum256(seen)
	want := wire.BindingUserData(att.CosignerId, att.IdentityPublicKey, att.EncryptionPublicKey, fp[:])
	if !bytes.Equal(doc.UserData, want) || !bytes.Equal(doc.Nonce, nonce) || hex.EncodeToString(att.IdentityPublicKey) != self.Identity {
		t.Fatal("the attestation does not bind the member's identity, the certificate seen and the nonce")
	}
	if _, err := pb.NewPolicyServiceClient(conn).GetPolicy(ctx, &pb.GetPolicyRequest{}); status.Code(err) != codes.NotFound {
		t.Errorf("GetPolicy with none set: %v", err)
	}
	keys, err := pb.NewKeyServiceClient(conn).ListKeys(ctx, &pb.ListKeysRequest{})
	if err != nil || len(keys.Keys) != 0 {
		t.Errorf("ListKeys = %v, %v", keys, err)
	}
	stream, err := pb.NewKeyServiceClient(conn).CreateKey(ctx, &pb.CreateKeyRequest{IdempotencyKey: "k"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("CreateKey as an auditor: %v", err)
	}
}
