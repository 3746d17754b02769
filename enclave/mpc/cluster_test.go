package mpc_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
)

// mainLeakOptions are the exceptions of every leak check; the soak build
// adds the library pool's stranded workers, which its pool benchmark and
// pool test leak on purpose (the engine itself never makes a pool).
var mainLeakOptions []goleak.Option

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, mainLeakOptions...)
}

// leakCheck must be the first call of a test: cleanups run last-in
// first-out, so the check runs after every cluster has stopped.
func leakCheck(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t, mainLeakOptions...) })
}

// Deadlines. Sessions that must succeed get a generous one (the race
// detector slows the heavy protocols several times); sessions that must
// fail get a short one, so the tests that wait for it stay quick.
const (
	okDeadline   = 10 * time.Minute
	failDeadline = 2 * time.Second
)

var partyNames = []mpc.PartyID{"alice", "bob", "carol", "dave", "erin", "frank", "grace"}

func partiesN(n int) []mpc.PartyID { return append([]mpc.PartyID(nil), partyNames[:n]...) }

// cluster is a set of engines on one in-process network, each running.
type cluster struct {
	net     *mpctest.Network
	parties []mpc.PartyID
	engines map[mpc.PartyID]*mpc.Engine
	stores  map[mpc.PartyID]*mpctest.MemStore
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	runErrs chan error
}

type clusterOpt func(*mpc.Config)

func withPools(pc mpc.PoolConfig) clusterOpt { return func(c *mpc.Config) { c.Pools = pc } }

// newCluster starts an engine per party over stores (nil: empty stores).
// It stops when the test ends.
func newCluster(t testing.TB, parties []mpc.PartyID, stores map[mpc.PartyID]*mpctest.MemStore, opts ...clusterOpt) *cluster {
	t.Helper()
	c, err := startCluster(parties, stores, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, err := range c.stop() {
			t.Error(err)
		}
	})
	return c
}

func startCluster(parties []mpc.PartyID, stores map[mpc.PartyID]*mpctest.MemStore, opts ...clusterOpt) (*cluster, error) {
	c := &cluster{
		net: mpctest.NewNetwork(parties...), parties: parties,
		engines: map[mpc.PartyID]*mpc.Engine{}, stores: map[mpc.PartyID]*mpctest.MemStore{},
		runErrs: make(chan error, len(parties)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	for _, p := range parties {
		if err := c.start(ctx, p, storeFor(stores, p), opts); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

func storeFor(stores map[mpc.PartyID]*mpctest.MemStore, p mpc.PartyID) *mpctest.MemStore {
	if s := stores[p]; s != nil {
		return s
	}
	return mpctest.NewMemStore()
}

func (c *cluster) start(ctx context.Context, p mpc.PartyID, st *mpctest.MemStore, opts []clusterOpt) error {
	cfg := mpc.Config{Self: p, Transport: c.net.Transport(p), Store: st}
	for _, o := range opts {
		o(&cfg)
	}
	e, err := mpc.New(cfg)
	if err != nil {
		return err
	}
	c.engines[p], c.stores[p] = e, st
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.runErrs <- e.Run(ctx)
	}()
	return nil
}

// stop ends every engine and returns what went wrong.
func (c *cluster) stop() []error {
	c.cancel()
	c.wg.Wait()
	c.net.Close()
	close(c.runErrs)
	var errs []error
	for err := range c.runErrs {
		if err != nil {
			errs = append(errs, fmt.Errorf("Run: %w", err))
		}
	}
	for p, s := range c.stores {
		if v := s.Violations(); len(v) > 0 {
			errs = append(errs, fmt.Errorf("store of %s: contract violations: %v", p, v))
		}
	}
	return errs
}

// outcome is one party's result of a concurrent call.
type outcome[T any] struct {
	val T
	err error
}

// onEach runs f on every listed party at once and waits for all.
func onEach[T any](c *cluster, ids []mpc.PartyID, f func(e *mpc.Engine) (T, error)) map[mpc.PartyID]outcome[T] {
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[mpc.PartyID]outcome[T]{}
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := f(c.engines[id])
			mu.Lock()
			out[id] = outcome[T]{v, err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// allOK fails the test unless every outcome succeeded, and returns one
// value (they are checked to be equal by the caller where it matters).
func allOK[T any](t testing.TB, outs map[mpc.PartyID]outcome[T]) map[mpc.PartyID]T {
	t.Helper()
	vals := map[mpc.PartyID]T{}
	for id, o := range outs {
		if o.err != nil {
			t.Fatalf("%s: %v", id, o.err)
		}
		vals[id] = o.val
	}
	return vals
}

func newSpec(t testing.TB, parties []mpc.PartyID, d time.Duration) mpc.SessionSpec {
	t.Helper()
	id, err := mpc.NewSessionID()
	if err != nil {
		t.Fatal(err)
	}
	return mpc.SessionSpec{ID: id, Parties: parties, Deadline: time.Now().Add(d)}
}

func randomDigest(t testing.TB) []byte {
	t.Helper()
	d := make([]byte, mpc.DigestSize)
	if _, err := rand.Read(d); err != nil {
		t.Fatal(err)
	}
	return d
}

// keyFixture is a key made once per test binary and reused: CMP keys are
// test vectors (fixtures_test.go), FROST keys are generated live (that is
// fast). Tests get clones of its stores.
type keyFixture struct {
	once    sync.Once
	err     error
	parties []mpc.PartyID
	stores  map[mpc.PartyID]*mpctest.MemStore
	info    mpc.KeyInfo
	presigs []fixturePresigs
}

func (f *keyFixture) clonedStores() map[mpc.PartyID]*mpctest.MemStore {
	out := map[mpc.PartyID]*mpctest.MemStore{}
	for p, s := range f.stores {
		out[p] = s.Clone()
	}
	return out
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[string]*keyFixture{}
)

// frostKey returns the shared FROST key with threshold t of n parties.
func frostKey(tb testing.TB, n, threshold int) *keyFixture {
	return fixture(tb, fmt.Sprintf("frost-%d-of-%d", threshold, n), n, func(f *keyFixture) error {
		return f.generate(tb, func(e *mpc.Engine, spec mpc.SessionSpec) (mpc.KeyInfo, error) {
			return e.FROSTKeygen(context.Background(), spec, threshold)
		})
	})
}

// fixture returns the named fixture, building it on first use.
func fixture(tb testing.TB, name string, n int, build func(*keyFixture) error) *keyFixture {
	tb.Helper()
	fixturesMu.Lock()
	f := fixtures[name]
	if f == nil {
		f = &keyFixture{parties: partiesN(n)}
		fixtures[name] = f
	}
	fixturesMu.Unlock()
	f.once.Do(func() { f.err = build(f) })
	if f.err != nil {
		tb.Fatalf("fixture %s: %v", name, f.err)
	}
	return f
}

// generate runs keygen on a throwaway cluster, stopped before returning so
// that no goroutine outlives the test that made the fixture.
func (f *keyFixture) generate(tb testing.TB, keygen func(*mpc.Engine, mpc.SessionSpec) (mpc.KeyInfo, error)) error {
	stores := map[mpc.PartyID]*mpctest.MemStore{}
	for _, p := range f.parties {
		stores[p] = mpctest.NewMemStore()
	}
	c, err := startCluster(f.parties, stores)
	if err != nil {
		return err
	}
	defer c.stop()
	spec := newSpec(tb, f.parties, okDeadline)
	outs := onEach(c, f.parties, func(e *mpc.Engine) (mpc.KeyInfo, error) { return keygen(e, spec) })
	for p, o := range outs {
		if o.err != nil {
			return fmt.Errorf("%s: %w", p, o.err)
		}
		f.info = o.val
	}
	f.stores = stores
	return sameKeyInfo(outs)
}

func sameKeyInfo(outs map[mpc.PartyID]outcome[mpc.KeyInfo]) error {
	var first *mpc.KeyInfo
	for _, o := range outs {
		if first == nil {
			first = &o.val
			continue
		}
		if string(o.val.PublicKey) != string(first.PublicKey) || string(o.val.ChainCode) != string(first.ChainCode) {
			return errors.New("parties disagree on the public key or chain code")
		}
	}
	return nil
}
