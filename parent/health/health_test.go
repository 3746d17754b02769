package health

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serve runs c on a loopback listener until the test ends; it returns the
// base URL.
func serve(t *testing.T, c *Checker) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	return "http://" + l.Addr().String()
}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, url, nil)
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func mustRegister(t *testing.T, c *Checker, name string, check Check) {
	t.Helper()
	if err := c.Register(name, check); err != nil {
		t.Fatal(err)
	}
}

func ok(context.Context) error { return nil }

func TestReadyWithoutChecks(t *testing.T) {
	base := serve(t, New(0, nil))
	if status, body := get(t, http.MethodGet, base+PathReady); status != 200 || body != `{"status":"ok","checks":[]}` {
		t.Fatalf("%d %s", status, body)
	}
}

func TestReadyReport(t *testing.T) {
	var logs logBuffer
	c := New(100*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	release := make(chan struct{})
	defer close(release)
	mustRegister(t, c, "enclave", ok)
	mustRegister(t, c, "broker", func(context.Context) error {
		return Reason("not connected", errors.New("SECRET dial detail"))
	})
	mustRegister(t, c, "plain", func(context.Context) error { return errors.New("SECRET plain detail") })
	mustRegister(t, c, "slow", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	mustRegister(t, c, "stuck", func(context.Context) error { <-release; return nil }) // ignores ctx
	mustRegister(t, c, "panics", func(context.Context) error { panic("SECRET panic value") })
	base := serve(t, c)

	start := time.Now()
	status, body := get(t, http.MethodGet, base+PathReady)
	if d := time.Since(start); d > time.Second {
		t.Errorf("/readyz took %v; checks must run concurrently under their timeout", d)
	}
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status %d", status)
	}
	var rep Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"broker": "not connected", "enclave": "", "panics": "panic", "plain": "failed",
		"slow": "timeout", "stuck": "timeout"}
	if rep.Status != "fail" || len(rep.Checks) != len(want) {
		t.Fatalf("report %s", body)
	}
	for i, r := range rep.Checks {
		if i > 0 && rep.Checks[i-1].Name >= r.Name {
			t.Errorf("checks not sorted: %s", body)
		}
		if r.Reason != want[r.Name] || r.OK != (want[r.Name] == "") {
			t.Errorf("%s: ok=%v reason %q, want %q", r.Name, r.OK, r.Reason, want[r.Name])
		}
	}
	if strings.Contains(body, "SECRET") {
		t.Errorf("body leaks error detail: %s", body)
	}
	if !strings.Contains(logs.String(), "SECRET dial detail") {
		t.Errorf("log lacks the error: %s", logs.String())
	}
}

func TestLiveWhileNotReady(t *testing.T) {
	c := New(0, nil)
	mustRegister(t, c, "down", func(context.Context) error { return errors.New("down") })
	base := serve(t, c)
	if status, body := get(t, http.MethodGet, base+PathLive); status != 200 || body != `{"status":"ok"}` {
		t.Fatalf("/healthz: %d %s", status, body)
	}
	if status, _ := get(t, http.MethodHead, base+PathReady); status != http.StatusServiceUnavailable {
		t.Fatalf("HEAD /readyz: %d", status)
	}
}

func TestRoutes(t *testing.T) {
	base := serve(t, New(0, nil))
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, PathReady, http.StatusMethodNotAllowed},
		{http.MethodDelete, PathLive, http.StatusMethodNotAllowed},
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/readyz/x", http.StatusNotFound},
		{http.MethodHead, PathLive, http.StatusOK},
	} {
		if status, _ := get(t, c.method, base+c.path); status != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, status, c.want)
		}
	}
}

func TestRegister(t *testing.T) {
	c := New(0, nil)
	mustRegister(t, c, "enclave", ok)
	for name, want := range map[string]error{
		"enclave":               ErrDuplicate,
		"":                      ErrName,
		"Enclave":               ErrName,
		"a b":                   ErrName,
		"x\n":                   ErrName,
		strings.Repeat("a", 65): ErrName,
	} {
		if err := c.Register(name, ok); !errors.Is(err, want) {
			t.Errorf("Register(%q) = %v, want %v", name, err, want)
		}
	}
	if err := c.Register("nil", nil); err == nil {
		t.Error("Register of a nil check succeeded")
	}
	if err := c.Register("broker_1-a", ok); err != nil {
		t.Error(err)
	}
}

func TestDialCheck(t *testing.T) {
	l, err := transport.Listen(t.Context(), "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up, _ := transport.ParseAddr("tcp://" + l.Addr().String())
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if err := DialCheck(up)(t.Context()); err != nil {
		t.Fatalf("reachable: %v", err)
	}
	l.Close()
	err = DialCheck(up)(t.Context())
	if publicReason(err) != "unreachable" {
		t.Fatalf("closed: %v (reason %q)", err, publicReason(err))
	}
}

func TestReasonTruncated(t *testing.T) {
	err := Reason(strings.Repeat("x", 100), nil)
	if got := publicReason(err); len(got) != maxReasonLen {
		t.Fatalf("reason %d bytes", len(got))
	}
}
