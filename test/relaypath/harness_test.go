package relaypath_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	elink "github.com/nitro-cosigner/nitro-cosigner/enclave/link"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/parent/relay"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/link"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// backend makes broker clients for one broker server.
type backend struct {
	// newBroker returns a new client; the harness closes it.
	newBroker func(t *testing.T) broker.Broker
	// patience bounds how long a frame may take, redelivery included.
	patience time.Duration
}

var (
	linkCfg = link.Config{PingInterval: 100 * time.Millisecond, IdleTimeout: time.Second,
		WriteTimeout: 2 * time.Second, HandshakeTimeout: 2 * time.Second}
)

// cosigner is one simulated cosigner: an enclave link client and a parent
// relay with its own broker client, the client reaching the relay
// through a proxy that can cut the link.
type cosigner struct {
	t     *testing.T
	id    string
	be    backend
	addr  string // the relay's address, kept across parent restarts
	proxy *proxy
	got   *recorder

	client     *elink.Client
	stopClient func()

	relay     *relay.Relay
	stopRelay func()
	br        broker.Broker
}

// newCosigners starts n cosigners with fresh IDs. tune, if not nil, may
// change each one's relay and client configuration.
func newCosigners(t *testing.T, be backend, n int, tune func(*relay.Config, *elink.Config)) []*cosigner {
	t.Helper()
	suffix := randHex(4)
	cs := make([]*cosigner, n)
	for i := range cs {
		cs[i] = &cosigner{t: t, id: fmt.Sprintf("c%d-%s", i, suffix), be: be, got: newRecorder()}
	}
	for _, c := range cs {
		c.startParent(tune)
		c.startEnclave(tune)
	}
	t.Cleanup(func() { logStats(t, cs) })
	return cs
}

// logStats logs what each cosigner received and its counters (test
// output shows it with -v or on failure).
func logStats(t *testing.T, cs []*cosigner) {
	t.Helper()
	for _, c := range cs {
		distinct, total := c.got.stats()
		t.Logf("%s: received %d frames (%d duplicates); relay %+v; enclave %+v",
			c.id, distinct, total-distinct, c.relay.Stats(), c.client.Stats())
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func logger(t *testing.T, who string) *slog.Logger {
	h := slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})
	return slog.New(h).With("who", who)
}

// startParent starts the relay (and its broker client) on c.addr, or on
// a fresh port the first time.
func (c *cosigner) startParent(tune func(*relay.Config, *elink.Config)) {
	t := c.t
	t.Helper()
	addr := c.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("%s: relay listener: %v", c.id, err)
	}
	c.addr = l.Addr().String()
	c.br = c.be.newBroker(t)
	if p, ok := c.br.(broker.Provisioner); ok {
		if err := p.EnsureInbox(t.Context(), c.id); err != nil {
			t.Fatal(err)
		}
	}
	cfg := relay.Config{
		Broker: c.br, Self: c.id, Listener: l, Link: linkCfg,
		LinkWait: time.Second, AckTimeout: 2 * time.Second, PublishTimeout: 20 * time.Second, AttemptTimeout: time.Second,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, Logger: logger(t, "parent "+c.id),
	}
	if tune != nil {
		tune(&cfg, nil)
	}
	c.relay, err = relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.stopRelay = runUntilStopped(t, c.id+" relay", c.relay.Run)
	if c.proxy == nil {
		c.proxy = startProxy(t, c.addr)
	}
}

// stopParent stops the relay and closes its broker client, as a parent
// process exiting would.
func (c *cosigner) stopParent() {
	c.stopRelay()
	c.br.Close()
}

func (c *cosigner) startEnclave(tune func(*relay.Config, *elink.Config)) {
	t := c.t
	t.Helper()
	addr, err := transport.ParseAddr("tcp://" + c.proxy.addr())
	if err != nil {
		t.Fatal(err)
	}
	cfg := elink.Config{
		Parent: addr, Receive: c.got.receive, Link: linkCfg,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: logger(t, "enclave "+c.id),
	}
	if tune != nil {
		tune(nil, &cfg)
	}
	c.client, err = elink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.stopClient = runUntilStopped(t, c.id+" enclave", c.client.Run)
}

// runUntilStopped runs run in a goroutine; the returned stop (also run
// when t ends) cancels it and checks that it returns nil promptly.
func runUntilStopped(t *testing.T, what string, run func(context.Context) error) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
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
	t.Cleanup(func() {
		stop()
	})
	return stop
}

// send sends frame to peer, failing t on error.
func (c *cosigner) send(to *cosigner, frame string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.client.Send(ctx, to.id, []byte(frame)); err != nil {
		c.t.Errorf("%s: Send to %s: %v", c.id, to.id, err)
	}
}

// recorder collects what an enclave received.
type recorder struct {
	mu     sync.Mutex
	counts map[string]int
	total  int
	notify chan struct{}
	delay  time.Duration // per frame, to simulate a slow enclave
}

func newRecorder() *recorder {
	return &recorder{counts: map[string]int{}, notify: make(chan struct{}, 1)}
}

func (r *recorder) receive(ctx context.Context, frame []byte) {
	r.mu.Lock()
	r.counts[string(frame)]++
	r.total++
	d := r.delay
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	if d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
}

func (r *recorder) setDelay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay = d
}

// missing returns the frames of want not received yet.
func (r *recorder) missing(want []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(want), func(f string) bool { return r.counts[f] > 0 })
}

func (r *recorder) stats() (distinct, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.counts), r.total
}

// waitAll waits until every frame in want arrived at least once.
func (r *recorder) waitAll(t *testing.T, d time.Duration, who string, want []string) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		miss := r.missing(want)
		if len(miss) == 0 {
			return
		}
		select {
		case <-r.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			t.Fatalf("%s: %d of %d frames missing after %v, e.g. %.40q", who, len(miss), len(want), d, miss[0])
		}
	}
}

// expectOnly fails t if r got a frame outside want.
func (r *recorder) expectOnly(t *testing.T, who string, want []string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for f := range r.counts {
		if !slices.Contains(want, f) {
			t.Errorf("%s received a frame not addressed to it: %.40q", who, f)
		}
	}
}

// proxy forwards TCP connections to a target and can cut them all.
type proxy struct {
	l      net.Listener
	target string
	ctx    context.Context
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proxy{l: l, target: target, ctx: ctx, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.acceptLoop)
	t.Cleanup(func() {
		cancel()
		l.Close()
		p.sever()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) acceptLoop() {
	for {
		a, err := p.l.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			a.Close()
			continue
		}
		p.track(a, b)
		p.wg.Go(func() {
			transport.Pipe(p.ctx, a, b, transport.PipeOptions{})
			p.untrack(a, b)
		})
	}
}

func (p *proxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

func (p *proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

// sever cuts every connection through the proxy.
func (p *proxy) sever() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	return len(p.conns) / 2
}
