package ingress

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// startForwarder serves f on a loopback listener until the returned stop
// is called (or the test ends); stop fails the test unless Serve returns nil.
func startForwarder(t *testing.T, cfg Config) (*Forwarder, string, func()) {
	t.Helper()
	cfg.Log = testLogger(t)
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Serve(ctx, l) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve = %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return f, l.Addr().String(), stop
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func TestForwardRoundTrip(t *testing.T) {
	enclave := serveFunc(t, echo)
	f, addr, stop := startForwarder(t, Config{Enclave: enclave})
	c := dial(t, addr)
	msg := make([]byte, 256<<10)
	rand.Read(msg)
	go func() {
		c.Write(msg)
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read %d bytes, %v; want the %d sent", len(got), err, len(msg))
	}
	stop()
	s := f.Stats()
	if s.Forwarded != 1 || s.BytesIn != uint64(len(msg)) || s.BytesOut != uint64(len(msg)) || s.Active != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestForwardHalfClose: the client ends its sending half and still gets
// the enclave's answer, which the enclave sends only after that EOF.
func TestForwardHalfClose(t *testing.T) {
	enclave := serveFunc(t, func(c net.Conn) {
		req, _ := io.ReadAll(c)
		c.Write(append([]byte("got "), req...))
	})
	_, addr, _ := startForwarder(t, Config{Enclave: enclave})
	c := dial(t, addr)
	c.Write([]byte("hello"))
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "got hello" {
		t.Fatalf("read %q, %v", got, err)
	}
}

func TestForwardEnclaveDown(t *testing.T) {
	f, addr, _ := startForwarder(t, Config{Enclave: closedAddr(t)})
	c := dial(t, addr)
	start := time.Now()
	readClosed(t, c, 2*time.Second)
	if d := time.Since(start); d > time.Second {
		t.Errorf("closed after %v", d)
	}
	if s := f.Stats(); s.DialFailed != 1 || s.Forwarded != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestForwardMaxConns(t *testing.T) {
	enclave := serveFunc(t, echo)
	f, addr, _ := startForwarder(t, Config{Enclave: enclave, MaxConns: 1})
	first := dial(t, addr)
	roundTrip(t, first, "one") // the first connection holds the only slot
	second := dial(t, addr)
	readClosed(t, second, 2*time.Second)
	if s := f.Stats(); s.Rejected != 1 || s.Active != 1 {
		t.Fatalf("stats %+v", s)
	}
	roundTrip(t, first, "still") // the first is unaffected
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("read %q, %v; want %q", buf, err, msg)
	}
}

// TestForwardShutdown: ending the context closes every forwarded
// connection, both sides, and Serve returns (TestMain checks for leaks).
func TestForwardShutdown(t *testing.T) {
	const n = 3
	opened, closed := make(chan struct{}, n), make(chan struct{}, n)
	enclave := serveFunc(t, func(c net.Conn) {
		io.ReadFull(c, make([]byte, 1))
		opened <- struct{}{}
		io.Copy(io.Discard, c) // returns when the forwarder closes its side
		closed <- struct{}{}
	})
	_, addr, stop := startForwarder(t, Config{Enclave: enclave})
	var clients []net.Conn
	for range n {
		c := dial(t, addr)
		c.Write([]byte("x"))
		clients = append(clients, c)
		<-opened
	}
	stop()
	for _, c := range clients {
		readClosed(t, c, 2*time.Second)
	}
	for range n {
		select {
		case <-closed:
		case <-time.After(2 * time.Second):
			t.Fatal("an enclave-side connection is still open after shutdown")
		}
	}
}

func TestNewRefuses(t *testing.T) {
	tcp, _ := transport.ParseAddr("tcp://127.0.0.1:1")
	for name, cfg := range map[string]Config{
		"no enclave":        {},
		"bad enclave":       {Enclave: transport.Addr{Scheme: "tcp", Host: "a b", Port: 1}},
		"negative maxconns": {Enclave: tcp, MaxConns: -1},
		"negative idle":     {Enclave: tcp, IdleTimeout: -time.Second},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
}
