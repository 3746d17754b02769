// Package metrics is the enclave's Prometheus metrics: one private
// registry (pkg/metrics) holding every cosigner_enclave_ series, fed two
// ways.
//
// Most figures are read at scrape time from the Stats snapshots the
// packages already keep (Watch): presignature pools (mpc.Engine.Pools),
// frames accepted and dropped by reason (peer.Stats with the wire
// Receiver's counters), the parent link (link.Stats) and S3 replication
// (keystore.ReplicationStats). The rest needs an event, which the owning
// package hands to a hook here: a session's end (mpc.Config.OnSessionEnd),
// a frame's acceptance (peer.Config.OnAccept); and wrappers time what
// passes through them: the engine's transport (round latencies), the
// approval callback, the NSM attestation calls.
//
// What the series may reveal: the enclave serves them to its parent, which
// is untrusted. They hold counts, durations, key IDs and cosigner IDs,
// which the parent could learn from the frames it relays anyway; never a
// payload, a digest being signed, a policy decision's subject, or a
// secret. Label values come from fixed sets (operations, outcomes, drop
// reasons), from this enclave's own keys, or from authenticated roster
// members; never from unauthenticated input.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	shared "github.com/nitro-cosigner/nitro-cosigner/pkg/metrics"
)

// ns prefixes every series name.
const ns = shared.EnclaveNamespace + "_"

// Buckets for durations from a millisecond (an online sign) to minutes (a
// keygen on a busy host), and for frame transit.
var (
	durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	transitBuckets  = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
)

// Metrics is the enclave's registry and its hooks. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	sessions *prometheus.HistogramVec
	rounds   *prometheus.HistogramVec
	transit  *prometheus.HistogramVec
	approval *prometheus.HistogramVec
	attests  *prometheus.CounterVec
	attestAt prometheus.Gauge
	tracker  *roundTracker
}

// New returns the enclave's registry with its event series; extra labels
// go on cosigner_enclave_build_info.
func New(extra prometheus.Labels) *Metrics {
	m := &Metrics{reg: shared.NewRegistry(shared.EnclaveNamespace, extra), tracker: newRoundTracker()}
	m.sessions = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: ns + "mpc_session_duration_seconds", Buckets: durationBuckets,
		Help: "MPC sessions this party ran, by operation and outcome (ok, aborted, peer_aborted, deadline, canceled, store_failed, error), and how long they took.",
	}, []string{"op", "outcome"})
	m.rounds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: ns + "mpc_round_duration_seconds", Buckets: durationBuckets,
		Help: "Time from this party's first message of the previous round to its first message of this round: waiting for peers plus computing. Observed when the session ends.",
	}, []string{"op", "round"})
	m.transit = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: ns + "frame_transit_seconds", Buckets: transitBuckets,
		Help: "Age of accepted frames on arrival (sender's timestamp to our clock): both parents and the broker, plus clock skew; by authenticated sender.",
	}, []string{"from"})
	m.approval = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: ns + "approval_duration_seconds", Buckets: durationBuckets,
		Help: "Approval callback requests by outcome (approve, reject, retry, timeout, transport, bad_signature, expired, mismatch, unexpected, error), and how long they took.",
	}, []string{"outcome"})
	m.attests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: ns + "attestations_total",
		Help: "Attestation documents asked of the NSM for the frame identity (at boot and on every refresh), by result (ok, failed).",
	}, []string{"result"})
	m.attestAt = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: ns + "attestation_last_success_timestamp_seconds",
		Help: "When the NSM last produced the frame identity's attestation document (Unix time).",
	})
	m.reg.MustRegister(m.sessions, m.rounds, m.transit, m.approval, m.attests, m.attestAt)
	return m
}

// Gatherer returns the registry, for serving.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Register adds a collector to the registry.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }
