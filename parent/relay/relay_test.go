package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/link"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var fastLink = link.Config{PingInterval: 50 * time.Millisecond, IdleTimeout: time.Second,
	WriteTimeout: time.Second, HandshakeTimeout: time.Second}

type harness struct {
	relay *Relay
	b     *memBroker
	addr  string
	done  chan error
	stop  context.CancelFunc
}

// start runs a relay for "self" on a fresh TCP listener; cfg's zero
// fields get test-friendly values.
func start(t testing.TB, b *memBroker, cfg Config) *harness {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Broker, cfg.Self, cfg.Listener = b, "self", l
	if cfg.Link == (link.Config{}) {
		cfg.Link = fastLink
	}
	cfg.LinkWait = orDefault(cfg.LinkWait, 200*time.Millisecond)
	cfg.AckTimeout = orDefault(cfg.AckTimeout, time.Second)
	cfg.RetryMin = orDefault(cfg.RetryMin, 5*time.Millisecond)
	cfg.RetryMax = orDefault(cfg.RetryMax, 20*time.Millisecond)
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{relay: r, b: b, addr: l.Addr().String(), done: make(chan error, 1), stop: cancel}
	go func() { h.done <- r.Run(ctx) }()
	t.Cleanup(func() { h.shutdown(t) })
	return h
}

// shutdown stops the relay and checks that Run returns nil promptly.
func (h *harness) shutdown(t testing.TB) {
	t.Helper()
	h.stop()
	select {
	case err, ok := <-h.done:
		if ok && err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if ok {
			close(h.done)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancel")
	}
}

func TestOutPublishedThenAcked(t *testing.T) {
	h := start(t, newMemBroker(), Config{})
	e := dialEnclave(t, h.addr, fastLink)
	for i := range 5 {
		e.send(uint64(i+1), fmt.Sprintf("peer-%d", i%2), fmt.Appendf(nil, "frame-%d", i))
	}
	acked := map[uint64]bool{}
	for len(acked) < 5 {
		r := e.read()
		if r.Kind != link.KindAck {
			t.Fatalf("enclave got %v, want ACK", r.Kind)
		}
		acked[r.Seq] = true
	}
	for i := range 5 {
		if h.b.count(h.b.published, fmt.Sprintf("peer-%d", i%2), fmt.Appendf(nil, "frame-%d", i)) != 1 {
			t.Errorf("frame-%d not published exactly once", i)
		}
	}
	if s := h.relay.Stats(); s.FramesOut != 5 || s.Links != 1 || !s.LinkUp {
		t.Errorf("Stats = %+v", s)
	}
}

// TestInAckedToBrokerOnlyAfterEnclaveAck: the broker forgets a frame only
// after the enclave ACKed it.
func TestInAckedToBrokerOnlyAfterEnclaveAck(t *testing.T) {
	h := start(t, newMemBroker(), Config{})
	e := dialEnclave(t, h.addr, fastLink)
	frame := []byte("for-the-enclave")
	h.b.Publish(t.Context(), "self", frame)
	r := e.read()
	if r.Kind != link.KindIn || !bytes.Equal(r.Frame, frame) {
		t.Fatalf("enclave got %v %q", r.Kind, r.Frame)
	}
	time.Sleep(50 * time.Millisecond)
	if h.b.total(h.b.acked, "self") != 0 {
		t.Fatal("the broker acknowledged the frame before the enclave ACKed it")
	}
	if s := h.relay.Stats(); s.InFlight != 1 {
		t.Fatalf("InFlight = %d, want 1", s.InFlight)
	}
	e.ack(r.Seq)
	eventually(t, 2*time.Second, "broker ack", func() bool { return h.b.count(h.b.acked, "self", frame) == 1 })
	if s := h.relay.Stats(); s.FramesIn != 1 || s.InFlight != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestNoLinkRedelivers: without an enclave the handler gives the frame
// back after LinkWait; it reaches the enclave once one connects.
func TestNoLinkRedelivers(t *testing.T) {
	h := start(t, newMemBroker(), Config{LinkWait: 30 * time.Millisecond})
	frame := []byte("parked")
	h.b.Publish(t.Context(), "self", frame)
	eventually(t, 2*time.Second, "a retried delivery", func() bool { return h.relay.Stats().InRetried >= 2 })
	e := dialEnclave(t, h.addr, fastLink)
	r := e.read()
	if !bytes.Equal(r.Frame, frame) {
		t.Fatalf("got %q", r.Frame)
	}
	e.ack(r.Seq)
	eventually(t, 2*time.Second, "broker ack", func() bool { return h.b.count(h.b.acked, "self", frame) == 1 })
}

// TestLinkWaitCoversReconnect: a frame arriving while the enclave is
// reconnecting waits for the new link instead of being redelivered.
func TestLinkWaitCoversReconnect(t *testing.T) {
	h := start(t, newMemBroker(), Config{LinkWait: 5 * time.Second})
	frame := []byte("arrives-while-down")
	h.b.Publish(t.Context(), "self", frame)
	time.Sleep(100 * time.Millisecond)
	e := dialEnclave(t, h.addr, fastLink)
	r := e.read()
	e.ack(r.Seq)
	eventually(t, 2*time.Second, "broker ack", func() bool { return h.b.count(h.b.acked, "self", frame) == 1 })
	if s := h.relay.Stats(); s.InRetried != 0 {
		t.Errorf("InRetried = %d, want 0", s.InRetried)
	}
}

// TestLinkDropBeforeAck: a frame whose ACK never came is delivered again
// on the next link.
func TestLinkDropBeforeAck(t *testing.T) {
	h := start(t, newMemBroker(), Config{})
	e := dialEnclave(t, h.addr, fastLink)
	frame := []byte("lost-with-the-link")
	h.b.Publish(t.Context(), "self", frame)
	if r := e.read(); !bytes.Equal(r.Frame, frame) {
		t.Fatalf("got %q", r.Frame)
	}
	e.conn.Close()
	e2 := dialEnclave(t, h.addr, fastLink)
	r := e2.read()
	if !bytes.Equal(r.Frame, frame) {
		t.Fatalf("second link got %q", r.Frame)
	}
	e2.ack(r.Seq)
	eventually(t, 2*time.Second, "broker ack", func() bool { return h.b.count(h.b.acked, "self", frame) == 1 })
}

func TestNewLinkReplacesOld(t *testing.T) {
	h := start(t, newMemBroker(), Config{})
	old := dialEnclave(t, h.addr, fastLink)
	eventually(t, 10*time.Second, "first link", func() bool { return h.relay.Stats().Links == 1 })
	e := dialEnclave(t, h.addr, fastLink)
	if _, err := old.conn.Read(); err == nil {
		t.Fatal("the replaced link still reads")
	}
	h.b.Publish(t.Context(), "self", []byte("x"))
	r := e.read()
	e.ack(r.Seq)
	if s := h.relay.Stats(); s.Links != 2 || !s.LinkUp {
		t.Errorf("Stats = %+v", s)
	}
}

// TestFailedHandshakeKeepsLink: a connection that fails the handshake
// does not replace the working link.
func TestFailedHandshakeKeepsLink(t *testing.T) {
	h := start(t, newMemBroker(), Config{})
	e := dialEnclave(t, h.addr, fastLink)
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	nc.Close()
	h.b.Publish(t.Context(), "self", []byte("still-here"))
	r := e.read()
	if string(r.Frame) != "still-here" {
		t.Fatalf("got %q", r.Frame)
	}
}

func TestPublishRetries(t *testing.T) {
	b := newMemBroker()
	var fails atomic.Int32
	fails.Store(3)
	b.setHook(func(context.Context, string, []byte) error {
		if fails.Add(-1) >= 0 {
			return errInjected
		}
		return nil
	})
	h := start(t, b, Config{})
	e := dialEnclave(t, h.addr, fastLink)
	e.send(1, "peer", []byte("retried"))
	if r := e.read(); r.Kind != link.KindAck || r.Seq != 1 {
		t.Fatalf("got %v %d", r.Kind, r.Seq)
	}
	if s := h.relay.Stats(); s.FramesOut != 1 || s.PublishFailures != 3 || s.PublishDropped != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestAttemptTimeout: a Publish that hangs (an acknowledgement lost in a
// broker restart) is abandoned after AttemptTimeout and tried again.
func TestAttemptTimeout(t *testing.T) {
	b := newMemBroker()
	var calls atomic.Int32
	b.setHook(func(ctx context.Context, _ string, _ []byte) error {
		if calls.Add(1) == 1 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	h := start(t, b, Config{AttemptTimeout: 50 * time.Millisecond, PublishTimeout: 10 * time.Second})
	e := dialEnclave(t, h.addr, fastLink)
	start := time.Now()
	e.send(1, "peer", []byte("x"))
	if r := e.read(); r.Kind != link.KindAck {
		t.Fatalf("got %v", r.Kind)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if s := h.relay.Stats(); s.FramesOut != 1 || s.PublishFailures != 1 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestPublishGivesUp(t *testing.T) {
	b := newMemBroker()
	b.setHook(func(_ context.Context, to string, _ []byte) error {
		if to == "too-big" {
			return fmt.Errorf("adapter: %w", broker.ErrFrameTooLarge)
		}
		return errInjected
	})
	h := start(t, b, Config{PublishTimeout: 100 * time.Millisecond})
	e := dialEnclave(t, h.addr, fastLink)
	e.send(1, "too-big", []byte("x"))
	e.send(2, "down", []byte("y"))
	for range 2 {
		if r := e.read(); r.Kind != link.KindAck {
			t.Fatalf("got %v", r.Kind)
		}
	}
	if s := h.relay.Stats(); s.FramesOut != 0 || s.PublishDropped != 2 || s.PublishFailures < 2 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestBackpressure: with the broker stuck, the relay holds at most
// QueueLen frames waiting plus one per publisher, stops reading the link,
// and the enclave's writes stall; once the broker recovers every frame
// goes through.
func TestBackpressure(t *testing.T) {
	b := newMemBroker()
	gate := make(chan struct{})
	b.setHook(func(ctx context.Context, _ string, _ []byte) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	const queueLen, n, size = 4, 200, 64 << 10
	h := start(t, b, Config{QueueLen: queueLen, Publishers: 1, PublishTimeout: time.Minute,
		Link: link.Config{WriteTimeout: 30 * time.Second, IdleTimeout: 30 * time.Second}})
	e := dialEnclave(t, h.addr, link.Config{WriteTimeout: 30 * time.Second, IdleTimeout: 30 * time.Second})
	var written atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			if e.conn.Write(link.Record{Kind: link.KindOut, Seq: uint64(i + 1), To: "peer", Frame: make([]byte, size)}) != nil {
				return
			}
			written.Add(1)
		}
	})
	eventually(t, 2*time.Second, "a full queue", func() bool { return h.relay.Stats().QueueDepth == queueLen })
	time.Sleep(200 * time.Millisecond)
	s := h.relay.Stats()
	if s.QueueDepth > queueLen || s.Publishing > 1 || s.QueueBytes > queueLen*size {
		t.Fatalf("relay holds too much: %+v", s)
	}
	if written.Load() == n {
		t.Fatalf("the enclave wrote all %d frames (%d MiB) into a stuck relay", n, n*size>>20)
	}
	t.Logf("stuck: the enclave wrote %d of %d frames; the relay holds %d queued + %d publishing", written.Load(), n, s.QueueDepth, s.Publishing)
	close(gate)
	acks := 0
	for acks < n {
		if e.read().Kind == link.KindAck {
			acks++
		}
	}
	wg.Wait()
	if s := h.relay.Stats(); s.FramesOut != n {
		t.Errorf("FramesOut = %d, want %d", s.FramesOut, n)
	}
}

func TestQueueBytesBound(t *testing.T) {
	b := newMemBroker()
	gate := make(chan struct{})
	b.setHook(func(ctx context.Context, _ string, _ []byte) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	h := start(t, b, Config{QueueLen: 100, QueueBytes: 10 << 10, Publishers: 1})
	e := dialEnclave(t, h.addr, fastLink)
	for i := range 10 {
		e.send(uint64(i+1), "peer", make([]byte, 4<<10))
	}
	eventually(t, 2*time.Second, "queue filling", func() bool { return h.relay.Stats().QueueDepth == 2 })
	time.Sleep(100 * time.Millisecond)
	if s := h.relay.Stats(); s.QueueBytes > 10<<10 {
		t.Fatalf("QueueBytes = %d above the bound", s.QueueBytes)
	}
	close(gate)
	for range 10 {
		e.read()
	}
}

// TestOversizeInDropped: a frame larger than the enclave accepts is
// acknowledged and dropped; the next one still arrives.
func TestOversizeInDropped(t *testing.T) {
	h := start(t, newMemBroker(), Config{})
	cfg := fastLink
	cfg.MaxFrame = 100
	e := dialEnclave(t, h.addr, cfg)
	h.b.Publish(t.Context(), "self", make([]byte, 101))
	h.b.Publish(t.Context(), "self", []byte("small"))
	r := e.read()
	if string(r.Frame) != "small" {
		t.Fatalf("got %d bytes", len(r.Frame))
	}
	e.ack(r.Seq)
	eventually(t, 10*time.Second, "both acked", func() bool { return h.b.total(h.b.acked, "self") == 2 })
	if s := h.relay.Stats(); s.InDropped != 1 {
		t.Errorf("InDropped = %d", s.InDropped)
	}
}

// TestInFlightBounded: an enclave that never ACKs gets at most
// link.MaxInFlight IN records, however often the broker redelivers.
func TestInFlightBounded(t *testing.T) {
	h := start(t, newMemBroker(), Config{AckTimeout: 5 * time.Millisecond})
	e := dialEnclave(t, h.addr, fastLink)
	for i := range link.MaxInFlight + 4 {
		h.b.Publish(t.Context(), "self", fmt.Appendf(nil, "f%d", i))
	}
	got := 0
	for got < link.MaxInFlight {
		if e.read().Kind == link.KindIn {
			got++
		}
	}
	retried := h.relay.Stats().InRetried
	eventually(t, 2*time.Second, "more redeliveries", func() bool { return h.relay.Stats().InRetried > retried+10 })
	if s := h.relay.Stats(); s.InFlight != link.MaxInFlight {
		t.Fatalf("InFlight = %d", s.InFlight)
	}
	extra := make(chan link.Record, 1)
	go func() {
		if r, err := e.conn.Read(); err == nil {
			extra <- r
		}
		close(extra)
	}()
	time.Sleep(200 * time.Millisecond)
	e.conn.Close()
	if r, ok := <-extra; ok {
		t.Fatalf("the relay sent a %v beyond the in-flight limit", r.Kind)
	}
}

// TestEnclaveMisbehaves: a record the parent may not receive ends the
// link.
func TestEnclaveMisbehaves(t *testing.T) {
	h := start(t, newMemBroker(), Config{})
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	hello, _ := link.Marshal(link.Record{Kind: link.KindHello, Hello: link.Hello{MinVersion: 1, MaxVersion: 1, MaxFrame: 100}}, 0)
	in, _ := link.Marshal(link.Record{Kind: link.KindIn, Seq: 1, Frame: []byte("x")}, 100)
	nc.Write(append(hello, in...))
	nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	for {
		if _, err := nc.Read(buf); err != nil {
			if errors.Is(err, net.ErrClosed) || isTimeout(err) {
				t.Fatalf("link not closed: %v", err)
			}
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestBrokerClosedEndsRun(t *testing.T) {
	b := newMemBroker()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Broker: b, Self: "self", Listener: l})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	b.Close()
	select {
	case err := <-done:
		if !errors.Is(err, broker.ErrClosed) {
			t.Fatalf("Run = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if err := r.Run(context.Background()); err == nil {
		t.Error("second Run = nil")
	}
}

func TestConfig(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b := newMemBroker()
	for name, c := range map[string]Config{
		"no broker":   {Self: "a", Listener: l},
		"no listener": {Broker: b, Self: "a"},
		"bad self":    {Broker: b, Self: "a.b", Listener: l},
		"negative":    {Broker: b, Self: "a", Listener: l, QueueLen: -1},
		"bad link":    {Broker: b, Self: "a", Listener: l, Link: link.Config{PingInterval: time.Second, IdleTimeout: time.Second}},
	} {
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", name, err)
		}
	}
	b.maxFrame = 1000
	r, err := New(Config{Broker: b, Self: "a", Listener: l, Link: link.Config{MaxFrame: 5000}})
	if err != nil || r.cfg.Link.MaxFrame != 1000 {
		t.Errorf("Link.MaxFrame not capped at the broker's limit: %v", err)
	}
}
