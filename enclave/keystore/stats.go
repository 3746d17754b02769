package keystore

import (
	"sync/atomic"
	"time"
)

// ReplicationStats counts the Replicator's work since the Store was
// opened, for metrics. Replication is synchronous (a mutation is
// acknowledged only once its record is durable), so Duration over
// Replicated+Failed is the replication lag each mutation waited for.
type ReplicationStats struct {
	Replicated uint64        // records the Replicator made durable
	Failed     uint64        // records it did not (their mutations failed)
	Duration   time.Duration // time spent in Replicate, both kinds
	LastOK     time.Time     // when the last record became durable; zero if none
	Compacted  uint64        // snapshots the Compactor took
	CompactErr uint64        // compactions that failed (mutations unaffected)
	Halted     bool          // the store refuses mutations (fenced or closed)
}

// replStats are the atomic counters behind ReplicationStats.
type replStats struct {
	replicated, failed, nanos, compacted, compactErr atomic.Uint64
	lastOK                                           atomic.Int64 // unix nanoseconds
}

func (r *replStats) replicate(began time.Time, err error) {
	now := time.Now()
	r.nanos.Add(uint64(max(now.Sub(began), 0)))
	if err != nil {
		r.failed.Add(1)
		return
	}
	r.replicated.Add(1)
	r.lastOK.Store(now.UnixNano())
}

func (r *replStats) compact(err error) {
	if err != nil {
		r.compactErr.Add(1)
		return
	}
	r.compacted.Add(1)
}

// ReplicationStats returns the replication counters. A Store without a
// Replicator reports zeros.
func (s *Store) ReplicationStats() ReplicationStats {
	st := ReplicationStats{
		Replicated: s.rstats.replicated.Load(), Failed: s.rstats.failed.Load(),
		Duration:  time.Duration(s.rstats.nanos.Load()),
		Compacted: s.rstats.compacted.Load(), CompactErr: s.rstats.compactErr.Load(),
		Halted: s.halted() != nil,
	}
	if ns := s.rstats.lastOK.Load(); ns != 0 {
		st.LastOK = time.Unix(0, ns)
	}
	return st
}
