// Package goaws starts an SQS emulator for end-to-end tests: goaws at the
// version pinned in tools/go.mod, built from the Go module proxy by build.sh
// into a cache directory, run on a kernel-chosen 127.0.0.1 port and stopped
// when the test ends.
//
// goaws keeps its queues in memory: a stopped server loses them. It speaks
// the AWS JSON 1.0 protocol of current aws-sdk-go-v2/service/sqs releases.
//
// Only tests import this package.
package goaws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// RequiredEnv, when set to 1, turns a failed emulator build into a test
// failure instead of a skip (`make test` and CI set it).
const RequiredEnv = "NITRO_GOAWS_REQUIRED"

const (
	// Region is the region the emulator and its clients use.
	Region    = "us-east-1"
	accountID = "000000000000"
	// MaxMessageSize is the emulator's default queue MaximumMessageSize:
	// the 1 MiB that Amazon SQS accepts at most.
	MaxMessageSize = 1 << 20
	readyLine      = "goaws listening on "
	startTimeout   = 30 * time.Second
)

// Server is a running emulator.
type Server struct {
	Endpoint string // http://127.0.0.1:<port>
}

// Client returns a real SDK client for the server. The emulator does not
// check signatures; the static credentials only satisfy the SDK.
func (s *Server) Client() *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("nitro-test", "nitro-test-secret", ""),
	})
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Start starts an emulator for t. If it cannot be built (no module proxy, no
// compiler), t is skipped with the build output, unless RequiredEnv is 1.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := build(t)
	config := writeConfig(t)
	s := &Server{Endpoint: run(t, bin, config)}
	s.waitReady(t)
	return s
}

func build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { binPath, buildErr = runBuild() })
	if buildErr == nil {
		return binPath
	}
	if os.Getenv(RequiredEnv) == "1" {
		t.Fatalf("building goaws: %v", buildErr)
	}
	t.Skipf("skipping: goaws could not be built (set %s=1 to fail instead): %v", RequiredEnv, buildErr)
	return ""
}

// runBuild runs build.sh, found beside this file.
func runBuild() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate build.sh")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", filepath.Join(filepath.Dir(file), "build.sh"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build.sh: %w\n%s", err, tail(stderr.String(), 4000))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// writeConfig writes a goaws config with no predefined queues and the
// SQS maximum message size as the default for new queues.
func writeConfig(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "goaws.yaml")
	config := fmt.Sprintf(`Local:
  Host: 127.0.0.1
  Region: %s
  AccountId: "%s"
  QueueAttributeDefaults:
    VisibilityTimeout: 30
    MaximumMessageSize: %d
`, Region, accountID, MaxMessageSize)
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// run starts the emulator and returns its endpoint. The emulator exits
// when its stdin closes, which the cleanup does (and the kernel does if
// the test process dies).
func run(t testing.TB, bin, config string) string {
	t.Helper()
	out, logs := newFirstLine(), newFirstLine()
	cmd := exec.Command(bin, "-config", config, "-listen", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = out, logs
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting goaws: %v", err)
	}
	t.Cleanup(func() { stop(t, cmd, stdin, logs) })
	line, err := out.wait(startTimeout)
	if err != nil || !strings.HasPrefix(line, readyLine) {
		t.Fatalf("goaws did not report its address within %v: %v\n%s", startTimeout, err, tail(logs.String(), 4000))
	}
	return strings.TrimPrefix(line, readyLine)
}

// stop closes the emulator's stdin and waits for it, killing it if it
// does not exit in time; a failed test gets the emulator's log.
func stop(t testing.TB, cmd *exec.Cmd, stdin io.Closer, logs *firstLine) {
	stdin.Close()
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	if t.Failed() {
		t.Logf("goaws log:\n%s", tail(logs.String(), 4000))
	}
}

// waitReady polls the health endpoint until the emulator answers.
func (s *Server) waitReady(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for ctx.Err() == nil {
		if healthy(ctx, s.Endpoint+"/health") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("goaws did not answer on %s within %v", s.Endpoint, startTimeout)
}

func healthy(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// firstLine collects one of the emulator's output streams and hands over
// its first line.
type firstLine struct {
	mu    sync.Mutex
	b     bytes.Buffer
	ready chan string
	sent  bool
}

func newFirstLine() *firstLine { return &firstLine{ready: make(chan string, 1)} }

func (f *firstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.b.Write(p)
	if line, _, ok := strings.Cut(f.b.String(), "\n"); ok && !f.sent {
		f.sent = true
		f.ready <- line
	}
	return len(p), nil
}

func (f *firstLine) wait(d time.Duration) (string, error) {
	select {
	case line := <-f.ready:
		return line, nil
	case <-time.After(d):
		return "", errors.New("timed out")
	}
}

func (f *firstLine) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.b.String()
}
