package brokertest

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
)

// sub is a running Subscribe that records every delivery.
type sub struct {
	cancel context.CancelFunc
	exited chan struct{} // closed when Subscribe returns
	err    error         // what it returned, once exited is closed
	notify chan struct{} // signalled on each delivery

	mu  sync.Mutex
	got [][]byte
}

// collect subscribes to id. decide, if not nil, chooses the handler's
// result for each frame; otherwise every frame is acknowledged. The
// subscription stops when t ends, before the broker is closed.
func (s *suite) collect(t *testing.T, b broker.Broker, id string, decide func([]byte) error) *sub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &sub{cancel: cancel, exited: make(chan struct{}), notify: make(chan struct{}, 1)}
	go func() {
		c.err = b.Subscribe(ctx, id, c.handler(decide))
		close(c.exited)
	}()
	t.Cleanup(func() { c.stop(t) })
	return c
}

func (c *sub) handler(decide func([]byte) error) broker.Handler {
	return func(_ context.Context, frame []byte) error {
		c.mu.Lock()
		c.got = append(c.got, bytes.Clone(frame))
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
		if decide != nil {
			return decide(frame)
		}
		return nil
	}
}

// stop cancels the subscription and checks that Subscribe returns nil
// promptly. It is idempotent.
func (c *sub) stop(t *testing.T) {
	t.Helper()
	c.cancel()
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("Subscribe did not return within 10s of its context ending")
	}
	if c.err != nil {
		t.Errorf("Subscribe returned %v after its context ended, want nil", c.err)
	}
}

// count returns how many times frame was delivered.
func (c *sub) count(frame []byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, g := range c.got {
		if bytes.Equal(g, frame) {
			n++
		}
	}
	return n
}

// waitFor waits until cond holds, failing t after d or if Subscribe
// returns.
func (c *sub) waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-c.notify:
		case <-c.exited:
			t.Fatalf("Subscribe returned early (%v) while waiting for %s", c.err, what)
		case <-deadline.C:
			t.Fatalf("%s did not happen within %v", what, d)
		}
	}
}

// expect waits until every frame in want was delivered at least once.
func (c *sub) expect(t *testing.T, d time.Duration, want ...[]byte) {
	t.Helper()
	c.waitFor(t, d, "delivery of every expected frame", func() bool {
		for _, w := range want {
			if c.count(w) == 0 {
				return false
			}
		}
		return true
	})
}

// expectCount waits until frame was delivered at least n times.
func (c *sub) expectCount(t *testing.T, d time.Duration, frame []byte, n int) {
	t.Helper()
	c.waitFor(t, d, "repeated delivery", func() bool { return c.count(frame) >= n })
}

// expectNone checks that frame was never delivered.
func (c *sub) expectNone(t *testing.T, frame []byte) {
	t.Helper()
	if n := c.count(frame); n != 0 {
		t.Errorf("frame %q delivered %d times, want never", frame, n)
	}
}

// expectOnly checks that nothing outside allowed was delivered.
func (c *sub) expectOnly(t *testing.T, allowed [][]byte) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.got {
		if !slices.ContainsFunc(allowed, func(a []byte) bool { return bytes.Equal(a, g) }) {
			t.Errorf("received a frame addressed elsewhere: %q", g)
		}
	}
}

// expectOrder checks that the deliveries were exactly want, in order.
func (c *sub) expectOrder(t *testing.T, want [][]byte) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.EqualFunc(c.got, want, bytes.Equal) {
		t.Errorf("deliveries out of order:\n got %q\nwant %q", c.got, want)
	}
}
