package hostpath_test

// This test runs both ends of the metrics path: the enclave's registry
// (enclave/metrics) served as cosigner-enclave serves it, and a whole
// parent (parent/app) started with --metrics-listen and --enclave-metrics,
// as the devnet would start it.

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	enclavemetrics "github.com/nitro-cosigner/nitro-cosigner/enclave/metrics"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/peer"
	"github.com/nitro-cosigner/nitro-cosigner/parent/app"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/metrics"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// readyHandler notes the parent's metrics address and readiness.
type readyHandler struct {
	addr  chan string
	ready chan struct{}
}

func (h readyHandler) Handle(ctx context.Context, r slog.Record) error {
	switch r.Message {
	case "listening":
		var comp, addr string
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "component":
				comp = a.Value.String()
			case "addr":
				addr = a.Value.String()
			}
			return true
		})
		if comp == "metrics" {
			h.addr <- addr
		}
	case "parent ready":
		close(h.ready)
	}
	return nil
}

func (h readyHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h readyHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h readyHandler) WithGroup(string) slog.Handler            { return h }

func TestMetricsRelayed(t *testing.T) {
	// The enclave side.
	em := enclavemetrics.New(map[string]string{"nsm": "simulator"})
	err := em.Watch(enclavemetrics.Sources{
		Pools: func() []mpc.PoolStats { return []mpc.PoolStats{{Signers: []mpc.PartyID{"alice", "bob"}, Depth: 3}} },
		Peer: func() peer.Stats {
			return peer.Stats{Wire: wire.Stats{Dropped: map[wire.DropReason]uint64{wire.DropBadSignature: 2}}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	em.SessionEnded(mpc.SessionEnd{Op: mpc.OpSign, Took: 2 * time.Second})
	em.FrameAccepted("bob", time.Now().Add(-50*time.Millisecond))
	sock := "unix://" + filepath.Join(t.TempDir(), "enclave-metrics.sock")
	l, err := transport.Listen(t.Context(), sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	enclaveDone := make(chan error, 1)
	go func() { enclaveDone <- metrics.Serve(ctx, l, em.Gatherer(), nil) }()

	// The parent side.
	h := readyHandler{addr: make(chan string, 1), ready: make(chan struct{})}
	parentDone := make(chan error, 1)
	go func() {
		parentDone <- app.Run(ctx, app.Config{MetricsListen: "tcp://127.0.0.1:0", EnclaveMetrics: sock}, slog.New(h))
	}()
	var addr string
	select {
	case addr = <-h.addr:
		<-h.ready
	case err := <-parentDone:
		t.Fatalf("parent: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the parent is not ready")
	}

	resp, err := http.Get("http://" + strings.TrimPrefix(addr, "tcp://") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	served, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()

	// Every family the enclave has reaches the parent's /metrics whole.
	own, err := em.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range own {
		got, ok := served[mf.GetName()]
		switch {
		case !ok:
			t.Errorf("%s is not relayed", mf.GetName())
		case len(got.GetMetric()) != len(mf.GetMetric()):
			t.Errorf("%s: %d series relayed, the enclave has %d", mf.GetName(), len(got.GetMetric()), len(mf.GetMetric()))
		}
	}
	for _, name := range []string{"cosigner_parent_build_info", "cosigner_parent_enclave_metrics_up",
		"cosigner_enclave_mpc_session_duration_seconds", "cosigner_enclave_frames_dropped_total",
		"cosigner_enclave_presign_pool_depth", "cosigner_enclave_frame_transit_seconds"} {
		if _, ok := served[name]; !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if up := served["cosigner_parent_enclave_metrics_up"].GetMetric()[0].GetGauge().GetValue(); up != 1 {
		t.Errorf("enclave_metrics_up = %v", up)
	}
	if v := served["cosigner_parent_enclave_metrics_rejected_families_total"].GetMetric()[0].GetCounter().GetValue(); v != 0 {
		t.Errorf("%v of the enclave's families were rejected", v)
	}

	cancel()
	for _, done := range []chan error{parentDone, enclaveDone} {
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("not stopped")
		}
	}
}
