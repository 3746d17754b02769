package api

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit bounds how fast each caller (by Caller.ID) may start calls: a
// token bucket of Burst calls refilled at PerSecond. A call over the limit
// fails with RESOURCE_EXHAUSTED. Zero fields take the defaults.
type RateLimit struct {
	PerSecond float64 // sustained calls per second per caller; default 20
	Burst     int     // calls a caller may make at once; default 40
	// MaxCallers bounds the callers tracked at once; default 1024. When a
	// new caller comes and the table is full, callers idle long enough for
	// their bucket to have refilled are dropped first (which changes
	// nothing for them), then the least recently seen.
	MaxCallers int
}

// Rate limit defaults.
const (
	DefaultRatePerSecond = 20
	DefaultRateBurst     = 40
	DefaultMaxCallers    = 1024
)

func (r RateLimit) withDefaults() RateLimit {
	if r.PerSecond == 0 {
		r.PerSecond = DefaultRatePerSecond
	}
	if r.Burst == 0 {
		r.Burst = DefaultRateBurst
	}
	if r.MaxCallers == 0 {
		r.MaxCallers = DefaultMaxCallers
	}
	return r
}

// limiter is a bounded table of per-caller token buckets.
type limiter struct {
	cfg    RateLimit
	refill time.Duration // how long an empty bucket takes to fill
	now    func() time.Time

	mu      sync.Mutex
	callers map[string]*callerBucket
}

type callerBucket struct {
	bucket *rate.Limiter
	seen   time.Time
}

func newLimiter(cfg RateLimit, now func() time.Time) *limiter {
	return &limiter{
		cfg:     cfg,
		refill:  time.Duration(float64(cfg.Burst) / cfg.PerSecond * float64(time.Second)),
		now:     now,
		callers: map[string]*callerBucket{},
	}
}

// allow takes a token from the caller's bucket.
func (l *limiter) allow(caller string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.callers[caller]
	if c == nil {
		if len(l.callers) >= l.cfg.MaxCallers {
			l.evict(now)
		}
		c = &callerBucket{bucket: rate.NewLimiter(rate.Limit(l.cfg.PerSecond), l.cfg.Burst)}
		l.callers[caller] = c
	}
	c.seen = now
	return c.bucket.AllowN(now, 1)
}

// evict makes room for one caller: it drops every bucket that has been idle
// long enough to be full again (a fresh bucket is the same), and if that
// frees nothing, the least recently seen one.
func (l *limiter) evict(now time.Time) {
	var oldest string
	for id, c := range l.callers {
		if now.Sub(c.seen) >= l.refill {
			delete(l.callers, id)
			continue
		}
		if oldest == "" || c.seen.Before(l.callers[oldest].seen) {
			oldest = id
		}
	}
	if len(l.callers) >= l.cfg.MaxCallers {
		delete(l.callers, oldest)
	}
}

// size is the number of callers tracked.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.callers)
}
