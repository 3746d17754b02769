package broker

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// life tracks an adapter's running calls so that Close can stop them and
// wait for them.
type life struct {
	ctx    context.Context // ends when Close begins
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	calls  sync.WaitGroup
}

func newLife() *life {
	ctx, cancel := context.WithCancel(context.Background())
	return &life{ctx: ctx, cancel: cancel}
}

// enter starts a call: the returned context also ends when Close begins,
// and leave must be called when the call returns.
func (l *life) enter(ctx context.Context) (_ context.Context, leave func(), _ error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, nil, ErrClosed
	}
	l.calls.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(l.ctx, cancel)
	return ctx, func() { stop(); cancel(); l.calls.Done() }, nil
}

// close stops running calls and waits for them. It reports false if the
// adapter was already closed.
func (l *life) close() bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.calls.Wait()
	return true
}

// subscribeEnd is what Subscribe returns once its loop has stopped: nil
// if the caller's context ended, ErrClosed if Close stopped it.
func (l *life) subscribeEnd(caller context.Context) error {
	if caller.Err() == nil && l.ctx.Err() != nil {
		return ErrClosed
	}
	return nil
}

// publishErr turns a Publish failure caused by Close into ErrClosed.
func (l *life) publishErr(caller context.Context, err error) error {
	if caller.Err() == nil && l.ctx.Err() != nil {
		return ErrClosed
	}
	return err
}

// backoff spaces out retries of a failing broker call: min, doubling to
// max, with jitter.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff() *backoff {
	return &backoff{min: 100 * time.Millisecond, max: 5 * time.Second}
}

// wait sleeps for the next interval. It reports false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	b.cur = min(max(2*b.cur, b.min), b.max)
	return sleep(ctx, b.cur/2+rand.N(b.cur/2+1))
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits for d. It reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// orDiscard returns log, or a logger that drops everything if log is nil.
func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// orDefault returns d if v is zero.
func orDefault[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}
