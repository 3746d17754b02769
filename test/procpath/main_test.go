package procpath_test

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

// parentBin is the cosigner-parent binary TestMain built, or buildErr
// says why there is none.
var (
	parentBin string
	buildErr  error
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "enclave" {
		os.Exit(enclaveMain())
	}
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "procpath-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	parentBin, buildErr = buildParent(dir)
	return m.Run()
}

// buildParent builds cosigner-parent into dir, with the race detector
// when this test binary has it.
func buildParent(dir string) (string, error) {
	bin := filepath.Join(dir, "cosigner-parent")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/nitro-cosigner/nitro-cosigner/cmd/cosigner-parent")
	var out bytes.Buffer
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %v: %w\n%s", args, err, out.String())
	}
	buildTime = time.Since(start)
	return bin, nil
}

// buildTime is how long building the parent took; the first test to
// start a parent logs it.
var (
	buildTime time.Duration
	logBuild  sync.Once
)

// needParent returns the parent binary, failing t if it was not built.
func needParent(t *testing.T) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("building cosigner-parent: %v", buildErr)
	}
	logBuild.Do(func() {
		t.Logf("cosigner-parent built in %v (race detector: %v)", buildTime.Round(time.Millisecond), raceEnabled)
	})
	return parentBin
}
