package hostpath_test

// The Grafana dashboard (deploy/grafana) names the series both daemons
// export. This test fails when a panel names a series that neither
// registry has, so that renaming a metric without the dashboard is caught.

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/approval"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/link"
	enclavemetrics "github.com/nitro-cosigner/nitro-cosigner/enclave/metrics"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/peer"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/workspace"
	"github.com/nitro-cosigner/nitro-cosigner/parent/egress"
	"github.com/nitro-cosigner/nitro-cosigner/parent/ingress"
	parentmetrics "github.com/nitro-cosigner/nitro-cosigner/parent/metrics"
	"github.com/nitro-cosigner/nitro-cosigner/parent/relay"
	"github.com/nitro-cosigner/nitro-cosigner/parent/supervise"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

const dashboard = "../../deploy/grafana/nitro-cosigner.json"

type nopTransport struct{}

func (nopTransport) Send(context.Context, mpc.Envelope) error { return nil }
func (nopTransport) Receive(ctx context.Context) (mpc.Envelope, error) {
	<-ctx.Done()
	return mpc.Envelope{}, ctx.Err()
}

type approve struct{}

func (approve) Ask(context.Context, approval.Request) (approval.Decision, error) {
	return approval.Decision{Verdict: approval.Approve}, nil
}

// allSeries returns every series name both registries can export, with
// the _bucket, _count and _sum series of histograms and summaries.
func allSeries(t *testing.T) map[string]bool {
	t.Helper()
	em := enclavemetrics.New(nil)
	if err := em.Watch(enclavemetrics.Sources{
		Pools:            func() []mpc.PoolStats { return []mpc.PoolStats{{}} },
		Peer:             func() peer.Stats { return peer.Stats{} },
		Link:             func() link.Stats { return link.Stats{} },
		Replication:      func() keystore.ReplicationStats { return keystore.ReplicationStats{} },
		Workspace:        func() workspace.Stats { return workspace.Stats{} },
		WorkspaceVersion: func() uint64 { return 1 },
	}); err != nil {
		t.Fatal(err)
	}
	var sid mpc.SessionID
	tr := em.Transport(nopTransport{})
	tr.Send(context.Background(), mpc.Envelope{Session: sid, Round: 1})
	tr.Send(context.Background(), mpc.Envelope{Session: sid, Round: 2})
	em.SessionEnded(mpc.SessionEnd{Session: sid, Op: mpc.OpSign})
	em.FrameAccepted("bob", time.Now())
	em.Approver(approve{}).Ask(context.Background(), approval.Request{})
	em.Attest(func(context.Context) ([]byte, error) { return nil, nil })(context.Background())

	reg := parentmetrics.NewRegistry(parentmetrics.Sources{
		Relay: func() relay.Stats { return relay.Stats{} }, Egress: func() egress.Stats { return egress.Stats{} },
		Ingress: func() ingress.Stats { return ingress.Stats{} }, Supervise: func() supervise.Stats { return supervise.Stats{} },
	})
	addr, _ := transport.ParseAddr("unix:///nonexistent/metrics.sock")
	parentmetrics.NewEnclave(addr, reg, nil)

	names := map[string]bool{}
	for _, g := range []prometheus.Gatherer{em.Gatherer(), reg} {
		fams, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range fams {
			n := mf.GetName()
			names[n] = true
			if mf.GetType() == dto.MetricType_HISTOGRAM || mf.GetType() == dto.MetricType_SUMMARY {
				names[n+"_bucket"], names[n+"_count"], names[n+"_sum"] = true, true, true
			}
		}
	}
	return names
}

// exprs returns every query of the dashboard's panels.
func exprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	if d.UID == "" || len(out) < 30 {
		t.Fatalf("%s: uid %q, %d queries", dashboard, d.UID, len(out))
	}
	return out
}

var seriesName = regexp.MustCompile(`cosigner_(?:enclave|parent)_[a-z0-9_]+`)

func TestDashboardNamesExist(t *testing.T) {
	names := allSeries(t)
	used := map[string]bool{}
	for _, e := range exprs(t) {
		for _, n := range seriesName.FindAllString(e, -1) {
			used[n] = true
			if !names[n] {
				t.Errorf("the dashboard queries %s, which neither daemon exports (in %q)", n, e)
			}
		}
	}
	for _, want := range []string{
		"cosigner_enclave_mpc_session_duration_seconds_count", "cosigner_enclave_mpc_round_duration_seconds_bucket",
		"cosigner_enclave_presign_pool_depth", "cosigner_enclave_presign_pool_made_total",
		"cosigner_enclave_frames_dropped_total", "cosigner_enclave_frame_transit_seconds_bucket",
		"cosigner_enclave_approval_duration_seconds_bucket", "cosigner_enclave_replication_duration_seconds_sum",
		"cosigner_enclave_replication_failures_total", "cosigner_enclave_attestation_refreshes_total",
		"cosigner_enclave_build_info", "cosigner_parent_build_info", "cosigner_parent_enclave_restarts_total",
	} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}
