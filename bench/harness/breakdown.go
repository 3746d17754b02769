//go:build !release

package harness

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The enclave series a sign's time is broken down with (enclave/metrics),
// each a histogram or summary whose _sum and _count the harness reads
// before and after a load, summed over every cosigner.
const (
	seriesApproval    = "cosigner_enclave_approval_duration_seconds"
	seriesReplication = "cosigner_enclave_replication_duration_seconds"
	seriesSession     = "cosigner_enclave_mpc_session_duration_seconds"
	seriesTransit     = "cosigner_enclave_frame_transit_seconds"
)

// tally is a series' total time and observation count.
type tally struct{ sum, count float64 }

func (t tally) minus(o tally) tally { return tally{t.sum - o.sum, t.count - o.count} }

// meanMs is the mean observation in milliseconds; 0 with none.
func (t tally) meanMs() float64 {
	if t.count <= 0 {
		return 0
	}
	return t.sum / t.count * 1000
}

// tallies are the breakdown's series, by name (sessions by name and op:
// "NAME{op}").
type tallies map[string]tally

func (t tallies) minus(o tallies) tallies {
	out := tallies{}
	for k, v := range t {
		out[k] = v.minus(o[k])
	}
	return out
}

// scrape reads the breakdown's series from every cosigner's parent
// (/metrics relays the enclave's series).
func (s *stack) scrape(ctx context.Context) (tallies, error) {
	out := tallies{}
	for _, c := range s.info.Cosigners {
		fams, err := fetchMetrics(ctx, c.Metrics)
		if err != nil {
			return nil, fmt.Errorf("%s's metrics: %w", c.ID, err)
		}
		for _, name := range []string{seriesApproval, seriesReplication, seriesSession, seriesTransit} {
			f := fams[name]
			if f == nil {
				continue
			}
			for _, m := range f.GetMetric() {
				key := name
				if name == seriesSession {
					key = name + "{" + label(m, "op") + "}"
				}
				t := out[key]
				sum, count := observed(m)
				out[key] = tally{t.sum + sum, t.count + count}
			}
		}
	}
	return out, nil
}

func fetchMetrics(ctx context.Context, hostport string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostport+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func observed(m *dto.Metric) (sum, count float64) {
	if h := m.GetHistogram(); h != nil {
		return h.GetSampleSum(), float64(h.GetSampleCount())
	}
	if sm := m.GetSummary(); sm != nil {
		return sm.GetSampleSum(), float64(sm.GetSampleCount())
	}
	return 0, 0
}

// breakdown is where a load's signs spent their time, per sign, from the
// enclaves' own series: the approval calls and durable S3 writes every
// signer makes (the initiator's judge, then the others', one after the
// other), the MPC sessions, and the frames' transit.
type breakdown struct {
	approvalMs, approvalsPerSign float64
	writeMs, writesPerSign       float64 // per signer
	sessionMs                    float64
	transitMs, framesPerSign     float64
}

// newBreakdown reads the differences d over a load of signs signs by
// signers signers each. Every MPC session but presign counts: a warm
// one-client load runs no refill.
func newBreakdown(d tallies, signs, signers int) breakdown {
	per := func(n float64) float64 { return n / float64(signs) }
	var session tally
	for k, v := range d {
		if strings.HasPrefix(k, seriesSession+"{") && k != seriesSession+"{presign}" {
			session = tally{session.sum + v.sum, session.count + v.count}
		}
	}
	return breakdown{
		approvalMs: d[seriesApproval].meanMs(), approvalsPerSign: per(d[seriesApproval].count),
		writeMs: d[seriesReplication].meanMs(), writesPerSign: per(d[seriesReplication].count) / float64(signers),
		sessionMs: session.meanMs(),
		transitMs: d[seriesTransit].meanMs(), framesPerSign: per(d[seriesTransit].count),
	}
}

// add reports the breakdown's figures for kind (online_sign, frost_sign)
// on devnet.
func (b breakdown) add(sec *section, kind, devnet string) {
	sec.add(kind+"_approval_ms_"+devnet, b.approvalMs, "ms")
	sec.add(kind+"_s3_write_ms_"+devnet, b.writeMs, "ms")
	sec.add(kind+"_s3_writes_per_signer_"+devnet, b.writesPerSign, "writes")
	sec.add(kind+"_session_ms_"+devnet, b.sessionMs, "ms")
	sec.add(kind+"_frame_transit_ms_"+devnet, b.transitMs, "ms")
}

// String says, in words, where a sign's time went.
func (b breakdown) String() string {
	var parts []string
	if b.approvalsPerSign > 0 {
		parts = append(parts, fmt.Sprintf("%.0f approval calls of %.1f ms", b.approvalsPerSign, b.approvalMs))
	}
	if b.writesPerSign > 0 {
		parts = append(parts, fmt.Sprintf("%.1f durable S3 writes of %.1f ms on each signer (its judge's audit entries "+
			"and spend reservations; on the initiator, the API's idempotency record too)", b.writesPerSign, b.writeMs))
	}
	parts = append(parts, fmt.Sprintf("an MPC session of %.1f ms", b.sessionMs))
	if b.framesPerSign > 0 {
		parts = append(parts, fmt.Sprintf("%.0f frames of %.1f ms transit each (parent, broker, parent)", b.framesPerSign, b.transitMs))
	}
	return strings.Join(parts, ", ")
}
