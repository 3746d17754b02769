package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeProxy serves handle on a loopback listener until the test ends. handle
// gets the connection after its CONNECT request header was read, with the
// request's target.
func fakeProxy(t *testing.T, handle func(c net.Conn, target string)) transport.Addr {
	t.Helper()
	l, err := transport.Listen(t.Context(), "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := transport.ParseAddr("tcp://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- transport.Serve(ctx, l, func(_ context.Context, c net.Conn) {
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err != nil || req.Method != http.MethodConnect || req.Host != req.RequestURI {
				t.Errorf("proxy got %+v, %v", req, err)
				return
			}
			handle(c, req.RequestURI)
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return addr
}

// tunnelTo answers 200 and pipes c to the TCP address dst.
func tunnelTo(dst string) func(c net.Conn, target string) {
	return func(c net.Conn, _ string) {
		up, err := net.Dial("tcp", dst)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
			return
		}
		defer up.Close()
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		go io.Copy(up, c)
		io.Copy(c, up)
	}
}

// answer writes a fixed response and keeps the connection until the
// client closes it.
func answer(resp string) func(c net.Conn, target string) {
	return func(c net.Conn, _ string) {
		io.WriteString(c, resp)
		io.Copy(io.Discard, c)
	}
}

// TestTLSThroughProxy: a TLS client verifying the server's certificate for
// the name it dialed works end to end through the tunnel.
func TestTLSThroughProxy(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello over TLS")
	}))
	defer srv.Close()
	var asked string
	proxy := fakeProxy(t, func(c net.Conn, target string) {
		asked = target
		tunnelTo(srv.Listener.Addr().String())(c, target)
	})
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	d := Dialer{Proxy: proxy}
	hc := &http.Client{Transport: &http.Transport{
		DialContext:     d.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("https://kms.example.com:443/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello over TLS" || asked != "kms.example.com:443" {
		t.Fatalf("body %q, proxy asked for %q", body, asked)
	}
}

// TestEarlyBytes: bytes the proxy sends in the same segment as its 200 are
// the tunnel's first bytes.
func TestEarlyBytes(t *testing.T) {
	proxy := fakeProxy(t, answer("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nearly bytes"))
	c, err := Dialer{Proxy: proxy}.DialContext(t.Context(), "tcp", "s3.example.com:443")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(interface{ CloseWrite() error }).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "early bytes" {
		t.Fatalf("read %q, %v", got, err)
	}
}

func TestRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		resp string
		want error
	}{
		"403":       {"HTTP/1.1 403 SECRET-REASON\r\nContent-Length: 6\r\n\r\nSECRET", ErrDenied},
		"502":       {"HTTP/1.1 502 SECRET-REASON\r\n\r\n", ErrProxy},
		"407":       {"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", ErrProxy},
		"garbage":   {"SECRET garbage\r\n\r\n", ErrProxy},
		"http/2":    {"HTTP/2.0 200 OK\r\n\r\n", ErrProxy},
		"eof":       {"", ErrProxy},
		"truncated": {"HTTP/1.1 200 OK\r\n", ErrProxy},
		"huge":      {"HTTP/1.1 200 OK\r\nX: " + strings.Repeat("SECRET", 4<<10) + "\r\n\r\n", ErrProxy},
	} {
		t.Run(name, func(t *testing.T) {
			proxy := fakeProxy(t, func(c net.Conn, _ string) { io.WriteString(c, tc.resp) })
			_, err := Dialer{Proxy: proxy}.DialContext(t.Context(), "tcp", "callback.example.com:8443")
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, "callback.example.com:8443") || strings.Contains(msg, "SECRET") {
				t.Fatalf("error %q must name the target and echo nothing from the proxy", msg)
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	proxy := fakeProxy(t, func(c net.Conn, _ string) { io.Copy(io.Discard, c) }) // never answers
	start := time.Now()
	_, err := Dialer{Proxy: proxy, Timeout: 100 * time.Millisecond}.DialContext(t.Context(), "tcp", "kms.example.com:443")
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrProxy) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("gave up after %v", d)
	}

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = Dialer{Proxy: proxy}.DialContext(ctx, "tcp", "kms.example.com:443")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestProxyDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy, _ := transport.ParseAddr("tcp://" + l.Addr().String())
	l.Close()
	_, err = Dialer{Proxy: proxy}.DialContext(t.Context(), "tcp", "kms.example.com:443")
	if err == nil || !strings.Contains(err.Error(), "kms.example.com:443") {
		t.Fatalf("err = %v, want one naming the target", err)
	}
}

func TestBadTargets(t *testing.T) {
	proxy := fakeProxy(t, func(c net.Conn, _ string) { t.Error("the proxy was dialed") })
	d := Dialer{Proxy: proxy}
	for _, c := range []struct{ network, addr string }{
		{"udp", "kms.example.com:443"},
		{"unix", "/run/x.sock"},
		{"tcp", "kms.example.com"},
		{"tcp", ":443"},
		{"tcp", "kms.example.com:0"},
		{"tcp", "kms.example.com:65536"},
		{"tcp", "kms.example.com:https"},
		{"tcp", "kms.example.com:443\r\nX-Injected: 1"},
		{"tcp", "kms example.com:443"},
		{"tcp", "kms.example.com:443\x00"},
		{"tcp", "kmś.example.com:443"},
	} {
		if _, err := d.DialContext(t.Context(), c.network, c.addr); !errors.Is(err, ErrTarget) {
			t.Errorf("DialContext(%q, %q) = %v, want ErrTarget", c.network, c.addr, err)
		}
	}
}
