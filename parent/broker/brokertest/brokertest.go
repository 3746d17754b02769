// Package brokertest is the conformance suite every broker adapter passes:
// the semantics package broker documents, checked against a real (or
// embedded) server. Only tests import it.
package brokertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
)

// Harness describes an adapter under test.
type Harness struct {
	// New returns a fresh Broker on the test server; the suite closes it.
	New func(t *testing.T) broker.Broker
	// Ordered says that, when nothing fails, one publisher's frames to one
	// inbox reach the handler in publish order.
	Ordered bool
	// Restart, if set, restarts the server, keeping what it stored;
	// clients are expected to reconnect on their own.
	Restart func(t *testing.T)
	// Patience bounds how long a frame may take to arrive, redelivery
	// included (default 15s).
	Patience time.Duration
	// Quiet is how long the suite waits to conclude that a frame will not
	// arrive (default 500ms).
	Quiet time.Duration
	// Unacked is how long the adapter takes to deliver again a frame that
	// was handed over but never acknowledged (its subscriber died): the
	// suite waits that long, plus Quiet, before it concludes that an
	// acknowledged frame will not come back.
	Unacked time.Duration
	// LeakOptions exempt goroutines that outlive a Subscribe by design
	// from the leak check, such as an HTTP client's idle connections.
	LeakOptions []goleak.Option
}

// Run runs the suite. Subtests run one after another: the leak check
// needs a process where nothing else starts goroutines, and Restart
// affects the whole server.
func Run(t *testing.T, h Harness) {
	h.Patience = orDefault(h.Patience, 15*time.Second)
	h.Quiet = orDefault(h.Quiet, 500*time.Millisecond)
	s := &suite{h: h}
	t.Run("RoundTrip", s.roundTrip)
	t.Run("Isolation", s.isolation)
	t.Run("HandlerErrorRedelivers", s.handlerErrorRedelivers)
	t.Run("AckedNotRedelivered", s.ackedNotRedelivered)
	t.Run("Order", s.order)
	t.Run("ConcurrentPublishers", s.concurrentPublishers)
	t.Run("FrameLimits", s.frameLimits)
	t.Run("InvalidArguments", s.invalidArguments)
	t.Run("CancelWhileHandling", s.cancelWhileHandling)
	t.Run("CancelWhileWaiting", s.cancelWhileWaiting)
	t.Run("CloseStopsSubscribe", s.closeStopsSubscribe)
	t.Run("Restart", s.restart)
}

type suite struct{ h Harness }

// roundTrip: a frame arrives intact, every byte value included.
func (s *suite) roundTrip(t *testing.T) {
	b := s.broker(t)
	id := inbox(t, b, "rt")
	frame := make([]byte, 512)
	for i := range frame {
		frame[i] = byte(i)
	}
	publish(t, b, id, frame)
	got := s.collect(t, b, id, nil)
	got.expect(t, s.h.Patience, frame)
}

// isolation: a cosigner receives its own frames and nobody else's.
func (s *suite) isolation(t *testing.T) {
	b := s.broker(t)
	a, c := inbox(t, b, "iso-a"), inbox(t, b, "iso-c")
	forA, forC := frames("for-a", 5), frames("for-c", 5)
	for i := range forA {
		publish(t, b, a, forA[i])
		publish(t, b, c, forC[i])
	}
	gotA, gotC := s.collect(t, b, a, nil), s.collect(t, b, c, nil)
	gotA.expect(t, s.h.Patience, forA...)
	gotC.expect(t, s.h.Patience, forC...)
	sleep(s.h.Quiet)
	gotA.expectOnly(t, forA)
	gotC.expectOnly(t, forC)
}

// handlerErrorRedelivers: a frame whose handler failed comes back, and
// the frames after it still arrive.
func (s *suite) handlerErrorRedelivers(t *testing.T) {
	b := s.broker(t)
	id := inbox(t, b, "redeliver")
	fail, next := []byte("fail-once"), []byte("after-the-failure")
	publish(t, b, id, fail)
	publish(t, b, id, next)
	var once sync.Once
	got := s.collect(t, b, id, func(frame []byte) error {
		var err error
		if bytes.Equal(frame, fail) {
			once.Do(func() { err = errors.New("enclave unreachable") })
		}
		return err
	})
	got.expectCount(t, s.h.Patience, fail, 2)
	got.expect(t, s.h.Patience, next)
}

// ackedNotRedelivered: a frame handled without error is not delivered
// again to a later subscription.
func (s *suite) ackedNotRedelivered(t *testing.T) {
	b := s.broker(t)
	id := inbox(t, b, "acked")
	first, marker := []byte("handled-once"), []byte("second-subscription-marker")
	publish(t, b, id, first)
	sub := s.collect(t, b, id, nil)
	sub.expect(t, s.h.Patience, first)
	sub.stop(t)

	publish(t, b, id, marker)
	again := s.collect(t, b, id, nil)
	again.expect(t, s.h.Patience, marker)
	sleep(s.h.Unacked + s.h.Quiet)
	again.expectNone(t, first)
}

// order: without failures, one publisher's frames arrive in order (for
// adapters that promise it).
func (s *suite) order(t *testing.T) {
	if !s.h.Ordered {
		t.Skip("this adapter does not promise order")
	}
	b := s.broker(t)
	id := inbox(t, b, "order")
	want := frames("ordered", 20)
	for _, f := range want {
		publish(t, b, id, f)
	}
	got := s.collect(t, b, id, nil)
	got.expect(t, s.h.Patience, want...)
	got.expectOrder(t, want)
}

// concurrentPublishers: frames from publishers running at once all arrive.
func (s *suite) concurrentPublishers(t *testing.T) {
	b := s.broker(t)
	id := inbox(t, b, "concurrent")
	got := s.collect(t, b, id, nil)
	var all [][]byte
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for p := range 4 {
		batch := frames(fmt.Sprintf("publisher-%d", p), 10)
		all = append(all, batch...)
		wg.Go(func() {
			for _, f := range batch {
				if err := publishWithin(b, id, f, s.h.Patience); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	got.expect(t, s.h.Patience, all...)
}

// frameLimits: the largest frame passes intact; a larger or an empty one
// is refused before it reaches the broker.
func (s *suite) frameLimits(t *testing.T) {
	b := s.broker(t)
	id := inbox(t, b, "limits")
	limit := b.MaxFrameSize()
	if limit < 1 || limit > broker.MaxFrameSize {
		t.Fatalf("MaxFrameSize() = %d, want 1 to %d", limit, broker.MaxFrameSize)
	}
	ctx := context.Background()
	if err := b.Publish(ctx, id, make([]byte, limit+1)); !errors.Is(err, broker.ErrFrameTooLarge) {
		t.Errorf("Publish(%d bytes) = %v, want ErrFrameTooLarge", limit+1, err)
	}
	if err := b.Publish(ctx, id, nil); !errors.Is(err, broker.ErrEmptyFrame) {
		t.Errorf("Publish(empty) = %v, want ErrEmptyFrame", err)
	}
	largest := make([]byte, limit)
	rand.Read(largest)
	publish(t, b, id, largest)
	got := s.collect(t, b, id, nil)
	got.expect(t, s.h.Patience, largest)
}

// invalidArguments: IDs that could escape an inbox name, and a nil
// handler, are refused.
func (s *suite) invalidArguments(t *testing.T) {
	b := s.broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), s.h.Patience)
	defer cancel()
	if err := b.Subscribe(ctx, inbox(t, b, "nil-handler"), nil); err == nil {
		t.Error("Subscribe with a nil handler = nil, want an error")
	}
	for _, id := range []string{"", "a.b", "a*", ">", "a b", "../x", "-lead", "é", strings.Repeat("a", broker.MaxIDLen+1)} {
		if err := b.Publish(ctx, id, []byte("x")); !errors.Is(err, broker.ErrInvalidID) {
			t.Errorf("Publish(%q) = %v, want ErrInvalidID", id, err)
		}
		if err := b.Subscribe(ctx, id, ack); !errors.Is(err, broker.ErrInvalidID) {
			t.Errorf("Subscribe(%q) = %v, want ErrInvalidID", id, err)
		}
	}
}

// cancelWhileHandling: cancelling the context stops Subscribe promptly
// in the middle of a handler, leaves no goroutine behind, and the frame
// that was being handled comes back to the next subscription.
func (s *suite) cancelWhileHandling(t *testing.T) {
	b := s.broker(t)
	id := inbox(t, b, "cancel-handling")
	stuck := []byte("stuck-in-the-handler")
	s.warmUp(t, b, id)
	publish(t, b, id, stuck)
	inHandler := make(chan struct{}, 1)
	s.cancelPromptly(t, b, id, func(ctx context.Context, _ []byte) error {
		inHandler <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}, func() { waitOrFail(t, inHandler, s.h.Patience, "the handler was not called") })
	s.collect(t, b, id, nil).expect(t, s.h.Patience, stuck)
}

// cancelWhileWaiting: cancelling the context stops a Subscribe that waits
// for frames (in a long poll, a fetch, a pull) promptly, and leaves no
// goroutine behind.
func (s *suite) cancelWhileWaiting(t *testing.T) {
	b := s.broker(t)
	id := inbox(t, b, "cancel-waiting")
	s.warmUp(t, b, id)
	s.cancelPromptly(t, b, id, func(context.Context, []byte) error {
		t.Error("a frame arrived in an empty inbox")
		return nil
	}, func() { sleep(s.h.Quiet) })
}

// warmUp runs one round trip on id, so that connections, consumers and
// groups exist before a leak check.
func (s *suite) warmUp(t *testing.T, b broker.Broker, id string) {
	t.Helper()
	warm := []byte("warm-up")
	publish(t, b, id, warm)
	sub := s.collect(t, b, id, nil)
	sub.expect(t, s.h.Patience, warm)
	sub.stop(t)
}

// promptly bounds how long Subscribe may take to return once its context
// ends: well under a long poll or fetch wait, with room for a loaded CI
// machine.
const promptly = 2 * time.Second

// cancelPromptly runs Subscribe with handle, waits for ready, cancels,
// and checks that Subscribe returns nil promptly and leaves no goroutine
// behind.
//
// Test servers run in this process, so every new connection shows up as
// goroutines: callers publish and warm up before, and only Subscribe runs
// between the snapshot of running goroutines and the check.
func (s *suite) cancelPromptly(t *testing.T, b broker.Broker, id string, handle broker.Handler, ready func()) {
	t.Helper()
	before := append([]goleak.Option{goleak.IgnoreCurrent()}, s.h.LeakOptions...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Subscribe(ctx, id, handle) }()
	ready()
	start := time.Now()
	cancel()
	if err := waitResult(t, done, 5*time.Second); err != nil {
		t.Fatalf("Subscribe after cancel = %v, want nil", err)
	}
	if took := time.Since(start); took > promptly {
		t.Errorf("Subscribe returned %v after cancel, want within %v", took.Round(time.Millisecond), promptly)
	}
	if err := goleak.Find(before...); err != nil {
		t.Errorf("goroutines left behind by a cancelled Subscribe: %v", err)
	}
}

// closeStopsSubscribe: Close stops a running Subscribe with ErrClosed,
// and the closed Broker refuses further calls.
func (s *suite) closeStopsSubscribe(t *testing.T) {
	b := s.h.New(t)
	id := inbox(t, b, "close")
	f := []byte("before-close")
	publish(t, b, id, f)
	got := make(chan []byte, 1)
	done := make(chan error, 1)
	go func() {
		done <- b.Subscribe(context.Background(), id, func(_ context.Context, frame []byte) error {
			got <- frame
			return nil
		})
	}()
	waitOrFail(t, got, s.h.Patience, "the frame did not arrive")
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := waitResult(t, done, 5*time.Second); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
	ctx := context.Background()
	if err := b.Publish(ctx, id, f); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if err := b.Subscribe(ctx, id, ack); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
	if err := b.Close(); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}

// restart: a server restart loses no stored frame, and a running
// Subscribe carries on by itself.
func (s *suite) restart(t *testing.T) {
	if s.h.Restart == nil {
		t.Skip("the test server of this adapter cannot restart with its data")
	}
	b := s.broker(t)
	live, parked := inbox(t, b, "restart-live"), inbox(t, b, "restart-parked")
	before, waiting, after := []byte("before-restart"), []byte("parked-across-restart"), []byte("after-restart")
	got := s.collect(t, b, live, nil)
	publish(t, b, live, before)
	got.expect(t, s.h.Patience, before)
	publish(t, b, parked, waiting)

	s.h.Restart(t)
	if err := publishWithin(b, live, after, s.h.Patience); err != nil {
		t.Fatalf("Publish after restart: %v", err)
	}
	got.expect(t, s.h.Patience, after)
	s.collect(t, b, parked, nil).expect(t, s.h.Patience, waiting)
}

// broker returns a fresh Broker closed when t ends.
func (s *suite) broker(t *testing.T) broker.Broker {
	t.Helper()
	b := s.h.New(t)
	t.Cleanup(func() { b.Close() })
	return b
}

// inbox returns a new cosigner ID, provisioned if the adapter can.
func inbox(t *testing.T, b broker.Broker, name string) string {
	t.Helper()
	var r [4]byte
	rand.Read(r[:])
	id := name + "-" + hex.EncodeToString(r[:])
	if p, ok := b.(broker.Provisioner); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.EnsureInbox(ctx, id); err != nil {
			t.Fatalf("EnsureInbox(%s): %v", id, err)
		}
	}
	return id
}

func publish(t *testing.T, b broker.Broker, to string, frame []byte) {
	t.Helper()
	if err := publishWithin(b, to, frame, 30*time.Second); err != nil {
		t.Fatalf("Publish(%s): %v", to, err)
	}
}

// publishWithin retries Publish until it succeeds or d passes, as a relay
// does (a failed Publish may have stored the frame; duplicates are fine).
func publishWithin(b broker.Broker, to string, frame []byte, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		err := b.Publish(ctx, to, frame)
		if err == nil || ctx.Err() != nil {
			return err
		}
		sleep(100 * time.Millisecond)
	}
}

// frames returns n distinct frames.
func frames(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%s-%03d", prefix, i)
	}
	return out
}

func waitOrFail[T any](t *testing.T, c <-chan T, d time.Duration, msg string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(d):
		t.Fatalf("%s within %v", msg, d)
		var zero T
		return zero
	}
}

func waitResult(t *testing.T, done <-chan error, d time.Duration) error {
	t.Helper()
	return waitOrFail(t, done, d, "Subscribe did not return")
}

func sleep(d time.Duration) { time.Sleep(d) }

// ack is a handler that acknowledges everything.
func ack(context.Context, []byte) error { return nil }

func orDefault[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}
