//go:build !release

package reliability_test

import (
	"bytes"
	"context"
	stdcrypto "crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/audit"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/judge"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/node"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/replica"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
	"github.com/nitro-cosigner/nitro-cosigner/test/internal/mpcharness"
)

// blindPolicy lets every key sign raw digests.
const blindPolicy = `{"version":1,"default":{"kinds":["raw-digest"],"allow_blind_signing":true}}`

// stack is three full enclave cores in one process (keystore, engine,
// coordinator, judge, policy, audit, node), as enclave/node's tests build
// them, on an in-process network whose every envelope it can record; with
// replicate, each keystore replicates to an in-process S3 (gofakes3) that
// records every request body. Everything logs at DEBUG into logs.
type stack struct {
	net   *mpctest.Network
	nodes map[mpc.PartyID]*stackNode
	logs  *testutil.Buffer
	s3    *recordingS3 // nil without replicate

	calls int // CreateKey and Sign calls made through createKey and signDigests

	mu   sync.Mutex
	sent [][]byte // payloads of every envelope, when recording
}

type stackNode struct {
	id      mpc.PartyID
	node    *node.Node
	engine  *mpc.Engine
	ks      *keystore.Store
	dataKey []byte // the keystore's data key, as KMS would hand it over
}

type stackOptions struct {
	replicate bool
	record    bool
	pools     mpc.PoolConfig
}

func newStack(t *testing.T, opt stackOptions) *stack {
	t.Helper()
	s := &stack{net: mpctest.NewNetwork(mpcharness.ABC...), nodes: map[mpc.PartyID]*stackNode{}, logs: &testutil.Buffer{}}
	if opt.replicate {
		s.s3 = newRecordingS3(t)
	}
	if opt.record {
		s.net.SetRule(func(env *mpc.Envelope) mpctest.Action {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.sent = append(s.sent, bytes.Clone(env.Payload))
			return mpctest.Deliver
		})
	}
	adminKeys := make([]stdcrypto.PublicKey, 3)
	for i := range adminKeys {
		adminKeys[i], _, _ = ed25519.GenerateKey(rand.Reader)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); s.net.Close() })
	att := mpcharness.Must(nsm.OpenSimulator(nsm.SimulatorConfig{ModuleID: "reliability"}))
	for _, id := range mpcharness.ABC {
		s.start(t, ctx, &wg, id, att, adminKeys, opt)
	}
	return s
}

func (s *stack) logger(id mpc.PartyID, what string) *slog.Logger {
	return slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("party", string(id), "component", what)
}

func (s *stack) start(t *testing.T, ctx context.Context, wg *sync.WaitGroup, id mpc.PartyID, att nsm.Attester,
	adminKeys []stdcrypto.PublicKey, opt stackOptions) {
	t.Helper()
	sn := &stackNode{id: id, dataKey: make([]byte, keystore.KeySize)}
	rand.Read(sn.dataKey)
	var err error
	ksOpts := keystore.Options{Logger: s.logger(id, "keystore")}
	if s.s3 != nil {
		sn.ks, _, err = replica.Init(ctx, replica.Config{Client: s.s3.client, Bucket: s.s3.bucket, Prefix: string(id) + "/",
			CosignerID: string(id), DataKey: secret.New(bytes.Clone(sn.dataKey)), SnapshotSegments: 8,
			Logger: s.logger(id, "replica")}, t.TempDir(), ksOpts)
	} else {
		sn.ks, err = keystore.Create(ctx, t.TempDir(), secret.New(bytes.Clone(sn.dataKey)), ksOpts)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.ks.Close() })
	if err := sn.ks.PutPolicy(ctx, 1, []byte(blindPolicy)); err != nil {
		t.Fatal(err)
	}
	ident := mpcharness.Must(node.LoadIdentity(ctx, sn.ks, id))
	log := mpcharness.Must(audit.New(ctx, audit.Config{CosignerID: string(id), Store: sn.ks, Signer: audit.IdentitySigner(ident.Key)}))
	pol := mpcharness.Must(policy.NewEngine(sn.ks, policy.AdminSet{Keys: adminKeys, Threshold: 2}, policy.Options{}))
	mux := coord.NewMux(s.net.Transport(id))
	store := node.NewStore(sn.ks)
	var crd *coord.Coordinator
	propose := func(ctx context.Context, spec mpc.SessionSpec, key mpc.KeyID, epoch uint64) error {
		_, err := crd.Initiate(ctx, coord.Proposal{Session: spec.ID, Op: coord.OpPresign, Parties: spec.Parties,
			Key: key, Epoch: epoch, Deadline: spec.Deadline})
		return err
	}
	sn.engine = mpcharness.Must(mpc.New(mpc.Config{Self: id, Transport: mux.Engine(), Store: store, ProposePresign: propose,
		Pools: opt.pools, Logger: s.logger(id, "mpc")}))
	jdg := mpcharness.Must(judge.New(judge.Config{Self: id, Keys: sn.engine, Policy: pol, Audit: log, Logger: s.logger(id, "judge"),
		OnKeyCreated: func(k mpc.KeyInfo) { s.nodes[id].node.EnablePools(context.Background(), k) }}))
	crd = mpcharness.Must(coord.New(coord.Config{Self: id, Mux: mux, Sessions: noSessions{}, Engine: sn.engine, Judge: jdg,
		AcceptTimeout: 10 * time.Second, Logger: s.logger(id, "coord")}))
	sn.node = mpcharness.Must(node.New(node.Config{Identity: ident, Engine: sn.engine, Coord: crd, Keystore: sn.ks, Store: store,
		Policy: pol, Audit: log, Attester: att, TLSCert: sha256.Sum256([]byte("cert")),
		Roster: func() []mpc.PartyID { return mpcharness.ABC }, KeygenTime: 2 * time.Minute, SignTime: time.Minute,
		Logger: s.logger(id, "node")}))
	s.nodes[id] = sn
	for _, run := range []func(context.Context) error{mux.Run, sn.engine.Run, crd.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		})
	}
}

// noSessions: the in-process network needs no wire sessions.
type noSessions struct{}

func (noSessions) Open(mpc.SessionID, []mpc.PartyID) error { return nil }
func (noSessions) Close(mpc.SessionID)                     {}

var testSigner = api.Caller{ID: "wallet/reliability", Roles: []api.Role{api.RoleSigner}}

// createKey makes a 2-of-3 key of scheme, coordinated by alice: CreateKey
// returns once every party reported its share stored.
func (s *stack) createKey(t *testing.T, scheme mpc.Scheme) api.Key {
	t.Helper()
	k, err := s.nodes["alice"].node.CreateKey(context.Background(), api.CreateKeyParams{Caller: testSigner, Scheme: scheme,
		Threshold: 2, Parties: mpcharness.ABC}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.calls++
	return k
}

// recorded returns the payloads of every envelope sent so far.
func (s *stack) recorded() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.sent...)
}

// recordingS3 is gofakes3 (s3mem, which checks conditional writes) behind
// a handler that keeps every request body.
type recordingS3 struct {
	client *s3.Client
	bucket string

	mu     sync.Mutex
	bodies [][]byte
}

func newRecordingS3(t *testing.T) *recordingS3 {
	t.Helper()
	backend := s3mem.New()
	r := &recordingS3{bucket: "reliability"}
	if err := backend.CreateBucket(r.bucket); err != nil {
		t.Fatal(err)
	}
	fake := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		req.Body.Close()
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.mu.Unlock()
		req.Body = io.NopCloser(bytes.NewReader(b))
		fake.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.client = s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test-secret", "")})
	return r
}

// written returns every request body S3 received.
func (r *recordingS3) written() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}
