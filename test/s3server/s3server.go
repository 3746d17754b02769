// Package s3server starts a real S3 server for end-to-end tests: versitygw
// at the version pinned in tools/go.mod, built from the Go module proxy by
// build.sh into a cache directory, run on 127.0.0.1 with a temporary
// directory as its backend and stopped when the test ends.
//
// Only tests import this package.
package s3server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
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
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// RequiredEnv, when set to 1, turns a failed server build into a test
// failure instead of a skip (CI sets it).
const RequiredEnv = "NITRO_S3SERVER_REQUIRED"

// Region and the static credentials every test server accepts.
const (
	Region    = "us-east-1"
	AccessKey = "nitro-test-access"
	SecretKey = "nitro-test-secret-key"
)

const (
	region    = Region
	accessKey = AccessKey
	secretKey = SecretKey
)

// Server is a running S3 server.
type Server struct {
	Endpoint string // http://127.0.0.1:<port>
	Bucket   string // created empty for the test
	// DataDir holds the objects as files (for tests that inspect what the
	// server stored).
	DataDir string
}

// Client returns a real SDK client for the server.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Start starts a server for t. If the server cannot be built (no module
// proxy, no compiler), t is skipped with the build output, unless
// RequiredEnv is 1.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := build(t)
	root := t.TempDir()
	s := &Server{DataDir: filepath.Join(root, "data"), Bucket: "nitro-e2e"}
	for _, d := range []string{s.DataDir, filepath.Join(root, "meta")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	s.Endpoint = "http://" + addr
	run(t, bin, addr, root)
	s.waitReady(t)
	s.createBucket(t)
	return s
}

func build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { binPath, buildErr = runBuild() })
	if buildErr == nil {
		return binPath
	}
	if os.Getenv(RequiredEnv) == "1" {
		t.Fatalf("building the S3 server: %v", buildErr)
	}
	t.Skipf("skipping: the real S3 server could not be built (set %s=1 to fail instead): %v", RequiredEnv, buildErr)
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

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// run starts the server and registers its shutdown. Credentials go
// through the environment, not the command line.
func run(t testing.TB, bin, addr, root string) {
	t.Helper()
	var logs syncBuffer
	cmd := exec.Command(bin, "--port", addr, "--region", region,
		"posix", "--sidecar", filepath.Join(root, "meta"), filepath.Join(root, "data"))
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+accessKey, "ROOT_SECRET_ACCESS_KEY="+secretKey)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the S3 server: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("S3 server output:\n%s", tail(logs.String(), 4000))
		}
	})
}

// waitReady polls the endpoint until the server answers HTTP.
func (s *Server) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.Endpoint)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the S3 server did not answer on %s within 30s", s.Endpoint)
}

func (s *Server) createBucket(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("creating bucket: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's two output streams.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
