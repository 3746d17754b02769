package mpcpath_test

import (
	"bytes"
	"context"
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
// receiver, link client) and its parent (relay with its own broker client).
type cosigner struct {
	id         mpc.PartyID
	identity   *wire.IdentityKey
	enc        *wire.EncryptionKey
	sessions   *wire.SessionTable
	peer       *peer.Peer
	engine     *mpc.Engine
	client     *link.Client
	relay      *relay.Relay
	parentAddr string
}

// cluster is three cosigners sharing a roster.
type cluster struct {
	t   *testing.T
	cos map[mpc.PartyID]*cosigner
}

var abc = []mpc.PartyID{"alice", "bob", "carol"}

// newCluster starts a cosigner per ID; newBroker returns each one's broker
// client (the harness closes it).
func newCluster(t *testing.T, newBroker func(t *testing.T, id string) broker.Broker) *cluster {
	t.Helper()
	c := &cluster{t: t, cos: map[mpc.PartyID]*cosigner{}}
	var members []wire.Member
	for _, id := range abc {
		co := &cosigner{id: id, sessions: wire.NewSessionTable()}
		co.identity = must(wire.GenerateIdentityKey())
		co.enc = must(wire.GenerateEncryptionKey())
		c.cos[id] = co
		members = append(members, co.member())
	}
	roster := must(wire.NewRoster(members...))
	for _, co := range c.cos {
		co.startParent(t, newBroker(t, string(co.id)))
		co.startEnclave(t, roster)
	}
	t.Cleanup(func() { c.logStats() })
	return c
}

func (co *cosigner) member() wire.Member {
	return wire.Member{ID: string(co.id), Identity: co.identity.Public(), Encryption: co.enc.Public(), PCRs: pcrs()}
}

func logger(t *testing.T, who string) *slog.Logger {
	h := slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})
	return slog.New(h).With("who", who)
}

func (co *cosigner) startParent(t *testing.T, br broker.Broker) {
	t.Helper()
	if p, ok := br.(broker.Provisioner); ok {
		if err := p.EnsureInbox(t.Context(), string(co.id)); err != nil {
			t.Fatal(err)
		}
	}
	l := must(net.Listen("tcp", "127.0.0.1:0"))
	co.relay = must(relay.New(relay.Config{
		Broker: br, Self: string(co.id), Listener: l, Link: linkCfg,
		LinkWait: time.Second, AckTimeout: 2 * time.Second, PublishTimeout: 20 * time.Second, AttemptTimeout: time.Second,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, Logger: logger(t, "relay "+string(co.id)),
	}))
	runUntilStopped(t, string(co.id)+" relay", co.relay.Run)
	co.parentAddr = l.Addr().String()
}

// startEnclave builds the wire stack with a document bound to the
// identity, the peer, the link client and the engine, and runs them.
func (co *cosigner) startEnclave(t *testing.T, roster *wire.Roster) {
	t.Helper()
	doc := must(testCA().Attest(attestsim.Request{PCRs: pcrs(), UserData: co.member().Binding(), Time: time.Now()}))
	signer := must(wire.NewSigner(wire.SignerConfig{ID: string(co.id), Identity: co.identity, Roster: roster, Attestation: doc}))
	recv := must(wire.NewReceiver(wire.ReceiverConfig{
		Self: string(co.id), Encryption: co.enc, Roster: roster, Sessions: co.sessions, Roots: testCA().Roots(),
	}))
	lazy := &lazyLink{}
	co.peer = must(peer.New(peer.Config{Self: co.id, Signer: signer, Receiver: recv, Sessions: co.sessions,
		Link: lazy, Logger: logger(t, "peer "+string(co.id))}))
	co.client = must(link.New(link.Config{
		Parent: must(transport.ParseAddr("tcp://" + co.parentAddr)), Receive: co.peer.Deliver, Link: linkCfg,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: logger(t, "link "+string(co.id)),
	}))
	lazy.set(co.client)
	runUntilStopped(t, string(co.id)+" link", co.client.Run)
	co.engine = must(mpc.New(mpc.Config{Self: co.id, Transport: co.peer, Store: mpctest.NewMemStore(),
		Logger: logger(t, "engine "+string(co.id))}))
	runUntilStopped(t, string(co.id)+" engine", co.engine.Run)
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

// runUntilStopped runs run until the test ends, then cancels it and
// checks that it returns nil promptly. Cleanups run last-in first-out, so
// what starts last stops first.
func runUntilStopped(t *testing.T, what string, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Run = %v", what, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Run did not return within 10s of cancel", what)
		}
	})
}

func (c *cluster) logStats() {
	for _, id := range abc {
		co := c.cos[id]
		st := co.peer.Stats()
		c.t.Logf("%s: peer sent %d, queued %d, queue full %d, wire accepted %d, dropped %v; relay %+v",
			id, st.Sent, st.Queued, st.QueueFull, st.Wire.Accepted, nonZero(st.Wire.Dropped), co.relay.Stats())
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
}

// run opens a session on every party (before any starts, see package
// enclave/peer), runs op on each, closes the session on each as its call
// returns, and returns the outcomes.
func run[T any](c *cluster, parties []mpc.PartyID, deadline time.Duration,
	op func(*mpc.Engine, mpc.SessionSpec) (T, error)) map[mpc.PartyID]result[T] {
	c.t.Helper()
	spec := mpc.SessionSpec{ID: must(mpc.NewSessionID()), Parties: parties, Deadline: time.Now().Add(deadline)}
	for _, id := range parties {
		if err := c.cos[id].peer.Open(spec.ID, parties); err != nil {
			c.t.Fatal(err)
		}
	}
	out := make(map[mpc.PartyID]result[T], len(parties))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range parties {
		wg.Go(func() {
			v, err := op(c.cos[id].engine, spec)
			c.cos[id].peer.Close(spec.ID)
			mu.Lock()
			defer mu.Unlock()
			out[id] = result[T]{v, err}
		})
	}
	wg.Wait()
	return out
}

// mustAll fails the test unless every party succeeded, and returns one
// party's value.
func mustAll[T any](t *testing.T, what string, rs map[mpc.PartyID]result[T]) T {
	t.Helper()
	var v T
	for id, r := range rs {
		if r.err != nil {
			t.Fatalf("%s: %s: %v", what, id, r.err)
		}
		v = r.v
	}
	return v
}
