package app_test

import (
	"context"
	"crypto/sha512"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nitro-cosigner/nitro-cosigner/parent/app"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/metrics"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// fakeEnclaveMetrics serves an enclave-like registry on a unix socket
// until stop is called: the shared registry under cosigner_enclave_, a
// session histogram, and one family without the prefix, which the parent
// must not relay.
func fakeEnclaveMetrics(t *testing.T) (addr string, stop func()) {
	t.Helper()
	reg := metrics.NewRegistry(metrics.EnclaveNamespace, map[string]string{"nsm": "simulator"})
	sessions := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "cosigner_enclave_mpc_session_duration_seconds", Help: "sessions"}, []string{"op", "outcome"})
	sessions.WithLabelValues("sign", "ok").Observe(0.002)
	stray := prometheus.NewCounter(prometheus.CounterOpts{Name: "stray_total", Help: "not the enclave's namespace"})
	reg.MustRegister(sessions, stray)
	addr = "unix://" + filepath.Join(shortDir(t), "enclave-metrics.sock")
	l, err := transport.Listen(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		metrics.Serve(ctx, l, reg, discard())
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return addr, stop
}

// scrape fetches and parses /metrics.
func scrape(t *testing.T, p *runningParent) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + hostPort(t, p.addr(t, "metrics")) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, b)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value returns the value of the family's only series (gauge or counter).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	mf, ok := fams[name]
	if !ok || len(mf.GetMetric()) != 1 {
		t.Fatalf("%s: missing or not one series", name)
	}
	m := mf.GetMetric()[0]
	if m.GetGauge() != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

// TestMetricsRelayEnclave: a parent started with --metrics-listen and
// --enclave-metrics serves its own series and the enclave's, and keeps
// serving its own when the enclave's endpoint is gone.
func TestMetricsRelayEnclave(t *testing.T) {
	enclaveAddr, stopEnclave := fakeEnclaveMetrics(t)
	dir := shortDir(t)
	p := startParent(t, "metrics", app.Config{
		MetricsListen: "tcp://127.0.0.1:0", EnclaveMetrics: enclaveAddr,
		EgressListen: "unix://" + filepath.Join(dir, "egress.sock"), IngressListen: "tcp://127.0.0.1:0",
		IngressEnclave: "unix://" + filepath.Join(dir, "api.sock"),
	})
	fams := scrape(t, p)
	for _, name := range []string{
		"cosigner_parent_build_info", "cosigner_parent_go_goroutines", "cosigner_parent_process_open_fds",
		"cosigner_parent_egress_tunnels_total", "cosigner_parent_ingress_connections_total",
		"cosigner_enclave_build_info", "cosigner_enclave_go_goroutines", "cosigner_enclave_mpc_session_duration_seconds",
	} {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if _, ok := fams["stray_total"]; ok {
		t.Error("the parent relayed an enclave family outside cosigner_enclave_")
	}
	if v := value(t, fams, "cosigner_parent_enclave_metrics_up"); v != 1 {
		t.Errorf("enclave_metrics_up = %v, want 1", v)
	}
	if v := value(t, fams, "cosigner_parent_enclave_metrics_rejected_families_total"); v < 1 {
		t.Errorf("rejected families = %v, want at least 1", v)
	}
	h := fams["cosigner_enclave_mpc_session_duration_seconds"].GetMetric()[0]
	if h.GetHistogram().GetSampleCount() != 1 || !hasLabel(h, "op", "sign") || !hasLabel(h, "outcome", "ok") {
		t.Errorf("relayed histogram: %v", h)
	}
	if !hasLabel(fams["cosigner_enclave_build_info"].GetMetric()[0], "nsm", "simulator") {
		t.Error("build_info lost its labels")
	}

	stopEnclave()
	fams = scrape(t, p)
	if v := value(t, fams, "cosigner_parent_enclave_metrics_up"); v != 0 {
		t.Errorf("enclave_metrics_up with the enclave gone = %v, want 0", v)
	}
	if v := value(t, fams, "cosigner_parent_enclave_metrics_fetch_failures_total"); v < 1 {
		t.Errorf("fetch failures = %v", v)
	}
	for name := range fams {
		if strings.HasPrefix(name, "cosigner_enclave_") {
			t.Errorf("%s served with the enclave gone", name)
		}
	}
	if _, ok := fams["cosigner_parent_build_info"]; !ok {
		t.Error("the parent's own series are gone with the enclave's")
	}
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func TestMetricsOnlyGET(t *testing.T) {
	p := startParent(t, "metrics", app.Config{MetricsListen: "tcp://127.0.0.1:0"})
	base := "http://" + hostPort(t, p.addr(t, "metrics"))
	resp, err := http.Post(base+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %s", resp.Status)
	}
	resp, err = http.Get(base + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/: %s", resp.Status)
	}
}

// fakeNitroCLI returns a nitro-cli stand-in (built from
// parent/supervise/testdata/fakenitrocli) with a state directory of its
// own, and an image file with the PCRs it measures.
func fakeNitroCLI(t *testing.T) (cli, state, eif string, pcrs map[int][]byte) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fakenitrocli")
	if out, err := exec.Command("go", "build", "-o", bin, "../supervise/testdata/fakenitrocli").CombinedOutput(); err != nil {
		t.Fatalf("building the fake nitro-cli: %v\n%s", err, out)
	}
	state = t.TempDir()
	cli = filepath.Join(state, "nitro-cli")
	script := fmt.Sprintf("#!/bin/sh\nexec %q --state %q \"$@\"\n", bin, state)
	if err := os.WriteFile(cli, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	eif = filepath.Join(state, "cosigner.eif")
	if err := os.WriteFile(eif, []byte("an image"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := func(parts ...string) []byte {
		h := sha512.New384()
		for _, p := range parts {
			h.Write([]byte(p))
		}
		return h.Sum(nil)
	}
	return cli, state, eif, map[int][]byte{0: sum("an image"), 1: sum("fake kernel"), 2: sum("fake app", "an image")}
}

// TestSuperviseEnclave: a parent with --enclave-eif starts the enclave
// through nitro-cli, reports it in /readyz and /metrics, and terminates it
// on shutdown.
func TestSuperviseEnclave(t *testing.T) {
	cli, state, eif, pcrs := fakeNitroCLI(t)
	p := startParent(t, "supervise", app.Config{
		EnclaveEIF: eif, EnclaveCPUs: 2, EnclaveMemoryMiB: 512, EnclaveCID: 20, NitroCLI: cli, ExpectPCRs: pcrs,
		EnclaveName: "app-test", HealthListen: "tcp://127.0.0.1:0", MetricsListen: "tcp://127.0.0.1:0",
	})
	ready := "http://" + hostPort(t, p.addr(t, "health")) + "/readyz"
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(ready)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if !strings.Contains(string(body), `"name":"enclave"`) {
				t.Fatalf("/readyz without the enclave check: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never passed: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fams := scrape(t, p)
	if v := value(t, fams, "cosigner_parent_enclave_running"); v != 1 {
		t.Errorf("enclave_running = %v", v)
	}
	if v := value(t, fams, "cosigner_parent_enclave_starts_total"); v != 1 {
		t.Errorf("enclave_starts_total = %v", v)
	}
	if mf := fams["cosigner_parent_enclave_restarts_total"]; len(mf.GetMetric()) != 4 {
		t.Errorf("enclave_restarts_total: %v", mf)
	}
	p.stop(t)
	b, err := os.ReadFile(filepath.Join(state, "enclaves.json"))
	if err != nil || strings.Contains(string(b), "app-test") {
		t.Fatalf("enclaves after shutdown: %s (%v)", b, err)
	}
}

// TestSuperviseRefusesOtherImage: an image whose PCRs differ from
// --expect-pcr fails the start before anything runs.
func TestSuperviseRefusesOtherImage(t *testing.T) {
	cli, state, eif, pcrs := fakeNitroCLI(t)
	pcrs[0][0] ^= 1
	err := app.Run(t.Context(), app.Config{
		EnclaveEIF: eif, EnclaveCPUs: 2, EnclaveMemoryMiB: 512, NitroCLI: cli, ExpectPCRs: pcrs,
		HealthListen: "tcp://127.0.0.1:0",
	}, discard())
	if err == nil || !strings.Contains(err.Error(), "PCR0") {
		t.Fatalf("Run with another image: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(state, "calls.log"))
	if strings.Contains(string(b), "run-enclave") {
		t.Fatalf("run-enclave ran: %s", b)
	}
}

func TestSuperviseWithoutNitroCLI(t *testing.T) {
	_, _, eif, _ := fakeNitroCLI(t)
	err := app.Run(t.Context(), app.Config{
		EnclaveEIF: eif, EnclaveCPUs: 2, EnclaveMemoryMiB: 512, NitroCLI: filepath.Join(t.TempDir(), "nitro-cli"),
	}, discard())
	if err == nil || !strings.Contains(err.Error(), "supervise") {
		t.Fatalf("Run without nitro-cli: %v", err)
	}
}
