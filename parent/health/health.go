// Package health serves the parent's liveness and readiness endpoints.
//
//	GET /healthz  200 {"status":"ok"} while the process serves HTTP at all
//	GET /readyz   200 when every registered check passes, 503 otherwise:
//	              {"status":"ok"|"fail","checks":[{"name":"enclave",
//	               "ok":false,"reason":"timeout","duration_ms":2000}]}
//
// A Checker holds named checks (the enclave is reachable, the broker is
// connected, ...). /readyz runs all of them concurrently, each under its
// own timeout, on every request. The body says which failed and why in a
// short reason — "timeout", "failed", "panic", or the text given with
// Reason — never the error itself, which is logged instead: the endpoint
// may be reachable by more people than the logs are.
//
// A check must return when its context ends. One that does not is
// reported as "timeout" and left to finish in the background.
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// DefaultTimeout bounds each check when New is given zero.
const DefaultTimeout = 2 * time.Second

// maxReasonLen bounds a public reason.
const maxReasonLen = 64

// Short reasons shown for failures without one of their own.
const (
	reasonTimeout = "timeout"
	reasonFailed  = "failed"
	reasonPanic   = "panic"
)

var (
	// ErrName: a check name is empty, too long, or not [a-z0-9_-].
	ErrName = errors.New("health: bad check name")
	// ErrDuplicate: a check of that name is already registered.
	ErrDuplicate = errors.New("health: check already registered")
)

// Check reports whether one dependency is ready: nil if it is.
type Check func(ctx context.Context) error

// Result is one check's outcome in a Report.
type Result struct {
	Name       string  `json:"name"`
	OK         bool    `json:"ok"`
	Reason     string  `json:"reason,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// Report is the body of /readyz.
type Report struct {
	Status string   `json:"status"` // "ok" or "fail"
	Checks []Result `json:"checks"`
}

// Ready reports whether every check passed.
func (r Report) Ready() bool { return r.Status == "ok" }

// Checker is a registry of readiness checks. It is safe for concurrent
// use; checks may be registered while it serves.
type Checker struct {
	timeout time.Duration
	log     *slog.Logger

	mu     sync.RWMutex
	checks map[string]Check
}

// New returns an empty Checker whose checks each get timeout (zero:
// DefaultTimeout). A nil log discards.
func New(timeout time.Duration, log *slog.Logger) *Checker {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Checker{timeout: timeout, log: log, checks: make(map[string]Check)}
}

// Register adds a named check. Names are 1 to 64 characters of a-z, 0-9,
// '_' and '-', and unique.
func (c *Checker) Register(name string, check Check) error {
	if !validName(name) {
		return fmt.Errorf("%w: %q", ErrName, name)
	}
	if check == nil {
		return fmt.Errorf("health: check %q is nil", name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.checks[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicate, name)
	}
	c.checks[name] = check
	return nil
}

func validName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range []byte(name) {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Run runs every check concurrently and reports, sorted by name.
func (c *Checker) Run(ctx context.Context) Report {
	names, checks := c.snapshot()
	results := make([]Result, len(names))
	var wg sync.WaitGroup
	for i := range names {
		wg.Go(func() { results[i] = c.run(ctx, names[i], checks[i]) })
	}
	wg.Wait()
	rep := Report{Status: "ok", Checks: results}
	for _, r := range results {
		if !r.OK {
			rep.Status = "fail"
		}
	}
	return rep
}

func (c *Checker) snapshot() ([]string, []Check) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.checks))
	for name := range c.checks {
		names = append(names, name)
	}
	slices.Sort(names)
	checks := make([]Check, len(names))
	for i, name := range names {
		checks[i] = c.checks[name]
	}
	return names, checks
}

// run runs one check under the timeout and logs a failure in full.
func (c *Checker) run(ctx context.Context, name string, check Check) Result {
	start := time.Now()
	err := callWithTimeout(ctx, c.timeout, check)
	r := Result{Name: name, OK: err == nil, DurationMS: float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		r.Reason = publicReason(err)
		c.log.Warn("health: check failed", "check", name, "reason", r.Reason, "err", err)
	}
	return r
}

// errTimedOut marks a check that did not return in time.
var errTimedOut = errors.New("check did not return in time")

// callWithTimeout runs check in its own goroutine and stops waiting for it
// when the timeout passes or ctx ends. A panic becomes an error.
func callWithTimeout(ctx context.Context, timeout time.Duration, check Check) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- recovered(ctx, check) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errTimedOut, ctx.Err())
	}
}

func recovered(ctx context.Context, check Check) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{v}
		}
	}()
	return check(ctx)
}

type panicError struct{ v any }

func (e *panicError) Error() string { return fmt.Sprintf("check panicked: %v", e.v) }

// Reason wraps err so that /readyz shows reason (at most 64 bytes) for it
// instead of "failed". reason is public: a few words, no error text.
func Reason(reason string, err error) error {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	return &reasonError{reason: reason, err: err}
}

type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string {
	if e.err == nil {
		return e.reason
	}
	return e.reason + ": " + e.err.Error()
}

func (e *reasonError) Unwrap() error { return e.err }

// publicReason is the short text /readyz shows for err.
func publicReason(err error) string {
	var re *reasonError
	var pe *panicError
	switch {
	case errors.As(err, &re) && re.reason != "":
		return re.reason
	case errors.Is(err, errTimedOut), errors.Is(err, context.DeadlineExceeded):
		return reasonTimeout
	case errors.As(err, &pe):
		return reasonPanic
	default:
		return reasonFailed
	}
}

// DialCheck is a check that a transport address accepts connections (for
// instance the enclave's API port): it dials and closes at once.
func DialCheck(addr transport.Addr) Check {
	return func(ctx context.Context) error {
		c, err := transport.DialAddr(ctx, addr)
		if err != nil {
			return Reason("unreachable", err)
		}
		return c.Close()
	}
}
