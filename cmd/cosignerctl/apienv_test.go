package main

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// Keys every fake cosigner holds from the start.
var (
	keyECDSA   = "keys/" + strings.Repeat("aa", 32)
	keyTaproot = "keys/" + strings.Repeat("bb", 32)
	keyRefresh = "keys/" + strings.Repeat("cc", 32)
)

// apiEnv is a set of fake cosigners (one honest, the others each wrong in
// one way) and, in dir, the files their clients use:
//
//	admin, signer, auditor .pem/.key  client certificates with that role
//	norole.pem/.key                   a client certificate with no role
//	stranger.pem/.key                 an admin certificate of another CA
//	sim-root.pem                      the simulated Nitro root
//	other-root.pem                    another simulator's root
//	approver1.key, approver2.key      Ed25519 admin keys of the quorum (PKCS#8)
//	approver3.key                     an ECDSA P-256 admin key of the quorum
//	outsider.key                      an Ed25519 key outside the quorum
//
// The quorum is 2 of approver1..3.
type apiEnv struct {
	dir      string
	sim      *attestsim.CA
	pcrs     map[int][]byte
	clientCA *x509.CertPool
	identity ed25519.PrivateKey
	enc      []byte
	admins   policy.AdminSet
	servers  map[string]*fakeServer
}

// fakeServer is a running fakeCosigner.
type fakeServer struct {
	*fakeCosigner
	addr string
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	e := &apiEnv{dir: t.TempDir(), pcrs: map[int][]byte{}, servers: map[string]*fakeServer{}}
	var err error
	if e.sim, err = attestsim.NewCA(); err != nil {
		t.Fatal(err)
	}
	other, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	e.write(t, "sim-root.pem", e.sim.RootPEM())
	e.write(t, "other-root.pem", other.RootPEM())
	for i := range 3 {
		e.pcrs[i] = []byte(strings.Repeat(string(rune('a'+i)), 48))
	}
	e.clientCerts(t)
	e.adminKeys(t)
	_, e.identity, _ = ed25519.GenerateKey(rand.Reader)
	enc, _ := ecdh.X25519().GenerateKey(rand.Reader)
	e.enc = enc.PublicKey().Bytes()
	e.startAll(t)
	e.writeDevnet(t)
	return e
}

// writeDevnet writes dir/devnet/devnet.json, a devnet of three cosigners
// for --devnet, each the honest server, which attests as co-1 (so calling
// co-2 or co-3 fails the cosigner ID check).
func (e *apiEnv) writeDevnet(t *testing.T) {
	type files struct {
		Cert string `json:"cert"`
		Key  string `json:"key"`
	}
	type cosigner struct {
		ID  string `json:"id"`
		API string `json:"api"`
	}
	info := map[string]any{
		"version": 1, "dir": e.path("devnet"),
		"cosigners":   []cosigner{{"co-1", e.servers["good"].addr}, {"co-2", e.servers["good"].addr}, {"co-3", e.servers["good"].addr}},
		"clients":     map[string]files{},
		"attestation": map[string]any{"root": e.path("sim-root.pem"), "pcrs": map[string]string{}},
	}
	for _, role := range []string{"admin", "signer", "auditor"} {
		info["clients"].(map[string]files)[role] = files{e.path(role + ".pem"), e.path(role + ".key")}
	}
	for i := range 3 {
		info["attestation"].(map[string]any)["pcrs"].(map[string]string)[string(rune('0'+i))] = hex.EncodeToString(e.pcrs[i])
	}
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.path("devnet"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.write(t, "devnet/devnet.json", b)
}

func (e *apiEnv) write(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *apiEnv) path(name string) string { return filepath.Join(e.dir, name) }

// clientCerts issues the role certificates from a test client CA, and
// one from a CA the servers do not trust.
func (e *apiEnv) clientCerts(t *testing.T) {
	ca, caKey := newCA(t, "client CA")
	e.clientCA = x509.NewCertPool()
	e.clientCA.AddCert(ca)
	for _, role := range []string{"admin", "signer", "auditor", "norole"} {
		e.issue(t, role, ca, caKey, role)
	}
	otherCA, otherKey := newCA(t, "another CA")
	e.issue(t, "stranger", otherCA, otherKey, "admin")
}

func newCA(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func (e *apiEnv) issue(t *testing.T, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, role string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if role != "norole" {
		u, _ := url.Parse("urn:nitro-cosigner:role:" + role)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	e.write(t, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	e.write(t, name+".key", pkcs8PEM(t, key))
}

func pkcs8PEM(t *testing.T, key crypto.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func (e *apiEnv) adminKeys(t *testing.T) {
	_, a1, _ := ed25519.GenerateKey(rand.Reader)
	_, a2, _ := ed25519.GenerateKey(rand.Reader)
	a3, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, out, _ := ed25519.GenerateKey(rand.Reader)
	for name, k := range map[string]crypto.PrivateKey{"approver1": a1, "approver2": a2, "approver3": a3, "outsider": out} {
		e.write(t, name+".key", pkcs8PEM(t, k))
	}
	e.admins = policy.AdminSet{Keys: []crypto.PublicKey{a1.Public(), a2.Public(), &a3.PublicKey}, Threshold: 2}
}

// startAll starts the honest cosigner ("good") and one server per way
// of attesting wrongly.
func (e *apiEnv) startAll(t *testing.T) {
	good := e.newFake(t)
	good.attest = e.attestation(good, nil)
	e.start(t, "good", good)

	debug := e.newFake(t)
	debug.attest = e.attestation(debug, func(r *attestsim.Request, _ *cosignerv1.GetAttestationResponse) { r.PCRs = nil })
	e.start(t, "debug", debug)

	replay := e.newFake(t)
	replay.attest = e.attestation(replay, func(r *attestsim.Request, _ *cosignerv1.GetAttestationResponse) { r.Nonce = []byte("an old nonce") })
	e.start(t, "replay", replay)

	badbind := e.newFake(t)
	badbind.attest = e.attestation(badbind, func(_ *attestsim.Request, resp *cosignerv1.GetAttestationResponse) { resp.CosignerId = "co-9" })
	e.start(t, "badbind", badbind)

	// mitm presents its own certificate and relays the honest server's
	// attestation for the client's nonce.
	mitm := e.newFake(t)
	mitm.attest = func(nonce []byte) (*cosignerv1.GetAttestationResponse, error) { return e.relay(nonce) }
	e.start(t, "mitm", mitm)

	// otheraudit attests honestly but serves a log signed by another key.
	otheraudit := e.newFake(t)
	otheraudit.attest = e.attestation(otheraudit, nil)
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	otheraudit.auditKey = audit.NewEd25519Signer(k)
	otheraudit.auditLog = auditLog(t, otheraudit.auditKey, 3)
	e.start(t, "otheraudit", otheraudit)
}

func (e *apiEnv) newFake(t *testing.T) *fakeCosigner {
	cert, err := api.NewServerCert("co-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signer := audit.NewEd25519Signer(e.identity)
	f := &fakeCosigner{
		id: "co-1", identity: e.identity, cert: cert, auditKey: signer, auditLog: auditLog(t, signer, 6), admins: e.admins,
		keys: map[string]*cosignerv1.Key{}, ops: map[string]*cosignerv1.SignOperation{}, stuck: map[string]bool{}, idem: map[string][]byte{},
	}
	for _, k := range []struct {
		name   string
		scheme cosignerv1.KeyScheme
	}{
		{keyECDSA, cosignerv1.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1},
		{keyTaproot, cosignerv1.KeyScheme_KEY_SCHEME_FROST_TAPROOT},
		{keyRefresh, cosignerv1.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1},
	} {
		f.keys[k.name] = &cosignerv1.Key{
			Name: k.name, Scheme: k.scheme, Threshold: 2, Parties: []string{"co-1", "co-2", "co-3"},
			PublicKey: fakePublicKey(k.name, nil, k.scheme), ChainCode: make([]byte, 32), DisplayName: "test " + k.name[5:9],
			CreateTime: timestamppb.New(fakeTime), UpdateTime: timestamppb.New(fakeTime),
		}
	}
	return f
}

func auditLog(t *testing.T, s audit.Signer, n int) []audit.Record {
	var recs []audit.Record
	var prev [audit.HashSize]byte
	for i := range n {
		r, err := audit.Seal(audit.Entry{
			Seq: uint64(i + 1), Time: fakeTime.Add(time.Duration(i) * time.Second), CosignerID: "co-1", PrevHash: prev,
			Event: audit.Event{Type: audit.SignDecided, Actor: "signer", KeyID: "k1", Decision: audit.Allow, Details: map[string]string{"n": string(rune('0' + i))}},
		}, s)
		if err != nil {
			t.Fatal(err)
		}
		recs, prev = append(recs, r), r.Hash
	}
	return recs
}

// attestation returns f's GetAttestation: a fresh simulated document
// binding f's identity and certificate, changed by edit if not nil.
func (e *apiEnv) attestation(f *fakeCosigner, edit func(*attestsim.Request, *cosignerv1.GetAttestationResponse)) func([]byte) (*cosignerv1.GetAttestationResponse, error) {
	return func(nonce []byte) (*cosignerv1.GetAttestationResponse, error) {
		resp := &cosignerv1.GetAttestationResponse{
			CosignerId: f.id, IdentityPublicKey: f.identity.Public().(ed25519.PublicKey),
			EncryptionPublicKey: e.enc, TlsCertificateSha256: f.cert.Fingerprint[:],
		}
		req := attestsim.Request{PCRs: e.pcrs, Nonce: nonce, UserData: wire.BindingUserData(
			resp.CosignerId, resp.IdentityPublicKey, resp.EncryptionPublicKey, resp.TlsCertificateSha256)}
		if edit != nil {
			edit(&req, resp)
		}
		var err error
		resp.AttestationDocument, err = e.sim.Attest(req)
		return resp, err
	}
}

// relay asks the honest server for an attestation of nonce.
func (e *apiEnv) relay(nonce []byte) (*cosignerv1.GetAttestationResponse, error) {
	cert, err := tls.LoadX509KeyPair(e.path("admin.pem"), e.path("admin.key"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := apiclient.Dial(ctx, apiclient.Config{Addr: e.servers["good"].addr, ClientCertificate: cert, InsecureSkipAttestation: true})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return cosignerv1.NewAttestationServiceClient(c).GetAttestation(ctx, &cosignerv1.GetAttestationRequest{Nonce: nonce})
}

func (e *apiEnv) start(t *testing.T, name string, f *fakeCosigner) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(append(f.interceptors(), grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{f.cert.TLS},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: e.clientCA,
	})))...)
	cosignerv1.RegisterKeyServiceServer(g, f)
	cosignerv1.RegisterSigningServiceServer(g, f)
	cosignerv1.RegisterPolicyServiceServer(g, f)
	cosignerv1.RegisterAuditServiceServer(g, f)
	cosignerv1.RegisterAttestationServiceServer(g, f)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	e.servers[name] = &fakeServer{f, lis.Addr().String()}
}

// pcrFlags are the --pcr flags of the honest server's image.
func (e *apiEnv) pcrFlags() []string {
	var fl []string
	for i := range 3 {
		fl = append(fl, "--pcr", e.pcrFlag(i))
	}
	return fl
}

func (e *apiEnv) pcrFlag(i int) string {
	return string(rune('0'+i)) + "=" + hex.EncodeToString(e.pcrs[i])
}

// setenv gives a testscript the environment's paths and addresses:
// $CERTS, $DEVNET (a devnet directory for --devnet), $ADDR and $ADDR_GOOD (the honest server), $ADDR_<NAME> for
// the others,
// $PCR0..$PCR2 (as N=HEX), $IDENTITY (hex) and the pre-made keys.
func (e *apiEnv) setenv(env *testscript.Env) {
	env.Setenv("CERTS", e.dir)
	env.Setenv("DEVNET", e.path("devnet"))
	env.Setenv("ADDR", e.servers["good"].addr)
	for name, s := range e.servers {
		env.Setenv("ADDR_"+strings.ToUpper(name), s.addr)
	}
	for i := range 3 {
		env.Setenv("PCR"+string(rune('0'+i)), e.pcrFlag(i))
	}
	env.Setenv("IDENTITY", hex.EncodeToString(e.identity.Public().(ed25519.PublicKey)))
	env.Setenv("KEY_ECDSA", keyECDSA)
	env.Setenv("KEY_TAPROOT", keyTaproot)
	env.Setenv("KEY_REFRESH", keyRefresh)
}

// ctl is the testscript command "ctl ROLE ARGS...": it runs cosignerctl
// ARGS with the flags that reach $ADDR as ROLE (--addr, --cert, --cert-key,
// --root and the three --pcr) appended. Without "!" it must exit 0;
// with "!" it must exit 1, the code of a failed check or a refusal (a
// usage error, 2, fails it).
func ctl(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: ctl ROLE COMMAND...")
	}
	certs := ts.Getenv("CERTS")
	full := append(args[1:], "--addr", ts.Getenv("ADDR"),
		"--cert", filepath.Join(certs, args[0]+".pem"), "--cert-key", filepath.Join(certs, args[0]+".key"),
		"--root", filepath.Join(certs, "sim-root.pem"))
	for _, p := range []string{"PCR0", "PCR1", "PCR2"} {
		full = append(full, "--pcr", ts.Getenv(p))
	}
	err := ts.Exec("cosignerctl", full...)
	code := 0
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("running cosignerctl: %v", err)
	}
	want := 0
	if neg {
		want = 1
	}
	if code != want {
		ts.Fatalf("cosignerctl exited %d, want %d", code, want)
	}
}
