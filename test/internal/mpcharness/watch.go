package mpcharness

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/peer"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// Accepted is the verdict a watch records for a frame the Receiver took.
const Accepted wire.DropReason = 0

// VerdictName is the reason's name, or "accepted".
func VerdictName(v wire.DropReason) string {
	if v == Accepted {
		return "accepted"
	}
	return v.String()
}

// VerdictNames names each verdict.
func VerdictNames(vs []wire.DropReason) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = VerdictName(v)
	}
	return out
}

// CountNames keys counts of verdicts by their names.
func CountNames(m map[wire.DropReason]int) map[string]int {
	out := make(map[string]int, len(m))
	for v, n := range m {
		out[VerdictName(v)] = n
	}
	return out
}

// Watch stands between the link and the peer: it records, for every frame
// delivered, whether the Receiver accepted it or the reason it counted.
// The link calls it one frame at a time, so the change in the Receiver's
// counters across one Deliver is that frame's verdict. That holds as long
// as the peer holds no frame for later (peer.Config.LeanAttach, hold.go):
// the cosigners attach their attestation document to every frame unless
// Options.Lean is set, so no frame names a document its receiver lacks.
type Watch struct {
	peer *peer.Peer

	mu    sync.Mutex
	order []Sum                     // deliveries, in order
	seen  map[Sum][]wire.DropReason // verdicts of each frame's deliveries
}

func (w *Watch) deliver(ctx context.Context, frame []byte) {
	before := w.peer.Stats().Wire
	w.peer.Deliver(ctx, frame)
	after := w.peer.Stats().Wire
	verdict := Accepted
	for r, n := range after.Dropped {
		if n > before.Dropped[r] {
			verdict = r
		}
	}
	s := SumOf(frame)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.order = append(w.order, s)
	w.seen[s] = append(w.seen[s], verdict)
}

// Verdicts returns the verdicts of every delivery of the frame.
func (w *Watch) Verdicts(frame []byte) []wire.DropReason {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]wire.DropReason(nil), w.seen[SumOf(frame)]...)
}

// WaitDelivered waits until the frame was delivered more than n times.
func (w *Watch) WaitDelivered(tb testing.TB, frame []byte, n int, what string) {
	tb.Helper()
	deadline := time.Now().Add(Patience)
	for len(w.Verdicts(frame)) <= n {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not delivered within %v", what, Patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitAccepted waits until the frame was accepted.
func (w *Watch) WaitAccepted(tb testing.TB, frame []byte) {
	tb.Helper()
	deadline := time.Now().Add(Patience)
	for !slices.Contains(w.Verdicts(frame), Accepted) {
		if time.Now().After(deadline) {
			tb.Fatalf("a genuine frame was not accepted within %v", Patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Tally counts a receiver's verdicts by what the frame was: genuine (First
// delivery after no acceptance, or Again after one), Forged by a hostile
// broker, or Foreign.
type Tally struct {
	First, Again, Forged, Foreign map[wire.DropReason]int
}

// Tally counts cosigner id's verdicts so far.
func (c *Cluster) Tally(id mpc.PartyID) Tally {
	w := c.Cos[id].Watch
	t := Tally{First: map[wire.DropReason]int{}, Again: map[wire.DropReason]int{},
		Forged: map[wire.DropReason]int{}, Foreign: map[wire.DropReason]int{}}
	w.mu.Lock()
	defer w.mu.Unlock()
	took := map[Sum]bool{}
	at := map[Sum]int{}
	for _, s := range w.order {
		v := w.seen[s][at[s]]
		at[s]++
		switch c.Ledger.Kind(string(id), s) {
		case KindForged:
			t.Forged[v]++
		case KindForeign:
			t.Foreign[v]++
		case KindGenuine:
			if took[s] {
				t.Again[v]++
			} else {
				t.First[v]++
			}
		}
		took[s] = took[s] || v == Accepted
	}
	return t
}

// Delivered is the number of frames delivered to every receiver so far.
func (c *Cluster) Delivered() int {
	n := 0
	for _, co := range c.Cos {
		co.Watch.mu.Lock()
		n += len(co.Watch.order)
		co.Watch.mu.Unlock()
	}
	return n
}

// AcceptedForgeries counts the frames receivers accepted that no relay
// published to their inbox (forged by a hostile broker, or foreign), or
// accepted a second time. It must be 0.
func (c *Cluster) AcceptedForgeries() int {
	n := 0
	for _, id := range ABC {
		t := c.Tally(id)
		n += t.Forged[Accepted] + t.Foreign[Accepted] + t.Again[Accepted]
	}
	return n
}

// CheckNoForgery is the invariant of every test: a receiver accepted only
// frames a relay published to its own inbox, each at most once. Nothing
// forged, replayed, injected or meant for another cosigner got through.
func (c *Cluster) CheckNoForgery() {
	for _, id := range ABC {
		if c.Cos[id] == nil || c.Cos[id].Watch == nil {
			continue
		}
		t := c.Tally(id)
		for what, n := range map[string]int{"forged": t.Forged[Accepted], "foreign": t.Foreign[Accepted], "already accepted": t.Again[Accepted]} {
			if n > 0 {
				c.tb.Errorf("%s accepted %d %s frames", id, n, what)
			}
		}
	}
}
