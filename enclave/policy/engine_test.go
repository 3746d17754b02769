package policy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// recorder is a Replicator that keeps the records it accepted and fails
// when told to.
type recorder struct {
	mu   sync.Mutex
	recs []keystore.Record
	fail error
}

var errInjected = errors.New("injected replication failure")

func (r *recorder) Replicate(_ context.Context, rec keystore.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.recs = append(r.recs, keystore.Record{Seq: rec.Seq, Payload: secret.New(rec.Payload.Reveal())})
	return nil
}

func (r *recorder) setFail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = err
}

func (r *recorder) records() []keystore.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]keystore.Record(nil), r.recs...)
}

type fixture struct {
	ks     *keystore.Store
	engine *Engine
	clock  *clock
	repl   *recorder
	admins []admin
	key    secret.Bytes
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	key := make([]byte, keystore.KeySize)
	rand.Read(key)
	f := &fixture{clock: &clock{now: t0}, repl: &recorder{}, key: secret.New(key)}
	f.ks = openStore(t, f.key, f.repl)
	f.admins = []admin{ed25519Admin(t), p256Admin(t), ed25519Admin(t)}
	f.engine = f.newEngine(t, f.ks)
	return f
}

func openStore(t *testing.T, key secret.Bytes, repl keystore.Replicator) *keystore.Store {
	t.Helper()
	opts := keystore.Options{}
	if repl != nil {
		opts.Replicator = repl
	}
	ks, err := keystore.Create(context.Background(), t.TempDir(), key, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks
}

func (f *fixture) newEngine(t *testing.T, store Store) *Engine {
	t.Helper()
	e, err := NewEngine(store, adminSet(2, f.admins...), Options{Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// engineDoc allows eth-transaction and eip191 on chain 1 to allowedETH, at most
// perTx wei per transaction and 2500 wei per hour.
func engineDoc(version uint64, perTx int) string {
	return fmt.Sprintf(`{"version":%d,"default":{"kinds":["eth-transaction","eip191"],"chain_ids":[1],`+
		`"allow_destinations":["%s"],"limits":[{"asset":"native","chain_id":1,"max_per_tx":"%d",`+
		`"window_seconds":3600,"max_per_window":"2500"}]}}`, version, allowedETH, perTx)
}

func (f *fixture) setPolicy(t *testing.T, raw string) {
	t.Helper()
	doc := []byte(raw)
	if _, err := f.engine.SetPolicy(context.Background(), doc, []Approval{f.admins[0].approve(doc), f.admins[1].approve(doc)}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) authorize(t *testing.T, req Request) (Decision, Reservation) {
	t.Helper()
	d, r, err := f.engine.Authorize(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow != r.Held() && len(requestSpends(req)) > 0 {
		t.Fatalf("decision %+v with reservation %v", d, r)
	}
	return d, r
}

func (f *fixture) spends(t *testing.T, key KeyID) []keystore.Spend {
	t.Helper()
	s, err := f.ks.Spends(context.Background(), keystore.KeyID(key), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEngineNoPolicy(t *testing.T) {
	f := newFixture(t)
	d, r := f.authorize(t, ethRequest(1))
	if d.Allow || d.Code != CodeNoPolicy || r.Held() {
		t.Fatalf("without a policy: %+v %v", d, r)
	}
	if _, err := f.engine.Policy(context.Background()); !errors.Is(err, ErrNoPolicy) {
		t.Fatalf("Policy: %v, want ErrNoPolicy", err)
	}
	if len(f.repl.records()) != 0 {
		t.Fatal("a refusal was replicated")
	}
}

func TestEngineSetPolicy(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a, b, c := f.admins[0], f.admins[1], f.admins[2]
	v2 := []byte(engineDoc(2, 1000))
	if _, err := f.engine.SetPolicy(ctx, []byte(`{"version":2,"extra":1}`), []Approval{a.approve(v2), b.approve(v2)}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("malformed document: %v", err)
	}
	if _, err := f.engine.SetPolicy(ctx, v2, []Approval{a.approve(v2)}); !errors.Is(err, ErrQuorum) {
		t.Fatalf("one approval of two: %v", err)
	}
	if _, err := f.engine.SetPolicy(ctx, v2, []Approval{a.approve(v2), a.approve(v2)}); !errors.Is(err, ErrQuorum) {
		t.Fatalf("one admin twice: %v", err)
	}
	if _, err := f.engine.Policy(ctx); !errors.Is(err, ErrNoPolicy) {
		t.Fatalf("a refused document was stored: %v", err)
	}
	d, err := f.engine.SetPolicy(ctx, v2, []Approval{b.approve(v2), c.approve(v2)})
	if err != nil || d.Version() != 2 {
		t.Fatal(err)
	}
	got, err := f.engine.Policy(ctx)
	if err != nil || string(got.Canonical()) != string(v2) {
		t.Fatalf("Policy: %v", err)
	}
	for _, v := range []uint64{2, 1} {
		old := []byte(engineDoc(v, 5))
		if _, err := f.engine.SetPolicy(ctx, old, []Approval{a.approve(old), b.approve(old)}); !errors.Is(err, ErrStaleVersion) {
			t.Fatalf("version %d after 2: %v, want ErrStaleVersion", v, err)
		}
	}
	v3 := []byte(engineDoc(3, 1000))
	if _, err := f.engine.SetPolicy(ctx, v3, []Approval{a.approve(v2), b.approve(v2)}); !errors.Is(err, ErrQuorum) {
		t.Fatalf("approvals of another document: %v", err)
	}
	// The stored document decides, as parsed by a fresh engine too.
	fresh := f.newEngine(t, f.ks)
	if d, _, err := fresh.Authorize(ctx, ethRequest(1000)); err != nil || !d.Allow || d.Version != 2 {
		t.Fatalf("fresh engine: %+v %v", d, err)
	}
}

func TestNewEngineNeedsAdmins(t *testing.T) {
	f := newFixture(t)
	for _, set := range []AdminSet{{}, adminSet(4, f.admins...)} {
		if _, err := NewEngine(f.ks, set, Options{}); !errors.Is(err, ErrAdminSet) {
			t.Errorf("NewEngine(%+v): %v, want ErrAdminSet", set, err)
		}
	}
}

func TestEngineWindow(t *testing.T) {
	f := newFixture(t)
	f.setPolicy(t, engineDoc(1, 1000))
	for i, want := range []Code{CodeAllowed, CodeAllowed, CodeWindowLimitExceeded} {
		if d, _ := f.authorize(t, ethRequest(1000)); d.Code != want {
			t.Fatalf("request %d: %+v, want %s", i, d, want)
		}
		f.clock.Advance(time.Minute)
	}
	if d, _ := f.authorize(t, ethRequest(500)); !d.Allow {
		t.Fatalf("500 more, exactly at the window limit: %+v", d)
	}
	if d, _ := f.authorize(t, ethRequest(1)); d.Allow {
		t.Fatalf("1 wei over the window: %+v", d)
	}
	msg := Request{KeyID: key1, Kind: "eip191", At: t0}
	seq, _ := f.ks.Seq(context.Background())
	if d, r := f.authorize(t, msg); !d.Allow || r.Held() {
		t.Fatalf("message: %+v %v", d, r)
	}
	if d, r := f.authorize(t, ethRequest(0)); !d.Allow || r.Held() {
		t.Fatalf("zero-value transfer with the window spent: %+v %v", d, r)
	}
	if after, _ := f.ks.Seq(context.Background()); after != seq {
		t.Fatal("requests moving no value wrote to the keystore")
	}
	// The clock reads t0+3m. The first spend (at t0) ages out at t0+1h;
	// the others are 1 and 3 minutes younger.
	f.clock.Advance(57*time.Minute - time.Second)
	if d, _ := f.authorize(t, ethRequest(1000)); d.Allow {
		t.Fatalf("a second before the first spend expires: %+v", d)
	}
	f.clock.Advance(time.Second)
	if d, _ := f.authorize(t, ethRequest(1000)); !d.Allow {
		t.Fatalf("once the first spend expired: %+v", d)
	}
	if n := len(f.spends(t, key1)); n != 4 {
		t.Fatalf("%d spends recorded, want 4 (refusals record none)", n)
	}
	if d, _ := f.authorize(t, ethRequest(1001)); d.Code != CodePerTxLimitExceeded {
		t.Fatalf("per-tx limit: %+v", d)
	}
}

func TestEngineRelease(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.setPolicy(t, engineDoc(1, 1000))
	_, first := f.authorize(t, ethRequest(1000))
	f.authorize(t, ethRequest(1000))
	if d, _ := f.authorize(t, ethRequest(1000)); d.Allow {
		t.Fatalf("third request: %+v", d)
	}
	if err := f.engine.Release(ctx, first); err != nil {
		t.Fatal(err)
	}
	if d, _ := f.authorize(t, ethRequest(1000)); !d.Allow {
		t.Fatalf("after a release: %+v", d)
	}
	if err := f.engine.Release(ctx, first); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if err := f.engine.Release(ctx, Reservation{}); err != nil {
		t.Fatalf("releasing nothing: %v", err)
	}
	if s := (Reservation{}).String(); s != "none" {
		t.Fatalf("zero reservation prints %q", s)
	}
	if first.String() == "none" || len(first.String()) != 32 {
		t.Fatalf("reservation prints %q", first.String())
	}
}

// TestEngineConcurrentReservations: requests racing for one window never
// overshoot it, and keys do not share windows.
func TestEngineConcurrentReservations(t *testing.T) {
	f := newFixture(t)
	f.setPolicy(t, engineDoc(1, 1000))
	const perKey = 8
	keys := []KeyID{key1, fill(7)}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed = map[KeyID]int{}
	)
	for _, key := range keys {
		for range perKey {
			wg.Go(func() {
				req := ethRequest(1000)
				req.KeyID = key
				d, r, err := f.engine.Authorize(context.Background(), req)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allow != r.Held() || (!d.Allow && d.Code != CodeWindowLimitExceeded) {
					t.Errorf("%+v %v", d, r)
				}
				if d.Allow {
					mu.Lock()
					allowed[key]++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	for _, key := range keys {
		if allowed[key] != 2 || len(f.spends(t, key)) != 2 {
			t.Errorf("key %s: %d allowed, %d recorded; want 2 of 1000 under 2500", key, allowed[key], len(f.spends(t, key)))
		}
	}
}

// racingStore replaces the policy right before the first reservation, as
// an admin's SetPolicy committing between Authorize's read and its
// reservation would.
type racingStore struct {
	*keystore.Store
	once    sync.Once
	replace func()
}

func (r *racingStore) ReserveSpends(ctx context.Context, res keystore.SpendReservation, check func(keystore.WindowView) error) error {
	r.once.Do(r.replace)
	return r.Store.ReserveSpends(ctx, res, check)
}

func TestEnginePolicyReplacedDuringAuthorize(t *testing.T) {
	f := newFixture(t)
	f.setPolicy(t, engineDoc(1, 1000))
	store := &racingStore{Store: f.ks, replace: func() {
		if err := f.ks.PutPolicy(context.Background(), 2, []byte(engineDoc(2, 10))); err != nil {
			t.Error(err)
		}
	}}
	e := f.newEngine(t, store)
	if _, err := e.Policy(context.Background()); err != nil { // caches version 1
		t.Fatal(err)
	}
	d, r, err := e.Authorize(context.Background(), ethRequest(1000))
	if err != nil || d.Allow || r.Held() || d.Code != CodePerTxLimitExceeded || d.Version != 2 {
		t.Fatalf("decided under the replaced policy: %+v %v %v", d, r, err)
	}
}

func TestEngineFailsClosed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.setPolicy(t, engineDoc(1, 1000))
	f.repl.setFail(errInjected)
	d, r, err := f.engine.Authorize(ctx, ethRequest(1000))
	if !errors.Is(err, errInjected) || d != (Decision{}) || r.Held() {
		t.Fatalf("replication failure: %+v %v %v", d, r, err)
	}
	f.repl.setFail(nil)
	if n := len(f.spends(t, key1)); n != 0 {
		t.Fatalf("%d spends recorded by a failed reservation", n)
	}
	// In this order: stored versions must increase.
	for _, doc := range []struct {
		name    string
		version uint64
		raw     string
	}{
		{"garbage", 5, "not a policy"},
		{"version mismatch", 6, engineDoc(1, 1000)},
	} {
		name := doc.name
		if err := f.ks.PutPolicy(ctx, doc.version, []byte(doc.raw)); err != nil {
			t.Fatal(err)
		}
		for _, req := range []Request{ethRequest(1), {KeyID: key1, Kind: "eip191"}} {
			d, r, err := f.engine.Authorize(ctx, req)
			if err == nil || d != (Decision{}) || r.Held() {
				t.Fatalf("%s stored: %+v %v %v", name, d, r, err)
			}
		}
		if _, err := f.engine.Policy(ctx); err == nil {
			t.Fatalf("%s stored: Policy succeeded", name)
		}
	}
	f.ks.Close()
	if d, _, err := f.engine.Authorize(ctx, ethRequest(1)); err == nil || d.Allow {
		t.Fatalf("closed keystore: %+v %v", d, err)
	}
}

// TestEngineWindowSurvivesRestore: the window state is replicated like
// every other change, so a cosigner restored from its records still
// counts the spends made before.
func TestEngineWindowSurvivesRestore(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.setPolicy(t, engineDoc(1, 1000))
	f.authorize(t, ethRequest(1000))
	_, released := f.authorize(t, ethRequest(1000))
	if err := f.engine.Release(ctx, released); err != nil {
		t.Fatal(err)
	}
	f.authorize(t, ethRequest(1000))
	restored := openStore(t, f.key, nil)
	if err := restored.Replay(ctx, f.repl.records()); err != nil {
		t.Fatal(err)
	}
	e := f.newEngine(t, restored)
	req := ethRequest(1000)
	if d, _, err := e.Authorize(ctx, req); err != nil || d.Code != CodeWindowLimitExceeded {
		t.Fatalf("restored engine, 2000 spent: %+v %v", d, err)
	}
	req.Transfers[0].Amount = big.NewInt(500)
	if d, _, err := e.Authorize(ctx, req); err != nil || !d.Allow {
		t.Fatalf("restored engine, 500 more: %+v %v", d, err)
	}
}

// TestEnginePrunes: spends older than MaxWindow leave the keystore.
func TestEnginePrunes(t *testing.T) {
	f := newFixture(t)
	f.setPolicy(t, engineDoc(1, 1000))
	f.authorize(t, ethRequest(1000))
	f.clock.Advance(MaxWindow)
	req := ethRequest(1000)
	req.KeyID = fill(7)
	f.authorize(t, req)
	if n := len(f.spends(t, key1)); n != 1 {
		t.Fatalf("%d spends of key 1 exactly MaxWindow old, want 1 kept", n)
	}
	f.clock.Advance(time.Nanosecond)
	f.authorize(t, req)
	if n := len(f.spends(t, key1)); n != 0 {
		t.Fatalf("%d spends of key 1 older than MaxWindow, want 0", n)
	}
}

// Install stores a document the workspace's quorum approved, without
// approvals of its own: a malformed or older one is refused, the stored
// one again is a no-op, and SetAdmins changes who approves SetPolicy.
func TestEngineInstallAndSetAdmins(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.engine.Install(ctx, []byte(`{"version":2,"extra":1}`)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("malformed document: %v", err)
	}
	v2 := []byte(engineDoc(2, 1000))
	if d, err := f.engine.Install(ctx, v2); err != nil || d.Version() != 2 {
		t.Fatalf("Install: %v", err)
	}
	if _, err := f.engine.Install(ctx, v2); err != nil {
		t.Fatalf("the stored document again: %v", err)
	}
	if _, err := f.engine.Install(ctx, []byte(engineDoc(2, 5))); !errors.Is(err, ErrStaleVersion) {
		t.Fatalf("another document of the stored version: %v", err)
	}
	if _, err := f.engine.Install(ctx, []byte(engineDoc(1, 5))); !errors.Is(err, ErrStaleVersion) {
		t.Fatalf("an older version: %v", err)
	}

	if err := f.engine.SetAdmins(AdminSet{Threshold: 1}); !errors.Is(err, ErrAdminSet) {
		t.Fatalf("an empty admin set: %v", err)
	}
	v3 := []byte(engineDoc(3, 1000))
	a, c := f.admins[0], f.admins[2]
	if err := f.engine.SetAdmins(adminSet(1, c)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.engine.SetPolicy(ctx, v3, []Approval{a.approve(v3)}); !errors.Is(err, ErrQuorum) {
		t.Fatalf("an admin no longer in the set: %v", err)
	}
	if _, err := f.engine.SetPolicy(ctx, v3, []Approval{c.approve(v3)}); err != nil {
		t.Fatalf("the new admin: %v", err)
	}
}
