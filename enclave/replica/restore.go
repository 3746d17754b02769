package replica

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// restoreAttempts bounds Restore's retries when the state moves under it
// (another instance writing or compacting at the same time).
const restoreAttempts = 5

// Init starts a new cosigner: it creates an empty keystore in dir, uploads
// its snapshot as generation 1 and writes the first manifest with
// If-None-Match. It refuses with ErrExists if anything is stored under the
// prefix. This is the only way to start without replicated state; the
// caller must have been told to (an explicit init flag).
//
// opts.Replicator is replaced by the returned Replica.
func Init(ctx context.Context, cfg Config, dir string, opts keystore.Options) (*keystore.Store, *Replica, error) {
	r, err := newReplica(cfg)
	if err != nil {
		return nil, nil, err
	}
	names, err := r.obj.list(ctx, "")
	if err != nil {
		return nil, nil, fmt.Errorf("replica: init: %w", err)
	}
	if len(names) > 0 {
		return nil, nil, fmt.Errorf("%w: %d objects under the prefix", ErrExists, len(names))
	}
	opts.Replicator = r
	store, err := keystore.Create(ctx, dir, cfg.DataKey, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("replica: init: %w", err)
	}
	if err := r.initGeneration(ctx, store); err != nil {
		store.Close()
		removeKeystore(dir)
		return nil, nil, fmt.Errorf("replica: init: %w", err)
	}
	return store, r, nil
}

// initGeneration publishes the empty store as generation 1.
func (r *Replica) initGeneration(ctx context.Context, store *keystore.Store) error {
	var buf bytes.Buffer
	seq, err := store.Snapshot(ctx, &buf)
	if err != nil {
		return err
	}
	r.gen, r.next = 1, seq+1
	name := snapshotName(r.gen, seq)
	if _, err := r.obj.create(ctx, name, buf.Bytes()); err != nil {
		return err
	}
	sum := sha256.Sum256(buf.Bytes())
	m := manifest{Cosigner: r.cosigner, Gen: r.gen, Snapshot: name, SnapshotSeq: seq, SnapshotSHA256: hex.EncodeToString(sum[:])}
	body, err := r.keys.encodeManifest(m)
	if err != nil {
		return err
	}
	etag, err := r.obj.put(ctx, manifestName, body, "*", "")
	if errors.Is(err, errPrecondition) {
		return ErrExists
	}
	if err != nil {
		return err
	}
	r.man, r.etag = m, etag
	return nil
}

// Restore rebuilds the keystore in dir (which must hold none) from S3:
// manifest, snapshot, then every segment in order, each verified, following
// seals into later generations. Then it takes over: it seals the last
// generation and continues in a new one, which fences any other instance
// still writing.
//
// Errors: ErrNoState (no manifest: this cosigner was never initialized —
// never start empty instead), ErrUnavailable (S3 unreachable: retry with
// backoff), ErrCorrupt (a *CorruptError naming the object and position:
// tampered, reordered or missing segment, wrong data key), or a keystore
// error. On error dir is left without a database.
//
// opts.Replicator is replaced by the returned Replica.
func Restore(ctx context.Context, cfg Config, dir string, opts keystore.Options) (*keystore.Store, *Replica, error) {
	r, err := newReplica(cfg)
	if err != nil {
		return nil, nil, err
	}
	opts.Replicator = r
	for range restoreAttempts {
		store, err := r.restoreOnce(ctx, cfg.DataKey, dir, opts)
		if err == nil {
			return store, r, nil
		}
		if !errors.Is(err, errMoved) {
			return nil, nil, fmt.Errorf("replica: restore: %w", err)
		}
		r.log.Info("replicated state moved during restore; retrying", "error", err)
	}
	return nil, nil, fmt.Errorf("%w: replicated state keeps moving; another instance is active", ErrUnavailable)
}

// errMoved means the state changed while it was being read; Restore
// retries.
var errMoved = errors.New("replicated state moved")

func (r *Replica) restoreOnce(ctx context.Context, dataKey secret.Bytes, dir string, opts keystore.Options) (*keystore.Store, error) {
	m, etag, err := r.readManifest(ctx)
	if err != nil {
		return nil, err
	}
	r.man, r.etag, r.chain, r.since, r.bytes = m, etag, nil, 0, 0
	store, err := r.rebuild(ctx, dataKey, dir, opts)
	if err == nil {
		err = r.takeOver(ctx)
	}
	if err == nil {
		return store, nil
	}
	if store != nil {
		store.Close()
		removeKeystore(dir)
	}
	return nil, r.movedOr(ctx, etag, err)
}

// movedOr turns a failure into errMoved if the manifest changed meanwhile
// (a compaction deleted what we were reading) or another writer took our
// seal slot.
func (r *Replica) movedOr(ctx context.Context, etag string, err error) error {
	if errors.Is(err, errTakeoverRace) {
		return fmt.Errorf("%w: %w", errMoved, err)
	}
	if !errors.Is(err, ErrCorrupt) && !errors.Is(err, errNotFound) {
		return err
	}
	if _, cur, merr := r.readManifest(ctx); merr == nil && cur != etag {
		return fmt.Errorf("%w: %w", errMoved, err)
	}
	return err
}

// rebuild opens the manifest's snapshot in dir and replays the segments.
func (r *Replica) rebuild(ctx context.Context, dataKey secret.Bytes, dir string, opts keystore.Options) (*keystore.Store, error) {
	snap, err := r.fetchSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	store, err := keystore.OpenSnapshot(ctx, dir, dataKey, bytes.NewReader(snap), opts)
	if err != nil {
		if errors.Is(err, keystore.ErrWrongKey) {
			return nil, corrupt(r.man.Snapshot, r.man.Gen, r.man.SnapshotSeq, "snapshot does not open under the data key")
		}
		return nil, err
	}
	if err := r.checkSnapshotSeq(ctx, store); err != nil {
		return store, err
	}
	r.gen, r.next = r.man.Gen, r.man.SnapshotSeq+1
	return store, r.replay(ctx, store)
}

// fetchSnapshot downloads the manifest's snapshot and checks its hash.
func (r *Replica) fetchSnapshot(ctx context.Context) ([]byte, error) {
	m := r.man
	b, _, err := r.obj.get(ctx, m.Snapshot, r.maxSnap)
	switch {
	case errors.Is(err, errNotFound):
		return nil, corrupt(m.Snapshot, m.Gen, m.SnapshotSeq, "snapshot missing")
	case errors.Is(err, errTooLarge):
		return nil, corrupt(m.Snapshot, m.Gen, m.SnapshotSeq, "snapshot larger than the configured maximum")
	case err != nil:
		return nil, err
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != m.SnapshotSHA256 {
		return nil, corrupt(m.Snapshot, m.Gen, m.SnapshotSeq, "snapshot does not match the manifest's hash")
	}
	return b, nil
}

func (r *Replica) checkSnapshotSeq(ctx context.Context, store *keystore.Store) error {
	seq, err := store.Seq(ctx)
	if err != nil {
		return err
	}
	if seq != r.man.SnapshotSeq {
		return corrupt(r.man.Snapshot, r.man.Gen, r.man.SnapshotSeq, "snapshot holds another sequence number")
	}
	return nil
}

// replay applies the segments of r.gen from r.next on, following seals,
// until the end of the live generation.
func (r *Replica) replay(ctx context.Context, store *keystore.Store) error {
	for {
		seqs, err := r.listSeqs(ctx)
		if err != nil {
			return err
		}
		sealed, err := r.replayGen(ctx, store, seqs)
		if err != nil || !sealed {
			return err
		}
	}
}

// listSeqs lists the segment numbers of r.gen from r.next on, sorted.
// Lower numbers are leftovers of an unfinished cleanup and are ignored.
func (r *Replica) listSeqs(ctx context.Context) ([]uint64, error) {
	names, err := r.obj.list(ctx, segmentDir(r.gen))
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, name := range names {
		n, ok := parseSegmentSeq(r.gen, name)
		if !ok {
			return nil, corrupt(name, r.gen, 0, "unexpected object name among segments")
		}
		if n >= r.next {
			seqs = append(seqs, n)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// replayGen applies consecutive segments of r.gen. It returns sealed=true
// after following a seal (r.gen is then the next generation).
func (r *Replica) replayGen(ctx context.Context, store *keystore.Store, seqs []uint64) (bool, error) {
	for i, n := range seqs {
		if n != r.next {
			return false, corrupt(segmentName(r.gen, r.next), r.gen, r.next,
				fmt.Sprintf("segment missing (next present is %d)", n))
		}
		sealed, err := r.applySegment(ctx, store)
		if err != nil {
			return false, err
		}
		if sealed {
			if i != len(seqs)-1 {
				return false, corrupt(segmentName(r.gen, seqs[i+1]), r.gen, seqs[i+1], "segment after a seal")
			}
			return true, nil
		}
	}
	return false, nil
}

// applySegment reads, verifies and applies the segment at (r.gen, r.next).
// A record advances r.next; a seal moves r.gen on.
func (r *Replica) applySegment(ctx context.Context, store *keystore.Store) (bool, error) {
	name := segmentName(r.gen, r.next)
	b, _, err := r.obj.get(ctx, name, maxSegmentSize)
	switch {
	case errors.Is(err, errNotFound):
		return false, corrupt(name, r.gen, r.next, "segment disappeared while reading")
	case errors.Is(err, errTooLarge):
		return false, corrupt(name, r.gen, r.next, "segment too large")
	case err != nil:
		return false, err
	}
	kind, pt, err := r.keys.open(r.pos(r.next), b)
	if err != nil {
		return false, corrupt(name, r.gen, r.next, "segment fails authentication (tampered, moved or reordered)")
	}
	defer clear(pt)
	if kind == kindSeal {
		return true, r.followSeal(name, pt)
	}
	rec := keystore.Record{Seq: r.next, Payload: secret.New(pt)}
	defer rec.Payload.Wipe()
	if err := store.ApplyRecord(ctx, rec); err != nil {
		if errors.Is(err, keystore.ErrBadRecord) {
			return false, corrupt(name, r.gen, r.next, "record does not apply")
		}
		return false, err
	}
	r.next++
	r.since++
	r.bytes += int64(len(b))
	return false, nil
}

// followSeal moves to the generation a seal names.
func (r *Replica) followSeal(name string, pt []byte) error {
	if len(pt) != 8 {
		return corrupt(name, r.gen, r.next, "malformed seal")
	}
	next := binary.BigEndian.Uint64(pt)
	if next != r.gen+1 {
		return corrupt(name, r.gen, r.next, "seal names an unexpected generation")
	}
	r.chain = append(r.chain, sealPos{gen: r.gen, slot: r.next})
	r.gen = next
	return nil
}

// errTakeoverRace means another instance wrote our seal slot first.
var errTakeoverRace = errors.New("another instance wrote the next segment first")

// takeOver seals r.gen at r.next and moves to the next generation, which
// this instance then owns.
func (r *Replica) takeOver(ctx context.Context) error {
	seal := binary.BigEndian.AppendUint64(nil, r.gen+1)
	body, err := r.keys.seal(r.pos(r.next), kindSeal, seal)
	if err != nil {
		return err
	}
	_, err = r.obj.create(ctx, segmentName(r.gen, r.next), body)
	if errors.Is(err, ErrFenced) {
		return fmt.Errorf("%w: %w", errTakeoverRace, err)
	}
	if err != nil {
		return err
	}
	r.chain = append(r.chain, sealPos{gen: r.gen, slot: r.next})
	r.gen++
	r.log.Info("replica took over", "generation", r.gen, "next", r.next)
	return nil
}

// removeKeystore deletes a half-built database so that a retry starts
// clean.
func removeKeystore(dir string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(dir, keystore.FileName+suffix))
	}
}
