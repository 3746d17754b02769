package replica

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
)

func TestInitReplicateRestore(t *testing.T) {
	e := newEnv(t)
	s, _ := e.init(e.config())
	putKeys(t, s, 0, 5)
	if err := s.PutKey(context.Background(), testRecord(2, 1)); err != nil {
		t.Fatal(err)
	}
	restored, r2 := e.restore(e.config())
	if a, b := state(t, s), state(t, restored); a != b {
		t.Fatalf("restored state differs:\n%s\nwant\n%s", b, a)
	}
	if r2.Generation() != 2 {
		t.Fatalf("restore took over generation %d, want 2", r2.Generation())
	}
	putKeys(t, restored, 10, 12)
	again, _ := e.restore(e.config())
	if a, b := state(t, restored), state(t, again); a != b {
		t.Fatalf("second restore differs:\n%s\nwant\n%s", b, a)
	}
}

func TestInitRefusesExistingAndRestoreRefusesEmpty(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, _, err := Restore(ctx, e.config(), t.TempDir(), keystore.Options{}); !errors.Is(err, ErrNoState) {
		t.Fatalf("Restore without state: %v, want ErrNoState", err)
	}
	e.init(e.config())
	if _, _, err := Init(ctx, e.config(), t.TempDir(), keystore.Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("Init over state: %v, want ErrExists", err)
	}
}

func TestRestoreUnavailable(t *testing.T) {
	e := newEnv(t)
	e.init(e.config())
	e.tr.setRule(func(*http.Request) fault { return failBefore })
	dir := t.TempDir()
	_, _, err := Restore(context.Background(), e.config(), dir, keystore.Options{})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Restore with S3 down: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "manifest.json") {
		t.Errorf("error does not say what it was reading: %v", err)
	}
	if _, _, err := Restore(context.Background(), e.config(), dir, keystore.Options{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second attempt: %v", err)
	}
}

// TestUploadFailuresNotAcknowledged: while S3 fails, mutations fail and
// change nothing; acknowledged ones survive a restore.
func TestUploadFailuresNotAcknowledged(t *testing.T) {
	for name, f := range map[string]fault{"connection refused": failBefore, "503": serverError} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			s, _ := e.init(e.config())
			putKeys(t, s, 0, 3)
			e.tr.setRule(segmentPuts(f))
			if err := s.PutKey(context.Background(), testRecord(1, 1)); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("PutKey with S3 failing: %v, want ErrUnavailable", err)
			}
			got, err := s.GetKey(context.Background(), keyID(1))
			if err != nil || got.Epoch != 0 {
				t.Fatalf("old record lost: epoch %d %v", got.Epoch, err)
			}
			e.tr.setRule(nil)
			putKeys(t, s, 3, 5) // retried later: works
			restored, _ := e.restore(e.config())
			if a, b := state(t, s), state(t, restored); a != b {
				t.Fatalf("restored state differs:\n%s\nwant\n%s", b, a)
			}
		})
	}
}

func segmentPuts(f fault) func(*http.Request) fault {
	return func(req *http.Request) fault {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/segments/") {
			return f
		}
		return pass
	}
}

// TestLostAnswerRetried: S3 stores the segment but the answer is lost; the
// SDK's retry finds its own bytes there (412 + identical object) and the
// mutation succeeds exactly once.
func TestLostAnswerRetried(t *testing.T) {
	e := newEnv(t)
	s, _ := e.init(e.config())
	first := true
	e.tr.setRule(func(req *http.Request) fault {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/segments/") && first {
			first = false
			return failAfter
		}
		return pass
	})
	putKeys(t, s, 0, 2)
	e.tr.setRule(nil)
	if first {
		t.Fatal("the fault was never injected")
	}
	restored, _ := e.restore(e.config())
	if a, b := state(t, s), state(t, restored); a != b {
		t.Fatalf("restored state differs:\n%s\nwant\n%s", b, a)
	}
}

// TestAmbiguousFailureFencesThenRestores: with no retry, a lost answer
// fails the mutation although S3 has it. The next mutation finds the slot
// taken and fences the store; a restore then holds the change whose outcome
// was reported as an error (documented behaviour), and every acknowledged
// one.
func TestAmbiguousFailureFencesThenRestores(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Client = e.newClient(1)
	s, _ := e.init(cfg)
	putKeys(t, s, 0, 2)
	e.tr.setRule(segmentPuts(failAfter))
	if err := s.PutKey(context.Background(), testRecord(5, 0)); err == nil {
		t.Fatal("PutKey succeeded although the answer was lost")
	}
	e.tr.setRule(nil)
	if err := s.PutKey(context.Background(), testRecord(6, 0)); !errors.Is(err, ErrFenced) {
		t.Fatalf("next mutation: %v, want ErrFenced", err)
	}
	restored, _ := e.restore(e.config())
	for _, i := range []int{0, 1, 5} {
		if _, err := restored.GetKey(context.Background(), keyID(i)); err != nil {
			t.Errorf("key %d after restore: %v", i, err)
		}
	}
	if _, err := restored.GetKey(context.Background(), keyID(6)); !errors.Is(err, keystore.ErrKeyNotFound) {
		t.Errorf("key 6 was refused yet restored: %v", err)
	}
}

func TestTimeoutNotAcknowledged(t *testing.T) {
	e := newEnv(t)
	s, _ := e.init(e.config())
	putKeys(t, s, 0, 1)
	e.tr.setRule(func(req *http.Request) fault {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/segments/") {
			<-req.Context().Done()
			return failBefore
		}
		return pass
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.PutKey(ctx, testRecord(1, 0)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("PutKey timing out: %v, want ErrUnavailable", err)
	}
	e.tr.setRule(nil)
	if _, err := s.GetKey(context.Background(), keyID(1)); !errors.Is(err, keystore.ErrKeyNotFound) {
		t.Fatalf("timed-out key stored: %v", err)
	}
	putKeys(t, s, 1, 2)
}

// TestSecondWriterFenced: a restore elsewhere takes over; the old instance
// is fenced on its next write and nothing it acknowledged is lost.
func TestSecondWriterFenced(t *testing.T) {
	e := newEnv(t)
	a, _ := e.init(e.config())
	putKeys(t, a, 0, 3)
	b, _ := e.restore(e.config())
	if err := a.PutKey(context.Background(), testRecord(50, 0)); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale writer: %v, want ErrFenced", err)
	}
	if err := a.PutPolicy(context.Background(), 1, []byte("p")); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale writer, second try: %v, want ErrFenced", err)
	}
	putKeys(t, b, 3, 6)
	c, _ := e.restore(e.config())
	if x, y := state(t, b), state(t, c); x != y {
		t.Fatalf("state after fencing differs:\n%s\nwant\n%s", y, x)
	}
	if _, err := c.GetKey(context.Background(), keyID(50)); !errors.Is(err, keystore.ErrKeyNotFound) {
		t.Fatalf("fenced write visible: %v", err)
	}
}

// TestSecondWriterFencedAfterCompaction: the new instance compacts (and
// deletes old segments) before the stale one writes again; the seal still
// fences it.
func TestSecondWriterFencedAfterCompaction(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.SnapshotSegments = 2
	a, _ := e.init(cfg)
	putKeys(t, a, 0, 3)
	b, _ := e.restore(cfg)
	putKeys(t, b, 3, 8) // several compactions
	if err := a.PutKey(context.Background(), testRecord(50, 0)); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale writer after compaction: %v, want ErrFenced", err)
	}
	c, _ := e.restore(cfg)
	if x, y := state(t, b), state(t, c); x != y {
		t.Fatalf("differs:\n%s\nwant\n%s", y, x)
	}
}

func TestCompactionThenRestore(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.SnapshotSegments = 4
	s, r := e.init(cfg)
	putKeys(t, s, 0, 10)
	if r.man.SnapshotSeq != 8 {
		t.Fatalf("manifest snapshot at %d, want 8", r.man.SnapshotSeq)
	}
	var segs, snaps []string
	for k := range e.objects() {
		switch {
		case strings.Contains(k, "/segments/"):
			segs = append(segs, k)
		case strings.Contains(k, "/snapshots/"):
			snaps = append(snaps, k)
		}
	}
	if len(segs) != 2 || len(snaps) != 1 {
		t.Fatalf("after compaction: segments %v, snapshots %v", segs, snaps)
	}
	restored, _ := e.restore(cfg)
	if a, b := state(t, s), state(t, restored); a != b {
		t.Fatalf("restored state differs:\n%s\nwant\n%s", b, a)
	}
}

func TestTamperedSegmentsRefused(t *testing.T) {
	seg := func(seq uint64) string { return segmentName(1, seq) }
	cases := map[string]struct {
		mutate  func(e *env, objs map[string][]byte)
		wantSeq uint64
	}{
		"flipped bit": {func(e *env, objs map[string][]byte) {
			b := bytes.Clone(objs[testPrefix+seg(2)])
			b[len(b)-1] ^= 1
			e.putObject(seg(2), b)
		}, 2},
		"reordered": {func(e *env, objs map[string][]byte) {
			e.putObject(seg(2), objs[testPrefix+seg(3)])
			e.putObject(seg(3), objs[testPrefix+seg(2)])
		}, 2},
		"missing in the middle": {func(e *env, _ map[string][]byte) { e.deleteObject(seg(3)) }, 3},
		"copied from another position": {func(e *env, objs map[string][]byte) {
			e.deleteObject(seg(4))
			e.putObject(segmentName(1, 4), objs[testPrefix+segmentName(1, 1)])
		}, 4},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			s, _ := e.init(e.config())
			putKeys(t, s, 0, 5)
			tc.mutate(e, e.objects())
			_, _, err := Restore(context.Background(), e.config(), t.TempDir(), keystore.Options{})
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Restore: %v, want a CorruptError", err)
			}
			if ce.Seq != tc.wantSeq || ce.Gen != 1 {
				t.Fatalf("error names gen %d seq %d, want 1/%d: %v", ce.Gen, ce.Seq, tc.wantSeq, err)
			}
		})
	}
}

func TestTamperedManifestAndSnapshotRefused(t *testing.T) {
	e := newEnv(t)
	s, _ := e.init(e.config())
	putKeys(t, s, 0, 2)
	objs := e.objects()
	man := objs[testPrefix+manifestName]
	e.putObject(manifestName, bytes.Replace(man, []byte(`"snapshot_seq": 0`), []byte(`"snapshot_seq": 1`), 1))
	if _, _, err := Restore(context.Background(), e.config(), t.TempDir(), keystore.Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("tampered manifest: %v", err)
	}
	e.putObject(manifestName, man)
	snap := bytes.Clone(objs[testPrefix+snapshotName(1, 0)])
	snap[len(snap)/2] ^= 1
	e.putObject(snapshotName(1, 0), snap)
	if _, _, err := Restore(context.Background(), e.config(), t.TempDir(), keystore.Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("tampered snapshot: %v", err)
	}
	other := e.config()
	other.DataKey = randomKey(t)
	if _, _, err := Restore(context.Background(), other, t.TempDir(), keystore.Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("wrong data key: %v", err)
	}
}

// TestNoPlaintextInS3 scans every object and every request body written to
// S3 (including deleted segments) for share bytes and the data key.
func TestNoPlaintextInS3(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.SnapshotSegments = 3
	s, _ := e.init(cfg)
	putKeys(t, s, 0, 7)
	e.restore(cfg)
	key := e.dataKey.Reveal()
	needles := [][]byte{[]byte(shareMarker), key, []byte(strings.ToLower(string(hexOf(key)))), []byte("SQLite format 3")}
	objs := e.objects()
	if len(objs) < 3 {
		t.Fatalf("only %d objects", len(objs))
	}
	for name, b := range objs {
		scan(t, name, b, needles)
	}
	e.tr.mu.Lock()
	defer e.tr.mu.Unlock()
	for _, p := range e.tr.puts {
		scan(t, "request to "+p.path, p.body, needles)
	}
}

func hexOf(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

func scan(t *testing.T, name string, b []byte, needles [][]byte) {
	t.Helper()
	for _, n := range needles {
		if bytes.Contains(b, n) {
			t.Errorf("%s contains plaintext %q...", name, n[:4])
		}
	}
}

// TestBytesPerMutation: a key creation writes about the same number of
// bytes to S3 whether 10 or 1000 keys are stored.
func TestBytesPerMutation(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 1000 keys")
	}
	perKey := map[int]int{}
	for _, n := range []int{10, 1000} {
		e := newEnv(t)
		cfg := e.config()
		cfg.SnapshotSegments = 1 << 20
		s, _ := e.init(cfg)
		putKeys(t, s, 0, n)
		before := e.tr.putBytes("")
		putKeys(t, s, n, n+1)
		perKey[n] = e.tr.putBytes("") - before
	}
	if perKey[10] == 0 || perKey[1000] > perKey[10]+perKey[10]/10 {
		t.Fatalf("bytes per key creation: %v", perKey)
	}
	t.Logf("bytes written per key creation: %v", perKey)
}
