//go:build !release

package sealed

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/test/s3server"
)

// Benchmarks share sealed states built once per run (building 10,000 keys
// through S3 takes seconds), so their environments outlive the benchmark
// that built them; TestMain releases them.
var (
	fixturesMu sync.Mutex
	fixtures   = map[int]*fixture{}
	atExit     []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range slices.Backward(atExit) {
		f()
	}
	os.Exit(code)
}

// longLived is the testing.TB of a shared environment: failures go to the
// benchmark using it now; cleanups and directories last until TestMain
// ends.
type longLived struct{ testing.TB }

func (l *longLived) Cleanup(f func()) { atExit = append(atExit, f) }

func (l *longLived) TempDir() string {
	dir, err := os.MkdirTemp("", "sealed-bench-")
	if err != nil {
		l.Fatal(err)
	}
	atExit = append(atExit, func() { os.RemoveAll(dir) })
	return dir
}

// fixture is an in-process S3 and KMS holding one cosigner with n keys,
// and saved copies of its bucket: right after a compaction (tail 0), and
// after tailSegments further mutations (key refreshes) replicated as
// segments on top of that snapshot.
type fixture struct {
	tb    *longLived
	e     *env
	n     int
	saved map[int]map[string][]byte // by tail length
}

// tailSegments is the longest tail a restore replays with the default
// compaction threshold (1000 segments).
const tailSegments = 999

// fixtureFor returns the fixture with n keys, building it on first use.
func fixtureFor(b *testing.B, n int) *fixture {
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	fx := fixtures[n]
	if fx == nil {
		fx = buildFixture(b, n)
		fixtures[n] = fx
	}
	fx.tb.TB = b
	return fx
}

func buildFixture(b *testing.B, n int) *fixture {
	start := time.Now()
	tb := &longLived{TB: b}
	fx := &fixture{tb: tb, e: newEnv(tb), n: n, saved: map[int]map[string][]byte{}}
	st := fx.e.newProc(pcrGood).init()
	putKeys(b, st.Store, 0, n)
	fx.saved[0] = fx.e.objects()
	if n > tailSegments {
		for i := range tailSegments {
			if err := st.Store.PutKey(context.Background(), testRecord(i, 1)); err != nil {
				b.Fatal(err)
			}
		}
		fx.saved[tailSegments] = fx.e.objects()
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("built a state of %d keys in %v", n, time.Since(start).Round(time.Millisecond))
	return fx
}

// reset puts the bucket back to a saved copy (a restore writes a seal, a
// mutation a segment).
func (fx *fixture) reset(tail int) {
	saved, ok := fx.saved[tail]
	if !ok {
		fx.tb.Fatalf("no saved state with a tail of %d", tail)
	}
	mem := fx.e.mem
	if err := mem.ForceDeleteBucket(fx.e.bucket); err != nil {
		fx.tb.Fatal(err)
	}
	if err := mem.CreateBucket(fx.e.bucket); err != nil {
		fx.tb.Fatal(err)
	}
	for k, v := range saved {
		if _, err := mem.PutObject(fx.e.bucket, k, map[string]string{}, bytes.NewReader(v), int64(len(v)), nil); err != nil {
			fx.tb.Fatal(err)
		}
	}
}

// snapshotBytes is the size of the saved snapshot.
func (fx *fixture) snapshotBytes(tail int) int {
	n := 0
	for k, v := range fx.saved[tail] {
		if strings.Contains(k, "/snapshots/") {
			n += len(v)
		}
	}
	return n
}

// BenchmarkRestore measures the boot of an existing cosigner to serving:
// Open (fetch the wrapped key, KMS Decrypt with Recipient — which includes
// generating the enclave's RSA-2048 recipient key — download and verify
// the snapshot, replay the segments, take over) and one GetKey. Segments
// is the tail replayed on top of the snapshot: 0 right after a compaction,
// 999 just before the next one (the worst case at the default threshold).
// unwrap-ms is the KMS part alone, timed separately.
func BenchmarkRestore(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			for _, tail := range []int{0, tailSegments} {
				b.Run(fmt.Sprintf("segments=%d", tail), func(b *testing.B) {
					benchRestore(b, fixtureFor(b, n), tail)
				})
			}
		})
	}
}

func benchRestore(b *testing.B, fx *fixture, tail int) {
	ctx := context.Background()
	var unwrap time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		fx.reset(tail)
		p := fx.e.newProc(pcrGood)
		b.StartTimer()
		st, err := Open(ctx, p.cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.Store.GetKey(ctx, keyID(fx.n-1)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		unwrap += timeUnwrap(b, p)
		st.Close()
		os.RemoveAll(p.cfg.Dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(unwrap.Milliseconds())/float64(b.N), "unwrap-ms")
	b.ReportMetric(float64(fx.snapshotBytes(tail))/1e6, "snapshot-MB")
}

// timeUnwrap times the KMS step of Open alone.
func timeUnwrap(b *testing.B, p *proc) time.Duration {
	boot, err := newBoot(p.cfg)
	if err != nil {
		b.Fatal(err)
	}
	blob, err := boot.fetchWrapped(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	key, err := boot.unwrap(context.Background(), blob)
	if err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	key.Wipe()
	return d
}

// BenchmarkKeyCreationBytes measures the bytes sent to S3 per key creation
// with 10 and with 10,000 keys already stored. S3-bytes/key is everything
// sent (segment uploads, plus any compaction that falls inside the run);
// segment-bytes/key the segments alone, what a creation costs at once;
// snapshot-bytes/key-amortized the snapshot every 1000th mutation uploads,
// shared over those 1000.
func BenchmarkKeyCreationBytes(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("stored=%d", n), func(b *testing.B) {
			fx := fixtureFor(b, n)
			fx.reset(0)
			st, err := Open(context.Background(), fx.e.newProc(pcrGood).cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			benchCreationBytes(b, fx.e, st.Store, n)
		})
	}
}

func benchCreationBytes(b *testing.B, e *env, s *keystore.Store, stored int) {
	all, segs := e.s3.putBytes(""), e.s3.putBytes("/segments/")
	b.ResetTimer()
	for i := range b.N {
		if err := s.PutKey(context.Background(), testRecord(stored+i, 0)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(e.s3.putBytes("")-all)/float64(b.N), "S3-bytes/key")
	b.ReportMetric(float64(e.s3.putBytes("/segments/")-segs)/float64(b.N), "segment-bytes/key")
	var snap countingWriter
	if _, err := s.Snapshot(context.Background(), &snap); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(snap)/1000, "snapshot-bytes/key-amortized")
}

type countingWriter int

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}

// BenchmarkCriticalMutation measures a key creation acknowledged only once
// durable in S3: one SQLCipher transaction around one conditional PUT over
// loopback HTTP, against gofakes3 in process and against the real S3
// server (versitygw, a separate process). Every 1000th includes a
// compaction.
func BenchmarkCriticalMutation(b *testing.B) {
	b.Run("s3=gofakes3", func(b *testing.B) { benchMutation(b, newEnv(b)) })
	b.Run("s3=versitygw", func(b *testing.B) {
		srv := s3server.Start(b)
		benchMutation(b, newEnvWithS3(b, srv.Bucket, srv.Client().Options()))
	})
}

func benchMutation(b *testing.B, e *env) {
	st := e.newProc(pcrGood).init()
	putKeys(b, st.Store, 0, 10)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := st.Store.PutKey(context.Background(), testRecord(10+i, 0)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
