package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// pipeBetween pipes two fresh TCP connections and returns the outer ends
// (client side of a, client side of b) and the Pipe's outcome.
func pipeBetween(t *testing.T, ctx context.Context, opts PipeOptions) (ca, cb *net.TCPConn, done <-chan pipeOutcome) {
	t.Helper()
	ca, a := tcpPair(t)
	b, cb := tcpPair(t)
	ch := make(chan pipeOutcome, 1)
	go func() {
		res, err := Pipe(ctx, a, b, opts)
		ch <- pipeOutcome{res, err}
	}()
	return ca, cb, ch
}

type pipeOutcome struct {
	res Result
	err error
}

func TestPipeHalfClose(t *testing.T) {
	var live atomic.Uint64
	ca, cb, done := pipeBetween(t, t.Context(), PipeOptions{Idle: 5 * time.Second, AToB: &live})
	req := make([]byte, 1<<20)
	rand.Read(req)
	go func() {
		ca.Write(req)
		ca.CloseWrite() // a's side is done sending; b must see EOF
	}()
	got, err := io.ReadAll(cb)
	if err != nil || !bytes.Equal(got, req) {
		t.Fatalf("b read %d bytes, %v; want %d", len(got), err, len(req))
	}
	// After a's EOF the other direction still works.
	if _, err := cb.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	cb.CloseWrite()
	reply, err := io.ReadAll(ca)
	if err != nil || string(reply) != "reply" {
		t.Fatalf("a read %q, %v", reply, err)
	}
	out := <-done
	if out.err != nil || out.res.AToB != int64(len(req)) || out.res.BToA != 5 {
		t.Fatalf("Pipe = %+v, %v", out.res, out.err)
	}
	if live.Load() != uint64(len(req)) {
		t.Fatalf("live counter %d", live.Load())
	}
}

func TestPipeIdle(t *testing.T) {
	const idle = 500 * time.Millisecond
	ca, cb, done := pipeBetween(t, t.Context(), PipeOptions{Idle: idle})
	// Traffic in one direction only keeps both directions open.
	start := time.Now()
	for range 8 {
		if _, err := ca.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(cb, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(idle / 5)
	}
	select {
	case out := <-done:
		t.Fatalf("pipe ended after %v despite traffic: %v", time.Since(start), out.err)
	default:
	}
	out := <-done
	if !errors.Is(out.err, ErrIdle) {
		t.Fatalf("err = %v, want ErrIdle", out.err)
	}
	readClosed(t, ca, time.Second)
	readClosed(t, cb, time.Second)
}

func TestPipeContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	ca, cb, done := pipeBetween(t, ctx, PipeOptions{})
	cancel()
	out := <-done
	if !errors.Is(out.err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", out.err)
	}
	readClosed(t, ca, time.Second)
	readClosed(t, cb, time.Second)
}

func TestPipeResetClosesBoth(t *testing.T) {
	ca, cb, done := pipeBetween(t, t.Context(), PipeOptions{})
	ca.SetLinger(0)
	ca.Close() // a reset, not an EOF
	readClosed(t, cb, 2*time.Second)
	<-done
}

// tcpPair returns the two ends of one loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
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
