package ingress

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// serveFunc runs handle for every connection accepted on a loopback TCP
// listener until the test ends, and returns the listener's address.
func serveFunc(t *testing.T, handle func(c net.Conn)) transport.Addr {
	t.Helper()
	l, err := transport.Listen(t.Context(), "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := tcpAddr(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- transport.Serve(ctx, l, func(_ context.Context, c net.Conn) { handle(c) })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return addr
}

func tcpAddr(t *testing.T, l net.Listener) transport.Addr {
	t.Helper()
	a, err := transport.ParseAddr("tcp://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// echo copies what it reads back until EOF, then closes its write half.
func echo(c net.Conn) {
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c)
}

// closedAddr returns a loopback TCP address nothing listens on.
func closedAddr(t *testing.T) transport.Addr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := tcpAddr(t, l)
	l.Close()
	return a
}

// readClosed fails the test unless c reads EOF or a reset within d.
func readClosed(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %v: %v", d, err)
	}
}
