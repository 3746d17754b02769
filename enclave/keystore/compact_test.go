package keystore

import (
	"bytes"
	"context"
	"testing"
)

// compactingRecorder asks for a snapshot every third record.
type compactingRecorder struct {
	recorder
	snaps [][]byte
	seqs  []uint64
}

func (c *compactingRecorder) SnapshotDue() bool { return len(c.records())%3 == 0 }

func (c *compactingRecorder) Compact(ctx context.Context, snap SnapshotFunc) error {
	var b bytes.Buffer
	seq, err := snap(ctx, &b)
	if err != nil {
		return err
	}
	c.snaps, c.seqs = append(c.snaps, b.Bytes()), append(c.seqs, seq)
	return nil
}

func TestCompactorGetsSnapshotOfLastCommit(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	c := &compactingRecorder{recorder: recorder{t: t}}
	s := mustCreate(t, t.TempDir(), key, Options{Replicator: c})
	populate(t, s, 3)
	if len(c.seqs) == 0 {
		t.Fatal("Compact never called")
	}
	for i, seq := range c.seqs {
		if seq%3 != 0 {
			t.Fatalf("snapshot %d covers seq %d, want a multiple of 3", i, seq)
		}
	}
	last := len(c.snaps) - 1
	dst, err := OpenSnapshot(ctx, t.TempDir(), key, bytes.NewReader(c.snaps[last]), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := dst.Replay(ctx, c.records()[c.seqs[last]:]); err != nil {
		t.Fatal(err)
	}
	if a, b := dumpState(t, s), dumpState(t, dst); a != b {
		t.Fatalf("state differs:\n%s\nwant\n%s", b, a)
	}
}
