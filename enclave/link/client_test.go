package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	plink "github.com/nitro-cosigner/nitro-cosigner/pkg/link"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var fastLink = plink.Config{PingInterval: 50 * time.Millisecond, IdleTimeout: 500 * time.Millisecond,
	WriteTimeout: time.Second, HandshakeTimeout: time.Second}

// fakeParent accepts link connections by hand.
type fakeParent struct {
	t   *testing.T
	l   net.Listener
	cfg plink.Config
}

func newFakeParent(t *testing.T) *fakeParent {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &fakeParent{t: t, l: l, cfg: fastLink}
}

func (p *fakeParent) addr() transport.Addr {
	a, err := transport.ParseAddr("tcp://" + p.l.Addr().String())
	if err != nil {
		p.t.Fatal(err)
	}
	return a
}

// accept takes the next link and runs the parent's handshake.
func (p *fakeParent) accept() *plink.Conn {
	p.t.Helper()
	p.l.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	nc, err := p.l.Accept()
	if err != nil {
		p.t.Fatal(err)
	}
	c, err := plink.Accept(p.t.Context(), nc, p.cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { c.Close() })
	return c
}

// started runs a client until the test ends and checks that Run returns
// nil promptly when stopped.
type started struct {
	*Client
	stop func()
}

func startClient(t *testing.T, cfg Config) *started {
	t.Helper()
	cfg.Link = fastLink
	if cfg.Receive == nil {
		cfg.Receive = func(context.Context, []byte) {}
	}
	cfg.MinBackoff = orDefault(cfg.MinBackoff, 5*time.Millisecond)
	cfg.MaxBackoff = orDefault(cfg.MaxBackoff, 50*time.Millisecond)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("Run did not return within 5s")
			}
		})
	}
	t.Cleanup(stop)
	return &started{c, stop}
}

func read(t *testing.T, c *plink.Conn) plink.Record {
	t.Helper()
	r, err := c.Read()
	if err != nil {
		t.Fatalf("parent Read: %v", err)
	}
	return r
}

func TestSendAndAck(t *testing.T) {
	p := newFakeParent(t)
	c := startClient(t, Config{Parent: p.addr()})
	conn := p.accept()
	for i := range 5 {
		if err := c.Send(t.Context(), "peer", fmt.Appendf(nil, "f%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		r := read(t, conn)
		if r.Kind != plink.KindOut || r.To != "peer" || string(r.Frame) != fmt.Sprintf("f%d", i) || r.Seq != uint64(i+1) {
			t.Fatalf("record %d: %v %q seq %d", i, r.Kind, r.Frame, r.Seq)
		}
		conn.Write(plink.Record{Kind: plink.KindAck, Seq: r.Seq})
	}
	eventually(t, 10*time.Second, "all ACKed", func() bool { return c.Stats().Acked == 5 })
	if s := c.Stats(); s.Sent != 5 || s.Unacked != 0 || !s.Connected || s.Connects != 1 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestSendCopiesFrame(t *testing.T) {
	p := newFakeParent(t)
	c := startClient(t, Config{Parent: p.addr()})
	buf := []byte("original")
	if err := c.Send(t.Context(), "peer", buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "CHANGED!")
	if r := read(t, p.accept()); string(r.Frame) != "original" {
		t.Fatalf("sent %q", r.Frame)
	}
}

// TestReceiveThenAck: the ACK goes out only after Receive returned.
func TestReceiveThenAck(t *testing.T) {
	p := newFakeParent(t)
	got, release := make(chan []byte, 1), make(chan struct{})
	startClient(t, Config{Parent: p.addr(), Receive: func(_ context.Context, f []byte) {
		got <- f
		<-release
	}})
	conn := p.accept()
	conn.Write(plink.Record{Kind: plink.KindIn, Seq: 7, Frame: []byte("hello")})
	if f := <-got; string(f) != "hello" {
		t.Fatalf("Receive got %q", f)
	}
	acks := make(chan plink.Record, 1)
	go func() {
		r, err := conn.Read()
		if err == nil {
			acks <- r
		}
	}()
	select {
	case r := <-acks:
		t.Fatalf("parent got %v before Receive returned", r.Kind)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if r := <-acks; r.Kind != plink.KindAck || r.Seq != 7 {
		t.Fatalf("got %v %d, want ACK 7", r.Kind, r.Seq)
	}
}

// TestResendOnReconnect: frames the parent did not ACK go out again, in
// order, on the next link; ACKed ones do not.
func TestResendOnReconnect(t *testing.T) {
	p := newFakeParent(t)
	c := startClient(t, Config{Parent: p.addr()})
	for i := range 4 {
		c.Send(t.Context(), "peer", fmt.Appendf(nil, "f%d", i))
	}
	conn := p.accept()
	for range 4 {
		read(t, conn)
	}
	conn.Write(plink.Record{Kind: plink.KindAck, Seq: 2})
	eventually(t, 10*time.Second, "ACK 2", func() bool { return c.Stats().Acked == 1 })
	conn.Close()
	conn = p.accept()
	for _, want := range []uint64{1, 3, 4} {
		if r := read(t, conn); r.Seq != want {
			t.Fatalf("resent seq %d, want %d", r.Seq, want)
		}
	}
	// The counters move after each write, so the last may trail the read.
	eventually(t, 10*time.Second, "resend counters", func() bool {
		s := c.Stats()
		return s.Resent == 3 && s.Connects == 2 && s.Unacked == 3
	})
}

// TestWindowBlocksSend: Send waits while the window is full.
func TestWindowBlocksSend(t *testing.T) {
	p := newFakeParent(t)
	c := startClient(t, Config{Parent: p.addr(), Window: 3})
	for i := range 3 {
		if err := c.Send(t.Context(), "peer", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := c.Send(ctx, "peer", []byte("4th")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send into a full window = %v, want DeadlineExceeded", err)
	}
	conn := p.accept()
	r := read(t, conn)
	done := make(chan error, 1)
	go func() { done <- c.Send(t.Context(), "peer", []byte("4th")) }()
	conn.Write(plink.Record{Kind: plink.KindAck, Seq: r.Seq})
	if err := <-done; err != nil {
		t.Fatalf("Send after an ACK = %v", err)
	}
}

func TestWindowBytes(t *testing.T) {
	p := newFakeParent(t)
	c := startClient(t, Config{Parent: p.addr(), WindowBytes: 100})
	if err := c.Send(t.Context(), "peer", make([]byte, 150)); err != nil {
		t.Fatalf("a frame above WindowBytes alone: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.Send(ctx, "peer", []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send beyond WindowBytes = %v", err)
	}
}

func TestReconnectsUntilParentAppears(t *testing.T) {
	p := newFakeParent(t)
	addr := p.addr()
	p.l.Close()
	c := startClient(t, Config{Parent: addr})
	c.Send(t.Context(), "peer", []byte("queued-before-the-parent"))
	time.Sleep(100 * time.Millisecond)
	l, err := net.Listen("tcp", p.l.Addr().String())
	if err != nil {
		t.Skipf("port reused meanwhile: %v", err)
	}
	p.l = l
	t.Cleanup(func() { l.Close() })
	if r := read(t, p.accept()); string(r.Frame) != "queued-before-the-parent" {
		t.Fatalf("got %q", r.Frame)
	}
}

// TestSilentParentDropped: a parent that stops answering loses the link
// after the idle timeout, and the client dials again.
func TestSilentParentDropped(t *testing.T) {
	p := newFakeParent(t)
	c := startClient(t, Config{Parent: p.addr()})
	p.accept() // never read: no PONG, no PING
	p.accept()
	if s := c.Stats(); s.Connects < 1 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestParentOverflowDropsLink: a parent sending more unacknowledged
// frames than allowed loses the link; the frames waiting are not
// handed over, and a new link works.
func TestParentOverflowDropsLink(t *testing.T) {
	p := newFakeParent(t)
	var mu sync.Mutex
	var got [][]byte
	block, inReceive := make(chan struct{}), make(chan struct{})
	startClient(t, Config{Parent: p.addr(), Receive: func(ctx context.Context, f []byte) {
		mu.Lock()
		got = append(got, f)
		first := len(got) == 1
		mu.Unlock()
		if first {
			close(inReceive)
			select {
			case <-block:
			case <-ctx.Done():
			}
		}
	}})
	conn := p.accept()
	conn.Write(plink.Record{Kind: plink.KindIn, Seq: 1, Frame: []byte("x")})
	<-inReceive
	// Receive is busy: MaxInFlight more may wait, one more is too many.
	for i := range plink.MaxInFlight + 1 {
		if err := conn.Write(plink.Record{Kind: plink.KindIn, Seq: uint64(i + 2), Frame: []byte("x")}); err != nil {
			break
		}
	}
	for {
		if _, err := conn.Read(); err != nil {
			break
		}
	}
	conn2 := p.accept()
	close(block)
	conn2.Write(plink.Record{Kind: plink.KindIn, Seq: 1, Frame: []byte("after")})
	if r := read(t, conn2); r.Kind != plink.KindAck || r.Seq != 1 {
		t.Fatalf("got %v %d", r.Kind, r.Seq)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || string(got[1]) != "after" {
		t.Fatalf("Receive saw %d frames: the dropped link's waiting frames were handed over", len(got))
	}
}

func TestSendErrors(t *testing.T) {
	p := newFakeParent(t)
	p.cfg.MaxFrame = 100
	c := startClient(t, Config{Parent: p.addr()})
	ctx := t.Context()
	if err := c.Send(ctx, "a.b", []byte("x")); !errors.Is(err, ErrInvalidID) {
		t.Errorf("bad ID: %v", err)
	}
	if err := c.Send(ctx, "a", nil); !errors.Is(err, ErrEmptyFrame) {
		t.Errorf("empty: %v", err)
	}
	if err := c.Send(ctx, "a", make([]byte, plink.MaxFrameLimit+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("above every limit: %v", err)
	}
	// Before the link: a 200-byte frame is queued, then dropped when the
	// parent says 100 is its limit; the next frame goes through.
	if err := c.Send(ctx, "a", make([]byte, 200)); err != nil {
		t.Fatal(err)
	}
	c.Send(ctx, "a", []byte("fits"))
	conn := p.accept()
	if r := read(t, conn); string(r.Frame) != "fits" {
		t.Fatalf("got %d bytes", len(r.Frame))
	}
	if err := c.Send(ctx, "a", make([]byte, 101)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("above the parent's limit: %v", err)
	}
	if s := c.Stats(); s.Dropped != 1 {
		t.Errorf("Dropped = %d", s.Dropped)
	}
	c.stop()
	if err := c.Send(ctx, "a", []byte("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Run = %v, want ErrClosed", err)
	}
}

// TestStopWithBlockedSendAndReceive: stopping the client returns a Send
// blocked on the window and waits for a running Receive, which is not
// ACKed.
func TestStopWithBlockedSendAndReceive(t *testing.T) {
	p := newFakeParent(t)
	inReceive := make(chan struct{})
	c := startClient(t, Config{Parent: p.addr(), Window: 1, Receive: func(ctx context.Context, _ []byte) {
		close(inReceive)
		<-ctx.Done()
	}})
	c.Send(t.Context(), "peer", []byte("fills-the-window"))
	conn := p.accept()
	conn.Write(plink.Record{Kind: plink.KindIn, Seq: 1, Frame: []byte("x")})
	<-inReceive
	sendDone := make(chan error, 1)
	go func() { sendDone <- c.Send(context.Background(), "peer", []byte("blocked")) }()
	time.Sleep(20 * time.Millisecond)
	c.stop()
	if err := <-sendDone; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Send = %v, want ErrClosed", err)
	}
	for {
		r, err := conn.Read()
		if err != nil {
			break
		}
		if r.Kind == plink.KindAck {
			t.Fatal("a frame was ACKed after Receive was cut short")
		}
	}
}

func TestConfig(t *testing.T) {
	a, _ := transport.ParseAddr("tcp://127.0.0.1:1")
	recv := func(context.Context, []byte) {}
	for name, c := range map[string]Config{
		"no receive": {Parent: a},
		"no parent":  {Receive: recv},
		"negative":   {Parent: a, Receive: recv, Window: -1},
		"bad link":   {Parent: a, Receive: recv, Link: plink.Config{MaxFrame: -1}},
	} {
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
