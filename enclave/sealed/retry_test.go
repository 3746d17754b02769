package sealed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
)

func TestRetryDelays(t *testing.T) {
	r := retrier{policy: Retry{Initial: 100 * time.Millisecond, Max: time.Second}.withDefaults()}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		for range 50 {
			if d := r.delay(n); d < want/2 || d > want {
				t.Fatalf("delay(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
}

func TestRetryStopsOnPermanentErrors(t *testing.T) {
	r := retrier{policy: Retry{Initial: time.Millisecond, Budget: time.Second}.withDefaults(), log: slog.New(slog.DiscardHandler)}
	calls := 0
	err := r.do(context.Background(), "step", 0, func(context.Context) error {
		calls++
		return kms.ErrNotAllowed
	})
	if !errors.Is(err, kms.ErrNotAllowed) || calls != 1 {
		t.Fatalf("%d calls, %v", calls, err)
	}
}

func TestRetryGivesUpWithinBudget(t *testing.T) {
	r := retrier{policy: Retry{Initial: time.Millisecond, Max: 4 * time.Millisecond, Budget: 50 * time.Millisecond}.withDefaults(),
		log: slog.New(slog.DiscardHandler)}
	calls := 0
	start := time.Now()
	err := r.do(context.Background(), "step", 0, func(context.Context) error {
		calls++
		return fmt.Errorf("%w: down", errS3)
	})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errS3) || calls < 5 {
		t.Fatalf("%d calls, %v", calls, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v with a 50ms budget", d)
	}
}

func TestRetryAttemptTimeout(t *testing.T) {
	r := retrier{policy: Retry{Initial: time.Millisecond, Budget: 100 * time.Millisecond}.withDefaults(), log: slog.New(slog.DiscardHandler)}
	calls := 0
	err := r.do(context.Background(), "step", 5*time.Millisecond, func(ctx context.Context) error {
		calls++
		if calls < 3 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("%d calls, %v", calls, err)
	}
}

func TestRetryCancelled(t *testing.T) {
	r := retrier{policy: Retry{Initial: time.Hour}.withDefaults(), log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	err := r.do(ctx, "step", 0, func(context.Context) error {
		cancel()
		return fmt.Errorf("%w: down", errS3)
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v, want context.Canceled", err)
	}
}
