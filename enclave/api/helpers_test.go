package api

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/payload"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// secretText is put into internal errors and panics by tests; it must
// never reach a client.
const secretText = "SECRET-INTERNAL-DETAIL /var/lib/shares db=sqlcipher"

const selfID = "co-1"

// testPKI is a client CA that issues role certificates.
type testPKI struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(t testing.TB, name string) *testPKI {
	t.Helper()
	key := mustKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testPKI{cert: cert, key: key, pool: pool}
}

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// issue makes a client certificate with the given URI SANs (role names
// are written as full role URIs).
func (p *testPKI) issue(t testing.TB, cn string, roles ...string) tls.Certificate {
	t.Helper()
	key := mustKey(t)
	var uris []*url.URL
	for _, r := range roles {
		u, err := url.Parse(roleURIPrefix + r)
		if err != nil {
			t.Fatal(err)
		}
		uris = append(uris, u)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:         uris,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// memStore is an IdempotencyStore in memory, with keystore's semantics.
type memStore struct {
	mu      sync.Mutex
	now     func() time.Time
	recs    map[string]keystore.IdempotencyRecord
	puts    int
	getErr  error
	putErr  error
	putSeen chan struct{} // if set, gets a value after each Put
}

func newMemStore() *memStore {
	return &memStore{now: time.Now, recs: map[string]keystore.IdempotencyRecord{}}
}

func (m *memStore) PutIdempotency(_ context.Context, rec keystore.IdempotencyRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	if m.putSeen != nil {
		defer func() { m.putSeen <- struct{}{} }()
	}
	if m.putErr != nil {
		return m.putErr
	}
	if len(rec.Key) == 0 || len(rec.Key) > 256 || len(rec.RequestHash) == 0 || len(rec.RequestHash) > 64 {
		return fmt.Errorf("%w: record out of bounds", keystore.ErrInvalid)
	}
	if old, ok := m.recs[rec.Key]; ok && old.ExpiresAt.After(m.now()) {
		return keystore.ErrExists
	}
	rec.CreatedAt = m.now()
	m.recs[rec.Key] = rec
	return nil
}

func (m *memStore) GetIdempotency(_ context.Context, key string) (keystore.IdempotencyRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.getErr != nil {
		return keystore.IdempotencyRecord{}, m.getErr
	}
	rec, ok := m.recs[key]
	if !ok || !rec.ExpiresAt.After(m.now()) {
		return keystore.IdempotencyRecord{}, fmt.Errorf("%w: idempotency key", keystore.ErrNotFound)
	}
	return rec, nil
}

func (m *memStore) count() (records, puts int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs), m.puts
}

func (m *memStore) fail(get, put error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.getErr, m.putErr = get, put
}

// fakeNode is a Node in memory that records its calls. Its behaviour can
// be replaced per method by the hooks, which tests set before the server
// starts.
type fakeNode struct {
	fingerprint [32]byte

	createKey   func(context.Context, CreateKeyParams, func(Progress)) (Key, error)
	refreshKey  func(context.Context, Caller, mpc.KeyID, func(Progress)) (Key, error)
	key         func(context.Context, mpc.KeyID) (Key, error)
	sign        func(context.Context, SignParams) (SignOutcome, error)
	setPolicy   func(context.Context, Caller, []byte, []policy.Approval) (PolicyDoc, error)
	exportAudit func(context.Context, uint64, io.Writer) (uint64, error)
	attest      func(context.Context, []byte) (Attestation, error)
	records     []audit.Record // what StreamAudit sends before it waits

	mu         sync.Mutex
	calls      map[string]int
	keys       map[mpc.KeyID]Key
	policy     *PolicyDoc
	lastCreate CreateKeyParams
	lastSign   SignParams
	lastSetPol []policy.Approval
}

func newFakeNode() *fakeNode {
	n := &fakeNode{calls: map[string]int{}, keys: map[mpc.KeyID]Key{}}
	for i := range 5 {
		k := testKey(byte(i + 1))
		n.keys[k.Info.Key] = k
	}
	return n
}

func testKeyID(b byte) mpc.KeyID {
	var id mpc.KeyID
	for i := range id {
		id[i] = b
	}
	return id
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testKey(b byte) Key {
	return Key{
		Info: mpc.KeyInfo{
			Key: testKeyID(b), Scheme: mpc.SchemeECDSA, Threshold: 2,
			Parties:   []mpc.PartyID{"co-3", "co-1", "co-2"},
			PublicKey: append([]byte{2}, bytes.Repeat([]byte{b}, 32)...), ChainCode: bytes.Repeat([]byte{b}, 32),
		},
		DisplayName: fmt.Sprintf("key %d", b), Created: t0, Updated: t0,
	}
}

func (n *fakeNode) called(method string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls[method]++
}

// count returns how often method was called.
func (n *fakeNode) count(method string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls[method]
}

// total returns how many Node methods were called, Self excluded.
func (n *fakeNode) total() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	sum := 0
	for m, c := range n.calls {
		if m != "Self" {
			sum += c
		}
	}
	return sum
}

func (n *fakeNode) Self() mpc.PartyID { return selfID }

func (n *fakeNode) CreateKey(ctx context.Context, req CreateKeyParams, progress func(Progress)) (Key, error) {
	n.called("CreateKey")
	n.mu.Lock()
	n.lastCreate = req
	n.mu.Unlock()
	if n.createKey != nil {
		return n.createKey(ctx, req, progress)
	}
	k := Key{
		Info: mpc.KeyInfo{
			Key: mpc.KeyID(sha256.Sum256([]byte(req.RequestID))), Scheme: req.Scheme, Threshold: req.Threshold,
			Parties: req.Parties, PublicKey: bytes.Repeat([]byte{3}, 33), ChainCode: bytes.Repeat([]byte{4}, 32),
		},
		DisplayName: req.DisplayName, Created: t0, Updated: t0,
	}
	progress(Progress{Kind: ProgressQueued, At: t0})
	progress(Progress{Kind: ProgressSessionStarted, At: t0, Key: k.Info.Key, Parties: req.Parties, Deadline: t0.Add(time.Minute)})
	n.mu.Lock()
	n.keys[k.Info.Key] = k
	n.mu.Unlock()
	return k, nil
}

func (n *fakeNode) RefreshKey(ctx context.Context, caller Caller, id mpc.KeyID, progress func(Progress)) (Key, error) {
	n.called("RefreshKey")
	if n.refreshKey != nil {
		return n.refreshKey(ctx, caller, id, progress)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	k, ok := n.keys[id]
	if !ok {
		return Key{}, fmt.Errorf("node: refresh %s: %w", secretText, ErrNotFound)
	}
	k.Info.Epoch++
	n.keys[id] = k
	progress(Progress{Kind: ProgressQueued, At: t0})
	return k, nil
}

func (n *fakeNode) Key(ctx context.Context, id mpc.KeyID) (Key, error) {
	n.called("Key")
	if n.key != nil {
		return n.key(ctx, id)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	k, ok := n.keys[id]
	if !ok {
		return Key{}, fmt.Errorf("keystore lookup %s: %w", secretText, ErrNotFound)
	}
	return k, nil
}

func (n *fakeNode) ListKeys(_ context.Context, after *mpc.KeyID, limit int) ([]Key, bool, error) {
	n.called("ListKeys")
	n.mu.Lock()
	defer n.mu.Unlock()
	var all []Key
	for _, k := range n.keys {
		if after == nil || bytes.Compare(k.Info.Key[:], after[:]) > 0 {
			all = append(all, k)
		}
	}
	slices.SortFunc(all, func(a, b Key) int { return bytes.Compare(a.Info.Key[:], b.Info.Key[:]) })
	if len(all) > limit {
		return all[:limit], true, nil
	}
	return all, false, nil
}

func (n *fakeNode) DerivePublicKey(_ context.Context, id mpc.KeyID, path []uint32) (mpc.DerivedKey, mpc.Scheme, error) {
	n.called("DerivePublicKey")
	n.mu.Lock()
	defer n.mu.Unlock()
	k, ok := n.keys[id]
	if !ok {
		return mpc.DerivedKey{}, 0, ErrNotFound
	}
	return mpc.DerivedKey{PublicKey: append([]byte{2}, bytes.Repeat([]byte{byte(len(path))}, 32)...), ChainCode: k.Info.ChainCode}, k.Info.Scheme, nil
}

func (n *fakeNode) Sign(ctx context.Context, req SignParams) (SignOutcome, error) {
	n.called("Sign")
	n.mu.Lock()
	n.lastSign = req
	n.mu.Unlock()
	if n.sign != nil {
		return n.sign(ctx, req)
	}
	return succeeded(req), nil
}

// succeeded is a successful outcome of the right shape for req.
func succeeded(req SignParams) SignOutcome {
	out := SignOutcome{
		State: StateSucceeded, Signers: []mpc.PartyID{"co-1", "co-2"},
		Digests: [][32]byte{sha256.Sum256(req.Payload.Bytes)}, Created: t0, Completed: t0.Add(time.Second),
	}
	switch req.Payload.Kind {
	case payload.RawDigest:
		out.Raw = bytes.Repeat([]byte{0xaa}, 65)
	case payload.TaprootPSBT:
		out.PSBT = &payload.PSBTSigned{PSBT: []byte("signed-psbt"), Tx: []byte("tx")}
	case payload.EthTransaction:
		out.Ethereum = &payload.EthSigned{V: big.NewInt(37), R: big.NewInt(5), S: big.NewInt(6), Raw: []byte("raw-tx")}
	default:
		out.Ethereum = &payload.EthSigned{V: big.NewInt(27), R: big.NewInt(5), S: big.NewInt(6), Raw: bytes.Repeat([]byte{0xbb}, 65)}
	}
	return out
}

func (n *fakeNode) Policy(context.Context) (PolicyDoc, error) {
	n.called("Policy")
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.policy == nil {
		return PolicyDoc{}, fmt.Errorf("%w: %s", ErrNotFound, secretText)
	}
	return *n.policy, nil
}

func (n *fakeNode) SetPolicy(ctx context.Context, caller Caller, doc []byte, approvals []policy.Approval) (PolicyDoc, error) {
	n.called("SetPolicy")
	n.mu.Lock()
	n.lastSetPol = approvals
	n.mu.Unlock()
	if n.setPolicy != nil {
		return n.setPolicy(ctx, caller, doc, approvals)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	v := uint64(1)
	if n.policy != nil {
		v = n.policy.Version + 1
	}
	n.policy = &PolicyDoc{Version: v, Document: doc, Updated: t0}
	return *n.policy, nil
}

func (n *fakeNode) ExportAudit(ctx context.Context, from uint64, w io.Writer) (uint64, error) {
	n.called("ExportAudit")
	if n.exportAudit != nil {
		return n.exportAudit(ctx, from, w)
	}
	return 0, fmt.Errorf("%w: past the end", ErrInvalidArgument)
}

func (n *fakeNode) AuditHeader(_ context.Context, from uint64) (audit.Header, error) {
	n.called("AuditHeader")
	if from > uint64(len(n.records))+1 {
		return audit.Header{}, fmt.Errorf("%w: past the end", ErrInvalidArgument)
	}
	h := audit.Header{CosignerID: selfID, IdentityKey: auditSigner.Public(), FirstSeq: from}
	if from > 1 {
		h.PrevHash = n.records[from-2].Hash
	}
	return h, nil
}

func (n *fakeNode) StreamAudit(ctx context.Context, from uint64, fn func(audit.Record) error) error {
	n.called("StreamAudit")
	for _, r := range n.records[from-1:] {
		if err := fn(r); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

func (n *fakeNode) Attest(ctx context.Context, nonce []byte) (Attestation, error) {
	n.called("Attest")
	if n.attest != nil {
		return n.attest(ctx, nonce)
	}
	return Attestation{
		Document: append([]byte("doc:"), nonce...), CosignerID: selfID,
		IdentityKey: bytes.Repeat([]byte{1}, 32), EncryptionKey: bytes.Repeat([]byte{2}, 32),
		TLSCertificate: n.fingerprint,
	}, nil
}

var auditSigner = func() audit.Signer {
	seed := sha256.Sum256([]byte("api test audit key"))
	return audit.NewEd25519Signer(ed25519.NewKeyFromSeed(seed[:]))
}()

// auditChain seals n contiguous records.
func auditChain(t testing.TB, n int) []audit.Record {
	t.Helper()
	var recs []audit.Record
	var prev [audit.HashSize]byte
	for i := range n {
		e := audit.Entry{
			Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * time.Second), CosignerID: selfID, PrevHash: prev,
			Event: audit.Event{Type: audit.SignRequested, Actor: "signer/abc", KeyID: strings.Repeat("ab", 32),
				RequestID: fmt.Sprintf("req-%d", i), Details: map[string]string{"payload": "raw-digest"}},
		}
		r, err := audit.Seal(e, auditSigner)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
		prev = r.Hash
	}
	return recs
}

// harness is a Server on bufconn with a fake Node and store, and clients
// for each role.
type harness struct {
	t      testing.TB
	node   *fakeNode
	store  *memStore
	pki    *testPKI
	cert   *ServerCert
	srv    *Server
	lis    *bufconn.Listener
	logs   *testutil.Buffer
	cancel context.CancelFunc
	served chan error
	conns  map[string]*grpc.ClientConn
	once   sync.Once
}

// start runs a Server; cfg may change the Config before New.
func start(t testing.TB, node *fakeNode, cfg func(*Config)) *harness {
	t.Helper()
	if node == nil {
		node = newFakeNode()
	}
	cert, err := NewServerCert(selfID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	node.fingerprint = cert.Fingerprint
	h := &harness{
		t: t, node: node, store: newMemStore(), pki: newPKI(t, "client CA"), cert: cert,
		lis: bufconn.Listen(1 << 20), logs: &testutil.Buffer{}, served: make(chan error, 1),
		conns: map[string]*grpc.ClientConn{},
	}
	c := Config{
		Node: node, ServerCert: cert, ClientCAs: h.pki.pool, Idempotency: h.store,
		Logger:          slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ShutdownTimeout: 2 * time.Second,
	}
	if cfg != nil {
		cfg(&c)
	}
	h.srv, err = New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.served <- h.srv.Serve(ctx, h.lis) }()
	t.Cleanup(h.stop)
	return h
}

// stop shuts the server down (once) and checks that Serve returned nil.
func (h *harness) stop() { h.once.Do(h.shutdown) }

func (h *harness) shutdown() {
	for _, c := range h.conns {
		c.Close()
	}
	h.cancel()
	select {
	case err := <-h.served:
		if err != nil {
			h.t.Errorf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Error("Serve did not return after its context ended")
	}
	if strings.Contains(h.logs.String(), "panicked") && !strings.Contains(h.t.Name(), "Panic") {
		h.t.Errorf("unexpected panic logged:\n%s", h.logs.String())
	}
}

// dial connects with the client TLS config tc (nil: no client cert).
func (h *harness) dial(tc *tls.Config) *grpc.ClientConn {
	h.t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+selfID,
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return h.lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return conn
}

// clientTLS trusts the server's certificate and presents certs.
func (h *harness) clientTLS(certs ...tls.Certificate) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(h.cert.TLS.Leaf)
	return &tls.Config{RootCAs: roots, ServerName: selfID, Certificates: certs, MinVersion: tls.VersionTLS12}
}

// as returns a connection for a caller named name with roles (cached per
// name).
func (h *harness) as(name string, roles ...Role) *grpc.ClientConn {
	h.t.Helper()
	if c, ok := h.conns[name]; ok {
		return c
	}
	var rs []string
	for _, r := range roles {
		rs = append(rs, string(r))
	}
	c := h.dial(h.clientTLS(h.pki.issue(h.t, name, rs...)))
	h.conns[name] = c
	return c
}

func (h *harness) admin() *grpc.ClientConn   { return h.as("admin", RoleAdmin) }
func (h *harness) signer() *grpc.ClientConn  { return h.as("signer", RoleSigner) }
func (h *harness) auditor() *grpc.ClientConn { return h.as("auditor", RoleAuditor) }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantCode checks err's status code, and that its message carries no
// internal detail.
func wantCode(t testing.TB, err error, code codes.Code) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %v, want %v", err, code)
	}
	if strings.Contains(st.Message(), "SECRET") {
		t.Fatalf("status message leaks internal detail: %q", st.Message())
	}
	return st
}

// recvAll reads a server stream to its end.
func recvAll[T any](stream grpc.ServerStreamingClient[T]) ([]*T, error) {
	var out []*T
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func keyClient(c *grpc.ClientConn) pb.KeyServiceClient      { return pb.NewKeyServiceClient(c) }
func signClient(c *grpc.ClientConn) pb.SigningServiceClient { return pb.NewSigningServiceClient(c) }
func policyClient(c *grpc.ClientConn) pb.PolicyServiceClient {
	return pb.NewPolicyServiceClient(c)
}

// eventually polls cond until it holds or the test's patience ends.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
