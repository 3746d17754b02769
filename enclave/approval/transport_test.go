package approval

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/egress"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// dialTo returns a dial function that connects to addr whatever it is
// asked for, as a DNS entry pointing the handler's name at addr would.
func dialTo(addr string) DialFunc {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return directDial(ctx, network, addr)
	}
}

// TestTransportFailures: TLS failures and an unreachable handler are
// ErrTransport, and the question never reaches a handler.
func TestTransportFailures(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the plain server got a request")
	}))
	defer plain.Close()
	tests := []struct {
		name    string
		mutate  func(f *fixture, c *Config)
		message string
	}{
		{"untrusted certificate", func(f *fixture, c *Config) {
			c.HTTPClient = NewHTTPClient(directDial, x509.NewCertPool())
		}, "certificate did not verify"},
		{"system roots do not trust a test certificate", func(f *fixture, c *Config) {
			c.HTTPClient = NewHTTPClient(directDial, nil)
		}, "certificate did not verify"},
		{"certificate for another name", func(f *fixture, c *Config) {
			c.URL = "https://wrong.test/approve"
			c.HTTPClient = clientFor(t, f.h.srv, dialTo(f.h.srv.Listener.Addr().String()))
		}, "certificate did not verify"},
		{"plain HTTP server", func(f *fixture, c *Config) {
			c.URL = "https://" + plain.Listener.Addr().String() + "/approve"
		}, "exchange with the handler failed"},
		{"not TLS", func(f *fixture, c *Config) {
			c.URL = "https://" + garbageServer(t) + "/approve"
		}, "TLS handshake"},
		{"handler down", func(f *fixture, c *Config) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			c.URL = "https://" + l.Addr().String() + "/approve"
		}, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, nil, nil)
			cfg := f.cfg
			tt.mutate(f, &cfg)
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cfg.HTTPClient.CloseIdleConnections()
			d, err := c.Ask(t.Context(), testRequest("req-1"))
			if !errors.Is(err, ErrTransport) || d != (Decision{}) || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("Ask = %+v, %v; want ErrTransport with %q", d, err, tt.message)
			}
			if n := len(f.h.asked()); n != 0 {
				t.Errorf("the handler was asked %d times", n)
			}
		})
	}
}

// garbageServer returns the address of a TCP server that answers every
// connection with bytes that are neither TLS nor HTTP.
func garbageServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "\x00\x01garbage, not a TLS record\r\n")
			c.Close()
		}
	})
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String()
}

// TestInsecureHTTP: with AllowInsecureHTTP (tests only), plain http works.
func TestInsecureHTTP(t *testing.T) {
	f := setup(t, nil, nil)
	plain := httptest.NewServer(http.HandlerFunc(f.h.serve))
	defer plain.Close()
	cfg := f.cfg
	cfg.URL, cfg.AllowInsecureHTTP = plain.URL+"/approve", true
	cfg.HTTPClient = NewHTTPClient(directDial, nil)
	defer cfg.HTTPClient.CloseIdleConnections()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := c.Ask(t.Context(), testRequest("req-1")); err != nil || !d.Approved() {
		t.Fatalf("Ask = %+v, %v", d, err)
	}
}

// connectProxy is a minimal HTTP CONNECT proxy like the parent's egress
// proxy: it tunnels to the requested target, or answers 403.
type connectProxy struct {
	t    *testing.T
	l    net.Listener
	deny bool
	wg   sync.WaitGroup

	mu      sync.Mutex
	conns   []net.Conn
	targets []string
}

func startProxy(t *testing.T, deny bool) *connectProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{t: t, l: l, deny: deny}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *connectProxy) addr() transport.Addr {
	a, err := transport.ParseAddr("tcp://" + p.l.Addr().String())
	if err != nil {
		p.t.Fatal(err)
	}
	return a
}

func (p *connectProxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.track(c)
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *connectProxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *connectProxy) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		p.t.Errorf("proxy: got %v, %v", req, err)
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, req.RequestURI)
	p.mu.Unlock()
	if p.deny {
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\n\r\n")
		return
	}
	up, err := net.Dial("tcp", req.RequestURI)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	p.track(up)
	defer up.Close()
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	p.wg.Go(func() { io.Copy(up, br); up.Close() })
	io.Copy(c, up)
}

func (p *connectProxy) close() {
	p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestThroughEgress: the question goes through the enclave's egress dialer
// and a CONNECT proxy, with TLS end to end; a proxy refusal is an
// ErrTransport that says so.
func TestThroughEgress(t *testing.T) {
	f := setup(t, nil, nil)
	target := f.h.srv.Listener.Addr().String()
	for _, deny := range []bool{false, true} {
		p := startProxy(t, deny)
		cfg := f.cfg
		cfg.HTTPClient = clientFor(t, f.h.srv, egress.Dialer{Proxy: p.addr()}.DialContext)
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.Ask(t.Context(), testRequest("req-egress"))
		switch {
		case !deny && (err != nil || !d.Approved()):
			t.Errorf("through the proxy: Ask = %+v, %v", d, err)
		case deny && (!errors.Is(err, ErrTransport) || !errors.Is(err, egress.ErrDenied) || d != (Decision{})):
			t.Errorf("proxy refusing: Ask = %+v, %v", d, err)
		}
		cfg.HTTPClient.CloseIdleConnections()
		p.mu.Lock()
		if len(p.targets) != 1 || p.targets[0] != target {
			t.Errorf("the proxy was asked for %v, want [%s]", p.targets, target)
		}
		p.mu.Unlock()
	}
	if n := len(f.h.asked()); n != 1 {
		t.Errorf("the handler was asked %d times, want once", n)
	}
}
