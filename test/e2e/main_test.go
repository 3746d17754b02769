//go:build !release

package e2e_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// binDir holds the binaries TestMain built, or buildErr says why it does
// not.
var (
	binDir    string
	buildErr  error
	buildTime time.Duration
	logBuild  sync.Once
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	buildErr = build(dir)
	binDir, buildTime = dir, time.Since(start)
	return m.Run()
}

// build builds cosigner-parent, cosigner-enclave and cosignerctl into dir,
// with the race detector when this test binary has it.
func build(dir string) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	const m = "github.com/nitro-cosigner/nitro-cosigner/cmd/"
	args = append(args, m+"cosigner-parent", m+"cosigner-enclave", m+"cosignerctl")
	var out bytes.Buffer
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, out.String())
	}
	return nil
}

// needBinaries returns the directory of the binaries, failing t if they
// were not built.
func needBinaries(t *testing.T) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("building the binaries: %v", buildErr)
	}
	logBuild.Do(func() {
		t.Logf("binaries built in %v (race detector: %v)", buildTime.Round(time.Millisecond), raceEnabled)
	})
	return binDir
}
