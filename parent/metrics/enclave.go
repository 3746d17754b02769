package metrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	shared "github.com/nitro-cosigner/nitro-cosigner/pkg/metrics"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// Limits of one fetch of the enclave's metrics.
const (
	FetchTimeout = 5 * time.Second
	maxBody      = 8 << 20
	maxFamilies  = 2000
)

// enclavePrefix is the prefix every relayed family must have.
const enclavePrefix = shared.EnclaveNamespace + "_"

// Enclave is a prometheus.Gatherer of the enclave's metrics, fetched from
// its metrics address on every Gather. A failed fetch yields no families
// and no error (the parent's own series still serve), and shows in
// cosigner_parent_enclave_metrics_up.
type Enclave struct {
	client   *http.Client
	log      *slog.Logger
	up       prometheus.Gauge
	took     prometheus.Gauge
	failures prometheus.Counter
	rejected prometheus.Counter
	wasUp    atomic.Int32 // -1 unknown, 0 down, 1 up: log changes only
}

// NewEnclave returns the Gatherer for the enclave's metrics at addr and
// registers its own series (up, fetch duration, failures, rejected
// families) with reg. Serve both with Gatherer(reg, enclave).
func NewEnclave(addr transport.Addr, reg prometheus.Registerer, log *slog.Logger) *Enclave {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Enclave{
		client: &http.Client{
			Timeout: FetchTimeout,
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return transport.DialAddr(ctx, addr)
				},
				MaxIdleConns: 1, IdleConnTimeout: time.Minute, ResponseHeaderTimeout: FetchTimeout,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		log: log,
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "enclave_metrics_up",
			Help: "1 if the last fetch of the enclave's metrics worked."}),
		took: prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "enclave_metrics_fetch_duration_seconds",
			Help: "How long the last fetch of the enclave's metrics took."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "enclave_metrics_fetch_failures_total",
			Help: "Fetches of the enclave's metrics that failed."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "enclave_metrics_rejected_families_total",
			Help: "Metric families from the enclave dropped: not named " + enclavePrefix + "*, or past the limit."}),
	}
	e.wasUp.Store(-1)
	reg.MustRegister(e.up, e.took, e.failures, e.rejected)
	return e
}

// Gather implements prometheus.Gatherer.
func (e *Enclave) Gather() ([]*dto.MetricFamily, error) {
	began := time.Now()
	fams, err := e.fetch()
	e.took.Set(time.Since(began).Seconds())
	if err != nil {
		e.up.Set(0)
		e.failures.Inc()
		if e.wasUp.Swap(0) != 0 {
			e.log.Warn("cannot fetch the enclave's metrics", "err", err)
		}
		return nil, nil
	}
	e.up.Set(1)
	if e.wasUp.Swap(1) != 1 {
		e.log.Info("fetching the enclave's metrics")
	}
	return e.filter(fams), nil
}

// Close releases the idle connection.
func (e *Enclave) Close() { e.client.CloseIdleConnections() }

func (e *Enclave) fetch() (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(context.Background(), FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://enclave"+shared.Path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/plain" {
		return nil, errors.New("not the text exposition format")
	}
	body := io.LimitReader(resp.Body, maxBody+1)
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(body)
	if err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	if n, _ := io.Copy(io.Discard, body); n > 0 {
		return nil, fmt.Errorf("more than %d bytes", maxBody)
	}
	return fams, nil
}

// filter keeps the families named enclavePrefix*, up to maxFamilies, with
// their labels sorted.
func (e *Enclave) filter(fams map[string]*dto.MetricFamily) []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, name := range slices.Sorted(maps.Keys(fams)) {
		if !strings.HasPrefix(name, enclavePrefix) || len(out) == maxFamilies {
			e.rejected.Inc()
			continue
		}
		mf := fams[name]
		for _, m := range mf.GetMetric() {
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return cmp.Compare(a.GetName(), b.GetName()) })
		}
		out = append(out, mf)
	}
	return out
}

// Gatherer returns what the parent serves: the enclave's families, when
// enclave is not nil, then reg's (in that order, so that reg's fetch
// series describe the fetch of the same scrape).
func Gatherer(reg *prometheus.Registry, enclave *Enclave) prometheus.Gatherer {
	if enclave == nil {
		return reg
	}
	return prometheus.Gatherers{enclave, reg}
}
