package creds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// isolateEnv points the default credential chain at the environment only:
// no shared files, no instance metadata, no container endpoint.
func isolateEnv(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":                        filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE":            filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_PROFILE":                            "",
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_ACCESS_KEY_ID":                      "",
		"AWS_SECRET_ACCESS_KEY":                  "",
		"AWS_SESSION_TOKEN":                      "",
	} {
		t.Setenv(k, v)
	}
}

// serve runs s on a loopback listener until the test ends and returns the
// base URL.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
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
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("%s %s: Cache-Control %q", method, url, resp.Header.Get("Cache-Control"))
	}
	return resp.StatusCode, string(body)
}

// TestServeEnvCredentials: static credentials from the environment go
// through the default chain and out on the wire, and not into the log.
func TestServeEnvCredentials(t *testing.T) {
	isolateEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENVEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETenvExample")
	t.Setenv("AWS_SESSION_TOKEN", "TOKENenvExample")
	p, err := LoadDefault(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	status, body := get(t, http.MethodGet, serve(t, NewServer(p, log))+Path)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"access_key_id": "AKIDENVEXAMPLE", "secret_access_key": "SECRETenvExample",
		"session_token": "TOKENenvExample"} // static keys: no "expires"
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("body %v", got)
	}
	if l := logs.String(); !strings.Contains(l, "served credentials") || strings.Contains(l, "SECRET") || strings.Contains(l, "TOKEN") {
		t.Fatalf("log: %s", l)
	}
}

func TestLoadDefaultWithoutCredentials(t *testing.T) {
	isolateEnv(t)
	p, err := LoadDefault(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.Buffer
	status, body := get(t, http.MethodGet, serve(t, NewServer(p, slog.New(slog.NewTextHandler(&logs, nil))))+Path)
	if status != http.StatusServiceUnavailable || strings.TrimSpace(body) != `{"error":"credentials unavailable"}` {
		t.Fatalf("status %d, body %s", status, body)
	}
	if !strings.Contains(logs.String(), "cannot serve credentials") {
		t.Fatalf("log: %s", logs.String())
	}
}

type fixed struct {
	c   aws.Credentials
	err error
}

func (f fixed) Retrieve(context.Context) (aws.Credentials, error) { return f.c, f.err }

func TestServeExpiring(t *testing.T) {
	exp := time.Date(2026, 11, 21, 12, 0, 0, 0, time.FixedZone("X", 3600))
	p := fixed{c: aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "S", CanExpire: true, Expires: exp}}
	status, body := get(t, http.MethodGet, serve(t, NewServer(p, nil))+Path)
	want := `{"access_key_id":"AKID","secret_access_key":"S","expires":"2026-11-21T11:00:00Z"}`
	if status != http.StatusOK || strings.TrimSpace(body) != want {
		t.Fatalf("status %d, body %s", status, body)
	}
}

func TestServeProviderError(t *testing.T) {
	for _, p := range []fixed{
		{err: errors.New("SECRET detail from the provider")},
		{c: aws.Credentials{AccessKeyID: "AKID"}}, // no secret key
	} {
		status, body := get(t, http.MethodGet, serve(t, NewServer(p, nil))+Path)
		if status != http.StatusServiceUnavailable || strings.TrimSpace(body) != `{"error":"credentials unavailable"}` {
			t.Errorf("status %d, body %s", status, body)
		}
	}
}

func TestRoutes(t *testing.T) {
	base := serve(t, NewServer(fixed{c: aws.Credentials{AccessKeyID: "A", SecretAccessKey: "S"}}, nil))
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, Path, http.StatusMethodNotAllowed},
		{http.MethodPut, Path, http.StatusMethodNotAllowed},
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, Path + "/", http.StatusNotFound},
		{http.MethodGet, "/v1/credentials/x", http.StatusNotFound},
	} {
		if status, body := get(t, c.method, base+c.path); status != c.want || strings.Contains(body, "S\"") {
			t.Errorf("%s %s: status %d, want %d (%s)", c.method, c.path, status, c.want, body)
		}
	}
}

func TestResponseRedacts(t *testing.T) {
	exp := time.Now()
	r := Response{AccessKeyID: "AKID", SecretAccessKey: "SECRET", SessionToken: "TOKEN", Expires: &exp}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "r", r, "p", &r)
	for _, s := range []string{
		fmt.Sprint(r), fmt.Sprintf("%v %+v %#v %s %q %x", r, r, r, r, r, r), fmt.Sprint(&r), logged.String(),
	} {
		if strings.Contains(s, "SECRET") || strings.Contains(s, "TOKEN") {
			t.Errorf("leaks: %s", s)
		}
	}
	if b, _ := json.Marshal(r); !strings.Contains(string(b), "SECRET") {
		t.Fatal("the wire form must carry the secret")
	}
}

// TestServeStopsOnListenerFailure: Serve returns the Accept error when the
// listener fails by itself.
func TestServeStopsOnListenerFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := NewServer(fixed{}, nil).Serve(t.Context(), l); err == nil {
		t.Fatal("Serve on a closed listener returned nil")
	}
}

func TestLoadDefaultRefusesBadConfig(t *testing.T) {
	isolateEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "config")
	os.WriteFile(file, []byte("[profile p]\nsource_profile = missing\nrole_arn = arn:aws:iam::1:role/x\n"), 0o600)
	t.Setenv("AWS_CONFIG_FILE", file)
	t.Setenv("AWS_PROFILE", "nope")
	if _, err := LoadDefault(t.Context()); err == nil {
		t.Fatal("LoadDefault with a missing profile succeeded")
	}
}
