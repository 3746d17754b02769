package procpath_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
)

// Time limits of the processes.
const (
	startTimeout = 30 * time.Second // a process reports ready
	exitTimeout  = 20 * time.Second // a process exits once told to
	callMargin   = 30 * time.Second // a helper answers after a session's deadline
)

// proc is a child process whose stderr is kept for the test log.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *testutil.Buffer
	ask    func() error       // asks the process to exit
	kill   context.CancelFunc // ends the CommandContext: SIGKILL
	exited chan struct{}      // closed once Wait returned
	err    error              // Wait's result, once exited is closed
}

// newCmd returns a command that is killed when its cancel function is
// called (the cleanups' last resort).
func newCmd(bin string, args ...string) (*exec.Cmd, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	return exec.CommandContext(ctx, bin, args...), cancel
}

// start starts p.cmd and waits for it in the background.
func (p *proc) start(t *testing.T) {
	t.Helper()
	p.stderr, p.exited = &testutil.Buffer{}, make(chan struct{})
	p.cmd.Stderr = p.stderr
	dieWithUs(p.cmd)
	if err := p.cmd.Start(); err != nil {
		p.kill()
		close(p.exited)
		t.Fatalf("starting %s: %v", p.name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
}

// stopAll stops the processes at once (each takes a while: a binary
// built with the race detector waits a second at exit).
func stopAll(t *testing.T, ps []*proc) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() { p.stop(t, exitTimeout) })
	}
	wg.Wait()
}

// stop asks the process to exit, waits up to d, kills it otherwise, and
// fails t unless it exited 0. It may run in any goroutine.
func (p *proc) stop(t *testing.T, d time.Duration) {
	defer p.kill()
	start := time.Now()
	if err := p.ask(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("%s: asking it to stop: %v", p.name, err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("%s exited with %v", p.name, p.err)
		}
	case <-time.After(d):
		p.kill()
		<-p.exited
		t.Errorf("%s did not exit within %v of being asked; killed", p.name, d)
	}
	t.Logf("%s stopped in %v", p.name, time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		t.Logf("%s stderr:\n%s", p.name, tail(p.stderr.String(), 16<<10))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// parentProc is a cosigner-parent process.
type parentProc struct {
	*proc
	link   string // its --enclave-link
	health string // host:port of its health endpoint
}

// startParentProc runs cosigner-parent for id with the broker flags and
// extra environment, its enclave link on a unix socket in dir, and calls
// track before waiting for it. Stopping it (SIGTERM) is the tracker's
// job.
func startParentProc(t *testing.T, dir, id string, brokerArgs, env []string, track func(*proc)) *parentProc {
	t.Helper()
	link := "unix://" + filepath.Join(dir, id+"-link.sock")
	args := append([]string{"--cosigner-id", id, "--enclave-link", link, "--broker-provision",
		"--health-listen", "tcp://127.0.0.1:0", "--log-level", "info", "--shutdown-timeout", "10s"}, brokerArgs...)
	cmd, kill := newCmd(needParent(t), args...)
	cmd.Env = append(parentEnv(), env...)
	p := &parentProc{proc: &proc{name: "parent " + id, cmd: cmd, kill: kill}, link: link}
	p.ask = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	p.start(t)
	track(p.proc)
	p.health = p.waitHealthAddr(t)
	return p
}

// parentEnv is this process's environment without AWS settings, so that
// the host's files and instance metadata stay out of the test.
func parentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent")
}

// waitHealthAddr reads the health listener's address from the parent's
// JSON log.
func (p *parentProc) waitHealthAddr(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if addr := healthAddr(p.stderr.String()); addr != "" {
			return addr
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited at start: %v\n%s", p.name, p.err, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s logged no health address within %v:\n%s", p.name, startTimeout, p.stderr.String())
	return ""
}

func healthAddr(logs string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct{ Msg, Component, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" && line.Component == "health" {
			return strings.TrimPrefix(line.Addr, "tcp://")
		}
	}
	return ""
}

// waitReady polls /readyz until every check passes: the broker answers
// and the enclave's link is up.
func (p *parentProc) waitReady(t *testing.T) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(startTimeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + p.health + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready within %v: %s", p.name, startTimeout, last)
}

// enclaveProc is an enclave helper process.
type enclaveProc struct {
	*proc
	id      string
	stdin   io.WriteCloser
	replies chan response
	member  memberInfo
}

// startEnclaveProc runs this test binary as the enclave helper of id,
// dialling the parent's link, and calls track before waiting for its
// member entry. Stopping it (closing its stdin) is the tracker's job.
func startEnclaveProc(t *testing.T, id string, parent *parentProc, caFile, fixture string, track func(*proc)) *enclaveProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd, kill := newCmd(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=enclave", helperIDEnv+"="+id, helperLinkEnv+"="+parent.link,
		helperCAEnv+"="+caFile, helperFixtureEnv+"="+fixture)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	e := &enclaveProc{proc: &proc{name: "enclave " + id, cmd: cmd, ask: stdin.Close, kill: kill},
		id: id, stdin: stdin, replies: make(chan response, 1)}
	e.start(t)
	track(e.proc)
	go e.readReplies(stdout)
	hello, err := e.await(startTimeout)
	if err != nil || hello.Member == nil || hello.Member.ID != id {
		t.Fatalf("%s: first line %+v (%v), want its member entry", e.name, hello, err)
	}
	e.member = *hello.Member
	return e
}

// readReplies decodes the helper's stdout, one reply per line, until it
// closes.
func (e *enclaveProc) readReplies(stdout io.Reader) {
	defer close(e.replies)
	dec := json.NewDecoder(stdout)
	for {
		var r response
		if err := dec.Decode(&r); err != nil {
			return
		}
		select {
		case e.replies <- r:
		case <-e.exited:
			return
		}
	}
}

// call sends req and returns the helper's reply, or an error if there is
// none within d or the reply is an error. It may run in any goroutine
// (one call at a time per helper).
func (e *enclaveProc) call(req request, d time.Duration) (response, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return response{}, err
	}
	if _, err := e.stdin.Write(append(b, '\n')); err != nil {
		return response{}, fmt.Errorf("%s: sending %s: %w", e.name, req.Op, err)
	}
	r, err := e.await(d)
	if err == nil && r.Error != "" {
		err = fmt.Errorf("%s: %s: %s", e.name, req.Op, r.Error)
	}
	return r, err
}

func (e *enclaveProc) await(d time.Duration) (response, error) {
	select {
	case r, ok := <-e.replies:
		if !ok {
			return response{}, fmt.Errorf("%s: stdout closed (exited?)", e.name)
		}
		return r, nil
	case <-time.After(d):
		return response{}, fmt.Errorf("%s: no reply within %v", e.name, d)
	}
}
