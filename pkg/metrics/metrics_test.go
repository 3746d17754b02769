package metrics_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/metrics"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	)
}

// TestRegistryNamespaced: every series of a new registry is under its
// namespace, build_info included, so two daemons' sets never collide.
func TestRegistryNamespaced(t *testing.T) {
	reg := metrics.NewRegistry("cosigner_test", prometheus.Labels{"nsm": "device"})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range fams {
		if !strings.HasPrefix(mf.GetName(), "cosigner_test_") {
			t.Errorf("%s is not under the namespace", mf.GetName())
		}
		seen[mf.GetName()] = true
	}
	for _, want := range []string{"cosigner_test_build_info", "cosigner_test_go_goroutines", "cosigner_test_process_resident_memory_bytes"} {
		if !seen[want] {
			t.Errorf("no %s", want)
		}
	}
	want := `
# HELP cosigner_test_build_info Always 1; the labels say which build is running.
# TYPE cosigner_test_build_info gauge
cosigner_test_build_info{goversion="` + runtime.Version() + `",nsm="device",revision="",version="devel"} 1
`
	labels := metrics.BuildLabels()
	if labels["revision"] != "" || labels["version"] != "devel" {
		t.Skipf("this test binary has build info %v", labels)
	}
	if got := exposition(t, reg, "cosigner_test_build_info"); got != strings.TrimLeft(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

type stats struct {
	n    uint64
	up   bool
	rate float64
}

// TestSnapshot: one snapshot per scrape, counters and gauges from it.
func TestSnapshot(t *testing.T) {
	var calls atomic.Int32
	c := metrics.Snapshot(func() stats {
		calls.Add(1)
		return stats{n: 7, up: true, rate: 1.5}
	},
		metrics.Counter("x_things_total", "Things.", func(s stats) float64 { return float64(s.n) }),
		metrics.Gauge("x_up", "Up.", func(s stats) float64 { return metrics.Bool(s.up) }),
		metrics.Gauge("x_rate", "Rate.", func(s stats) float64 { return s.rate }),
	)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	want := `
# HELP x_rate Rate.
# TYPE x_rate gauge
x_rate 1.5
# HELP x_things_total Things.
# TYPE x_things_total counter
x_things_total 7
# HELP x_up Up.
# TYPE x_up gauge
x_up 1
`
	if got := exposition(t, reg); got != strings.TrimLeft(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d snapshots for one scrape", n)
	}
}

func TestJoinAndNewCollector(t *testing.T) {
	d := prometheus.NewDesc("y_by_reason_total", "By reason.", []string{"reason"}, nil)
	c := metrics.Join(
		metrics.NewCollector([]*prometheus.Desc{d}, func(ch chan<- prometheus.Metric) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, 2, "a")
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, 3, "b")
		}),
		metrics.Snapshot(func() int { return 4 }, metrics.Gauge("y_n", "N.", func(n int) float64 { return float64(n) })),
	)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	n := 0
	for _, mf := range fams {
		n += len(mf.GetMetric())
	}
	if err != nil || n != 3 {
		t.Fatalf("gathered %d series, %v", n, err)
	}
}

func TestServe(t *testing.T) {
	reg := metrics.NewRegistry("cosigner_test", nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.Serve(ctx, l, reg, nil) }()
	base := "http://" + l.Addr().String()

	resp, err := http.Get(base + metrics.Path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "cosigner_test_build_info{") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %s %s\n%.300s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, metrics.Path, http.StatusMethodNotAllowed},
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/debug/pprof/", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %s, want %d", tc.method, tc.path, resp.Status, tc.status)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Fatal("the listener is still open")
	}
}

// exposition gathers reg and returns the named families (all if none) in
// the text format.
func exposition(t *testing.T, reg prometheus.Gatherer, names ...string) string {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range fams {
		if len(names) > 0 && !slices.Contains(names, mf.GetName()) {
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
