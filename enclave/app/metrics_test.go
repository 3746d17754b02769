//go:build !release

package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// A cosigner started with a metrics address serves its registry there,
// fed by the running engine, peer, link, keystore and attester.
func TestCosignerServesMetrics(t *testing.T) {
	env := newStateEnv(t)
	cfg, _, _ := cosignerSetup(t, env.config(t, pcrAllowed, true), t.TempDir())
	cfg.Cosigner.MetricsListen = freeAddr(t)
	var logs testutil.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, testLogger(&logs)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v\n%s", err, logs.String())
		}
	}()
	for !strings.Contains(logs.String(), "metrics listening") {
		select {
		case err := <-done:
			t.Fatalf("Run = %v\n%s", err, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	var (
		resp *http.Response
		err  error
	)
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err = http.Get("http://" + strings.TrimPrefix(cfg.Cosigner.MetricsListen, "tcp://") + "/metrics")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if err != nil {
		t.Fatal(err)
	}
	for name := range fams {
		if !strings.HasPrefix(name, "cosigner_enclave_") {
			t.Errorf("%s is outside cosigner_enclave_", name)
		}
	}
	for _, name := range []string{"cosigner_enclave_presign_pools", "cosigner_enclave_link_up",
		"cosigner_enclave_replication_records_total", "cosigner_enclave_keystore_halted", "cosigner_enclave_go_goroutines"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	if n := len(fams["cosigner_enclave_frames_dropped_total"].GetMetric()); n != len(wire.DropReasons())+1 {
		t.Errorf("frames_dropped_total has %d reasons", n)
	}
	if v := fams["cosigner_enclave_workspace_version"].GetMetric(); len(v) != 1 || v[0].GetGauge().GetValue() != 1 {
		t.Errorf("workspace_version: %v", v)
	}
	bi := fams["cosigner_enclave_build_info"].GetMetric()
	if len(bi) != 1 || !strings.Contains(bi[0].String(), `value:"simulator"`) {
		t.Errorf("build_info: %v", bi)
	}
	ok := false
	for _, m := range fams["cosigner_enclave_attestations_total"].GetMetric() {
		ok = ok || strings.Contains(m.String(), `value:"ok"`) && m.GetCounter().GetValue() >= 1
	}
	if !ok {
		t.Error("the frame identity's attestation at boot was not counted")
	}
}
