package replica

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/failpoint"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// Defaults for Config's zero fields.
const (
	defaultSnapshotSegments = 1000
	defaultSnapshotBytes    = 64 << 20
	defaultMaxSnapshotSize  = 4 << 30
)

// Config says where a cosigner's state lives and when to compact.
type Config struct {
	// Client is the S3 client (real aws-sdk-go-v2; its HTTP client goes
	// through the parent's egress proxy in production).
	Client *s3.Client
	Bucket string
	// Prefix is this cosigner's folder, e.g. "cosigners/<id>/". It must be
	// empty or end in "/".
	Prefix string
	// CosignerID is bound into every segment and the manifest.
	CosignerID string
	// DataKey is the database key; the replica derives its own keys from it
	// and does not keep it.
	DataKey secret.Bytes
	// SnapshotSegments and SnapshotBytes trigger a snapshot after that many
	// segments or bytes of segments since the last one (0: 1000, 64 MiB).
	SnapshotSegments int
	SnapshotBytes    int64
	// MaxSnapshotSize bounds the snapshot a restore downloads (0: 4 GiB).
	MaxSnapshotSize int64
	// Logger gets operational messages; nil discards.
	Logger *slog.Logger
}

// Replica replicates one keystore. It implements keystore.Replicator and
// keystore.Compactor; get one from Init or Restore.
type Replica struct {
	obj      objects
	keys     keys
	cosigner string
	log      *slog.Logger
	snapSegs int
	snapSize int64
	maxSnap  int64

	mu    sync.Mutex
	fence error  // non-nil once fenced: every call fails with it
	gen   uint64 // the generation this instance owns
	next  uint64 // the slot of the next record in gen
	// The manifest this instance last read or wrote, and the generations
	// between its start and gen, whose seals must survive cleanup.
	man   manifest
	etag  string
	chain []sealPos
	since int   // segments since the manifest's snapshot
	bytes int64 // bytes of those segments
}

// sealPos is where a generation was sealed.
type sealPos struct{ gen, slot uint64 }

func newReplica(cfg Config) (*Replica, error) {
	if cfg.Client == nil || cfg.Bucket == "" || cfg.CosignerID == "" {
		return nil, errors.New("replica: config needs a client, a bucket and a cosigner ID")
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		return nil, errors.New("replica: prefix must end in /")
	}
	k, err := deriveKeys(cfg.DataKey)
	if err != nil {
		return nil, err
	}
	r := &Replica{
		obj: objects{client: cfg.Client, bucket: cfg.Bucket, prefix: cfg.Prefix}, keys: k,
		cosigner: cfg.CosignerID, log: cfg.Logger,
		snapSegs: cfg.SnapshotSegments, snapSize: cfg.SnapshotBytes, maxSnap: cfg.MaxSnapshotSize,
	}
	r.setDefaults()
	return r, nil
}

func (r *Replica) setDefaults() {
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.snapSegs <= 0 {
		r.snapSegs = defaultSnapshotSegments
	}
	if r.snapSize <= 0 {
		r.snapSize = defaultSnapshotBytes
	}
	if r.maxSnap <= 0 {
		r.maxSnap = defaultMaxSnapshotSize
	}
}

// Generation returns the generation this instance writes.
func (r *Replica) Generation() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

// Close wipes the manifest key. (The AES-GCM key schedule lives inside
// crypto/cipher and cannot be wiped; it becomes garbage.) Close the
// keystore first.
func (r *Replica) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys.mac.Wipe()
	if r.fence == nil {
		r.fence = errors.New("replica: closed")
	}
}

func (r *Replica) pos(seq uint64) position {
	return position{cosigner: r.cosigner, gen: r.gen, seq: seq}
}

// Replicate implements keystore.Replicator: it stores rec as the segment at
// (generation, rec.Seq) with If-None-Match and returns nil once S3 has it.
// Errors wrap ErrUnavailable (not stored, or unknown), or ErrFenced (the
// slot is someone else's; this replica stops).
func (r *Replica) Replicate(ctx context.Context, rec keystore.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fence != nil {
		return r.fence
	}
	if rec.Seq != r.next {
		return fmt.Errorf("replica: record %d offered, expected %d", rec.Seq, r.next)
	}
	body, err := r.keys.seal(r.pos(rec.Seq), kindRecord, rec.Payload.Reveal())
	if err != nil {
		return err
	}
	name := segmentName(r.gen, rec.Seq)
	if err := failpoint.Inject(failpoint.ReplicaBeforeSegmentPut); err != nil {
		return fmt.Errorf("replica: storing %s: %w", name, err)
	}
	if _, err := r.obj.create(ctx, name, body); err != nil {
		return r.fail(err)
	}
	if err := failpoint.Inject(failpoint.ReplicaAfterSegmentPut); err != nil {
		return fmt.Errorf("replica: stored %s: %w", name, err)
	}
	r.next++
	r.since++
	r.bytes += int64(len(body))
	return nil
}

// fail records a fencing error so that every later call fails too.
func (r *Replica) fail(err error) error {
	if errors.Is(err, ErrFenced) && r.fence == nil {
		r.fence = err
		r.log.Error("replica fenced; stopping writes", "generation", r.gen, "next", r.next, "error", err)
	}
	return err
}

// SnapshotDue implements keystore.Compactor.
func (r *Replica) SnapshotDue() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fence == nil && (r.since >= r.snapSegs || r.bytes >= r.snapSize)
}

// Compact implements keystore.Compactor: it uploads a snapshot covering
// the last record, points the manifest at it (If-Match), then deletes what
// the snapshot made redundant. The keystore holds its writer lock, so no
// record is replicated meanwhile.
func (r *Replica) Compact(ctx context.Context, snapshot keystore.SnapshotFunc) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fence != nil {
		return r.fence
	}
	var buf bytes.Buffer
	seq, err := snapshot(ctx, &buf)
	if err != nil {
		return fmt.Errorf("replica: taking snapshot: %w", err)
	}
	if seq != r.next-1 {
		return fmt.Errorf("replica: snapshot covers %d, last record is %d", seq, r.next-1)
	}
	old := r.man
	if err := r.publish(ctx, seq, buf.Bytes()); err != nil {
		return r.fail(err)
	}
	if err := failpoint.Inject(failpoint.ReplicaAfterManifestSwap); err != nil {
		return fmt.Errorf("replica: manifest swapped to seq %d: %w", seq, err)
	}
	r.cleanup(ctx, old, seq)
	return nil
}

// publish uploads a snapshot of the current generation at seq and swaps
// the manifest to it.
func (r *Replica) publish(ctx context.Context, seq uint64, snap []byte) error {
	name := snapshotName(r.gen, seq)
	if _, err := r.obj.create(ctx, name, snap); err != nil {
		return fmt.Errorf("replica: uploading snapshot: %w", err)
	}
	sum := sha256.Sum256(snap)
	m := manifest{Cosigner: r.cosigner, Gen: r.gen, Snapshot: name, SnapshotSeq: seq, SnapshotSHA256: hex.EncodeToString(sum[:])}
	if err := failpoint.Inject(failpoint.ReplicaBeforeManifestSwap); err != nil {
		return fmt.Errorf("replica: swapping manifest to %s: %w", name, err)
	}
	if err := r.swapManifest(ctx, m); err != nil {
		return err
	}
	r.since, r.bytes = 0, 0
	return nil
}

// swapManifest replaces the manifest with m, If-Match on the ETag this
// instance knows. If the ETag no longer matches, the manifest is reread:
// one from a later generation means another instance took over (fenced);
// one equal to m means an earlier attempt of this write landed; anything
// else (this instance's own earlier attempt, or a stale instance of an
// older generation compacting before it noticed the fence) is safely
// overwritten, because this instance's state contains theirs.
func (r *Replica) swapManifest(ctx context.Context, m manifest) error {
	body, err := r.keys.encodeManifest(m)
	if err != nil {
		return fmt.Errorf("replica: encoding manifest: %w", err)
	}
	for range conflictRetries {
		etag, err := r.obj.put(ctx, manifestName, body, "", r.etag)
		if err == nil {
			r.man, r.etag = m, etag
			return nil
		}
		if !errors.Is(err, errPrecondition) {
			return fmt.Errorf("replica: writing manifest: %w", err)
		}
		cur, etag, err := r.readManifest(ctx)
		if err != nil {
			return fmt.Errorf("replica: rereading manifest: %w", err)
		}
		if cur.Gen > r.gen {
			return fmt.Errorf("%w: manifest moved to generation %d", ErrFenced, cur.Gen)
		}
		r.etag = etag
		if sameManifest(cur, m) {
			r.man = m
			return nil
		}
	}
	return fmt.Errorf("%w: manifest keeps changing", ErrFenced)
}

func sameManifest(a, b manifest) bool {
	return a.Gen == b.Gen && a.SnapshotSeq == b.SnapshotSeq && a.SnapshotSHA256 == b.SnapshotSHA256
}

// readManifest fetches and verifies the manifest.
func (r *Replica) readManifest(ctx context.Context) (manifest, string, error) {
	b, etag, err := r.obj.get(ctx, manifestName, maxManifestSize)
	switch {
	case errors.Is(err, errNotFound):
		return manifest{}, "", ErrNoState
	case errors.Is(err, errTooLarge):
		return manifest{}, "", corrupt(manifestName, 0, 0, "manifest too large")
	case err != nil:
		return manifest{}, "", err
	}
	m, err := r.keys.decodeManifest(r.cosigner, b)
	if err != nil {
		return manifest{}, "", err
	}
	return m, etag, nil
}

// cleanup deletes what the new manifest made redundant: the data segments
// of the sealed generations since the old manifest (their seals stay: they
// fence stale writers), this generation's segments up to seq, and the old
// snapshot. Failures are logged: they leave garbage, never a hole.
func (r *Replica) cleanup(ctx context.Context, old manifest, seq uint64) {
	doomed, err := r.redundant(ctx, seq)
	if err != nil {
		r.log.Warn("replica cleanup: listing", "error", err)
		return
	}
	if old.Snapshot != "" && old.Snapshot != r.man.Snapshot {
		doomed = append(doomed, old.Snapshot)
	}
	err = failpoint.Inject(failpoint.ReplicaBeforeOldSegmentDelete)
	if err == nil {
		err = r.obj.remove(ctx, doomed)
	}
	if err != nil {
		r.log.Warn("replica cleanup: deleting", "objects", len(doomed), "error", err)
		return
	}
	r.chain = nil
}

// redundant lists the segments a snapshot at seq in r.gen made redundant.
func (r *Replica) redundant(ctx context.Context, seq uint64) ([]string, error) {
	var doomed []string
	for _, s := range r.chain {
		names, err := r.obj.list(ctx, segmentDir(s.gen))
		if err != nil {
			return nil, err
		}
		doomed = append(doomed, exclude(names, segmentName(s.gen, s.slot))...)
	}
	names, err := r.obj.list(ctx, segmentDir(r.gen))
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if n, ok := parseSegmentSeq(r.gen, name); ok && n <= seq {
			doomed = append(doomed, name)
		}
	}
	return doomed, nil
}

func exclude(names []string, keep string) []string {
	out := names[:0]
	for _, n := range names {
		if n != keep {
			out = append(out, n)
		}
	}
	return out
}

var (
	_ keystore.Replicator = (*Replica)(nil)
	_ keystore.Compactor  = (*Replica)(nil)
)
