//go:build !release

package sealed

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/failpoint"
)

// op is one mutation of the crash sequence: key i at epoch.
type op struct {
	key   int
	epoch uint64
}

// crashOps creates six keys and refreshes two. With SnapshotSegments 3,
// mutations 3 and 6 trigger a compaction.
var crashOps = []op{{0, 0}, {1, 0}, {2, 0}, {3, 0}, {1, 1}, {4, 0}, {2, 1}, {5, 0}}

// inFlightDurable says, for each failpoint, whether the mutation running
// when the process crashes there is in the state after a restart. Its
// segment is in S3 from replica/after-segment-put on; compaction runs
// after the mutation is durable and committed.
var inFlightDurable = map[failpoint.Name]bool{
	failpoint.KeystoreBeforeReplicate:            false,
	failpoint.ReplicaBeforeSegmentPut:            false,
	failpoint.ReplicaAfterSegmentPut:             true,
	failpoint.KeystoreAfterReplicateBeforeCommit: true,
	failpoint.ReplicaBeforeManifestSwap:          true,
	failpoint.ReplicaAfterManifestSwap:           true,
	failpoint.ReplicaBeforeOldSegmentDelete:      true,
	failpoint.KeystoreAfterCommitBeforeAck:       true,
}

var errCrash = errors.New("injected: crash")

// TestCrashAtEveryFailpoint crashes the enclave process at every named
// failpoint, at its first and its second hit, during a sequence of
// mutations, then restarts it (new process, new directory, same PCRs) and
// checks that the state holds exactly the acknowledged mutations, plus the
// one in flight if and only if inFlightDurable says so; and that the
// restarted process can go on mutating.
func TestCrashAtEveryFailpoint(t *testing.T) {
	for _, point := range failpoint.All() {
		for _, hit := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/hit=%d", point, hit), func(t *testing.T) {
				testCrashAt(t, point, hit)
			})
		}
	}
}

func testCrashAt(t *testing.T, point failpoint.Name, hit int) {
	e := newEnv(t)
	p := e.newProc(pcrGood)
	p.cfg.SnapshotSegments = 3
	st := p.init()
	disable := crashAt(t, point, hit, p)
	defer disable()
	acked, inFlight := runUntilCrash(t, p, st.Store)
	disable()

	want := expected(acked)
	if inFlight != nil && inFlightDurable[point] {
		want = expected(append(acked, *inFlight))
	}
	restarted := e.newProc(pcrGood)
	restarted.cfg.SnapshotSegments = 3
	st2 := restarted.open()
	if got := keysAndSeq(t, st2.Store); got != want {
		t.Fatalf("after a crash at %s (hit %d; acknowledged %v, in flight %v):\n%s\nwant\n%s",
			point, hit, acked, inFlight, got, want)
	}
	putKeys(t, st2.Store, 100, 104)
	again := keysAndSeq(t, st2.Store)
	if got := keysAndSeq(t, e.newProc(pcrGood).open().Store); got != again {
		t.Fatalf("second restart:\n%s\nwant\n%s", got, again)
	}
}

// crashAt enables point so that its hit-th hit crashes p.
func crashAt(t *testing.T, point failpoint.Name, hit int, p *proc) func() {
	t.Helper()
	hits := 0
	disable, err := failpoint.Enable(point, func() error {
		if hits++; hits == hit {
			p.crash()
			return errCrash
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return disable
}

// runUntilCrash runs crashOps until p crashes. A mutation that returned
// nil is acknowledged, even if the crash happened during it (a compaction
// failure does not fail the mutation, which is already durable); one that
// failed because of the crash is in flight.
func runUntilCrash(t *testing.T, p *proc, s *keystore.Store) (acked []op, inFlight *op) {
	t.Helper()
	for _, o := range crashOps {
		err := s.PutKey(context.Background(), testRecord(o.key, o.epoch))
		switch {
		case err == nil:
			acked = append(acked, o)
		case !p.dead.Load():
			t.Fatalf("PutKey %v failed without a crash: %v", o, err)
		default:
			inFlight = &o
		}
		if p.dead.Load() {
			return acked, inFlight
		}
	}
	t.Fatal("the failpoint was never reached")
	return nil, nil
}

// expected renders the keys and sequence number ops produce.
func expected(ops []op) string {
	e := newExpect()
	for _, o := range ops {
		e.epochs[o.key] = o.epoch
	}
	return e.render(uint64(len(ops)))
}

// keysAndSeq renders a store the same way.
func keysAndSeq(t *testing.T, s *keystore.Store) string {
	t.Helper()
	e := newExpect()
	for i := range 200 {
		k, err := s.GetKey(context.Background(), keyID(i))
		if errors.Is(err, keystore.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(k.Share.Reveal()) != string(share(i, k.Epoch)) {
			t.Fatalf("key %d epoch %d holds another share", i, k.Epoch)
		}
		e.epochs[i] = k.Epoch
	}
	seq, err := s.Seq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return e.render(seq)
}

type expect struct{ epochs map[int]uint64 }

func newExpect() expect { return expect{epochs: map[int]uint64{}} }

func (e expect) render(seq uint64) string {
	s := ""
	for i := range 200 {
		if epoch, ok := e.epochs[i]; ok {
			s += fmt.Sprintf("key %d epoch %d\n", i, epoch)
		}
	}
	return s + fmt.Sprintf("seq %d\n", seq)
}

// TestFailureAfterReplicateFences: a failure between a durable record and
// its local commit (here an injected one, in production a failed commit)
// fences the store, since the two histories have parted; a restart holds
// the change.
func TestFailureAfterReplicateFences(t *testing.T) {
	e := newEnv(t)
	st := e.newProc(pcrGood).init()
	putKeys(t, st.Store, 0, 2)
	boom := errors.New("injected: commit failed")
	once := false
	disable, err := failpoint.Enable(failpoint.KeystoreAfterReplicateBeforeCommit, func() error {
		if once {
			return nil
		}
		once = true
		return boom
	})
	if err != nil {
		t.Fatal(err)
	}
	defer disable()
	if err := st.Store.PutKey(context.Background(), testRecord(2, 0)); !errors.Is(err, ErrFenced) || !errors.Is(err, boom) {
		t.Fatalf("PutKey: %v, want ErrFenced wrapping the failure", err)
	}
	if err := st.Store.PutKey(context.Background(), testRecord(3, 0)); !errors.Is(err, ErrFenced) {
		t.Fatalf("next PutKey: %v, want ErrFenced", err)
	}
	disable()
	got := keysAndSeq(t, e.newProc(pcrGood).open().Store)
	if want := expected([]op{{0, 0}, {1, 0}, {2, 0}}); got != want {
		t.Fatalf("after restart:\n%s\nwant\n%s", got, want)
	}
}

// TestErrorAtSegmentPutBoundaries: an injected error (not a crash) before
// or after the segment upload fails the mutation. Before: nothing
// happened, the store goes on. After: the segment is in S3 (a lost
// answer), so the next mutation is fenced and a restart holds it.
func TestErrorAtSegmentPutBoundaries(t *testing.T) {
	for _, tc := range []struct {
		point  failpoint.Name
		stored bool
	}{{failpoint.ReplicaBeforeSegmentPut, false}, {failpoint.ReplicaAfterSegmentPut, true}} {
		t.Run(string(tc.point), func(t *testing.T) {
			e := newEnv(t)
			st := e.newProc(pcrGood).init()
			putKeys(t, st.Store, 0, 1)
			fired := false
			disable, err := failpoint.Enable(tc.point, func() error {
				if fired {
					return nil
				}
				fired = true
				return errors.New("injected")
			})
			if err != nil {
				t.Fatal(err)
			}
			defer disable()
			if err := st.Store.PutKey(context.Background(), testRecord(1, 0)); err == nil {
				t.Fatal("PutKey succeeded through an injected error")
			}
			err = st.Store.PutKey(context.Background(), testRecord(2, 0))
			if tc.stored != errors.Is(err, ErrFenced) || (!tc.stored && err != nil) {
				t.Fatalf("next PutKey: %v (segment stored: %v)", err, tc.stored)
			}
			disable()
			want := []op{{0, 0}, {2, 0}}
			if tc.stored {
				want = []op{{0, 0}, {1, 0}}
			}
			if got := keysAndSeq(t, e.newProc(pcrGood).open().Store); got != expected(want) {
				t.Fatalf("after restart:\n%s\nwant\n%s", got, expected(want))
			}
		})
	}
}
