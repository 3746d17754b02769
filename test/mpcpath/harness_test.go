package mpcpath_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/link"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/peer"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/parent/relay"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	plink "github.com/nitro-cosigner/nitro-cosigner/pkg/link"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

var linkCfg = plink.Config{PingInterval: 100 * time.Millisecond, IdleTimeout: time.Second,
	WriteTimeout: 2 * time.Second, HandshakeTimeout: 2 * time.Second}

var testCA = sync.OnceValue(func() *attestsim.CA { return must(attestsim.NewCA()) })

// Liveness bounds, with room for -race on a loaded two-core machine; none
// is a speed requirement.
const (
	// slack is how long after its deadline a session may take to end: a
	// round in progress finishes first.
	slack = 10 * time.Second
	// patience bounds how long a frame may take from publisher to
	// receiver, broker redelivery included.
	patience = 30 * time.Second
	// generous is the deadline of sessions that must succeed.
	generous = 30 * time.Second
)

func pcrs() map[int][]byte {
	return map[int][]byte{0: bytes.Repeat([]byte{0xa0}, 48), 1: bytes.Repeat([]byte{0xa1}, 48), 2: bytes.Repeat([]byte{0xa2}, 48)}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// cosigner is one cosigner's enclave stack (engine, peer, wire signer and
// receiver, link client) and its parent (relay with its own broker client,
// wrapped by a hostile broker).
type cosigner struct {
	id         mpc.PartyID
	identity   *wire.IdentityKey
	enc        *wire.EncryptionKey
	sessions   *wire.SessionTable
	peer       *peer.Peer
	watch      *watch
	engine     *mpc.Engine
	client     *link.Client
	relay      *relay.Relay
	broker     *hostile
	parentAddr string
}

// options tune a cluster.
type options struct {
	rates Rates  // the hostile brokers' initial rates (zero: honest)
	seed  uint64 // seeds the hostile brokers' choices
	lean  bool   // peer.Config.LeanAttach
}

// cluster is three cosigners sharing a roster and one broker server.
type cluster struct {
	tb        testing.TB
	roster    *wire.Roster
	ledger    *ledger
	newClient clientFactory
	cos       map[mpc.PartyID]*cosigner
}

var abc = []mpc.PartyID{"alice", "bob", "carol"}

// newCluster starts a broker server of be and a cosigner per ID, each
// publishing through its own hostile broker.
func newCluster(tb testing.TB, be backend, opt options) *cluster {
	tb.Helper()
	c := &cluster{tb: tb, ledger: newLedger(), newClient: be.serve(tb), cos: map[mpc.PartyID]*cosigner{}}
	tb.Cleanup(c.checkNoForgery) // runs after everything below has stopped
	var members []wire.Member
	for _, id := range abc {
		co := &cosigner{id: id, sessions: wire.NewSessionTable()}
		co.identity = must(wire.GenerateIdentityKey())
		co.enc = must(wire.GenerateEncryptionKey())
		c.cos[id] = co
		members = append(members, co.member())
	}
	c.roster = must(wire.NewRoster(members...))
	for i, id := range abc {
		co := c.cos[id]
		co.broker = newHostile(c.client(string(id)), hostileConfig{Rates: opt.rates, Seed: opt.seed, Stream: uint64(i), Ledger: c.ledger})
		tb.Cleanup(func() { co.broker.Close() })
		co.startParent(tb, co.broker)
		co.startEnclave(tb, c.roster, opt.lean)
	}
	tb.Cleanup(c.logStats)
	return c
}

// client returns a new broker client for the cluster's server, with id's
// inbox provisioned. The caller closes it.
func (c *cluster) client(id string) broker.Broker {
	return c.newClient(c.tb, id)
}

// setRates changes every hostile broker's rates.
func (c *cluster) setRates(r Rates) {
	for _, co := range c.cos {
		co.broker.SetRates(r)
	}
}

func (c *cluster) hostileStats() hostileStats {
	var s hostileStats
	for _, co := range c.cos {
		h := co.broker.Stats()
		s.Frames += h.Frames
		s.Bytes += h.Bytes
		s.Dropped += h.Dropped
		s.Duplicated += h.Duplicated
		s.Reordered += h.Reordered
		s.Delayed += h.Delayed
		s.Replayed += h.Replayed
		s.Altered += h.Altered
	}
	return s
}

func (co *cosigner) member() wire.Member {
	return wire.Member{ID: string(co.id), Identity: co.identity.Public(), Encryption: co.enc.Public(), PCRs: pcrs()}
}

func logger(tb testing.TB, who string) *slog.Logger {
	h := slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})
	return slog.New(h).With("who", who)
}

func (co *cosigner) startParent(tb testing.TB, br broker.Broker) {
	tb.Helper()
	l := must(net.Listen("tcp", "127.0.0.1:0"))
	co.relay = must(relay.New(relay.Config{
		Broker: br, Self: string(co.id), Listener: l, Link: linkCfg,
		LinkWait: time.Second, AckTimeout: 2 * time.Second, PublishTimeout: 20 * time.Second, AttemptTimeout: time.Second,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, Logger: logger(tb, "relay "+string(co.id)),
	}))
	runUntilStopped(tb, string(co.id)+" relay", co.relay.Run)
	co.parentAddr = l.Addr().String()
}

// startEnclave builds the wire stack with a document bound to the
// identity, the peer, the link client and the engine, and runs them.
func (co *cosigner) startEnclave(tb testing.TB, roster *wire.Roster, lean bool) {
	tb.Helper()
	doc := must(testCA().Attest(attestsim.Request{PCRs: pcrs(), UserData: co.member().Binding(), Time: time.Now()}))
	signer := must(wire.NewSigner(wire.SignerConfig{ID: string(co.id), Identity: co.identity, Roster: roster, Attestation: doc}))
	recv := must(wire.NewReceiver(wire.ReceiverConfig{
		Self: string(co.id), Encryption: co.enc, Roster: roster, Sessions: co.sessions, Roots: testCA().Roots(),
	}))
	lazy := &lazyLink{}
	co.peer = must(peer.New(peer.Config{Self: co.id, Signer: signer, Receiver: recv, Sessions: co.sessions,
		Link: lazy, LeanAttach: lean, Logger: logger(tb, "peer "+string(co.id))}))
	co.watch = &watch{peer: co.peer, seen: map[sum][]wire.DropReason{}}
	co.client = must(link.New(link.Config{
		Parent: must(transport.ParseAddr("tcp://" + co.parentAddr)), Receive: co.watch.deliver, Link: linkCfg,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: logger(tb, "link "+string(co.id)),
	}))
	lazy.set(co.client)
	runUntilStopped(tb, string(co.id)+" link", co.client.Run)
	co.engine = must(mpc.New(mpc.Config{Self: co.id, Transport: co.peer, Store: mpctest.NewMemStore(),
		Logger: logger(tb, "engine "+string(co.id))}))
	runUntilStopped(tb, string(co.id)+" engine", co.engine.Run)
}

// lazyLink breaks the construction cycle: the peer needs the link to send
// and the link needs the peer's Deliver.
type lazyLink struct {
	mu sync.Mutex
	c  *link.Client
}

func (l *lazyLink) set(c *link.Client) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.c = c
}

func (l *lazyLink) Send(ctx context.Context, to string, frame []byte) error {
	l.mu.Lock()
	c := l.c
	l.mu.Unlock()
	return c.Send(ctx, to, frame)
}

// accepted is the verdict a watch records for a frame the Receiver took.
const accepted wire.DropReason = 0

func verdictName(v wire.DropReason) string {
	if v == accepted {
		return "accepted"
	}
	return v.String()
}

func verdictNames(vs []wire.DropReason) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = verdictName(v)
	}
	return out
}

func countNames(m map[wire.DropReason]int) map[string]int {
	out := make(map[string]int, len(m))
	for v, n := range m {
		out[verdictName(v)] = n
	}
	return out
}

// watch stands between the link and the peer: it records, for every frame
// delivered, whether the Receiver accepted it or the reason it counted.
// The link calls it one frame at a time, so the change in the Receiver's
// counters across one Deliver is that frame's verdict.
type watch struct {
	peer *peer.Peer

	mu    sync.Mutex
	order []sum                     // deliveries, in order
	seen  map[sum][]wire.DropReason // verdicts of each frame's deliveries
}

func (w *watch) deliver(ctx context.Context, frame []byte) {
	before := w.peer.Stats().Wire
	w.peer.Deliver(ctx, frame)
	after := w.peer.Stats().Wire
	verdict := accepted
	for r, n := range after.Dropped {
		if n > before.Dropped[r] {
			verdict = r
		}
	}
	s := sha256Sum(frame)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.order = append(w.order, s)
	w.seen[s] = append(w.seen[s], verdict)
}

// verdicts returns the verdicts of every delivery of the frame.
func (w *watch) verdicts(frame []byte) []wire.DropReason {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]wire.DropReason(nil), w.seen[sha256Sum(frame)]...)
}

// waitDelivered waits until the frame was delivered more than n times.
func (w *watch) waitDelivered(tb testing.TB, frame []byte, n int, what string) {
	tb.Helper()
	deadline := time.Now().Add(patience)
	for len(w.verdicts(frame)) <= n {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not delivered within %v", what, patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tally counts a receiver's verdicts by what the frame was: genuine (first
// delivery after no acceptance, or again after one), forged by a hostile
// broker, or foreign.
type tally struct {
	first, again, forged, foreign map[wire.DropReason]int
}

func (c *cluster) tally(id mpc.PartyID) tally {
	w := c.cos[id].watch
	t := tally{first: map[wire.DropReason]int{}, again: map[wire.DropReason]int{},
		forged: map[wire.DropReason]int{}, foreign: map[wire.DropReason]int{}}
	w.mu.Lock()
	defer w.mu.Unlock()
	took := map[sum]bool{}
	at := map[sum]int{}
	for _, s := range w.order {
		v := w.seen[s][at[s]]
		at[s]++
		switch c.ledger.kind(string(id), s) {
		case kindForged:
			t.forged[v]++
		case kindForeign:
			t.foreign[v]++
		case kindGenuine:
			if took[s] {
				t.again[v]++
			} else {
				t.first[v]++
			}
		}
		took[s] = took[s] || v == accepted
	}
	return t
}

// checkNoForgery is the invariant of every test: a receiver accepted only
// frames a relay published to its own inbox, each at most once. Nothing
// forged, replayed, injected or meant for another cosigner got through.
func (c *cluster) checkNoForgery() {
	for _, id := range abc {
		if c.cos[id] == nil || c.cos[id].watch == nil {
			continue
		}
		t := c.tally(id)
		for what, n := range map[string]int{"forged": t.forged[accepted], "foreign": t.foreign[accepted], "already accepted": t.again[accepted]} {
			if n > 0 {
				c.tb.Errorf("%s accepted %d %s frames", id, n, what)
			}
		}
	}
}

// runUntilStopped runs run until the test ends, then cancels it and
// checks that it returns nil promptly. Cleanups run last-in first-out, so
// what starts last stops first.
func runUntilStopped(tb testing.TB, what string, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("%s: Run = %v", what, err)
			}
		case <-time.After(10 * time.Second):
			tb.Errorf("%s: Run did not return within 10s of cancel", what)
		}
	})
}

func (c *cluster) logStats() {
	for _, id := range abc {
		co := c.cos[id]
		st := co.peer.Stats()
		c.tb.Logf("%s: peer sent %d, queued %d, queue full %d, wire accepted %d, dropped %v; relay %+v; hostile broker %+v",
			id, st.Sent, st.Queued, st.QueueFull, st.Wire.Accepted, nonZero(st.Wire.Dropped), co.relay.Stats(), co.broker.Stats())
	}
}

func nonZero(m map[wire.DropReason]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for r, n := range m {
		if n > 0 {
			out[r.String()] = n
		}
	}
	return out
}

// result is one party's outcome of a session.
type result[T any] struct {
	v   T
	err error
	end time.Time
}

// open opens a session on every party (before any starts, see package
// enclave/peer).
func (c *cluster) open(parties []mpc.PartyID, deadline time.Duration) mpc.SessionSpec {
	c.tb.Helper()
	spec := mpc.SessionSpec{ID: must(mpc.NewSessionID()), Parties: parties, Deadline: time.Now().Add(deadline)}
	for _, id := range parties {
		if err := c.cos[id].peer.Open(spec.ID, parties); err != nil {
			c.tb.Fatal(err)
		}
	}
	return spec
}

func (c *cluster) close(spec mpc.SessionSpec) {
	for _, id := range spec.Parties {
		c.cos[id].peer.Close(spec.ID)
	}
}

// outcomes delivers every party's result of a session once all have one.
type outcomes[T any] <-chan map[mpc.PartyID]result[T]

// start runs op on every party of an open session.
func start[T any](c *cluster, spec mpc.SessionSpec, op func(*mpc.Engine, mpc.SessionSpec) (T, error)) outcomes[T] {
	done := make(chan map[mpc.PartyID]result[T], 1)
	go func() {
		out := make(map[mpc.PartyID]result[T], len(spec.Parties))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, id := range spec.Parties {
			wg.Go(func() {
				v, err := op(c.cos[id].engine, spec)
				mu.Lock()
				defer mu.Unlock()
				out[id] = result[T]{v, err, time.Now()}
			})
		}
		wg.Wait()
		done <- out
	}()
	return done
}

// await waits for the outcomes, failing the test if some party has none
// by the session's deadline plus slack: a session must always end.
func await[T any](c *cluster, spec mpc.SessionSpec, o outcomes[T]) map[mpc.PartyID]result[T] {
	c.tb.Helper()
	select {
	case rs := <-o:
		return rs
	case <-time.After(time.Until(spec.Deadline) + slack):
		c.tb.Fatalf("session %s did not end within %v of its deadline", spec.ID, slack)
		return nil
	}
}

// run opens a session, runs op on every party, closes the session and
// returns the outcomes.
func run[T any](c *cluster, parties []mpc.PartyID, deadline time.Duration,
	op func(*mpc.Engine, mpc.SessionSpec) (T, error)) (mpc.SessionSpec, map[mpc.PartyID]result[T]) {
	c.tb.Helper()
	spec := c.open(parties, deadline)
	rs := await(c, spec, start(c, spec, op))
	c.close(spec)
	return spec, rs
}

// mustAll fails the test unless every party succeeded, and returns one
// party's value.
func mustAll[T any](tb testing.TB, what string, rs map[mpc.PartyID]result[T]) T {
	tb.Helper()
	var v T
	for id, r := range rs {
		if r.err != nil {
			tb.Fatalf("%s: %s: %v", what, id, r.err)
		}
		v = r.v
	}
	return v
}

// checkEnded checks that every party either succeeded or ended with a
// named reason (the deadline, an abort naming culprits, a peer's abort),
// within slack of the deadline. It returns the parties that succeeded.
func checkEnded[T any](tb testing.TB, what string, spec mpc.SessionSpec, rs map[mpc.PartyID]result[T]) []mpc.PartyID {
	tb.Helper()
	var ok []mpc.PartyID
	for _, id := range spec.Parties {
		r := rs[id]
		var abort *mpc.AbortError
		var peerAbort *mpc.PeerAbortError
		switch {
		case r.err == nil:
			ok = append(ok, id)
		case errors.Is(r.err, mpc.ErrDeadline), errors.As(r.err, &abort), errors.As(r.err, &peerAbort):
			tb.Logf("%s: %s ended: %v", what, id, r.err)
		default:
			tb.Errorf("%s: %s ended with an unnamed error: %v", what, id, r.err)
		}
		if late := r.end.Sub(spec.Deadline); late > slack {
			tb.Errorf("%s: %s ended %v after the deadline", what, id, late)
		}
	}
	return ok
}
