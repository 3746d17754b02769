//go:build !release

package e2e_test

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/devnet"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
)

// cosignerctl runs the cosignerctl TestMain built and returns its exit
// status, stdout and stderr.
func cosignerctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(needBinaries(t), "cosignerctl"), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// TestDevnetUpUsage: bad flags are usage errors (exit 2) that start
// nothing.
func TestDevnetUpUsage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--dir is required"},
		{[]string{"--dir", dir, "--broker", "rabbitmq"}, "unknown broker"},
		{[]string{"--dir", dir, "--parties", "1"}, "parties must be 2 to"},
		{[]string{"--dir", dir, "--s3", "ftp://x"}, "--s3 must be"},
		{[]string{"--dir", dir, "--bin", filepath.Join(dir, "nothing")}, "cosigner-parent is not in --bin"},
		{[]string{"--dir", filepath.Join(dir, strings.Repeat("d", 100))}, "too long"},
		{[]string{"--dir", dir, "stray"}, "want 0 argument"},
	} {
		code, _, stderr := cosignerctl(t, append([]string{"devnet", "up"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("devnet up %q: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// TestDevnetUpCommand runs `cosignerctl devnet up` as an operator would:
// it prints one line containing "ready", serves attested cosigners,
// refuses a second devnet on the same directory, and exits 0 on SIGINT
// once everything has stopped.
func TestDevnetUpCommand(t *testing.T) {
	bin := needBinaries(t)
	dir := t.TempDir()
	var stdout, stderr testutil.Buffer
	cmd := exec.Command(filepath.Join(bin, "cosignerctl"), "devnet", "up", "--dir", dir, "--parties", "2", "--bin", bin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	start := time.Now()
	line, err := readyLine(&stdout, exited, 2*time.Minute)
	if err != nil {
		t.Fatalf("no ready line: %v\nstderr:\n%s%s", err, stderr.String(), childLogs(dir))
	}
	t.Logf("ready in %v: %s", time.Since(start).Round(time.Millisecond), line)

	info, err := devnet.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range info.Cosigners {
		dial(t, info, c.ID, devnet.RoleSigner)
	}
	if code, _, out := cosignerctl(t, "devnet", "up", "--dir", dir, "--bin", bin); code != 1 || !strings.Contains(out, "another devnet") {
		t.Errorf("a second devnet on the same directory: exit %d, %q", code, out)
	}

	start = time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := waitExit(cmd, exited, time.Minute); err != nil {
		t.Fatalf("after SIGINT: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(stderr.String(), "devnet stopped") {
		t.Errorf("stderr does not report the stop:\n%s", stderr.String())
	}
}

// readyLine returns the first line of out containing "ready", or an
// error when the process exits or d passes first.
func readyLine(out *testutil.Buffer, exited <-chan error, d time.Duration) (string, error) {
	deadline := time.After(d)
	for {
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.Contains(line, "ready") {
				return line, nil
			}
		}
		select {
		case err := <-exited:
			return "", fmt.Errorf("cosignerctl exited: %v", err)
		case <-deadline:
			return "", errors.New("timed out")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitExit waits for the process to exit 0 within d, killing it
// otherwise.
func waitExit(cmd *exec.Cmd, exited <-chan error, d time.Duration) error {
	select {
	case err := <-exited:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		<-exited
		return errors.New("did not exit in time; killed")
	}
}
