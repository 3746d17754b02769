package app

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

var quiet = slog.New(slog.DiscardHandler)

// untilDone is a component that serves until its context ends.
func untilDone(name string, stopped chan<- string) component {
	return component{name: name, run: func(ctx context.Context) error {
		<-ctx.Done()
		stopped <- name
		return nil
	}}
}

// When ctx ends every component is stopped and runAll returns nil.
func TestRunAllStopsOnCancel(t *testing.T) {
	stopped := make(chan string, 2)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- runAll(ctx, []component{untilDone("a", stopped), untilDone("b", stopped)}, 5*time.Second, quiet)
	}()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runAll = %v, want nil", err)
	}
	if len(stopped) != 2 {
		t.Fatalf("%d components stopped, want 2", len(stopped))
	}
}

// One component failing stops the others, and runAll returns its error
// naming it.
func TestRunAllStopsOnFailure(t *testing.T) {
	boom := errors.New("listener broke")
	stopped := make(chan string, 1)
	failing := component{name: "egress", run: func(context.Context) error { return boom }}
	err := runAll(t.Context(), []component{untilDone("relay", stopped), failing}, 5*time.Second, quiet)
	if !errors.Is(err, boom) || err.Error() != "egress: listener broke" {
		t.Fatalf("runAll = %v, want egress: %v", err, boom)
	}
	if got := <-stopped; got != "relay" {
		t.Fatalf("stopped %q", got)
	}
}

// A component that ignores its context does not hold the process past
// the shutdown deadline.
func TestRunAllDeadline(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stuck := component{name: "stuck", run: func(context.Context) error {
		<-release
		return nil
	}}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	err := runAll(ctx, []component{stuck}, 100*time.Millisecond, quiet)
	if !errors.Is(err, ErrShutdownDeadline) {
		t.Fatalf("runAll = %v, want ErrShutdownDeadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("runAll returned after %v", d)
	}
}
