package metrics

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/parent/egress"
	"github.com/nitro-cosigner/nitro-cosigner/parent/ingress"
	"github.com/nitro-cosigner/nitro-cosigner/parent/relay"
	"github.com/nitro-cosigner/nitro-cosigner/parent/supervise"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func families(t *testing.T, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range fams {
		out[mf.GetName()] = mf
	}
	return out
}

func one(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	mf := fams[name]
	if len(mf.GetMetric()) != 1 {
		t.Fatalf("%s: %d series", name, len(mf.GetMetric()))
	}
	m := mf.GetMetric()[0]
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func TestParentSeries(t *testing.T) {
	reg := NewRegistry(Sources{
		Relay:   func() relay.Stats { return relay.Stats{FramesOut: 3, QueueDepth: 2, LinkUp: true} },
		Egress:  func() egress.Stats { return egress.Stats{Allowed: 4, Denied: 1} },
		Ingress: func() ingress.Stats { return ingress.Stats{Forwarded: 6, Active: 1} },
		Supervise: func() supervise.Stats {
			return supervise.Stats{Running: true, Healthy: true, Starts: 2, Since: time.Unix(1700000000, 0),
				Restarts: map[supervise.Reason]uint64{supervise.ReasonExited: 1}}
		},
	})
	fams := families(t, reg)
	for name := range fams {
		if !strings.HasPrefix(name, ns) {
			t.Errorf("%s is outside %s", name, ns)
		}
	}
	for name, want := range map[string]float64{
		"relay_frames_out_total": 3, "relay_queue_frames": 2, "relay_link_up": 1,
		"egress_tunnels_total": 4, "egress_denied_total": 1, "ingress_connections_total": 6, "ingress_active_connections": 1,
		"enclave_running": 1, "enclave_healthy": 1, "enclave_starts_total": 2, "enclave_start_timestamp_seconds": 1700000000,
	} {
		if got := one(t, fams, ns+name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	restarts := fams[ns+"enclave_restarts_total"].GetMetric()
	if len(restarts) != len(supervise.Reasons) {
		t.Fatalf("%d restart reasons, want %d", len(restarts), len(supervise.Reasons))
	}
}

// enclaveServer answers /metrics with whatever handler says, on a unix
// socket.
func enclaveServer(t *testing.T, handler http.HandlerFunc) transport.Addr {
	t.Helper()
	addr, err := transport.ParseAddr("unix://" + filepath.Join(t.TempDir(), "m.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := transport.ListenAddr(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		transport.ServeHTTP(ctx, l, srv, time.Second)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return addr
}

const enclaveText = `# HELP cosigner_enclave_frames_dropped_total Dropped.
# TYPE cosigner_enclave_frames_dropped_total counter
cosigner_enclave_frames_dropped_total{reason="replay"} 3
cosigner_enclave_frames_dropped_total{reason="bad_signature"} 1
# HELP cosigner_enclave_presign_pool_depth Depth.
# TYPE cosigner_enclave_presign_pool_depth gauge
cosigner_enclave_presign_pool_depth{signers="a,b",key="00ff"} 5
# HELP cosigner_parent_relay_link_up Forged by the enclave side.
# TYPE cosigner_parent_relay_link_up gauge
cosigner_parent_relay_link_up 7
# TYPE up gauge
up 0
`

func TestEnclaveRelay(t *testing.T) {
	var mode atomic.Int32 // 0 good, 1 status 500, 2 JSON, 3 too large, 4 garbage
	addr := enclaveServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case 0:
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			w.Write([]byte(enclaveText))
		case 1:
			http.Error(w, "no", http.StatusInternalServerError)
		case 2:
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{}`))
		case 3:
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte(enclaveText))
			big := []byte("# " + strings.Repeat("x", 1<<16) + "\n")
			for range maxBody / len(big) * 2 {
				if _, err := w.Write(big); err != nil {
					return
				}
			}
		case 4:
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("cosigner_enclave_x{ 1\n"))
		}
	})
	reg := NewRegistry(Sources{Relay: func() relay.Stats { return relay.Stats{LinkUp: true} }})
	enc := NewEnclave(addr, reg, nil)
	defer enc.Close()
	g := Gatherer(reg, enc)

	fams := families(t, g)
	if one(t, fams, ns+"enclave_metrics_up") != 1 {
		t.Fatal("enclave_metrics_up is not 1")
	}
	if n := len(fams["cosigner_enclave_frames_dropped_total"].GetMetric()); n != 2 {
		t.Fatalf("relayed %d drop series, want 2", n)
	}
	if _, ok := fams["up"]; ok {
		t.Fatal("relayed a family outside cosigner_enclave_")
	}
	if v := one(t, fams, ns+"relay_link_up"); v != 1 {
		t.Fatalf("the enclave overrode a parent series: relay_link_up = %v", v)
	}
	if v := one(t, fams, ns+"enclave_metrics_rejected_families_total"); v != 2 {
		t.Fatalf("rejected families = %v, want 2", v)
	}
	labels := fams["cosigner_enclave_presign_pool_depth"].GetMetric()[0].GetLabel()
	if labels[0].GetName() != "key" || labels[1].GetName() != "signers" {
		t.Fatalf("labels not sorted: %v", labels)
	}

	for m, what := range map[int32]string{1: "status 500", 2: "JSON", 3: "too large", 4: "garbage"} {
		mode.Store(m)
		fams := families(t, g)
		if one(t, fams, ns+"enclave_metrics_up") != 0 {
			t.Errorf("%s: enclave_metrics_up is not 0", what)
		}
		for name := range fams {
			if strings.HasPrefix(name, enclavePrefix) {
				t.Errorf("%s: served %s", what, name)
			}
		}
	}
	mode.Store(0)
	fams = families(t, g)
	if one(t, fams, ns+"enclave_metrics_up") != 1 || one(t, fams, ns+"enclave_metrics_fetch_failures_total") != 4 {
		t.Fatal("no recovery after the failures, or failures not counted")
	}
}

func TestEnclaveUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := transport.ParseAddr("tcp://" + l.Addr().String())
	l.Close()
	reg := NewRegistry(Sources{})
	enc := NewEnclave(addr, reg, nil)
	defer enc.Close()
	began := time.Now()
	fams := families(t, Gatherer(reg, enc))
	if one(t, fams, ns+"enclave_metrics_up") != 0 {
		t.Fatal("enclave_metrics_up is not 0")
	}
	if d := time.Since(began); d > FetchTimeout+time.Second {
		t.Fatalf("the scrape took %v", d)
	}
	if _, ok := fams[ns+"build_info"]; !ok {
		t.Fatal("the parent's series are gone")
	}
}
