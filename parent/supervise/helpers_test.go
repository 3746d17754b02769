package supervise

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// buildDir holds the fake nitro-cli, built once per test binary.
var (
	buildDir  string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fakenitrocli")
	if err != nil {
		panic(err)
	}
	buildDir = dir
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// fake is one test's nitro-cli: a script running the fake on a state
// directory of its own.
type fake struct {
	t    testing.TB
	cli  string // the executable to configure
	dir  string // its state
	eif  string // an image file
	pcrs map[int][]byte
}

func newFake(t testing.TB) *fake {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, "fakenitrocli"), "./testdata/fakenitrocli").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building the fake nitro-cli: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	dir := t.TempDir()
	f := &fake{t: t, dir: dir, cli: filepath.Join(dir, "nitro-cli"), eif: filepath.Join(dir, "cosigner.eif")}
	script := fmt.Sprintf("#!/bin/sh\nexec %q --state %q \"$@\"\n", filepath.Join(buildDir, "fakenitrocli"), dir)
	if err := os.WriteFile(f.cli, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	f.setImage("image one")
	return f
}

// setImage writes the image file and returns its PCRs as the fake
// measures them.
func (f *fake) setImage(content string) {
	f.t.Helper()
	if err := os.WriteFile(f.eif, []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
	h := func(parts ...string) []byte {
		d := sha512.New384()
		for _, p := range parts {
			d.Write([]byte(p))
		}
		return d.Sum(nil)
	}
	f.pcrs = map[int][]byte{0: h(content), 1: h("fake kernel"), 2: h("fake app", content)}
}

// control creates (or, with content "", removes) a control file.
func (f *fake) control(name, content string) {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if content == "" {
		os.Remove(p)
		return
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

type call struct {
	at   time.Time
	args []string
}

// calls returns the commands run so far.
func (f *fake) calls() []call {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "calls.log"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var out []call
	for sc := bufio.NewScanner(bytes.NewReader(b)); sc.Scan(); {
		fields := strings.Fields(sc.Text())
		ns, _ := strconv.ParseInt(fields[0], 10, 64)
		out = append(out, call{at: time.Unix(0, ns), args: fields[1:]})
	}
	return out
}

// callsOf returns the calls of one command.
func (f *fake) callsOf(cmd string) []call {
	var out []call
	for _, c := range f.calls() {
		if c.args[0] == cmd {
			out = append(out, c)
		}
	}
	return out
}

type fakeEnclave struct {
	EnclaveName string `json:"EnclaveName"`
	EnclaveID   string `json:"EnclaveID"`
	EnclaveCID  uint64 `json:"EnclaveCID"`
	State       string `json:"State"`
	Flags       string `json:"Flags"`
}

// enclaves returns the fake's enclaves.
func (f *fake) enclaves() []fakeEnclave {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "enclaves.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var list []fakeEnclave
	if err := json.Unmarshal(b, &list); err != nil {
		f.t.Fatal(err)
	}
	return list
}

// setEnclaves replaces the fake's enclaves (to make one vanish, or leave
// one behind), as the fake does: atomically.
func (f *fake) setEnclaves(list []fakeEnclave) {
	f.t.Helper()
	if list == nil {
		list = []fakeEnclave{}
	}
	for i := range list {
		if list[i].State == "" {
			list[i].State = "RUNNING"
		}
	}
	b, err := json.Marshal(list)
	if err != nil {
		f.t.Fatal(err)
	}
	tmp := filepath.Join(f.dir, "enclaves.json.test")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, "enclaves.json")); err != nil {
		f.t.Fatal(err)
	}
}

// config returns a fast Config for the fake.
func (f *fake) config(log *slog.Logger) Config {
	return Config{
		NitroCLI: f.cli, EIF: f.eif, Name: "test-enclave", CPUs: 2, MemoryMiB: 512, CID: 17,
		ExpectPCRs: f.pcrs, ProbeEvery: 10 * time.Millisecond, ProbeTimeout: time.Second,
		BootTimeout: 5 * time.Second, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		CommandTimeout: 10 * time.Second, Logger: log,
	}
}

// running runs s until the test ends. stop ends it; wait returns Run's
// result.
func running(t *testing.T, s *Supervisor) (stop func(), wait func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = s.Run(ctx)
	}()
	wait = func() error {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return")
		}
		return err
	}
	t.Cleanup(func() {
		cancel()
		wait()
	})
	return cancel, wait
}

// waitFor polls cond until it holds or the time runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logSink collects log records.
type logSink struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}
func (l *logSink) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logSink) WithGroup(string) slog.Handler      { return l }

// find returns the first record with message msg, and its attributes.
func (l *logSink) find(msg string) (slog.Record, map[string]string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.Message != msg {
			continue
		}
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		return r, attrs, true
	}
	return slog.Record{}, nil, false
}
