package creds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeParent serves h on a loopback transport address until the test ends.
func fakeParent(t *testing.T, h http.HandlerFunc) transport.Addr {
	t.Helper()
	l, err := transport.Listen(t.Context(), "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := transport.ParseAddr("tcp://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return addr
}

// answer serves body with status for GET /v1/credentials, counting calls.
func answer(calls *atomic.Int64, status int, body func(n int64) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/credentials" {
			http.Error(w, "wrong request", http.StatusBadRequest)
			return
		}
		n := calls.Add(1)
		w.WriteHeader(status)
		io.WriteString(w, body(n))
	}
}

func credsJSON(key string, expires time.Time) string {
	exp := ""
	if !expires.IsZero() {
		exp = fmt.Sprintf(`,"expires":%q`, expires.Format(time.RFC3339Nano))
	}
	return fmt.Sprintf(`{"access_key_id":%q,"secret_access_key":"SECRET-%s","session_token":"TOKEN-%s"%s}`,
		key, key, key, exp)
}

func TestRetrieve(t *testing.T) {
	var calls atomic.Int64
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	parent := fakeParent(t, answer(&calls, http.StatusOK, func(int64) string { return credsJSON("AKID1", exp) }))
	c, err := (&Provider{Parent: parent}).Retrieve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKeyID != "AKID1" || c.SecretAccessKey != "SECRET-AKID1" || c.SessionToken != "TOKEN-AKID1" ||
		c.Source != Source || !c.CanExpire || !c.Expires.Equal(exp) {
		t.Fatalf("got key %q, source %q, expires %v (%v)", c.AccessKeyID, c.Source, c.Expires, c.CanExpire)
	}
}

func TestRetrieveNoExpiry(t *testing.T) {
	var calls atomic.Int64
	parent := fakeParent(t, answer(&calls, http.StatusOK, func(int64) string {
		return `{"access_key_id":"AKID","secret_access_key":"s","unknown":1}`
	}))
	c, err := New(parent).Retrieve(t.Context())
	if err != nil || c.CanExpire || c.SessionToken != "" || c.AccessKeyID != "AKID" {
		t.Fatalf("got CanExpire=%v key=%q, %v", c.CanExpire, c.AccessKeyID, err)
	}
}

// TestRefreshBeforeExpiry: credentials valid for ExpiryWindow plus a moment
// are reused for that moment, then refreshed while still valid for about
// ExpiryWindow.
func TestRefreshBeforeExpiry(t *testing.T) {
	var calls atomic.Int64
	parent := fakeParent(t, answer(&calls, http.StatusOK, func(n int64) string {
		return credsJSON(fmt.Sprintf("AKID%d", n), time.Now().Add(ExpiryWindow+time.Second))
	}))
	cache := aws.NewCredentialsCache(&Provider{Parent: parent, minRefresh: 50 * time.Millisecond},
		func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = ExpiryWindow })
	if c := retrieve(t, cache); c.AccessKeyID != "AKID1" {
		t.Fatalf("first: %s", c.AccessKeyID)
	}
	if c := retrieve(t, cache); c.AccessKeyID != "AKID1" || calls.Load() != 1 {
		t.Fatalf("second: %s after %d fetches, want the cached AKID1", c.AccessKeyID, calls.Load())
	}
	time.Sleep(1100 * time.Millisecond) // AKID1 is still valid for ~5 minutes
	if c := retrieve(t, cache); c.AccessKeyID != "AKID2" {
		t.Fatalf("third: %s, want a refresh", c.AccessKeyID)
	}
}

// TestMinRefresh: when the parent keeps serving credentials that expire
// inside the window, the cache does not ask on every call.
func TestMinRefresh(t *testing.T) {
	var calls atomic.Int64
	exp := time.Now().Add(2 * time.Minute) // inside the 5-minute window
	parent := fakeParent(t, answer(&calls, http.StatusOK, func(int64) string { return credsJSON("AKID", exp) }))
	cache := New(parent)
	for range 5 {
		retrieve(t, cache)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d fetches, want 1", calls.Load())
	}
}

func retrieve(t *testing.T, p aws.CredentialsProvider) aws.Credentials {
	t.Helper()
	c, err := p.Retrieve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRefreshAt(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		exp, want time.Duration // from now
	}{
		{time.Hour, time.Hour - ExpiryWindow},         // well ahead: ExpiryWindow early
		{6 * time.Minute, MinRefresh},                 // would be in 1 minute anyway
		{3 * time.Minute, MinRefresh},                 // inside the window: not before MinRefresh
		{30 * time.Second, 30 * time.Second},          // expiring sooner: at the real expiry
		{-time.Second, -time.Second},                  // already expired: as is
		{ExpiryWindow + MinRefresh, MinRefresh},       // the boundary
		{24 * time.Hour, 24*time.Hour - ExpiryWindow}, // long-lived
	} {
		got := refreshAt(now, now.Add(c.exp), -ExpiryWindow, MinRefresh)
		if want := now.Add(c.want); !got.Equal(want) {
			t.Errorf("expiry in %v: refresh at +%v, want +%v", c.exp, got.Sub(now), c.want)
		}
	}
}

func TestParentDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	parent, _ := transport.ParseAddr("tcp://" + l.Addr().String())
	l.Close()
	_, err = New(parent).Retrieve(t.Context())
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), parent.String()) {
		t.Fatalf("err = %v, want ErrUnavailable naming %s", err, parent)
	}
	t.Logf("parent down: %v", err)
}

func TestBadAnswers(t *testing.T) {
	past := time.Now().Add(-time.Minute)
	for name, c := range map[string]struct {
		status int
		body   string
		want   string
	}{
		"500":        {500, "SECRET internal detail", "status 500"},
		"not json":   {200, "SECRET{", "malformed"},
		"wrong type": {200, `{"access_key_id":["SECRET"]}`, "malformed"},
		"no keys":    {200, `{"session_token":"SECRET"}`, "without keys"},
		"no secret":  {200, `{"access_key_id":"AKID"}`, "without keys"},
		"expired":    {200, credsJSON("AKID", past), "expired"},
		"oversized":  {200, `{"access_key_id":"` + strings.Repeat("SECRET", 4<<10) + `"}`, "malformed"},
		"empty":      {200, "", "malformed"},
	} {
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int64
			parent := fakeParent(t, answer(&calls, c.status, func(int64) string { return c.body }))
			_, err := (&Provider{Parent: parent}).Retrieve(t.Context())
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrUnavailable with %q", err, c.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("error echoes the body: %v", err)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	parent := fakeParent(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	start := time.Now()
	_, err := (&Provider{Parent: parent, Timeout: 100 * time.Millisecond}).Retrieve(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

func TestWireRedacts(t *testing.T) {
	exp := time.Now()
	w := wire{AccessKeyID: "AKID", SecretAccessKey: "SECRET", SessionToken: "TOKEN", Expires: &exp}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "w", w)
	for _, s := range []string{
		fmt.Sprint(w), fmt.Sprintf("%+v %#v %s %q %x", w, w, w, w, w), fmt.Sprint(&w), logged.String(),
	} {
		if strings.Contains(s, "SECRET") || strings.Contains(s, "TOKEN") {
			t.Errorf("leaks: %s", s)
		}
	}
}

// FuzzDecode: any body decodes or fails without panicking, and what is
// accepted has both keys.
func FuzzDecode(f *testing.F) {
	f.Add(credsJSON("AKID", time.Now().Add(time.Hour)))
	f.Add(`{"access_key_id":"a","secret_access_key":"b","expires":null}`)
	f.Fuzz(func(t *testing.T, body string) {
		w, err := decode(strings.NewReader(body))
		if err != nil {
			return
		}
		c, err := w.credentials(time.Now())
		if err == nil && (c.AccessKeyID == "" || c.SecretAccessKey == "") {
			t.Fatalf("accepted %+v", c.AccessKeyID)
		}
	})
}
