package relay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
)

// publishLoop publishes queued OUT frames until ctx ends.
func (r *Relay) publishLoop(ctx context.Context) {
	for {
		f, ok := r.queue.pop(ctx)
		if !ok {
			return
		}
		r.publishing.Add(1)
		done := r.publish(ctx, f)
		r.publishing.Add(-1)
		if done {
			f.from.ackOut(f.seq)
		}
	}
}

// publish publishes f, retrying with backoff for up to PublishTimeout
// (each attempt bounded by AttemptTimeout). It
// reports whether the relay is done with f (stored, or given up); false
// means it stopped (ctx ended, broker closed) and f must not be ACKed.
func (r *Relay) publish(ctx context.Context, f outFrame) bool {
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	b := r.newBackoff()
	for {
		err := r.attempt(pctx, f)
		switch {
		case err == nil:
			r.framesOut.Add(1)
			return true
		case ctx.Err() != nil || errors.Is(err, broker.ErrClosed):
			return false
		}
		r.publishFailures.Add(1)
		if permanent(err) || !b.wait(pctx) {
			r.publishDropped.Add(1)
			r.log.Warn("giving up on a frame", "to", f.to, "bytes", len(f.frame), "err", err)
			return true
		}
		r.log.Debug("publish failed; retrying", "to", f.to, "err", err)
	}
}

// attempt runs one Publish within AttemptTimeout.
func (r *Relay) attempt(ctx context.Context, f outFrame) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.AttemptTimeout)
	defer cancel()
	return r.cfg.Broker.Publish(ctx, f.to, f.frame)
}

// permanent reports whether retrying Publish cannot help.
func permanent(err error) bool {
	return errors.Is(err, broker.ErrInvalidID) || errors.Is(err, broker.ErrFrameTooLarge) ||
		errors.Is(err, broker.ErrEmptyFrame)
}

// subscribeLoop consumes Self's inbox until ctx ends (it returns nil) or
// the broker is closed (it returns the error).
func (r *Relay) subscribeLoop(ctx context.Context) error {
	b := r.newBackoff()
	for {
		err := r.cfg.Broker.Subscribe(ctx, r.cfg.Self, r.deliver)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, broker.ErrClosed):
			return fmt.Errorf("relay: subscribing: %w", err)
		}
		r.log.Warn("subscribing to the inbox failed; retrying", "err", err)
		if !b.wait(ctx) {
			return nil
		}
	}
}

// deliver is the inbox handler: it returns nil once the enclave ACKed
// frame (or for a frame the enclave can never take), and an error to have
// the broker deliver it again later.
func (r *Relay) deliver(ctx context.Context, frame []byte) error {
	l, err := r.active.wait(ctx, r.cfg.LinkWait)
	if err == nil && len(frame) > l.conn.PeerMaxFrame() {
		r.inDropped.Add(1)
		r.log.Warn("dropping an inbox frame larger than the enclave accepts", "bytes", len(frame))
		return nil
	}
	if err == nil {
		err = l.deliver(ctx, frame, r.cfg.AckTimeout)
	}
	if err != nil {
		r.inRetried.Add(1)
		return err
	}
	r.framesIn.Add(1)
	return nil
}

// backoff spaces out retries: RetryMin doubling to RetryMax, with jitter.
type backoff struct {
	min, max, cur time.Duration
}

func (r *Relay) newBackoff() *backoff { return &backoff{min: r.cfg.RetryMin, max: r.cfg.RetryMax} }

// wait sleeps for the next interval. It reports false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	b.cur = min(max(2*b.cur, b.min), b.max)
	t := time.NewTimer(b.cur/2 + rand.N(b.cur/2+1))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
