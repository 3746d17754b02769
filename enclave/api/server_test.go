package api

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

func TestNewRefusesIncompleteConfig(t *testing.T) {
	cert, err := NewServerCert(selfID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	good := Config{Node: newFakeNode(), ServerCert: cert, ClientCAs: newPKI(t, "ca").pool, Idempotency: newMemStore()}
	for name, change := range map[string]func(*Config){
		"no node":            func(c *Config) { c.Node = nil },
		"no cert":            func(c *Config) { c.ServerCert = nil },
		"no client CAs":      func(c *Config) { c.ClientCAs = nil },
		"no store":           func(c *Config) { c.Idempotency = nil },
		"negative size":      func(c *Config) { c.MaxRecvMsgSize = -1 },
		"negative rate":      func(c *Config) { c.RateLimit.PerSecond = -1 },
		"negative timeout":   func(c *Config) { c.OperationTimeout = -time.Second },
		"negative in-flight": func(c *Config) { c.MaxInFlight = -1 },
	} {
		c := good
		change(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
	if _, err := New(good); err != nil {
		t.Errorf("a complete config: %v", err)
	}
}

// TestServeTCP serves on a real loopback socket end to end, then shuts
// down when the context ends; a second Serve is refused.
func TestServeTCP(t *testing.T) {
	node := newFakeNode()
	cert, err := NewServerCert(selfID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	node.fingerprint = cert.Fingerprint
	pki := newPKI(t, "ca")
	srv, err := New(Config{Node: node, ServerCert: cert, ClientCAs: pki.pool, Idempotency: newMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()

	h := &harness{t: t, cert: cert}
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(credentials.NewTLS(h.clientTLS(pki.issue(t, "signer", "signer")))))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := signClient(conn).Sign(ctxT(t), rawSignReq("idem-1"))
	if err != nil || resp.GetOperation().GetState() != pb.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED {
		t.Errorf("Sign over TCP: %v, %v", resp, err)
	}
	conn.Close()
	if err := srv.Serve(ctx, lis); err == nil {
		t.Error("a second Serve was accepted")
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// TestShutdown: calls that wait return when shutdown begins (a live audit
// stream gets UNAVAILABLE, a Sign its running operation), health says
// NOT_SERVING to watchers, background operations are canceled once the
// deadline passes, and Serve returns within the deadline and the grace.
func TestShutdown(t *testing.T) {
	node := newFakeNode()
	node.records = auditChain(t, 1)
	signCanceled := make(chan struct{})
	node.sign = func(ctx context.Context, _ SignParams) (SignOutcome, error) {
		<-ctx.Done()
		close(signCanceled)
		return SignOutcome{}, ctx.Err()
	}
	h := start(t, node, func(c *Config) { c.ShutdownTimeout = 300 * time.Millisecond })
	stream, err := pb.NewAuditServiceClient(h.auditor()).StreamAudit(ctxT(t), &pb.StreamAuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	watch, err := healthpb.NewHealthClient(h.auditor()).Watch(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := watch.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v", m, err)
	}
	var wg sync.WaitGroup
	var signResp *pb.SignResponse
	var signErr error
	wg.Go(func() {
		signResp, signErr = signClient(h.signer()).Sign(ctxT(t), withWait(rawSignReq("idem-1"), time.Minute))
	})
	eventually(t, "the sign to start", func() bool { return node.count("Sign") == 1 })

	began := time.Now()
	h.cancel()
	_, err = stream.Recv()
	wantCode(t, err, codes.Unavailable)
	if m, err := watch.Recv(); err == nil && m.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("watch after shutdown: %v", m)
	}
	wg.Wait()
	if signErr != nil || signResp.GetOperation().GetState() != pb.SignOperationState_SIGN_OPERATION_STATE_PENDING {
		t.Errorf("Sign during shutdown: %v, %v", signResp, signErr)
	}
	select {
	case <-signCanceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the background sign was not canceled")
	}
	h.stop()
	if el := time.Since(began); el > 5*time.Second {
		t.Errorf("shutdown took %v", el)
	}
}

// TestRateLimit: a caller over its limit gets RESOURCE_EXHAUSTED (and the
// Node is not called), other callers are not affected, and the caller
// recovers as its bucket refills.
func TestRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	h := start(t, nil, func(c *Config) {
		c.Now = clock
		c.RateLimit = RateLimit{PerSecond: 1, Burst: 2}
	})
	get := func(conn *grpc.ClientConn) error {
		_, err := keyClient(conn).GetKey(ctxT(t), &pb.GetKeyRequest{Name: keyName(testKeyID(1))})
		return err
	}
	for i := range 2 {
		if err := get(h.signer()); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if st := wantCode(t, get(h.signer()), codes.ResourceExhausted); st.Message() != msgRateLimited {
		t.Errorf("message %q", st.Message())
	}
	if n := h.node.count("Key"); n != 2 {
		t.Errorf("Node called %d times", n)
	}
	if err := get(h.auditor()); err != nil {
		t.Errorf("another caller: %v", err)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if err := get(h.signer()); err != nil {
		t.Errorf("after a second: %v", err)
	}
	wantCode(t, get(h.signer()), codes.ResourceExhausted)
}

func TestLimiterBounded(t *testing.T) {
	now := t0
	l := newLimiter(RateLimit{PerSecond: 1, Burst: 1, MaxCallers: 2}, func() time.Time { return now })
	l.allow("a")
	now = now.Add(500 * time.Millisecond)
	l.allow("b")
	if l.allow("b") {
		t.Error("b's bucket did not run dry")
	}
	l.allow("c") // full: evicts a, the least recently seen
	if l.size() != 2 || l.allow("b") {
		t.Errorf("size %d, b kept its state: %v", l.size(), l.callers["b"] != nil)
	}
	now = now.Add(time.Hour)
	for _, id := range []string{"d", "e", "f"} {
		if !l.allow(id) {
			t.Errorf("new caller %s refused", id)
		}
	}
	if l.size() != 2 {
		t.Errorf("size %d", l.size())
	}
}

// TestInFlightLimit: with every slot taken by running operations, a new
// one is RESOURCE_EXHAUSTED and leaves nothing behind.
func TestInFlightLimit(t *testing.T) {
	node := newFakeNode()
	release := make(chan struct{})
	blockingSign(node, release, func(req SignParams) (SignOutcome, error) { return succeeded(req), nil })
	h := start(t, node, func(c *Config) { c.MaxInFlight = 1 })
	sc := signClient(h.signer())
	if _, err := sc.Sign(ctxT(t), withWait(rawSignReq("idem-1"), 10*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := sc.Sign(ctxT(t), withWait(rawSignReq("idem-2"), 10*time.Millisecond))
	if st := wantCode(t, err, codes.ResourceExhausted); st.Message() != msgBusy {
		t.Errorf("message %q", st.Message())
	}
	_, err = createKey(t, h, createReq("idem-3"))
	wantCode(t, err, codes.ResourceExhausted)
	close(release)
	eventually(t, "a free slot", func() bool {
		_, err := sc.Sign(ctxT(t), rawSignReq("idem-2"))
		return err == nil
	})
	if n := h.srv.ops.len(); n != 2 {
		t.Errorf("%d operations held, want 2", n)
	}
}

// TestIdempotencyStoreFailures: an unreadable store is UNAVAILABLE and
// nothing runs; an unwritable one still answers, logs, and a repeat runs
// again.
func TestIdempotencyStoreFailures(t *testing.T) {
	h := start(t, nil, nil)
	h.store.fail(errors.New(secretText), nil)
	_, err := createKey(t, h, createReq("idem-1"))
	if st := wantCode(t, err, codes.Unavailable); st.Message() != msgStoreDown {
		t.Errorf("message %q", st.Message())
	}
	if h.node.total() != 0 {
		t.Error("the Node was called")
	}
	h.store.fail(nil, errors.New(secretText))
	for range 2 {
		if _, err := createKey(t, h, createReq("idem-1")); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.node.count("CreateKey"); n != 2 {
		t.Errorf("Node.CreateKey called %d times", n)
	}
	if !strings.Contains(h.logs.String(), "storing an idempotency record failed") {
		t.Error("the failed write was not logged")
	}
}

// TestKeystoreIdempotency: with a real keystore as the store (and an
// idempotency key of the maximum length), responses survive a restart of
// the server: the same caller repeating CreateKey or Sign on a new server
// gets the first result without the Node being called, and
// GetSignOperation still finds the operation.
func TestKeystoreIdempotency(t *testing.T) {
	key := make([]byte, keystore.KeySize)
	rand.Read(key)
	store, err := keystore.Create(context.Background(), t.TempDir(), secret.New(key), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	pki := newPKI(t, "ca")
	cert, signerCert := pki.issue(t, "admin", "admin"), pki.issue(t, "signer", "signer", "auditor")
	var opName string
	run := func() (*harness, []*pb.CreateKeyResponse) {
		h := start(t, nil, func(c *Config) { c.Idempotency, c.ClientCAs = store, pki.pool })
		conn := h.dial(h.clientTLS(cert))
		stream, err := keyClient(conn).CreateKey(ctxT(t), createReq("idem-1"))
		if err != nil {
			t.Fatal(err)
		}
		events, err := recvAll(stream)
		if err != nil {
			t.Fatal(err)
		}
		sconn := h.dial(h.clientTLS(signerCert))
		if opName != "" {
			got, err := signClient(sconn).GetSignOperation(ctxT(t), &pb.GetSignOperationRequest{Name: opName})
			if err != nil || got.GetOperation().GetState() != pb.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED {
				t.Errorf("GetSignOperation after a restart: %v, %v", got, err)
			}
		}
		sign, err := signClient(sconn).Sign(ctxT(t), &pb.SignRequest{
			IdempotencyKey: strings.Repeat("x", MaxIdempotencyKeyLen), Key: keyName(testKeyID(1)),
			MaxWait: durationpb.New(time.Second),
			Payload: &pb.SignRequest_RawDigest{RawDigest: &pb.RawDigest{Digest: make([]byte, 32)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		opName = sign.GetOperation().GetName()
		h.stop()
		return h, events
	}
	h1, first := run()
	h2, again := run()
	if h1.node.count("CreateKey") != 1 || h2.node.count("CreateKey") != 0 {
		t.Errorf("Node.CreateKey calls: %d then %d", h1.node.count("CreateKey"), h2.node.count("CreateKey"))
	}
	if len(again) != 1 || again[0].GetKey().GetName() != first[len(first)-1].GetKey().GetName() {
		t.Errorf("after a restart: %v", again)
	}
	if h1.node.count("Sign") != 1 || h2.node.count("Sign") != 0 {
		t.Errorf("Node.Sign calls: %d then %d", h1.node.count("Sign"), h2.node.count("Sign"))
	}
}
