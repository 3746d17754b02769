package app_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/parent/app"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/link"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The AWS SDK's and the health client's idle keep-alive connections.
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	)
}

// listenings records the "listening" log lines of a parent: component →
// address.
type listenings struct {
	mu    sync.Mutex
	addrs map[string]string
	ready chan struct{} // closed at "parent ready"
	once  sync.Once
}

// captureHandler passes records to next and notes listening addresses.
type captureHandler struct {
	slog.Handler
	seen *listenings
}

func (h captureHandler) Handle(ctx context.Context, r slog.Record) error {
	switch r.Message {
	case "listening":
		var comp, addr string
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "component":
				comp = a.Value.String()
			case "addr":
				addr = a.Value.String()
			}
			return true
		})
		h.seen.mu.Lock()
		h.seen.addrs[comp] = addr
		h.seen.mu.Unlock()
	case "parent ready":
		h.seen.once.Do(func() { close(h.seen.ready) })
	}
	return h.Handler.Handle(ctx, r)
}

func (h captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return captureHandler{h.Handler.WithAttrs(as), h.seen}
}

func (h captureHandler) WithGroup(name string) slog.Handler {
	return captureHandler{h.Handler.WithGroup(name), h.seen}
}

// runningParent is an app.Run in the background.
type runningParent struct {
	seen   *listenings
	cancel context.CancelFunc
	done   chan error
}

// startParent runs app.Run(cfg) until the test ends, waits until it is
// ready, and checks at cleanup that it stops cleanly.
func startParent(t *testing.T, who string, cfg app.Config) *runningParent {
	t.Helper()
	seen := &listenings{addrs: map[string]string{}, ready: make(chan struct{})}
	h := slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})
	log := slog.New(captureHandler{h, seen}).With("who", who)
	ctx, cancel := context.WithCancel(context.Background())
	p := &runningParent{seen: seen, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- app.Run(ctx, cfg, log) }()
	t.Cleanup(func() { p.stop(t) })
	select {
	case <-seen.ready:
	case err := <-p.done:
		t.Fatalf("%s: Run returned before ready: %v", who, err)
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: not ready within 20s", who)
	}
	return p
}

// stop cancels Run and checks it returns nil promptly. It may be called
// more than once.
func (p *runningParent) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	select {
	case err, ok := <-p.done:
		if ok && err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
		if ok {
			close(p.done)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("Run did not return within 20s of cancel")
	}
}

// addr returns the bound address of a component, as a transport address.
func (p *runningParent) addr(t *testing.T, component string) transport.Addr {
	t.Helper()
	p.seen.mu.Lock()
	s := p.seen.addrs[component]
	p.seen.mu.Unlock()
	a, err := transport.ParseAddr(s)
	if err != nil {
		t.Fatalf("%s listens on %q: %v", component, s, err)
	}
	return a
}

// hostPort is a TCP address as net.Dial takes it.
func hostPort(t *testing.T, a transport.Addr) string {
	t.Helper()
	if a.Scheme != transport.SchemeTCP {
		t.Fatalf("%v is not TCP", a)
	}
	return net.JoinHostPort(a.Host, strconv.FormatUint(uint64(a.Port), 10))
}

// shortDir is a temporary directory with a path short enough for unix
// sockets.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "app")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

var linkCfg = link.Config{HandshakeTimeout: 5 * time.Second}

// openLink dials a relay's enclave link as the enclave does and runs the
// handshake.
func openLink(t *testing.T, addr string) *link.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	nc, err := transport.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := link.Open(ctx, nc, linkCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readRecord reads one record within d, failing the test otherwise.
func readRecord(t *testing.T, c *link.Conn, d time.Duration) link.Record {
	t.Helper()
	got := make(chan link.Record, 1)
	errc := make(chan error, 1)
	go func() {
		r, err := c.Read()
		if err != nil {
			errc <- err
			return
		}
		got <- r
	}()
	select {
	case r := <-got:
		return r
	case err := <-errc:
		t.Fatalf("reading the link: %v", err)
	case <-time.After(d):
		c.Close()
		t.Fatalf("no record within %v", d)
	}
	return link.Record{}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
