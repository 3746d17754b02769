//go:build !release

package devnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is a child process of the devnet, logging to a file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once Wait returned
	err     error         // Wait's result, once exited is closed
	// stopping is set before the devnet asks the process to exit, so
	// that its exit is not reported as a failure.
	stopping atomic.Bool
}

// startProc starts bin with args and env, appending its stdout and stderr
// to logPath.
func startProc(name, bin string, args, env []string, logPath string) (*proc, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "=== devnet: %s starting at %s: %s %s\n", name, time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p, nil
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// exitError describes how the process ended.
func (p *proc) exitError() error {
	if p.err == nil {
		return fmt.Errorf("%s exited", p.name)
	}
	return fmt.Errorf("%s exited: %w", p.name, p.err)
}

// errKilled reports a process that had to be killed.
var errKilled = errors.New("did not exit in time after SIGTERM; killed")

// stop sends SIGTERM, waits up to grace, then kills the process. It
// returns nil if the process exited cleanly (status 0) once asked.
func (p *proc) stop(grace time.Duration) error {
	p.stopping.Store(true)
	if !p.running() {
		return p.stoppedErr()
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return p.stoppedErr()
	case <-t.C:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("%s %w", p.name, errKilled)
}

func (p *proc) stoppedErr() error {
	if p.err != nil {
		return fmt.Errorf("%s: %w", p.name, p.err)
	}
	return nil
}

// waitFor polls check until it reports done or fails, the process exits,
// or ctx ends.
func (p *proc) waitFor(ctx context.Context, what string, check func() (bool, error)) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		done, err := check()
		switch {
		case err != nil:
			return fmt.Errorf("%s: %s: %w", p.name, what, err)
		case done:
			return nil
		}
		select {
		case <-p.exited:
			if done, err := check(); done && err == nil {
				return nil
			}
			return fmt.Errorf("waiting for %s: %w (see %s)", what, p.exitError(), p.logPath)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s of %s: %w", what, p.name, ctx.Err())
		case <-tick.C:
		}
	}
}
