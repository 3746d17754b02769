package hostpath_test

// This test runs both ends of the enclave's log channel: the enclave's
// slog JSON logger writing through enclave/logfwd, and the parent's
// listener (parent/supervise.ServeLogs) logging each line again.

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/logfwd"
	"github.com/nitro-cosigner/nitro-cosigner/parent/supervise"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test.
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

func TestEnclaveLogsForwarded(t *testing.T) {
	addr, err := transport.ParseAddr("unix://" + filepath.Join(t.TempDir(), "logs.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := transport.ListenAddr(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	var parentOut syncBuffer
	parentLog := slog.New(slog.NewJSONHandler(&parentOut, nil)).With("component", "enclave-logs")
	ctx, cancel := context.WithCancel(context.Background())
	parentDone := make(chan error, 1)
	go func() { parentDone <- supervise.ServeLogs(ctx, l, parentLog) }()

	fwd := logfwd.New(addr)
	fwdCtx, stopFwd := context.WithCancel(context.Background())
	fwdDone := make(chan struct{})
	go func() {
		defer close(fwdDone)
		fwd.Run(fwdCtx)
	}()
	enclaveLog := slog.New(slog.NewJSONHandler(fwd, &slog.HandlerOptions{Level: slog.LevelInfo}))
	enclaveLog.Warn("approval callback failed", "key_id", "00ff", "data_key", secret.New([]byte("hunter2")))
	enclaveLog.Debug("below the enclave's level")
	enclaveLog.Info("enclave ready")

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(parentOut.String(), "enclave ready") {
		if time.Now().After(deadline) {
			t.Fatalf("the parent did not log the enclave's lines:\n%s", parentOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := parentOut.String()
	for _, want := range []string{
		`"level":"WARN","msg":"approval callback failed","component":"enclave-logs","source":"enclave"`,
		`"data_key":"[REDACTED]"`, `"key_id":"00ff"`, `"enclave_time":`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the parent's log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter2") || strings.Contains(out, "below the enclave's level") {
		t.Errorf("the parent's log holds what the enclave never wrote:\n%s", out)
	}

	stopFwd()
	<-fwdDone
	cancel()
	select {
	case err := <-parentDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeLogs did not return")
	}
}
