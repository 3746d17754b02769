// Package metrics is the parent's Prometheus metrics: a private registry
// (pkg/metrics) of cosigner_parent_ series read at scrape time from the
// components' Stats snapshots (relay, egress proxy, ingress forwarder,
// enclave supervisor), and the relay of the enclave's own metrics.
//
// The enclave serves its registry on a listener of its own (vsock in
// production). Enclave fetches it on every scrape of the parent and
// serves its cosigner_enclave_ families beside the parent's; anything
// else the enclave sends is dropped and counted, so the two sets never
// collide. Whether the fetch worked is the parent's own
// cosigner_parent_enclave_metrics_up.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nitro-cosigner/nitro-cosigner/parent/egress"
	"github.com/nitro-cosigner/nitro-cosigner/parent/ingress"
	"github.com/nitro-cosigner/nitro-cosigner/parent/relay"
	"github.com/nitro-cosigner/nitro-cosigner/parent/supervise"
	shared "github.com/nitro-cosigner/nitro-cosigner/pkg/metrics"
)

// ns prefixes every series name.
const ns = shared.ParentNamespace + "_"

// Sources are the snapshots the registry reads at every scrape; nil ones
// are left out.
type Sources struct {
	Relay     func() relay.Stats     // (*relay.Relay).Stats
	Egress    func() egress.Stats    // (*egress.Proxy).Stats
	Ingress   func() ingress.Stats   // (*ingress.Forwarder).Stats
	Supervise func() supervise.Stats // (*supervise.Supervisor).Stats
}

// NewRegistry returns the parent's registry with collectors for the
// sources that are set.
func NewRegistry(src Sources) *prometheus.Registry {
	reg := shared.NewRegistry(shared.ParentNamespace, nil)
	if src.Relay != nil {
		reg.MustRegister(relayCollector(src.Relay))
	}
	if src.Egress != nil {
		reg.MustRegister(egressCollector(src.Egress))
	}
	if src.Ingress != nil {
		reg.MustRegister(ingressCollector(src.Ingress))
	}
	if src.Supervise != nil {
		reg.MustRegister(superviseCollector(src.Supervise))
	}
	return reg
}

func relayCollector(snap func() relay.Stats) prometheus.Collector {
	type s = relay.Stats
	return shared.Snapshot(snap,
		shared.Counter(ns+"relay_frames_out_total", "Frames from the enclave that the broker stored.", func(s s) float64 { return float64(s.FramesOut) }),
		shared.Counter(ns+"relay_frames_in_total", "Frames from the broker that the enclave acknowledged.", func(s s) float64 { return float64(s.FramesIn) }),
		shared.Counter(ns+"relay_publish_failures_total", "Failed publish attempts (retried).", func(s s) float64 { return float64(s.PublishFailures) }),
		shared.Counter(ns+"relay_publish_dropped_total", "Frames from the enclave given up: a permanent broker error or the publish timeout.", func(s s) float64 { return float64(s.PublishDropped) }),
		shared.Counter(ns+"relay_in_retried_total", "Inbox frames handed back to the broker for redelivery.", func(s s) float64 { return float64(s.InRetried) }),
		shared.Counter(ns+"relay_in_dropped_total", "Inbox frames above the enclave's size limit, dropped.", func(s s) float64 { return float64(s.InDropped) }),
		shared.Counter(ns+"relay_links_total", "Enclave links that completed the handshake.", func(s s) float64 { return float64(s.Links) }),
		shared.Gauge(ns+"relay_queue_frames", "Frames from the enclave waiting for a publisher (broker lag, outbound).", func(s s) float64 { return float64(s.QueueDepth) }),
		shared.Gauge(ns+"relay_queue_bytes", "Bytes of those frames.", func(s s) float64 { return float64(s.QueueBytes) }),
		shared.Gauge(ns+"relay_publishing_frames", "Frames being published now.", func(s s) float64 { return float64(s.Publishing) }),
		shared.Gauge(ns+"relay_in_flight_frames", "Inbox frames sent to the enclave and not yet acknowledged (broker lag, inbound).", func(s s) float64 { return float64(s.InFlight) }),
		shared.Gauge(ns+"relay_link_up", "1 while the enclave's link is up.", func(s s) float64 { return shared.Bool(s.LinkUp) }),
	)
}

func egressCollector(snap func() egress.Stats) prometheus.Collector {
	type s = egress.Stats
	return shared.Snapshot(snap,
		shared.Counter(ns+"egress_tunnels_total", "CONNECT tunnels established for the enclave.", func(s s) float64 { return float64(s.Allowed) }),
		shared.Counter(ns+"egress_denied_total", "CONNECT requests refused by the allowlist or as malformed.", func(s s) float64 { return float64(s.Denied) }),
		shared.Counter(ns+"egress_failures_total", "Allowed CONNECT requests whose target could not be reached.", func(s s) float64 { return float64(s.Failed) }),
		shared.Gauge(ns+"egress_active_tunnels", "Tunnels open or being dialled.", func(s s) float64 { return float64(s.Active) }),
		shared.Counter(ns+"egress_bytes_up_total", "Bytes from the enclave to its targets.", func(s s) float64 { return float64(s.BytesUp) }),
		shared.Counter(ns+"egress_bytes_down_total", "Bytes from the targets to the enclave.", func(s s) float64 { return float64(s.BytesDown) }),
	)
}

func ingressCollector(snap func() ingress.Stats) prometheus.Collector {
	type s = ingress.Stats
	return shared.Snapshot(snap,
		shared.Counter(ns+"ingress_connections_total", "API connections forwarded to the enclave.", func(s s) float64 { return float64(s.Forwarded) }),
		shared.Counter(ns+"ingress_rejected_total", "API connections closed at once: too many open.", func(s s) float64 { return float64(s.Rejected) }),
		shared.Counter(ns+"ingress_dial_failures_total", "API connections closed at once: the enclave could not be dialled.", func(s s) float64 { return float64(s.DialFailed) }),
		shared.Gauge(ns+"ingress_active_connections", "API connections being forwarded now.", func(s s) float64 { return float64(s.Active) }),
		shared.Counter(ns+"ingress_bytes_in_total", "Bytes from API clients to the enclave.", func(s s) float64 { return float64(s.BytesIn) }),
		shared.Counter(ns+"ingress_bytes_out_total", "Bytes from the enclave to API clients.", func(s s) float64 { return float64(s.BytesOut) }),
	)
}

func superviseCollector(snap func() supervise.Stats) prometheus.Collector {
	type s = supervise.Stats
	series := shared.Snapshot(snap,
		shared.Gauge(ns+"enclave_running", "1 while an enclave this parent started runs.", func(s s) float64 { return shared.Bool(s.Running) }),
		shared.Gauge(ns+"enclave_healthy", "1 while it passes its health probe.", func(s s) float64 { return shared.Bool(s.Healthy) }),
		shared.Gauge(ns+"enclave_start_timestamp_seconds", "When the running enclave was started (Unix time; 0 if none).", func(s s) float64 {
			if s.Since.IsZero() {
				return 0
			}
			return float64(s.Since.UnixNano()) / 1e9
		}),
		shared.Counter(ns+"enclave_starts_total", "Enclaves started with nitro-cli run-enclave.", func(s s) float64 { return float64(s.Starts) }),
		shared.Counter(ns+"enclave_probe_failures_total", "Failed health probes of enclaves that had been healthy.", func(s s) float64 { return float64(s.ProbeFailures) }),
	)
	restarts := prometheus.NewDesc(ns+"enclave_restarts_total",
		"Enclaves started again, by reason (start_failed, exited, boot_timeout, unhealthy).", []string{"reason"}, nil)
	byReason := shared.NewCollector([]*prometheus.Desc{restarts}, func(ch chan<- prometheus.Metric) {
		st := snap()
		for _, r := range supervise.Reasons {
			ch <- prometheus.MustNewConstMetric(restarts, prometheus.CounterValue, float64(st.Restarts[r]), string(r))
		}
	})
	return shared.Join(series, byReason)
}
