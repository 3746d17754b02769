//go:build !release

package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
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
	dir := t.TempDir()
	cfg := env.config(t, pcrAllowed, true)
	cfg.Cosigner.MemberOut = filepath.Join(dir, "alice.json")
	if _, err := runUntilReady(t, cfg); err != nil {
		t.Fatal(err)
	}
	var self memberJSON
	b, err := os.ReadFile(cfg.Cosigner.MemberOut)
	if err != nil || json.Unmarshal(b, &self) != nil {
		t.Fatalf("member file %s: %v", b, err)
	}
	roster, _ := json.Marshal(rosterFile{Members: []memberJSON{self, otherMember(t)}})
	os.WriteFile(filepath.Join(dir, "roster.json"), roster, 0o600)
	pki := newClientPKI(t, dir)
	adminPub, _, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(adminPub)
	writePEM(t, filepath.Join(dir, "admins.pem"), "PUBLIC KEY", der)

	cfg.State.Init = false
	cfg.Cosigner = CosignerConfig{Roster: filepath.Join(dir, "roster.json"), ParentLink: freeAddr(t), APIListen: freeAddr(t),
		ClientCA: pki.caFile, PolicyAdmins: filepath.Join(dir, "admins.pem"), PolicyQuorum: 1, MetricsListen: freeAddr(t)}
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
	var resp *http.Response
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
