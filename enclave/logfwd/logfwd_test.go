package logfwd

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// parentAt listens at addr and returns the lines it receives.
func parentAt(t *testing.T, addr transport.Addr) <-chan string {
	t.Helper()
	l, err := transport.ListenAddr(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		transport.Serve(ctx, l, func(_ context.Context, c net.Conn) {
			sc := bufio.NewScanner(c)
			sc.Buffer(nil, 2*MaxLine)
			for sc.Scan() {
				lines <- sc.Text()
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return lines
}

func addr(t *testing.T) transport.Addr {
	t.Helper()
	a, err := transport.ParseAddr("unix://" + filepath.Join(t.TempDir(), "logs.sock"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func next(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l := <-lines:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line")
	}
	return ""
}

func running(t *testing.T, w *Writer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// TestLinesReachParent: lines written before the parent listens wait in
// the queue, and go out in order once it does.
func TestLinesReachParent(t *testing.T) {
	a := addr(t)
	w := New(a)
	running(t, w)
	for i := range 3 {
		fmt.Fprintf(w, `{"level":"INFO","msg":"line %d"}`+"\n", i)
	}
	w.Write([]byte("no newline"))
	lines := parentAt(t, a)
	for i := range 3 {
		if got, want := next(t, lines), fmt.Sprintf(`{"level":"INFO","msg":"line %d"}`, i); got != want {
			t.Fatalf("line %d: %q, want %q", i, got, want)
		}
	}
	if got := next(t, lines); got != "no newline" {
		t.Fatalf("got %q", got)
	}
	if w.Dropped() != 0 {
		t.Fatalf("%d dropped", w.Dropped())
	}
}

// TestWriteNeverBlocks: with the parent gone and the queue full, Write
// returns at once and counts the lines it drops.
func TestWriteNeverBlocks(t *testing.T) {
	w := New(addr(t)) // nobody listens, and Run is not running
	began := time.Now()
	for range QueueLines + 10 {
		if n, err := w.Write([]byte("x\n")); n != 2 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("writes took %v", d)
	}
	if w.Dropped() != 10 {
		t.Fatalf("dropped %d, want 10", w.Dropped())
	}
}

func TestLongLineCut(t *testing.T) {
	a := addr(t)
	lines := parentAt(t, a)
	w := New(a)
	running(t, w)
	w.Write([]byte(strings.Repeat("y", MaxLine+500) + "\n"))
	w.Write([]byte("after\n"))
	if got := next(t, lines); len(got) != MaxLine {
		t.Fatalf("long line: %d bytes, want %d", len(got), MaxLine)
	}
	if got := next(t, lines); got != "after" {
		t.Fatalf("got %q", got)
	}
}

// TestReconnect: a parent that restarts gets the lines written meanwhile.
func TestReconnect(t *testing.T) {
	a := addr(t)
	l, err := transport.ListenAddr(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	w := New(a)
	running(t, w)
	w.Write([]byte("first\n"))
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if s, _ := r.ReadString('\n'); s != "first\n" {
		t.Fatalf("got %q", s)
	}
	c.Close()
	l.Close()
	lines := parentAt(t, a)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		fmt.Fprintf(w, "again %d\n", i)
		select {
		case got := <-lines:
			if !strings.HasPrefix(got, "again ") {
				t.Fatalf("got %q", got)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no line after the parent came back")
		}
	}
}

// TestFlushAtStop: lines queued when Run's context ends are still sent.
func TestFlushAtStop(t *testing.T) {
	a := addr(t)
	lines := parentAt(t, a)
	w := New(a)
	stop := running(t, w)
	w.Write([]byte("one\n"))
	next(t, lines)
	for i := range 50 {
		fmt.Fprintf(w, "queued %d\n", i)
	}
	stop()
	for i := range 50 {
		if got := next(t, lines); got != fmt.Sprintf("queued %d", i) {
			t.Fatalf("got %q", got)
		}
	}
	w.Write([]byte("late\n"))
	if w.Dropped() != 1 {
		t.Fatalf("a line written after Run returned was not dropped (%d)", w.Dropped())
	}
}
