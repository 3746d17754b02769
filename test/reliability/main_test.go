//go:build !release

package reliability_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	table := summary.render()
	fmt.Print(table)
	if path := os.Getenv("NITRO_RELIABILITY_SUMMARY"); path != "" {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// Binaries: built once, on first use, into a temporary directory, with the
// race detector when this test binary has it.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func needBinaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		start := time.Now()
		binDir, buildErr = os.MkdirTemp("", "reliability-bin")
		if buildErr == nil {
			buildErr = build(binDir)
		}
		t.Logf("binaries built in %v (race detector: %v)", time.Since(start).Round(time.Millisecond), raceEnabled)
	})
	if buildErr != nil {
		t.Fatalf("building the binaries: %v", buildErr)
	}
	return binDir
}

var binaries = []string{"cosigner-parent", "cosigner-enclave"}

// build installs the binaries into a cache directory of this checkout,
// where go install relinks them only when they changed (relinking both
// race-enabled binaries takes ten seconds or more), and copies them into
// dir: a concurrent run that installs them again after an edit cannot
// change the binaries this run restarts its processes from.
func build(dir string) error {
	cache, err := binCache()
	if err != nil {
		return err
	}
	args := []string{"install"}
	if raceEnabled {
		args = append(args, "-race")
	}
	for _, b := range binaries {
		args = append(args, "github.com/nitro-cosigner/nitro-cosigner/cmd/"+b)
	}
	var out bytes.Buffer
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOBIN="+cache)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("GOBIN=%s go %v: %w\n%s", cache, args, err, out.String())
	}
	for _, b := range binaries {
		if err := copyFile(filepath.Join(dir, b), filepath.Join(cache, b)); err != nil {
			return err
		}
	}
	return nil
}

// binCache is the cache directory of this checkout's binaries: one per
// module root and race mode, under the user's cache directory.
func binCache() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(base, "nitro-cosigner", fmt.Sprintf("reliability-bin-%x-race-%v", sum[:6], raceEnabled))
	return dir, os.MkdirAll(dir, 0o755)
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// parallelInShort lets a short suite run beside the other short suites
// that call it, once TestOverload, which counts the process's goroutines,
// has run alone: most of their time is spent waiting (for processes to
// boot, for sessions' deadlines, for timeouts), not computing. The long
// versions run one at a time, each with the whole machine.
func parallelInShort(t *testing.T) {
	if !long {
		t.Parallel()
	}
}

// summary collects the figures of every suite for the table TestMain
// prints.
var summary = &table{rows: map[string]*row{}}

type row struct {
	crashed, sessions, faults, keys, reuses, forged int
	duration                                        time.Duration
	note                                            string
}

type table struct {
	mu   sync.Mutex
	rows map[string]*row
}

// add adds to the row of suite.
func (tb *table) add(suite string, f func(r *row)) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	r := tb.rows[suite]
	if r == nil {
		r = &row{}
		tb.rows[suite] = r
	}
	f(r)
}

func (tb *table) render() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.rows) == 0 {
		return ""
	}
	names := make([]string, 0, len(tb.rows))
	for n := range tb.rows {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	mode := "short (make test)"
	if long {
		mode = "long (make soak)"
	}
	fmt.Fprintf(&b, "\nreliability summary, %s, race detector %v\n", mode, raceEnabled)
	line := "%-16s %8s %9s %8s %6s %7s %7s %9s  %s\n"
	fmt.Fprintf(&b, line, "suite", "crashed", "sessions", "faults", "keys", "reuses", "forged", "time", "notes")
	var total row
	for _, n := range names {
		r := tb.rows[n]
		writeRow(&b, line, n, r)
		total.crashed += r.crashed
		total.sessions += r.sessions
		total.faults += r.faults
		total.keys += r.keys
		total.reuses += r.reuses
		total.forged += r.forged
		total.duration += r.duration
	}
	writeRow(&b, line, "total", &total)
	fmt.Fprintln(&b, "crashed: points where a process was killed or a failpoint crashed it; sessions: MPC sessions or")
	fmt.Fprintln(&b, "client calls run; faults: frames dropped, duplicated, reordered, delayed, replayed or altered, and")
	fmt.Fprintln(&b, "rogue frames injected; keys: acknowledged keys checked present and usable; reuses: presignatures")
	fmt.Fprintln(&b, "consumed twice by one cosigner or in two sign sessions (must be 0); forged: forged, replayed or")
	fmt.Fprintln(&b, "foreign frames accepted (must be 0).")
	return b.String()
}

func writeRow(w io.Writer, line, name string, r *row) {
	fmt.Fprintf(w, line, name, fmt.Sprint(r.crashed), fmt.Sprint(r.sessions), fmt.Sprint(r.faults), fmt.Sprint(r.keys),
		fmt.Sprint(r.reuses), fmt.Sprint(r.forged), r.duration.Round(time.Second).String(), r.note)
}
