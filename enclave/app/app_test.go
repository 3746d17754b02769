package app

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
)

func testLogger(buf *testutil.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, nil))
}

func TestRunWithSimulator(t *testing.T) {
	var logs testutil.Buffer
	root := filepath.Join(t.TempDir(), "root.pem")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{NSM: NSMSimulator, SimulatorRootOut: root, Simulator: nsm.SimulatorConfig{ModuleID: "i-test"}}, testLogger(&logs))
	}()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(logs.String(), "enclave ready") {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v\n%s", err, logs.String())
		case <-deadline:
			t.Fatalf("enclave never became ready:\n%s", logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SIMULATOR", "boot attestation verified", "module_id=i-test"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
	if b, err := os.ReadFile(root); err != nil || !bytes.Contains(b, []byte("BEGIN CERTIFICATE")) {
		t.Fatalf("simulator root not written: %v", err)
	}
}

func TestRunRefusesUnknownNSM(t *testing.T) {
	err := Run(context.Background(), Config{NSM: "tpm"}, testLogger(&testutil.Buffer{}))
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
}

// TestDeviceNeverFallsBack: outside an enclave the device fails to open and
// Run fails; it does not quietly use the simulator.
func TestDeviceNeverFallsBack(t *testing.T) {
	if _, err := os.Stat("/dev/nsm"); err == nil {
		t.Skip("running inside a Nitro Enclave")
	}
	var logs testutil.Buffer
	err := Run(context.Background(), Config{NSM: NSMDevice}, testLogger(&logs))
	if !errors.Is(err, nsm.ErrDevice) {
		t.Fatalf("err = %v, want nsm.ErrDevice", err)
	}
	if strings.Contains(logs.String(), "SIMULATOR") {
		t.Fatal("the device path fell back to the simulator")
	}
}
