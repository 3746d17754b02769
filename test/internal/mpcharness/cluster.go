package mpcharness

import (
	"bytes"
	"context"
	"io"
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

// TestCA is the attestation simulator's CA every cosigner's document is
// signed by.
var TestCA = sync.OnceValue(func() *attestsim.CA { return Must(attestsim.NewCA()) })

// Liveness bounds, with room for -race on a loaded two-core machine; none
// is a speed requirement.
const (
	// Slack is how long after its deadline a session may take to end: a
	// round in progress finishes first.
	Slack = 10 * time.Second
	// Patience bounds how long a frame may take from publisher to
	// receiver, broker redelivery included.
	Patience = 30 * time.Second
	// Generous is the deadline of sessions that must succeed.
	Generous = 30 * time.Second
)

// PCRs are the measurements of every cosigner's enclave.
func PCRs() map[int][]byte {
	return map[int][]byte{0: bytes.Repeat([]byte{0xa0}, 48), 1: bytes.Repeat([]byte{0xa1}, 48), 2: bytes.Repeat([]byte{0xa2}, 48)}
}

// Must returns v, or panics with err.
func Must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// ABC are the cluster's cosigners.
var ABC = []mpc.PartyID{"alice", "bob", "carol"}

// Cosigner is one cosigner's enclave stack (engine, peer, wire signer and
// receiver, link client) and its parent (relay with its own broker client,
// wrapped by a hostile broker).
type Cosigner struct {
	ID         mpc.PartyID
	Identity   *wire.IdentityKey
	Encryption *wire.EncryptionKey
	Sessions   *wire.SessionTable
	Peer       *peer.Peer
	Watch      *Watch
	Engine     *mpc.Engine
	Store      *mpctest.MemStore // the engine's: its shares
	Client     *link.Client
	Relay      *relay.Relay
	Broker     *Hostile
	ParentAddr string

	opt *Options
}

// Options tune a cluster.
type Options struct {
	Rates Rates  // the hostile brokers' initial rates (zero: honest)
	Seed  uint64 // seeds the hostile brokers' choices
	Lean  bool   // peer.Config.LeanAttach
	// PeerLogs, if set, receives every peer's log at DEBUG (drop reasons
	// are logged there). The other components log warnings to the test.
	PeerLogs io.Writer
	// AllLogs, if set, receives every component's log at DEBUG.
	AllLogs io.Writer
	// LinkBytes, if set, receives every byte on every enclave-parent link
	// socket (recorded at the parent's listener, both directions).
	LinkBytes io.Writer
}

// Cluster is three cosigners sharing a roster and one broker server.
type Cluster struct {
	tb        testing.TB
	Roster    *wire.Roster
	Ledger    *Ledger
	newClient ClientFactory
	Cos       map[mpc.PartyID]*Cosigner
}

// NewCluster starts a broker server of be and a cosigner per ID of ABC,
// each publishing through its own hostile broker. When the test ends it
// stops them and checks that no receiver accepted a forged, replayed or
// foreign frame (CheckNoForgery).
func NewCluster(tb testing.TB, be Backend, opt Options) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb, Ledger: NewLedger(), newClient: be.Serve(tb), Cos: map[mpc.PartyID]*Cosigner{}}
	tb.Cleanup(c.CheckNoForgery) // runs after everything below has stopped
	var members []wire.Member
	for _, id := range ABC {
		co := &Cosigner{ID: id, Sessions: wire.NewSessionTable(), opt: &opt}
		co.Identity = Must(wire.GenerateIdentityKey())
		co.Encryption = Must(wire.GenerateEncryptionKey())
		c.Cos[id] = co
		members = append(members, co.Member())
	}
	c.Roster = Must(wire.NewRoster(members...))
	for i, id := range ABC {
		co := c.Cos[id]
		co.Broker = NewHostile(c.NewClient(string(id)), HostileConfig{Rates: opt.Rates, Seed: opt.Seed, Stream: uint64(i), Ledger: c.Ledger})
		tb.Cleanup(func() { co.Broker.Close() })
		co.startParent(tb, co.Broker)
		co.startEnclave(tb, c.Roster)
	}
	tb.Cleanup(c.logStats)
	return c
}

// NewClient returns a new broker client for the cluster's server, with
// id's inbox provisioned: what a host with access to the broker holds. The
// caller closes it.
func (c *Cluster) NewClient(id string) broker.Broker {
	return c.newClient(c.tb, id)
}

// SetRates changes every hostile broker's rates.
func (c *Cluster) SetRates(r Rates) {
	for _, co := range c.Cos {
		co.Broker.SetRates(r)
	}
}

// HostileStats sums the hostile brokers' counters.
func (c *Cluster) HostileStats() HostileStats {
	var s HostileStats
	for _, co := range c.Cos {
		s = s.plus(co.Broker.Stats())
	}
	return s
}

// Member is the cosigner's roster entry.
func (co *Cosigner) Member() wire.Member {
	return wire.Member{ID: string(co.ID), Identity: co.Identity.Public(), Encryption: co.Encryption.Public(), PCRs: PCRs()}
}

// Logger logs warnings and errors to the test's output.
func Logger(tb testing.TB, who string) *slog.Logger {
	h := slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})
	return slog.New(h).With("who", who)
}

func debugLogger(w io.Writer, who string) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})).With("who", who)
}

// logger is the logger of one of the cosigner's components.
func (co *Cosigner) logger(tb testing.TB, what string) *slog.Logger {
	who := what + " " + string(co.ID)
	switch {
	case co.opt.AllLogs != nil:
		return debugLogger(co.opt.AllLogs, who)
	case what == "peer" && co.opt.PeerLogs != nil:
		return debugLogger(co.opt.PeerLogs, who)
	}
	return Logger(tb, who)
}

func (co *Cosigner) startParent(tb testing.TB, br broker.Broker) {
	tb.Helper()
	var l net.Listener = Must(net.Listen("tcp", "127.0.0.1:0"))
	if co.opt.LinkBytes != nil {
		l = recordingListener{l, co.opt.LinkBytes}
	}
	co.Relay = Must(relay.New(relay.Config{
		Broker: br, Self: string(co.ID), Listener: l, Link: linkCfg,
		LinkWait: time.Second, AckTimeout: 2 * time.Second, PublishTimeout: 20 * time.Second, AttemptTimeout: time.Second,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, Logger: co.logger(tb, "relay"),
	}))
	runUntilStopped(tb, string(co.ID)+" relay", co.Relay.Run)
	co.ParentAddr = l.Addr().String()
}

// startEnclave builds the wire stack with a document bound to the
// identity, the peer, the link client and the engine, and runs them.
func (co *Cosigner) startEnclave(tb testing.TB, roster *wire.Roster) {
	tb.Helper()
	doc := Must(TestCA().Attest(attestsim.Request{PCRs: PCRs(), UserData: co.Member().Binding(), Time: time.Now()}))
	signer := Must(wire.NewSigner(wire.SignerConfig{ID: string(co.ID), Identity: co.Identity, Roster: roster, Attestation: doc}))
	recv := Must(wire.NewReceiver(wire.ReceiverConfig{
		Self: string(co.ID), Encryption: co.Encryption, Roster: roster, Sessions: co.Sessions, Roots: TestCA().Roots(),
	}))
	lazy := &lazyLink{}
	co.Peer = Must(peer.New(peer.Config{Self: co.ID, Signer: signer, Receiver: recv, Sessions: co.Sessions,
		Link: lazy, LeanAttach: co.opt.Lean, Logger: co.logger(tb, "peer")}))
	co.Watch = &Watch{peer: co.Peer, seen: map[Sum][]wire.DropReason{}}
	co.Client = Must(link.New(link.Config{
		Parent: Must(transport.ParseAddr("tcp://" + co.ParentAddr)), Receive: co.Watch.deliver, Link: linkCfg,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: co.logger(tb, "link"),
	}))
	lazy.set(co.Client)
	runUntilStopped(tb, string(co.ID)+" link", co.Client.Run)
	co.Store = mpctest.NewMemStore()
	co.Engine = Must(mpc.New(mpc.Config{Self: co.ID, Transport: co.Peer, Store: co.Store,
		Logger: co.logger(tb, "engine")}))
	runUntilStopped(tb, string(co.ID)+" engine", co.Engine.Run)
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

func (c *Cluster) logStats() {
	for _, id := range ABC {
		co := c.Cos[id]
		st := co.Peer.Stats()
		c.tb.Logf("%s: peer sent %d, queued %d, queue full %d, wire accepted %d, dropped %v; relay %+v; hostile broker %+v",
			id, st.Sent, st.Queued, st.QueueFull, st.Wire.Accepted, NonZero(st.Wire.Dropped), co.Relay.Stats(), co.Broker.Stats())
	}
}

// NonZero names the reasons counted at least once, with their counts.
func NonZero(m map[wire.DropReason]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for r, n := range m {
		if n > 0 {
			out[r.String()] = n
		}
	}
	return out
}

// recordingListener writes every byte its connections read and write.
type recordingListener struct {
	net.Listener
	rec io.Writer
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return recordingConn{c, l.rec}, nil
}

type recordingConn struct {
	net.Conn
	rec io.Writer
}

func (c recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.rec.Write(b[:n])
	return n, err
}

func (c recordingConn) Write(b []byte) (int, error) {
	c.rec.Write(b)
	return c.Conn.Write(b)
}
