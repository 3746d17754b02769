package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

func TestCreateCloseReopen(t *testing.T) {
	ctx := context.Background()
	dir, key := t.TempDir(), newKey(t)
	s := mustCreate(t, dir, key, Options{})
	want := testRecord(1, 0)
	if err := s.PutKey(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ctx, dir, key, Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("Create over an existing database: %v, want ErrExists", err)
	}
	s2, err := Open(ctx, dir, key, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.GetKey(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertSameKey(t, got, want)
	if _, err := s.GetKey(ctx, want.ID); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetKey on a closed store: %v", err)
	}
	if _, err := Open(ctx, t.TempDir(), key, Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of an empty directory: %v, want fs.ErrNotExist", err)
	}
}

func assertSameKey(t *testing.T, got, want KeyRecord) {
	t.Helper()
	if got.ID != want.ID || got.Epoch != want.Epoch || got.Scheme != want.Scheme ||
		got.Threshold != want.Threshold || got.Self != want.Self ||
		!slices.Equal(got.Parties, want.Parties) || !bytes.Equal(got.PublicKey, want.PublicKey) ||
		!bytes.Equal(got.ChainCode, want.ChainCode) || !got.Share.Equal(want.Share) ||
		string(got.Metadata) != string(want.Metadata) {
		t.Fatalf("got %+v\nwant %+v", got.Info(), want.Info())
	}
}

func TestWrongKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mustCreate(t, dir, newKey(t), Options{})
	populate(t, s, 2)
	s.Close()
	if _, err := Open(ctx, dir, newKey(t), Options{}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with a wrong key: %v, want ErrWrongKey", err)
	}
	if _, err := Open(ctx, dir, secret.New(make([]byte, 16)), Options{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Open with a short key: %v, want ErrInvalid", err)
	}
	garbage := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbage, FileName), bytes.Repeat([]byte("not a database "), 500), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, garbage, newKey(t), Options{}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open of a garbage file: %v, want ErrWrongKey", err)
	}
}

// TestNoPlaintextOnDisk writes recognisable secrets and scans every file the
// database wrote, while open (with -wal and -shm) and after close.
func TestNoPlaintextOnDisk(t *testing.T) {
	ctx := context.Background()
	dir, key := t.TempDir(), newKey(t)
	s := mustCreate(t, dir, key, Options{})
	populate(t, s, 3)
	var snap bytes.Buffer
	if _, err := s.Snapshot(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	needles := [][]byte{[]byte(shareMarker), []byte("SQLite format 3"), []byte(`"label"`), key.Reveal(), []byte(fmt.Sprintf("%x", key.Reveal()))}
	scanDir(t, dir, needles, true)
	scanBytes(t, "snapshot", snap.Bytes(), needles)
	s.Close()
	scanDir(t, dir, needles, false)
}

func scanDir(t *testing.T, dir string, needles [][]byte, wantWAL bool) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, e.Name())
		scanBytes(t, e.Name(), b, needles)
	}
	if wantWAL && !slices.Contains(names, FileName+"-wal") {
		t.Fatalf("expected a WAL file among %v", names)
	}
}

func scanBytes(t *testing.T, name string, b []byte, needles [][]byte) {
	t.Helper()
	if len(b) == 0 {
		return
	}
	for _, n := range needles {
		if bytes.Contains(b, n) {
			t.Errorf("%s (%d bytes) contains plaintext %q", name, len(b), n[:min(len(n), 8)])
		}
	}
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	dir, key := t.TempDir(), newKey(t)
	s := mustCreate(t, dir, key, Options{})
	s.Close()
	for range 2 { // reopening applies nothing new
		s, err := Open(ctx, dir, key, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var n, v int
		if err := s.db.QueryRow(`SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
			t.Fatal(err)
		}
		if n != SchemaVersion() || v != SchemaVersion() {
			t.Fatalf("migrations table has %d rows up to %d, want %d", n, v, SchemaVersion())
		}
		s.Close()
	}
	s, _ = Open(ctx, dir, key, Options{})
	if _, err := s.db.Exec(`INSERT INTO schema_migrations VALUES (?, 0)`, SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, dir, key, Options{}); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open of a newer schema: %v, want ErrNewerSchema", err)
	}
}

func TestEpochs(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Unix(1000, 0)}
	s := mustCreate(t, t.TempDir(), newKey(t), Options{Now: clock.Now})
	if err := s.PutKey(ctx, testRecord(1, 3)); err != nil {
		t.Fatal(err)
	}
	for _, e := range []uint64{3, 2, 0} {
		if err := s.PutKey(ctx, testRecord(1, e)); !errors.Is(err, ErrStaleEpoch) {
			t.Fatalf("epoch %d over 3: %v, want ErrStaleEpoch", e, err)
		}
	}
	clock.Advance(time.Minute)
	if err := s.PutKey(ctx, testRecord(1, 4)); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetKey(ctx, keyID(1))
	if err != nil {
		t.Fatal(err)
	}
	assertSameKey(t, got, testRecord(1, 4))
	if !got.CreatedAt.Equal(time.Unix(1000, 0)) || !got.UpdatedAt.Equal(time.Unix(1060, 0)) {
		t.Fatalf("timestamps %v %v", got.CreatedAt, got.UpdatedAt)
	}
	if _, err := s.GetKey(ctx, keyID(2)); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("GetKey of a missing key: %v", err)
	}
	info, err := s.GetKeyInfo(ctx, keyID(1))
	if err != nil || !reflect.DeepEqual(info, got.Info()) {
		t.Fatalf("GetKeyInfo = %+v, %v; want %+v", info, err, got.Info())
	}
	if _, err := s.GetKeyInfo(ctx, keyID(2)); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("GetKeyInfo of a missing key: %v", err)
	}
}

func TestPutKeyValidates(t *testing.T) {
	ctx := context.Background()
	s := mustCreate(t, t.TempDir(), newKey(t), Options{})
	for name, mutate := range map[string]func(*KeyRecord){
		"no share":      func(r *KeyRecord) { r.Share = secret.Bytes{} },
		"self missing":  func(r *KeyRecord) { r.Self = "mallory" },
		"threshold 0":   func(r *KeyRecord) { r.Threshold = 0 },
		"threshold > n": func(r *KeyRecord) { r.Threshold = 4 },
		"metadata":      func(r *KeyRecord) { r.Metadata = []byte(`[1]`) },
		"epoch":         func(r *KeyRecord) { r.Epoch = 1 << 63 },
	} {
		rec := testRecord(1, 0)
		mutate(&rec)
		if err := s.PutKey(ctx, rec); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if seq, _ := s.Seq(ctx); seq != 0 {
		t.Fatalf("invalid puts advanced the sequence to %d", seq)
	}
}

func TestListKeysPaging(t *testing.T) {
	ctx := context.Background()
	s := mustCreate(t, t.TempDir(), newKey(t), Options{})
	const n = 25
	for _, i := range rand25() {
		if err := s.PutKey(ctx, testRecord(i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	var (
		got []KeyID
		cur Cursor
	)
	for pages := 0; ; pages++ {
		page, err := s.ListKeys(ctx, cur, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			got = append(got, k.ID)
		}
		if !page.More {
			if pages != 2 || len(page.Keys) != 5 {
				t.Fatalf("last page %d has %d keys", pages, len(page.Keys))
			}
			break
		}
		cur = page.Next
	}
	for i := range n {
		if got[i] != keyID(i) {
			t.Fatalf("position %d: %s, want %s", i, got[i], keyID(i))
		}
	}
	if _, err := s.ListKeys(ctx, Cursor{}, 1001); !errors.Is(err, ErrInvalid) {
		t.Fatalf("limit 1001: %v", err)
	}
}

// rand25 is 0..24 in a scrambled order.
func rand25() []int {
	out := make([]int, 25)
	for i := range out {
		out[i] = (i * 7) % 25
	}
	return out
}

func TestReplicatorFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	r := &recorder{t: t}
	s := mustCreate(t, t.TempDir(), newKey(t), Options{Replicator: r})
	old := testRecord(1, 0)
	if err := s.PutKey(ctx, old); err != nil {
		t.Fatal(err)
	}
	before := dumpState(t, s)
	r.setFail(errInjected)
	if err := s.PutKey(ctx, testRecord(1, 1)); !errors.Is(err, errInjected) {
		t.Fatalf("PutKey with a failing replicator: %v", err)
	}
	if err := s.PutPolicy(ctx, 1, []byte("p")); !errors.Is(err, errInjected) {
		t.Fatalf("PutPolicy with a failing replicator: %v", err)
	}
	if after := dumpState(t, s); after != before {
		t.Fatalf("state changed by a failed mutation:\n%s\nwant\n%s", after, before)
	}
	got, err := s.GetKey(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertSameKey(t, got, old)
	r.setFail(nil)
	if err := s.PutKey(ctx, testRecord(1, 1)); err != nil { // same seq reused
		t.Fatal(err)
	}
	if seq, _ := s.Seq(ctx); seq != 2 {
		t.Fatalf("seq %d, want 2", seq)
	}
}

func TestFencedStopsMutations(t *testing.T) {
	ctx := context.Background()
	r := &recorder{t: t}
	s := mustCreate(t, t.TempDir(), newKey(t), Options{Replicator: r})
	if err := s.PutKey(ctx, testRecord(1, 0)); err != nil {
		t.Fatal(err)
	}
	r.setFail(fmt.Errorf("segment taken: %w", ErrFenced))
	if err := s.PutKey(ctx, testRecord(2, 0)); !errors.Is(err, ErrFenced) {
		t.Fatalf("first fenced mutation: %v", err)
	}
	r.setFail(nil)
	if err := s.PutPolicy(ctx, 1, []byte("p")); !errors.Is(err, ErrFenced) {
		t.Fatalf("mutation after fencing: %v, want ErrFenced", err)
	}
	if len(r.records()) != 1 {
		t.Fatal("a fenced store still called its replicator")
	}
	if _, err := s.GetKey(ctx, keyID(1)); err != nil {
		t.Fatalf("reads must still work when fenced: %v", err)
	}
}

// TestCommitSurvivesCancelAfterReplicate: once the replicator accepted the
// record the commit happens even if the caller's context ends.
func TestCommitSurvivesCancelAfterReplicate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &cancelingReplicator{cancel: cancel}
	s := mustCreate(t, t.TempDir(), newKey(t), Options{Replicator: r})
	if err := s.PutKey(ctx, testRecord(1, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetKey(context.Background(), keyID(1)); err != nil {
		t.Fatalf("replicated key not committed: %v", err)
	}
}

type cancelingReplicator struct{ cancel func() }

func (c *cancelingReplicator) Replicate(context.Context, Record) error {
	c.cancel()
	return nil
}

func TestReplayGivesIdenticalState(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	clock := &fakeClock{now: time.Unix(5000, 0)}
	r := &recorder{t: t}
	src := mustCreate(t, t.TempDir(), key, Options{Replicator: r, Now: clock.Now})
	populate(t, src, 5)
	recs := r.records()

	dst := mustCreate(t, t.TempDir(), key, Options{})
	if err := dst.Replay(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if a, b := dumpState(t, src), dumpState(t, dst); a != b {
		t.Fatalf("replayed state differs:\n%s\nwant\n%s", b, a)
	}
	// Replaying again, out of order or from a gap is refused.
	for name, rec := range map[string]Record{"duplicate": recs[0], "gap": recs[len(recs)-1]} {
		fresh := mustCreate(t, t.TempDir(), key, Options{})
		if name == "duplicate" {
			fresh = dst
		}
		if err := fresh.ApplyRecord(ctx, rec); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: %v, want ErrBadRecord", name, err)
		}
	}
	mislabeled := Record{Seq: 1, Payload: recs[1].Payload}
	if err := mustCreate(t, t.TempDir(), key, Options{}).ApplyRecord(ctx, mislabeled); !errors.Is(err, ErrBadRecord) {
		t.Errorf("record with a foreign sequence number: %v", err)
	}
}

// TestSnapshotPlusRecords: a snapshot taken midway plus the later records
// rebuild the same state, and a snapshot opens only under its key.
func TestSnapshotPlusRecords(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	r := &recorder{t: t}
	src := mustCreate(t, t.TempDir(), key, Options{Replicator: r})
	populate(t, src, 3)
	var snap bytes.Buffer
	seq, err := src.Snapshot(ctx, &snap)
	if err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 14; i++ {
		if err := src.PutKey(ctx, testRecord(i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := OpenSnapshot(ctx, t.TempDir(), newKey(t), bytes.NewReader(snap.Bytes()), Options{}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("snapshot under a wrong key: %v", err)
	}
	dst, err := OpenSnapshot(ctx, t.TempDir(), key, bytes.NewReader(snap.Bytes()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if got, _ := dst.Seq(ctx); got != seq {
		t.Fatalf("snapshot seq %d, store says %d", seq, got)
	}
	if err := dst.Replay(ctx, r.records()[seq:]); err != nil {
		t.Fatal(err)
	}
	if a, b := dumpState(t, src), dumpState(t, dst); a != b {
		t.Fatalf("snapshot + records differ:\n%s\nwant\n%s", b, a)
	}
}

func TestTamperedSnapshotRefused(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	src := mustCreate(t, t.TempDir(), key, Options{})
	populate(t, src, 3)
	var snap bytes.Buffer
	if _, err := src.Snapshot(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{100, snap.Len() / 2, snap.Len() - 10} {
		b := bytes.Clone(snap.Bytes())
		b[off] ^= 1
		dir := t.TempDir()
		s, err := OpenSnapshot(ctx, dir, key, bytes.NewReader(b), Options{})
		if err == nil {
			s.Close()
			t.Fatalf("snapshot with byte %d flipped opened", off)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("refused snapshot left %d files behind", len(entries))
		}
	}
}

func TestIdentityPolicyAuditIdempotency(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Unix(1000, 0)}
	s := mustCreate(t, t.TempDir(), newKey(t), Options{Now: clock.Now})
	if _, err := s.GetIdentity(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := s.LatestPolicy(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	populate(t, s, 0)
	id, err := s.GetIdentity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutIdentity(ctx, id); !errors.Is(err, ErrExists) {
		t.Fatalf("second identity: %v", err)
	}
	if p, err := s.LatestPolicy(ctx); err != nil || p.Version != 2 {
		t.Fatalf("latest policy %v %v", p.Version, err)
	}
	if err := s.PutPolicy(ctx, 2, nil); !errors.Is(err, ErrStaleVersion) {
		t.Fatalf("stale policy: %v", err)
	}
	checkAudit(t, s)
	checkIdempotency(t, s, clock)
}

func checkAudit(t *testing.T, s *Store) {
	ctx := context.Background()
	bad := []AuditEntry{
		{Seq: 2, PrevHash: bytes.Repeat([]byte{1}, 32), Hash: []byte{9}},
		{Seq: 4, PrevHash: bytes.Repeat([]byte{2}, 32), Hash: []byte{9}},
		{Seq: 3, PrevHash: bytes.Repeat([]byte{1}, 32), Hash: []byte{9}},
	}
	for _, e := range bad {
		if err := s.AppendAudit(ctx, e); !errors.Is(err, ErrAuditChain) {
			t.Errorf("audit entry %d: %v, want ErrAuditChain", e.Seq, err)
		}
	}
	if _, err := s.db.Exec(`DELETE FROM audit`); err == nil {
		t.Error("the audit table accepted a DELETE")
	}
	got, err := s.ReadAudit(ctx, 2, 10)
	if err != nil || len(got) != 1 || got[0].Seq != 2 || string(got[0].Entry) != "e2" {
		t.Fatalf("ReadAudit(2): %+v %v", got, err)
	}
	if last, err := s.LastAudit(ctx); err != nil || last.Seq != 2 {
		t.Fatalf("LastAudit: %+v %v", last, err)
	}
}

func checkIdempotency(t *testing.T, s *Store, clock *fakeClock) {
	ctx := context.Background()
	rec := IdempotencyRecord{Key: "k", RequestHash: []byte("h"), Response: []byte("resp"), ExpiresAt: clock.Now().Add(time.Minute)}
	if err := s.PutIdempotency(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIdempotency(ctx, rec); !errors.Is(err, ErrExists) {
		t.Fatalf("reused idempotency key: %v", err)
	}
	if got, err := s.GetIdempotency(ctx, "k"); err != nil || string(got.Response) != "resp" {
		t.Fatalf("GetIdempotency: %+v %v", got, err)
	}
	clock.Advance(2 * time.Minute)
	if _, err := s.GetIdempotency(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired record: %v", err)
	}
	rec.ExpiresAt = clock.Now().Add(time.Minute)
	if err := s.PutIdempotency(ctx, rec); err != nil {
		t.Fatalf("replacing an expired record: %v", err)
	}
	clock.Advance(2 * time.Minute)
	if err := s.PurgeIdempotency(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	s.db.QueryRow(`SELECT count(*) FROM idempotency WHERE key = 'k'`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d records left after purge", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	r := &recorder{t: t}
	s := mustCreate(t, t.TempDir(), newKey(t), Options{Replicator: r})
	const workers, each = 6, 15
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := w*100 + i
				if err := s.PutKey(ctx, testRecord(id, 0)); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.GetKey(ctx, keyID(id)); err != nil {
					t.Error(err)
				}
				if _, err := s.ListKeys(ctx, Cursor{}, 5); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got := len(r.records()); got != workers*each {
		t.Fatalf("%d records, want %d", got, workers*each)
	}
	if seq, _ := s.Seq(ctx); seq != workers*each {
		t.Fatalf("seq %d", seq)
	}
}

// TestReadsDuringReplicate: a writer waiting on its replicator (an S3 round
// trip) does not block readers.
func TestReadsDuringReplicate(t *testing.T) {
	ctx := context.Background()
	r := &recorder{t: t}
	s := mustCreate(t, t.TempDir(), newKey(t), Options{Replicator: r})
	if err := s.PutKey(ctx, testRecord(1, 0)); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.block, r.entered = make(chan struct{}), make(chan struct{}, 1)
	r.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.PutKey(ctx, testRecord(1, 1)) }()
	<-r.entered
	got, err := s.GetKey(ctx, keyID(1))
	if err != nil || got.Epoch != 0 {
		t.Fatalf("read during replicate: epoch %d, %v", got.Epoch, err)
	}
	close(r.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSecretsRedacted(t *testing.T) {
	rec := testRecord(1, 0)
	payload, err := encodeChange(1, &putKeyChange{ID: rec.ID[:], Share: rec.Share.Reveal()})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{rec, Record{Seq: 1, Payload: payload}, Identity{PrivateKey: secret.New([]byte(shareMarker))}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
			if out := fmt.Sprintf(verb, v); bytes.Contains([]byte(out), []byte(shareMarker)) ||
				bytes.Contains([]byte(out), []byte(fmt.Sprintf("%x", shareMarker))) {
				t.Errorf("%s of %T leaks the secret: %s", verb, v, out)
			}
		}
	}
}
