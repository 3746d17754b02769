package supervise

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// Reason says why an enclave was started again (Stats.Restarts).
type Reason string

// Restart reasons.
const (
	ReasonStartFailed Reason = "start_failed" // run-enclave or its checks failed
	ReasonExited      Reason = "exited"       // describe-enclaves no longer lists it as running
	ReasonBootTimeout Reason = "boot_timeout" // never healthy within BootTimeout
	ReasonUnhealthy   Reason = "unhealthy"    // Unhealthy failed probes in a row
)

// Reasons lists every Reason.
var Reasons = []Reason{ReasonStartFailed, ReasonExited, ReasonBootTimeout, ReasonUnhealthy}

// Stats are the Supervisor's counters since New, and its state now.
type Stats struct {
	Running   bool      // an enclave it started is running
	Healthy   bool      // and its last probe passed
	EnclaveID string    // the running enclave's ID
	CID       uint64    // and CID
	Since     time.Time // when it was started
	Starts    uint64    // enclaves started
	// Restarts counts restarts by reason; every Reason is present.
	Restarts      map[Reason]uint64
	ProbeFailures uint64 // failed probes of enclaves that had been healthy
}

// Supervisor runs one enclave; see the package documentation.
type Supervisor struct {
	cfg     Config
	cli     cli
	log     *slog.Logger
	started atomic.Bool

	mu    sync.Mutex
	stats Stats
}

// New checks cfg and returns a Supervisor; Run starts it.
func New(cfg Config) (*Supervisor, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Supervisor{
		cfg: cfg, cli: cli{path: cfg.NitroCLI, timeout: cfg.CommandTimeout},
		log:   cfg.Logger.With("enclave_name", cfg.Name),
		stats: Stats{Restarts: map[Reason]uint64{}},
	}
	for _, r := range Reasons {
		s.stats.Restarts[r] = 0
	}
	return s, nil
}

// LookPath reports whether the nitro-cli executable can be found.
func (s *Supervisor) LookPath() error {
	if _, err := exec.LookPath(s.cfg.NitroCLI); err != nil {
		return fmt.Errorf("supervise: nitro-cli: %w", err)
	}
	return nil
}

// CheckImage reads the image's measurements with describe-eif and
// compares them with Config.ExpectPCRs; errors wrap ErrPCRMismatch or
// ErrCLI.
func (s *Supervisor) CheckImage(ctx context.Context) error {
	got, err := s.cli.describeEIF(ctx, s.cfg.EIF)
	if err != nil {
		return err
	}
	return checkMeasurements("describe-eif", got, s.cfg.ExpectPCRs)
}

// Run supervises the enclave until ctx ends, then terminates it and
// returns nil. It returns early, with nothing running, for an error that
// a restart cannot fix: a PCR mismatch (ErrPCRMismatch) or a missing
// nitro-cli executable. Anything else (a missing image file included) is
// retried with backoff.
func (s *Supervisor) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("supervise: Run called twice")
	}
	if len(s.cfg.ExpectPCRs) == 0 {
		s.log.Warn("no expected PCRs: the enclave image is not checked before it starts")
	}
	s.terminateLeftovers(ctx)
	backoff := s.cfg.MinBackoff
	for {
		began := time.Now()
		reason, err := s.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrPCRMismatch) || errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			s.log.Error("not starting the enclave", "err", err)
			return err
		}
		if time.Since(began) >= s.cfg.StableAfter {
			backoff = s.cfg.MinBackoff
		}
		s.countRestart(reason)
		s.log.Warn("enclave down; starting it again", "reason", string(reason), "err", err, "after", backoff.String())
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// runOnce checks the image, starts the enclave and watches it until it
// must be restarted (the reason is returned) or ctx ends. The enclave is
// terminated before it returns.
func (s *Supervisor) runOnce(ctx context.Context) (Reason, error) {
	if err := s.CheckImage(ctx); err != nil {
		return ReasonStartFailed, err
	}
	info, err := s.cli.runEnclave(ctx, runArgs{eif: s.cfg.EIF, name: s.cfg.Name, cpus: s.cfg.CPUs,
		memory: s.cfg.MemoryMiB, cid: s.cfg.CID, debug: s.cfg.Debug})
	if err != nil {
		// run-enclave may have started the enclave before it failed (a
		// timeout, an output we could not read): do not leave it running.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.CommandTimeout)
		defer cancel()
		s.terminateLeftovers(cctx)
		return ReasonStartFailed, err
	}
	s.setRunning(info)
	defer s.stop(ctx, info.EnclaveID)
	s.log.Info("enclave started", "enclave_id", info.EnclaveID, "cid", info.EnclaveCID,
		"cpus", s.cfg.CPUs, "memory_mib", s.cfg.MemoryMiB, "debug_mode", s.cfg.Debug)
	if err := s.checkRunning(ctx, info.EnclaveID); err != nil {
		return ReasonStartFailed, err
	}
	if s.cfg.Debug {
		stop := s.forwardConsole(ctx, info.EnclaveID)
		defer stop()
	}
	return s.watch(ctx, info.EnclaveID)
}

// checkRunning checks the running enclave's measurements when
// describe-enclaves reports them (recent nitro-cli versions).
func (s *Supervisor) checkRunning(ctx context.Context, id string) error {
	list, err := s.cli.describeEnclaves(ctx)
	if err != nil {
		return err
	}
	for _, e := range list {
		if e.EnclaveID == id && len(e.Measurements) > 0 {
			return checkMeasurements("describe-enclaves", e.Measurements, s.cfg.ExpectPCRs)
		}
	}
	return nil
}

// watch probes the enclave every ProbeEvery until it must be restarted or
// ctx ends.
func (s *Supervisor) watch(ctx context.Context, id string) (Reason, error) {
	t := time.NewTicker(s.cfg.ProbeEvery)
	defer t.Stop()
	began, healthy, fails := time.Now(), false, 0
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
		if gone, err := s.gone(ctx, id); gone {
			return ReasonExited, err
		}
		err := s.probe(ctx)
		switch {
		case err == nil:
			if !healthy {
				s.log.Info("enclave healthy", "enclave_id", id, "after", time.Since(began).Round(time.Millisecond).String())
			}
			healthy, fails = true, 0
			s.setHealthy(true)
		case !healthy:
			if time.Since(began) >= s.cfg.BootTimeout {
				return ReasonBootTimeout, fmt.Errorf("not healthy within %v: %w", s.cfg.BootTimeout, err)
			}
		default:
			fails++
			s.countProbeFailure()
			s.log.Warn("enclave probe failed", "enclave_id", id, "failures", fails, "err", err)
			if fails >= s.cfg.Unhealthy {
				return ReasonUnhealthy, err
			}
		}
	}
}

// gone reports whether describe-enclaves no longer lists the enclave as
// running. A failing describe-enclaves is logged and not taken as gone.
func (s *Supervisor) gone(ctx context.Context, id string) (bool, error) {
	list, err := s.cli.describeEnclaves(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("describe-enclaves failed", "err", err)
		}
		return false, nil
	}
	for _, e := range list {
		if e.EnclaveID == id {
			if e.running() {
				return false, nil
			}
			return true, fmt.Errorf("the enclave is %s", e.State)
		}
	}
	return true, errors.New("the enclave is no longer running")
}

func (s *Supervisor) probe(ctx context.Context) error {
	if s.cfg.Probe == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
	defer cancel()
	return s.cfg.Probe(ctx)
}

// stop terminates the enclave, even when ctx has ended, and forgets it.
func (s *Supervisor) stop(ctx context.Context, id string) {
	defer s.setStopped()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.CommandTimeout)
	defer cancel()
	if err := s.cli.terminate(ctx, id); err != nil {
		if gone, _ := s.gone(ctx, id); !gone {
			s.log.Error("terminating the enclave failed", "enclave_id", id, "err", err)
			return
		}
	}
	s.log.Info("enclave terminated", "enclave_id", id)
}

// terminateLeftovers terminates enclaves of our name that a previous run
// left behind.
func (s *Supervisor) terminateLeftovers(ctx context.Context) {
	list, err := s.cli.describeEnclaves(ctx)
	if err != nil {
		s.log.Warn("describe-enclaves failed; not looking for leftover enclaves", "err", err)
		return
	}
	for _, e := range list {
		if e.EnclaveName != s.cfg.Name {
			continue
		}
		s.log.Warn("terminating an enclave left by a previous run", "enclave_id", e.EnclaveID)
		if err := s.cli.terminate(ctx, e.EnclaveID); err != nil {
			s.log.Error("terminating a leftover enclave failed", "enclave_id", e.EnclaveID, "err", err)
		}
	}
}

// forwardConsole forwards a debug-mode enclave's console to the log until
// the returned stop is called (or the enclave ends).
func (s *Supervisor) forwardConsole(ctx context.Context, id string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		cmd, out, err := s.cli.console(ctx, id)
		if err != nil {
			s.log.Warn("cannot read the enclave console", "enclave_id", id, "err", err)
			return
		}
		if err := ForwardLogs(out, s.log.With("enclave_id", id)); err != nil && ctx.Err() == nil {
			s.log.Warn("reading the enclave console failed", "enclave_id", id, "err", err)
		}
		cmd.Wait()
	}()
	return func() {
		cancel()
		<-done
	}
}

// Stats returns the counters and current state.
func (s *Supervisor) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Restarts = make(map[Reason]uint64, len(s.stats.Restarts))
	for r, n := range s.stats.Restarts {
		st.Restarts[r] = n
	}
	return st
}

func (s *Supervisor) setRunning(info runInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Running, s.stats.Healthy = true, false
	s.stats.EnclaveID, s.stats.CID, s.stats.Since = info.EnclaveID, info.EnclaveCID, time.Now()
	s.stats.Starts++
}

func (s *Supervisor) setHealthy(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Healthy = ok
}

func (s *Supervisor) setStopped() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Running, s.stats.Healthy = false, false
	s.stats.EnclaveID, s.stats.CID, s.stats.Since = "", 0, time.Time{}
}

func (s *Supervisor) countRestart(r Reason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Restarts[r]++
}

func (s *Supervisor) countProbeFailure() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.ProbeFailures++
}

// sleep waits for d or for ctx to end; it reports whether d passed.
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
