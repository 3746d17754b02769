package supervise

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestStartWatchTerminate(t *testing.T) {
	f := newFake(t)
	s, err := New(f.config(nil))
	if err != nil {
		t.Fatal(err)
	}
	stop, wait := running(t, s)
	waitFor(t, "a healthy enclave", func() bool { return s.Stats().Healthy })
	st := s.Stats()
	if !st.Running || st.CID != 17 || st.EnclaveID == "" || st.Starts != 1 {
		t.Fatalf("stats of a running enclave: %+v", st)
	}
	runs := f.callsOf("run-enclave")
	want := "run-enclave --eif-path " + f.eif + " --cpu-count 2 --memory 512 --enclave-name test-enclave --enclave-cid 17"
	if len(runs) != 1 || strings.Join(runs[0].args, " ") != want {
		t.Fatalf("run-enclave calls %v, want one: %s", runs, want)
	}
	if d := f.callsOf("describe-eif"); len(d) != 1 || d[0].at.After(runs[0].at) {
		t.Fatal("describe-eif did not run before run-enclave")
	}
	stop()
	if err := wait(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if l := f.enclaves(); len(l) != 0 {
		t.Fatalf("enclaves left after Run returned: %+v", l)
	}
	if term := f.callsOf("terminate-enclave"); len(term) != 1 || term[0].args[2] != st.EnclaveID {
		t.Fatalf("terminate-enclave calls %v, want one for %s", term, st.EnclaveID)
	}
	if st := s.Stats(); st.Running || st.Healthy || st.EnclaveID != "" {
		t.Fatalf("stats after Run: %+v", st)
	}
}

func TestRefusesImageWithOtherPCRs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		expect func(f *fake) map[int][]byte
		pcr    int
	}{
		{"PCR0 differs", func(f *fake) map[int][]byte {
			p := clonePCRs(f.pcrs)
			p[0][0] ^= 1
			return p
		}, 0},
		{"PCR2 differs", func(f *fake) map[int][]byte {
			p := clonePCRs(f.pcrs)
			p[2][47] ^= 0x80
			return p
		}, 2},
		{"PCR8 not reported (unsigned image)", func(f *fake) map[int][]byte {
			p := clonePCRs(f.pcrs)
			p[8] = make([]byte, PCRSize)
			return p
		}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			cfg := f.config(nil)
			cfg.ExpectPCRs = tc.expect(f)
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Run(context.Background())
			var mm *PCRMismatchError
			if !errors.As(err, &mm) || !errors.Is(err, ErrPCRMismatch) || mm.PCR != tc.pcr || mm.Source != "describe-eif" {
				t.Fatalf("Run: %v, want a describe-eif mismatch of PCR%d", err, tc.pcr)
			}
			if runs := f.callsOf("run-enclave"); len(runs) != 0 {
				t.Fatalf("run-enclave ran despite the mismatch: %v", runs)
			}
		})
	}
}

func TestImageChecked(t *testing.T) {
	f := newFake(t)
	s, err := New(f.config(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckImage(context.Background()); err != nil {
		t.Fatalf("CheckImage of the expected image: %v", err)
	}
	f.setImage("image two")
	if err := s.CheckImage(context.Background()); !errors.Is(err, ErrPCRMismatch) {
		t.Fatalf("CheckImage of a changed image: %v", err)
	}
}

// TestRunningEnclaveChecked: describe-enclaves reports other PCRs than
// describe-eif did (the file changed in between): the enclave is
// terminated and nothing restarts.
func TestRunningEnclaveChecked(t *testing.T) {
	f := newFake(t)
	other := clonePCRs(f.pcrs)[0]
	other[5] ^= 1
	f.control("running-pcr0", hex.EncodeToString(other))
	s, err := New(f.config(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(context.Background())
	var mm *PCRMismatchError
	if !errors.As(err, &mm) || mm.Source != "describe-enclaves" || mm.PCR != 0 {
		t.Fatalf("Run: %v, want a describe-enclaves mismatch of PCR0", err)
	}
	if l := f.enclaves(); len(l) != 0 {
		t.Fatalf("the mismatching enclave still runs: %+v", l)
	}
	if n := len(f.callsOf("run-enclave")); n != 1 {
		t.Fatalf("run-enclave ran %d times, want once", n)
	}
}

// TestOldNitroCLI: without measurements in describe-enclaves the image
// check before the start is what holds.
func TestOldNitroCLI(t *testing.T) {
	f := newFake(t)
	f.control("old-cli", "1")
	s, err := New(f.config(nil))
	if err != nil {
		t.Fatal(err)
	}
	running(t, s)
	waitFor(t, "a healthy enclave", func() bool { return s.Stats().Healthy })
}

func TestRestartWhenEnclaveExits(t *testing.T) {
	f := newFake(t)
	s, err := New(f.config(slog.New(slog.NewTextHandler(testWriter{t}, nil))))
	if err != nil {
		t.Fatal(err)
	}
	running(t, s)
	waitFor(t, "a healthy enclave", func() bool { return s.Stats().Healthy })
	first := s.Stats().EnclaveID
	f.setEnclaves(nil) // the enclave died
	waitFor(t, "a second enclave", func() bool {
		st := s.Stats()
		return st.Healthy && st.EnclaveID != first
	})
	st := s.Stats()
	if st.Starts != 2 || st.Restarts[ReasonExited] != 1 {
		t.Fatalf("after the enclave exited: %+v", st)
	}
}

func TestRestartWhenUnhealthy(t *testing.T) {
	f := newFake(t)
	var sick atomic.Bool
	cfg := f.config(nil)
	cfg.Unhealthy = 2
	cfg.Probe = func(context.Context) error {
		if sick.Load() {
			return errors.New("link down")
		}
		return nil
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	running(t, s)
	waitFor(t, "a healthy enclave", func() bool { return s.Stats().Healthy })
	first := s.Stats().EnclaveID
	sick.Store(true)
	waitFor(t, "a restart", func() bool { return s.Stats().Restarts[ReasonUnhealthy] == 1 })
	sick.Store(false)
	waitFor(t, "a second healthy enclave", func() bool {
		st := s.Stats()
		return st.Healthy && st.EnclaveID != first
	})
	if st := s.Stats(); st.ProbeFailures < 2 {
		t.Fatalf("probe failures %d, want at least 2", st.ProbeFailures)
	}
	for _, e := range f.enclaves() {
		if e.EnclaveID == first {
			t.Fatal("the unhealthy enclave was not terminated")
		}
	}
}

func TestBootTimeout(t *testing.T) {
	f := newFake(t)
	cfg := f.config(nil)
	cfg.BootTimeout = 50 * time.Millisecond
	cfg.Probe = func(context.Context) error { return errors.New("not yet") }
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	running(t, s)
	waitFor(t, "two boot timeouts", func() bool { return s.Stats().Restarts[ReasonBootTimeout] >= 2 })
	if st := s.Stats(); st.ProbeFailures != 0 {
		t.Fatalf("probe failures during boot were counted: %+v", st)
	}
}

// TestBackoff: failed starts are retried after waits that double up to
// MaxBackoff.
func TestBackoff(t *testing.T) {
	f := newFake(t)
	f.control("fail-run", "E26 Insufficient memory requested")
	s, err := New(f.config(nil))
	if err != nil {
		t.Fatal(err)
	}
	running(t, s)
	waitFor(t, "five failed starts", func() bool { return s.Stats().Restarts[ReasonStartFailed] >= 5 })
	runs := f.callsOf("run-enclave")
	for i, want := range []time.Duration{10, 20, 40, 40} {
		if gap := runs[i+1].at.Sub(runs[i].at); gap < want*time.Millisecond {
			t.Errorf("wait before start %d: %v, want at least %vms", i+2, gap, want)
		}
	}
	f.control("fail-run", "")
	waitFor(t, "a healthy enclave", func() bool { return s.Stats().Healthy })
}

func TestLeftoverTerminated(t *testing.T) {
	f := newFake(t)
	f.setEnclaves([]fakeEnclave{
		{EnclaveName: "test-enclave", EnclaveID: "i-old-enc1", EnclaveCID: 17},
		{EnclaveName: "someone-else", EnclaveID: "i-other-enc2", EnclaveCID: 30},
	})
	s, err := New(f.config(nil))
	if err != nil {
		t.Fatal(err)
	}
	running(t, s)
	waitFor(t, "a healthy enclave", func() bool { return s.Stats().Healthy })
	var ids []string
	for _, e := range f.enclaves() {
		ids = append(ids, e.EnclaveID)
	}
	if slices.Contains(ids, "i-old-enc1") || !slices.Contains(ids, "i-other-enc2") || len(ids) != 2 {
		t.Fatalf("enclaves after start: %v", ids)
	}
}

func TestDebugConsoleForwarded(t *testing.T) {
	f := newFake(t)
	f.control("console", "[    0.000000] Linux version 4.14\n"+
		`{"time":"2026-01-02T03:04:05Z","level":"WARN","msg":"attestation refresh failed","err":"nsm busy","n":3}`+"\n")
	sink := &logSink{}
	cfg := f.config(slog.New(sink))
	cfg.Debug = true
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	running(t, s)
	waitFor(t, "the forwarded record", func() bool {
		_, _, ok := sink.find("attestation refresh failed")
		return ok
	})
	r, attrs, _ := sink.find("attestation refresh failed")
	if r.Level != slog.LevelWarn || attrs["source"] != "enclave" || attrs["err"] != "nsm busy" ||
		attrs["n"] != "3" || attrs["enclave_time"] != "2026-01-02T03:04:05Z" {
		t.Fatalf("forwarded record: level %v, attrs %v", r.Level, attrs)
	}
	waitFor(t, "the console line", func() bool {
		_, a, ok := sink.find("enclave output")
		return ok && strings.Contains(a["line"], "Linux version")
	})
	if runs := f.callsOf("run-enclave"); !slices.Contains(runs[0].args, "--debug-mode") {
		t.Fatalf("run-enclave without --debug-mode: %v", runs[0].args)
	}
}

func TestNoDebugModeUnlessConfigured(t *testing.T) {
	f := newFake(t)
	s, err := New(f.config(nil))
	if err != nil {
		t.Fatal(err)
	}
	running(t, s)
	waitFor(t, "a healthy enclave", func() bool { return s.Stats().Healthy })
	if runs := f.callsOf("run-enclave"); slices.Contains(runs[0].args, "--debug-mode") {
		t.Fatal("debug mode without Config.Debug")
	}
	if c := f.callsOf("console"); len(c) != 0 {
		t.Fatal("console read from a production enclave")
	}
	for _, e := range f.enclaves() {
		if e.Flags != "NONE" {
			t.Fatalf("enclave flags %q", e.Flags)
		}
	}
}

func TestMissingNitroCLI(t *testing.T) {
	f := newFake(t)
	for _, path := range []string{"no-such-nitro-cli-here", f.dir + "/missing/nitro-cli"} {
		cfg := f.config(nil)
		cfg.NitroCLI = path
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if s.LookPath() == nil {
			t.Errorf("LookPath(%q) passed", path)
		}
		done := make(chan error, 1)
		go func() { done <- s.Run(context.Background()) }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("Run with nitro-cli %q: nil", path)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Run with nitro-cli %q keeps retrying", path)
		}
	}
}

func TestCommandTimeout(t *testing.T) {
	f := newFake(t)
	f.control("hang", "1")
	cfg := f.config(nil)
	cfg.CommandTimeout = 100 * time.Millisecond
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err = s.CheckImage(context.Background())
	if !errors.Is(err, ErrCLI) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CheckImage with a hanging nitro-cli: %v", err)
	}
	if d := time.Since(began); d > 8*time.Second {
		t.Fatalf("CheckImage took %v", d)
	}
}

func TestRunTwice(t *testing.T) {
	f := newFake(t)
	s, err := New(f.config(nil))
	if err != nil {
		t.Fatal(err)
	}
	running(t, s)
	waitFor(t, "a start", func() bool { return s.Stats().Starts == 1 })
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("second Run accepted")
	}
}

func TestConfig(t *testing.T) {
	good := Config{EIF: "x.eif", CPUs: 2, MemoryMiB: 512}
	pcr := make([]byte, PCRSize)
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no image", func(c *Config) { c.EIF = "" }},
		{"no CPUs", func(c *Config) { c.CPUs = 0 }},
		{"no memory", func(c *Config) { c.MemoryMiB = 0 }},
		{"reserved CID", func(c *Config) { c.CID = 3 }},
		{"any CID", func(c *Config) { c.CID = 1<<32 - 1 }},
		{"negative backoff", func(c *Config) { c.MaxBackoff = -time.Second }},
		{"PCR3", func(c *Config) { c.ExpectPCRs = map[int][]byte{3: pcr} }},
		{"short PCR", func(c *Config) { c.ExpectPCRs = map[int][]byte{0: pcr[:32]} }},
	} {
		cfg := good
		tc.edit(&cfg)
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New: %v, want ErrConfig", tc.name, err)
		}
	}
	good.ExpectPCRs = map[int][]byte{0: pcr, 1: pcr, 2: pcr, 8: pcr}
	good.CID = 4
	if _, err := New(good); err != nil {
		t.Errorf("New(%+v): %v", good, err)
	}
}

func clonePCRs(m map[int][]byte) map[int][]byte {
	out := map[int][]byte{}
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// TestStartTimeoutLeavesNothing: a run-enclave that started the enclave
// but did not answer in time is cleaned up before the next start.
func TestStartTimeoutLeavesNothing(t *testing.T) {
	f := newFake(t)
	cfg := f.config(nil)
	cfg.CommandTimeout = 2 * time.Second
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// An enclave of ours appears, but run-enclave fails.
	f.setEnclaves([]fakeEnclave{{EnclaveName: "test-enclave", EnclaveID: "i-half-started-enc1", EnclaveCID: 17}})
	f.control("fail-run", "E11 timed out")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reason, err := s.runOnce(ctx)
	if reason != ReasonStartFailed || err == nil {
		t.Fatalf("runOnce = %s, %v", reason, err)
	}
	if l := f.enclaves(); len(l) != 0 {
		t.Fatalf("left running after a failed start: %+v", l)
	}
}
