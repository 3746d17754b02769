package metrics

import (
	"cmp"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/link"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/peer"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/workspace"
	shared "github.com/nitro-cosigner/nitro-cosigner/pkg/metrics"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// Sources are the snapshots Watch reads at every scrape; nil ones are
// left out.
type Sources struct {
	Pools       func() []mpc.PoolStats           // (*mpc.Engine).Pools
	Peer        func() peer.Stats                // (*peer.Peer).Stats
	Link        func() link.Stats                // (*link.Client).Stats
	Replication func() keystore.ReplicationStats // (*keystore.Store).ReplicationStats
	Workspace   func() workspace.Stats           // (*workspace.Manager).Stats
	// WorkspaceVersion is the workspace version held (0: none).
	WorkspaceVersion func() uint64
}

// Watch registers collectors for the sources that are set.
func (m *Metrics) Watch(s Sources) error {
	var cs []prometheus.Collector
	if s.Pools != nil {
		cs = append(cs, poolCollector(s.Pools))
	}
	if s.Peer != nil {
		cs = append(cs, peerCollector(s.Peer), dropCollector(s.Peer))
	}
	if s.Link != nil {
		cs = append(cs, linkCollector(s.Link))
	}
	if s.Replication != nil {
		cs = append(cs, replicationCollector(s.Replication))
	}
	if s.Workspace != nil && s.WorkspaceVersion != nil {
		cs = append(cs, workspaceCollector(s.Workspace, s.WorkspaceVersion))
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func workspaceCollector(snap func() workspace.Stats, version func() uint64) prometheus.Collector {
	type s = workspace.Stats
	return shared.Snapshot(snap,
		shared.Counter(ns+"pairing_requests_total", "Pairing requests received from cosigners that want to join.", func(s s) float64 { return float64(s.PairingRequests) }),
		shared.Counter(ns+"pairing_refused_total", "Pairing requests refused (token, attestation, keys; see the audit log).", func(s s) float64 { return float64(s.PairingRefused) }),
		shared.Counter(ns+"workspace_versions_applied_total", "Workspace versions stored (bootstrap, approved here, or received).", func(s s) float64 { return float64(s.VersionsApplied) }),
		shared.Counter(ns+"workspace_versions_refused_total", "Workspace versions refused: stale, forked or without the admin quorum.", func(s s) float64 { return float64(s.VersionsRefused) }),
		shared.Counter(ns+"workspace_messages_dropped_total", "Workspace messages dropped: malformed or the queue full.", func(s s) float64 { return float64(s.Dropped) }),
		shared.Gauge(ns+"workspace_version", "The workspace version this cosigner holds.", func(s) float64 { return float64(version()) }),
	)
}

func peerCollector(snap func() peer.Stats) prometheus.Collector {
	type s = peer.Stats
	return shared.Snapshot(snap,
		shared.Counter(ns+"frames_sent_total", "Frames sealed and handed to the parent link.", func(s s) float64 { return float64(s.Sent) }),
		shared.Counter(ns+"frame_send_failures_total", "Envelopes that could not be sealed or handed to the link.", func(s s) float64 { return float64(s.SendFailed) }),
		shared.Counter(ns+"frames_accepted_total", "Frames that passed every check of the wire layer.", func(s s) float64 { return float64(s.Wire.Accepted) }),
		shared.Counter(ns+"frames_held_total", "Frames held because the attestation document they name had not arrived yet.", func(s s) float64 { return float64(s.Held) }),
		shared.Counter(ns+"frames_held_accepted_total", "Held frames accepted once their document arrived.", func(s s) float64 { return float64(s.HeldAccepted) }),
		shared.Gauge(ns+"attestations_cached", "Peers' verified attestation documents in the cache.", func(s s) float64 { return float64(s.Wire.CachedAttestations) }),
		shared.Gauge(ns+"replay_guard_sessions", "Sessions the replay guard remembers.", func(s s) float64 { return float64(s.Wire.ReplaySessions) }),
		shared.Gauge(ns+"replay_guard_entries", "Frames the replay guard remembers.", func(s s) float64 { return float64(s.Wire.ReplayEntries) }),
		shared.Counter(ns+"attestation_refreshes_total", "Times the frame identity's attestation document was replaced by a fresh one.", func(s s) float64 { return float64(s.Refreshed) }),
	)
}

// queueFull is the drop reason of accepted frames the engine's queue had
// no room for (peer.Stats.QueueFull), beside wire's reasons.
const queueFull = "queue_full"

func dropCollector(snap func() peer.Stats) prometheus.Collector {
	desc := prometheus.NewDesc(ns+"frames_dropped_total",
		"Incoming frames dropped, by reason: the wire layer's checks, or queue_full.", []string{"reason"}, nil)
	return shared.NewCollector([]*prometheus.Desc{desc}, func(ch chan<- prometheus.Metric) {
		s := snap()
		for _, r := range wire.DropReasons() {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(s.Wire.Dropped[r]), r.String())
		}
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(s.QueueFull), queueFull)
	})
}

func linkCollector(snap func() link.Stats) prometheus.Collector {
	type s = link.Stats
	return shared.Snapshot(snap,
		shared.Gauge(ns+"link_up", "1 while the link to the parent relay is up.", func(s s) float64 { return shared.Bool(s.Connected) }),
		shared.Counter(ns+"link_connects_total", "Links to the parent relay established.", func(s s) float64 { return float64(s.Connects) }),
		shared.Counter(ns+"link_records_sent_total", "Outgoing frame records written to the parent, first time or again.", func(s s) float64 { return float64(s.Sent) }),
		shared.Counter(ns+"link_records_resent_total", "Outgoing frame records written again on a later link.", func(s s) float64 { return float64(s.Resent) }),
		shared.Counter(ns+"link_frames_acked_total", "Outgoing frames the parent acknowledged (stored by the broker).", func(s s) float64 { return float64(s.Acked) }),
		shared.Counter(ns+"link_frames_dropped_total", "Outgoing frames dropped: larger than the parent accepts.", func(s s) float64 { return float64(s.Dropped) }),
		shared.Counter(ns+"link_frames_received_total", "Incoming frames taken from the parent and acknowledged.", func(s s) float64 { return float64(s.Received) }),
		shared.Gauge(ns+"link_unacked_frames", "Outgoing frames held until the parent acknowledges them.", func(s s) float64 { return float64(s.Unacked) }),
	)
}

func replicationCollector(snap func() keystore.ReplicationStats) prometheus.Collector {
	type s = keystore.ReplicationStats
	dur := prometheus.NewDesc(ns+"replication_duration_seconds",
		"Time each change waited for S3 (replication is synchronous: this is the replication lag), successes and failures.", nil, nil)
	series := shared.Snapshot(snap,
		shared.Counter(ns+"replication_records_total", "Changes made durable in S3.", func(s s) float64 { return float64(s.Replicated) }),
		shared.Counter(ns+"replication_failures_total", "Changes S3 did not take (each failed its mutation).", func(s s) float64 { return float64(s.Failed) }),
		shared.Gauge(ns+"replication_last_success_timestamp_seconds", "When the last change became durable in S3 (Unix time; 0 if none since boot).", func(s s) float64 {
			if s.LastOK.IsZero() {
				return 0
			}
			return float64(s.LastOK.UnixNano()) / 1e9
		}),
		shared.Counter(ns+"replication_snapshots_total", "Snapshots uploaded by compaction.", func(s s) float64 { return float64(s.Compacted) }),
		shared.Counter(ns+"replication_snapshot_failures_total", "Compactions that failed (the changes stay durable as segments).", func(s s) float64 { return float64(s.CompactErr) }),
		shared.Gauge(ns+"keystore_halted", "1 once the keystore refuses changes (fenced by another instance, or closed).", func(s s) float64 { return shared.Bool(s.Halted) }),
	)
	summary := shared.NewCollector([]*prometheus.Desc{dur}, func(ch chan<- prometheus.Metric) {
		s := snap()
		ch <- prometheus.MustNewConstSummary(dur, s.Replicated+s.Failed, s.Duration.Seconds(), nil)
	})
	return shared.Join(series, summary)
}

// maxPoolSeries bounds the pools reported one by one; the rest are summed
// under key and signers "_other".
const maxPoolSeries = 64

// other labels the pools past maxPoolSeries.
const other = "_other"

type poolSeries struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(mpc.PoolStats) float64
}

func poolCollector(snap func() []mpc.PoolStats) prometheus.Collector {
	labels := []string{"key", "signers"}
	gauge := func(name, help string, v func(mpc.PoolStats) float64) poolSeries {
		return poolSeries{prometheus.NewDesc(ns+name, help, labels, nil), prometheus.GaugeValue, v}
	}
	counter := func(name, help string, v func(mpc.PoolStats) float64) poolSeries {
		return poolSeries{prometheus.NewDesc(ns+name, help, labels, nil), prometheus.CounterValue, v}
	}
	series := []poolSeries{
		gauge("presign_pool_depth", "Presignatures ready to use.", func(p mpc.PoolStats) float64 { return float64(p.Depth) }),
		gauge("presign_pool_claimed", "Presignatures named for a sign that has not started.", func(p mpc.PoolStats) float64 { return float64(p.Claimed) }),
		gauge("presign_pool_in_flight", "Presign sessions running for the pool.", func(p mpc.PoolStats) float64 { return float64(p.InFlight) }),
		gauge("presign_pool_target", "Depth the pool refills to.", func(p mpc.PoolStats) float64 { return float64(p.Target) }),
		gauge("presign_pool_low_water", "Depth below which the pool refills.", func(p mpc.PoolStats) float64 { return float64(p.LowWater) }),
		gauge("presign_pool_refill_per_minute", "Presignatures added per minute over the last few additions.", func(p mpc.PoolStats) float64 { return p.RefillPerMinute }),
		counter("presign_pool_made_total", "Presignatures added to the pool.", func(p mpc.PoolStats) float64 { return float64(p.Made) }),
		counter("presign_pool_consumed_total", "Presignatures taken for a sign.", func(p mpc.PoolStats) float64 { return float64(p.Consumed) }),
		counter("presign_pool_failed_total", "Presign sessions for the pool that failed.", func(p mpc.PoolStats) float64 { return float64(p.Failed) }),
		counter("presign_pool_evicted_total", "Presignatures evicted (capacity, age, or an older key epoch).", func(p mpc.PoolStats) float64 { return float64(p.Evicted) }),
	}
	count := prometheus.NewDesc(ns+"presign_pools", "Presignature pools (one per key and signer set).", nil, nil)
	descs := []*prometheus.Desc{count}
	for _, s := range series {
		descs = append(descs, s.desc)
	}
	return shared.NewCollector(descs, func(ch chan<- prometheus.Metric) {
		pools := snap()
		ch <- prometheus.MustNewConstMetric(count, prometheus.GaugeValue, float64(len(pools)))
		for _, row := range poolRows(pools) {
			for _, s := range series {
				ch <- prometheus.MustNewConstMetric(s.desc, s.kind, s.value(row.stats), row.key, row.signers)
			}
		}
	})
}

type poolRow struct {
	key, signers string
	stats        mpc.PoolStats
}

// poolRows labels each pool, in a stable order, summing the pools past
// maxPoolSeries into one row.
func poolRows(pools []mpc.PoolStats) []poolRow {
	rows := make([]poolRow, 0, min(len(pools), maxPoolSeries+1))
	for _, p := range pools {
		rows = append(rows, poolRow{key: p.Key.String(), signers: joinParties(p.Signers), stats: p})
	}
	slices.SortFunc(rows, func(a, b poolRow) int {
		return cmp.Or(strings.Compare(a.key, b.key), strings.Compare(a.signers, b.signers))
	})
	if len(rows) <= maxPoolSeries {
		return rows
	}
	rest := poolRow{key: other, signers: other}
	for _, r := range rows[maxPoolSeries:] {
		rest.stats = addPools(rest.stats, r.stats)
	}
	return append(rows[:maxPoolSeries], rest)
}

func addPools(a, b mpc.PoolStats) mpc.PoolStats {
	a.Depth += b.Depth
	a.Claimed += b.Claimed
	a.InFlight += b.InFlight
	a.Target += b.Target
	a.LowWater += b.LowWater
	a.RefillPerMinute += b.RefillPerMinute
	a.Made += b.Made
	a.Consumed += b.Consumed
	a.Failed += b.Failed
	a.Evicted += b.Evicted
	return a
}

func joinParties(ids []mpc.PartyID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}
