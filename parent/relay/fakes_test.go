package relay

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/link"
)

// memBroker is an in-memory broker.Broker with the package's semantics:
// a handler error puts the frame back after retryDelay. publishHook, if
// set, runs before each Publish and may fail or block it.
type memBroker struct {
	maxFrame   int
	retryDelay time.Duration

	mu          sync.Mutex
	inboxes     map[string][][]byte // frames waiting for a handler
	published   map[string][][]byte // every stored frame
	acked       map[string][][]byte // frames a handler returned nil for
	notify      chan struct{}       // closed and replaced on every change
	closed      bool
	closedCh    chan struct{}
	publishHook func(ctx context.Context, to string, frame []byte) error
}

func newMemBroker() *memBroker {
	return &memBroker{
		maxFrame: broker.MaxFrameSize, retryDelay: 20 * time.Millisecond,
		inboxes: map[string][][]byte{}, published: map[string][][]byte{}, acked: map[string][][]byte{},
		notify: make(chan struct{}), closedCh: make(chan struct{}),
	}
}

func (m *memBroker) MaxFrameSize() int { return m.maxFrame }

func (m *memBroker) setHook(h func(ctx context.Context, to string, frame []byte) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.publishHook = h
}

func (m *memBroker) Publish(ctx context.Context, to string, frame []byte) error {
	if err := broker.CheckID(to); err != nil {
		return err
	}
	if len(frame) > m.maxFrame {
		return broker.ErrFrameTooLarge
	}
	m.mu.Lock()
	hook, closed := m.publishHook, m.closed
	m.mu.Unlock()
	if closed {
		return broker.ErrClosed
	}
	if hook != nil {
		if err := hook(ctx, to, frame); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	f := bytes.Clone(frame)
	m.inboxes[to] = append(m.inboxes[to], f)
	m.published[to] = append(m.published[to], f)
	m.changedLocked()
	return nil
}

func (m *memBroker) changedLocked() {
	close(m.notify)
	m.notify = make(chan struct{})
}

func (m *memBroker) Subscribe(ctx context.Context, self string, handle broker.Handler) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		f, ok, err := m.next(ctx, self)
		if !ok {
			return err
		}
		if err := handle(ctx, f); err != nil {
			wg.Go(func() { m.putBack(self, f) })
			continue
		}
		m.mu.Lock()
		m.acked[self] = append(m.acked[self], f)
		m.changedLocked()
		m.mu.Unlock()
	}
}

// next takes the first frame of self's inbox, waiting for one.
func (m *memBroker) next(ctx context.Context, self string) ([]byte, bool, error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, false, broker.ErrClosed
		}
		if q := m.inboxes[self]; len(q) > 0 {
			m.inboxes[self] = q[1:]
			m.mu.Unlock()
			return q[0], true, nil
		}
		ch := m.notify
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, false, nil
		case <-m.closedCh:
		}
	}
}

func (m *memBroker) putBack(self string, f []byte) {
	time.Sleep(m.retryDelay)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inboxes[self] = append(m.inboxes[self], f)
	m.changedLocked()
}

func (m *memBroker) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return broker.ErrClosed
	}
	m.closed = true
	close(m.closedCh)
	return nil
}

func (m *memBroker) count(set map[string][][]byte, id string, frame []byte) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, f := range set[id] {
		if bytes.Equal(f, frame) {
			n++
		}
	}
	return n
}

func (m *memBroker) total(set map[string][][]byte, id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(set[id])
}

// fakeEnclave is the enclave's end of a link, driven by hand.
type fakeEnclave struct {
	t    testing.TB
	conn *link.Conn
}

func dialEnclave(t testing.TB, addr string, cfg link.Config) *fakeEnclave {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := link.Open(t.Context(), nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fakeEnclave{t: t, conn: c}
}

func (e *fakeEnclave) send(seq uint64, to string, frame []byte) {
	e.t.Helper()
	if err := e.conn.Write(link.Record{Kind: link.KindOut, Seq: seq, To: to, Frame: frame}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *fakeEnclave) ack(seq uint64) {
	e.t.Helper()
	if err := e.conn.Write(link.Record{Kind: link.KindAck, Seq: seq}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *fakeEnclave) read() link.Record {
	e.t.Helper()
	r, err := e.conn.Read()
	if err != nil {
		e.t.Fatalf("enclave Read: %v", err)
	}
	return r
}

// eventually fails t unless cond holds within d.
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

var errInjected = errors.New("injected broker failure")
