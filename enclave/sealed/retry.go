package sealed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/replica"
)

// transient reports whether err is worth retrying: S3 or KMS could not be
// reached or could not serve the call now.
func transient(err error) bool {
	return errors.Is(err, errS3) || errors.Is(err, errAttemptTimeout) || errors.Is(err, replica.ErrUnavailable) || errors.Is(err, kms.ErrUnavailable)
}

// errAttemptTimeout means one attempt ran out of its own time.
var errAttemptTimeout = errors.New("attempt timed out")

// retrier runs one boot step until it succeeds, fails for good, or the
// budget is spent.
type retrier struct {
	policy Retry
	log    *slog.Logger
}

// do runs fn, retrying transient failures with backoff. timeout bounds
// each attempt (0: only ctx). Every failed attempt is logged; errors
// carry no secret.
func (r retrier) do(ctx context.Context, step string, timeout time.Duration, fn func(context.Context) error) error {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := r.attempt(ctx, timeout, fn)
		if err == nil || !transient(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("sealed: %s: %w (last error: %w)", step, ctx.Err(), err)
		}
		delay := r.delay(attempt)
		if time.Since(start)+delay > r.policy.Budget {
			r.log.Error("sealed: giving up", "step", step, "attempt", attempt, "error", err)
			return fmt.Errorf("%w: %s: gave up after %d attempts in %s: %w",
				ErrUnavailable, step, attempt, time.Since(start).Round(time.Millisecond), err)
		}
		r.log.Warn("sealed: attempt failed; retrying", "step", step, "attempt", attempt, "retry_in", delay, "error", err)
		if serr := sleep(ctx, delay); serr != nil {
			return fmt.Errorf("sealed: %s: %w (last error: %w)", step, serr, err)
		}
	}
}

// attempt runs fn once under its own timeout. An attempt that ran out of
// its own time (not ctx's) counts as S3 or KMS being unavailable.
func (r retrier) attempt(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	if timeout <= 0 {
		return fn(ctx)
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := fn(actx)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) && !transient(err) {
		return fmt.Errorf("%w after %s: %w", errAttemptTimeout, timeout, err)
	}
	return err
}

// delay is the wait after the n-th failed attempt (n from 1): uniformly
// random in [d/2, d], d = min(Max, Initial·2ⁿ⁻¹).
func (r retrier) delay(n int) time.Duration {
	d := r.policy.Initial
	for i := 1; i < n && d < r.policy.Max; i++ {
		d *= 2
	}
	d = min(d, r.policy.Max)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
