//go:build !release

package harness

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/sealed"
)

// defaultShareSize stands in for a real CMP 2-of-3 share when no library
// keygen ran (it is close to one).
const defaultShareSize = 3100

// snapshotEvery is the replica's default compaction period in mutations
// (enclave/replica: SnapshotSegments).
const snapshotEvery = 1000

// storage measures restore time, S3 bytes per key and memory per key with
// synthetic keys (see methodStorage).
func (r *run) storage(ctx context.Context) error {
	w, err := newSealedWorld()
	if err != nil {
		return err
	}
	defer w.close()
	if r.shareSize == 0 {
		r.shareSize = defaultShareSize
		r.report.note("No library keygen ran: synthetic shares are %d bytes.", defaultShareSize)
	}
	sizes := slices.Sorted(slices.Values(unique(append(slices.Clone(r.plan.restoreKeys), r.plan.bytesAtKeys...))))
	for _, n := range sizes {
		if err := r.build(ctx, w, n); err != nil {
			return err
		}
	}
	for _, n := range r.plan.restoreKeys {
		if err := r.restore(ctx, w, n); err != nil {
			return err
		}
	}
	for _, n := range r.plan.bytesAtKeys {
		if err := r.creationBytes(ctx, w, n); err != nil {
			return err
		}
	}
	return r.memoryPerKey(ctx, w, sizes[0], sizes[len(sizes)-1])
}

func unique(ns []int) []int {
	slices.Sort(ns)
	return slices.Compact(ns)
}

func stateID(n int) string { return "keys-" + keysLabel(n) }

// build makes a state of n keys, each created as one durable mutation.
func (r *run) build(ctx context.Context, w *sealedWorld, n int) error {
	r.log.Info("building a sealed state", "keys", n)
	id := stateID(n)
	if err := w.addCosigner(ctx, id); err != nil {
		return err
	}
	st, cleanup, err := r.open(ctx, w, id, sealed.Init)
	if err != nil {
		return err
	}
	defer cleanup()
	for i := range n {
		if err := st.Store.PutKey(ctx, syntheticKey(i, r.shareSize)); err != nil {
			return fmt.Errorf("PutKey %d: %w", i, err)
		}
	}
	return nil
}

// open runs boot (sealed.Init or sealed.Open) for cosigner id in a new
// directory; cleanup closes the state and removes the directory.
func (r *run) open(ctx context.Context, w *sealedWorld, id string,
	boot func(context.Context, sealed.Config) (*sealed.State, error)) (*sealed.State, func(), error) {
	dir, err := os.MkdirTemp("", "bench-sealed-")
	if err != nil {
		return nil, nil, err
	}
	cfg, err := w.config(id, dir)
	if err == nil {
		var st *sealed.State
		if st, err = boot(ctx, cfg); err == nil {
			return st, func() { st.Close(); os.RemoveAll(dir) }, nil
		}
	}
	os.RemoveAll(dir)
	return nil, nil, fmt.Errorf("%s: %w", id, err)
}

// restore times Open of the n-key state to its first key read.
func (r *run) restore(ctx context.Context, w *sealedWorld, n int) error {
	var times []time.Duration
	last := syntheticKey(n-1, 1).ID
	for range r.plan.restoreReps {
		began := time.Now()
		st, cleanup, err := r.open(ctx, w, stateID(n), sealed.Open)
		if err != nil {
			return err
		}
		_, err = st.Store.GetKey(ctx, last)
		took := time.Since(began)
		cleanup()
		if err != nil {
			return err
		}
		times = append(times, took)
	}
	secs := median(times).Seconds()
	r.report.section(secStorage, methodStorage).add(fmt.Sprintf("restore_s_%s_keys", keysLabel(n)), secs, "s").
		atMost(goalRestoreS, ours+"enclave/sealed's Open downloads, verifies and decrypts a snapshot of the whole "+
			"database and writes it out before serving; the time grows with the state.")
	return nil
}

// creationBytes measures the S3 bytes of key creations with n keys stored.
func (r *run) creationBytes(ctx context.Context, w *sealedWorld, n int) error {
	st, cleanup, err := r.open(ctx, w, stateID(n), sealed.Open)
	if err != nil {
		return err
	}
	defer cleanup()
	var snap countingWriter
	if _, err := st.Store.Snapshot(ctx, &snap); err != nil {
		return err
	}
	before := w.counter.total()
	for i := range r.plan.newKeys {
		if err := st.Store.PutKey(ctx, syntheticKey(n+i, r.shareSize)); err != nil {
			return err
		}
	}
	segment := float64(w.counter.total()-before) / float64(r.plan.newKeys)
	amortized := float64(snap) / snapshotEvery
	r.addCreationBytes(n, segment, amortized)
	return nil
}

func (r *run) addCreationBytes(n int, segment, amortized float64) {
	sec := r.report.section(secStorage, methodStorage)
	label := keysLabel(n)
	sec.add("s3_bytes_per_key_at_"+label, segment+amortized, "bytes").atMost(goalS3PerKey, fmt.Sprintf(
		ours+"enclave/replica compacts every %d mutations whatever the database's size: it uploads a snapshot of "+
			"the whole database (%.1f MB at %s keys), %.0f bytes per key created when shared over those %d, "+
			"so the cost per key grows with the number of keys stored; the key's own segment is %.0f bytes. A "+
			"compaction period that grows with the snapshot (say, compact once the segments since the last "+
			"snapshot add up to half its size) would keep the snapshot's share per mutation within a small "+
			"multiple of a segment, flat in database size, at the price of a longer tail to replay on restore "+
			"(restore_s_*).",
		snapshotEvery, amortized*snapshotEvery/1e6, label, amortized, snapshotEvery, segment))
	sec.add("s3_segment_bytes_per_key_at_"+label, segment, "bytes")
	sec.add("s3_snapshot_bytes_per_key_at_"+label, amortized, "bytes")
}

type countingWriter int64

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}

// memoryPerKey holds the smallest and the largest state in child
// processes and compares them.
func (r *run) memoryPerKey(ctx context.Context, w *sealedWorld, small, large int) error {
	if small == large {
		return nil
	}
	a, err := runHold(ctx, w, stateID(small))
	if err != nil {
		return err
	}
	b, err := runHold(ctx, w, stateID(large))
	if err != nil {
		return err
	}
	keys := float64(b.Keys - a.Keys)
	sec := r.report.section(secStorage, methodStorage)
	sec.add("rss_bytes_per_key", float64(b.RSS+b.DBBytes-a.RSS-a.DBBytes)/keys, "bytes")
	sec.add("rss_process_bytes_per_key", float64(b.RSS-a.RSS)/keys, "bytes")
	sec.add("rss_db_bytes_per_key", float64(b.DBBytes-a.DBBytes)/keys, "bytes")
	return nil
}
