package replica

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
)

// TestSnapshotUploadFailureKeepsMutations: a failing compaction does not
// fail the mutation that triggered it, and loses nothing.
func TestSnapshotUploadFailureKeepsMutations(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.SnapshotSegments = 2
	s, r := e.init(cfg)
	e.tr.setRule(func(req *http.Request) fault {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/snapshots/") {
			return serverError
		}
		return pass
	})
	putKeys(t, s, 0, 5)
	if r.man.SnapshotSeq != 0 {
		t.Fatalf("manifest moved to %d although snapshots failed", r.man.SnapshotSeq)
	}
	e.tr.setRule(nil)
	putKeys(t, s, 5, 6)
	if r.man.SnapshotSeq != 6 {
		t.Fatalf("manifest at %d after S3 recovered, want 6", r.man.SnapshotSeq)
	}
	restored, _ := e.restore(cfg)
	if a, b := state(t, s), state(t, restored); a != b {
		t.Fatalf("differs:\n%s\nwant\n%s", b, a)
	}
}

// TestConcurrentMutationsWithCompaction runs writers and readers at once
// under the race detector.
func TestConcurrentMutationsWithCompaction(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.SnapshotSegments = 5
	s, _ := e.init(cfg)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() { putKeys(t, s, w*100, w*100+8) })
		wg.Go(func() {
			for range 8 {
				if _, err := s.ListKeys(context.Background(), keystore.Cursor{}, 10); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	restored, _ := e.restore(cfg)
	if a, b := state(t, s), state(t, restored); a != b {
		t.Fatalf("differs:\n%s\nwant\n%s", b, a)
	}
}

func FuzzDecodeManifest(f *testing.F) {
	k, err := deriveKeys(randomKey(f))
	if err != nil {
		f.Fatal(err)
	}
	good, _ := k.encodeManifest(manifest{Cosigner: "c", Gen: 1, Snapshot: snapshotName(1, 0), SnapshotSHA256: strings.Repeat("0", 64)})
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := k.decodeManifest("c", b)
		if err == nil && (m.Cosigner != "c" || m.Gen == 0) {
			t.Fatalf("accepted a bad manifest: %+v", m)
		}
	})
}

func FuzzOpenSegment(f *testing.F) {
	k, err := deriveKeys(randomKey(f))
	if err != nil {
		f.Fatal(err)
	}
	p := position{cosigner: "c", gen: 1, seq: 2}
	good, _ := k.seal(p, kindRecord, []byte("payload"))
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, pt, err := k.open(p, b)
		if err == nil && !bytes.Equal(b, good) {
			t.Fatalf("forged segment accepted: kind %d, %q", kind, pt)
		}
	})
}
