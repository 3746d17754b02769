//go:build !release

package reliability_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/metrics"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	"github.com/nitro-cosigner/nitro-cosigner/test/internal/mpcharness"
)

// TestHostilePeer injects, into a running keygen's session, frames that
// must not be believed: signed with carol's key but carrying a document
// with other PCRs, of a debug-mode enclave, expired, bound to another
// identity, under another root; signed by an unknown key posing as carol;
// from an identity not in the roster; and every frame of an earlier,
// finished session, replayed. Each is refused by every receiver under its
// own reason, counted under that reason in the enclave's metrics
// (cosigner_enclave_frames_dropped_total{reason}), and named in the
// peer's log with that reason; the refusals of a peer's or host's misbehaviour
// (attestation, signature, sender) at WARN, so that they show in a
// production log at info level. The keygen succeeds and its key signs.
func TestHostilePeer(t *testing.T) {
	parallelInShort(t)
	began := time.Now()
	var logs testutil.Buffer
	c := mpcharness.NewCluster(t, mpcharness.NATS, mpcharness.Options{PeerLogs: &logs})
	host := c.NewClient("carol")
	t.Cleanup(func() { host.Close() })

	sessions := 0
	old, rs := mpcharness.Run(c, mpcharness.ABC, mpcharness.Generous, mpcharness.FROSTKeygen)
	mpcharness.MustAll(t, "an earlier keygen", rs)
	sessions++
	var replays []mpcharness.Rogue
	for _, id := range mpcharness.ABC {
		for _, f := range c.Ledger.FramesTo(string(id)) {
			replays = append(replays, mpcharness.Rogue{Name: "a frame of an earlier session, replayed",
				Frames: map[mpc.PartyID][]byte{id: f}, Want: []wire.DropReason{wire.DropSessionEnded, wire.DropNotInSession}})
		}
	}
	t.Logf("earlier session %s: %d frames to replay", old.ID, len(replays))

	spec := c.Open(mpcharness.ABC, mpcharness.Generous)
	rogues := append(c.RogueFrames(t, spec.ID), replays...)
	keygen := mpcharness.Start(c, spec, mpcharness.FROSTKeygen)
	injected := 0
	before := map[string]int{} // deliveries of each frame before it was injected
	for _, r := range rogues {
		for to, frame := range r.Frames {
			before[string(frame)] = len(c.Cos[to].Watch.Verdicts(frame))
			mpcharness.Publish(t, host, to, frame)
			injected++
		}
	}
	refusedFor := map[wire.DropReason]bool{}
	for _, r := range rogues {
		for to, frame := range r.Frames {
			w, n := c.Cos[to].Watch, before[string(frame)]
			w.WaitDelivered(t, frame, n, r.Name)
			for _, v := range w.Verdicts(frame)[n:] {
				refusedFor[v] = true
				if !slices.Contains(r.Want, v) {
					t.Errorf("%s: %s's verdict %s, want %v", r.Name, to, mpcharness.VerdictName(v), r.Want)
				}
			}
		}
	}
	key := mpcharness.MustAll(t, "keygen beside rogue frames", mpcharness.Await(c, spec, keygen))
	c.Close(spec)
	sessions++
	digest := mpcharness.RandomDigest()
	_, sigs := mpcharness.Run(c, []mpc.PartyID{"alice", "bob"}, mpcharness.Generous, mpcharness.Signer(key.Key, digest))
	if !mpcharness.SchnorrValid(t, key.PublicKey, digest, mpcharness.MustAll(t, "sign", sigs)) {
		t.Fatal("BIP-340 signature does not verify")
	}
	sessions++
	checkNamed(t, c, refusedFor, logs.String())
	summary.add("hostile peer", func(r *row) {
		r.sessions += sessions
		r.faults += injected
		r.forged += c.AcceptedForgeries()
		r.duration += time.Since(began)
		r.note = fmt.Sprintf("%d rogue and replayed frames injected, refused under %d reasons", injected, len(refusedFor))
	})
}

// checkNamed checks that every reason rogues were refused for is counted
// in the enclave's metrics (cosigner_enclave_frames_dropped_total, by
// reason, as enclave/metrics exports each receiver's counters) and named
// in the receivers' logs.
func checkNamed(t *testing.T, c *mpcharness.Cluster, reasons map[wire.DropReason]bool, logs string) {
	t.Helper()
	got := droppedMetric(t, c)
	for reason := range reasons {
		if reason == mpcharness.Accepted {
			t.Errorf("a rogue frame was accepted")
			continue
		}
		if got[reason.String()] == 0 {
			t.Errorf("no frame counted as %s in %s", reason, droppedTotal)
		}
		level := logLevel(logs, reason)
		switch {
		case level == "":
			t.Errorf("the peers' logs never name %s", reason)
		case securityDrop(reason) && level != "WARN":
			t.Errorf("%s is logged at %s, not WARN", reason, level)
		}
	}
	t.Logf("%s: %v", droppedTotal, got)
}

const droppedTotal = "cosigner_enclave_frames_dropped_total"

// droppedMetric gathers droppedTotal from a metrics registry of each
// cosigner watching its peer, as the enclave's is, and sums the non-zero
// series by reason.
func droppedMetric(t *testing.T, c *mpcharness.Cluster) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, id := range mpcharness.ABC {
		m := metrics.New(nil)
		if err := m.Watch(metrics.Sources{Peer: c.Cos[id].Peer.Stats}); err != nil {
			t.Fatal(err)
		}
		families, err := m.Gatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() != droppedTotal {
				continue
			}
			for _, series := range f.GetMetric() {
				for _, l := range series.GetLabel() {
					if v := series.GetCounter().GetValue(); l.GetName() == "reason" && v > 0 {
						out[l.GetValue()] += v
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Errorf("no %s series gathered", droppedTotal)
	}
	return out
}

// securityDrop reports whether a refusal means a peer or the host
// misbehaves, rather than at-least-once delivery (copies, late frames).
func securityDrop(r wire.DropReason) bool {
	switch r {
	case wire.DropReplay, wire.DropSessionEnded, wire.DropNotInSession, wire.DropUnknownAttestation, wire.DropStale:
		return false
	}
	return true
}

// logLevel returns the highest level at which the logs name a drop
// reason, or "".
func logLevel(logs string, r wire.DropReason) string {
	level := ""
	for line := range strings.Lines(logs) {
		if !strings.Contains(line, `msg="frame dropped"`) || !strings.Contains(line, " reason="+r.String()) {
			continue
		}
		switch {
		case strings.Contains(line, "level=WARN"):
			return "WARN"
		case strings.Contains(line, "level=DEBUG"):
			level = "DEBUG"
		}
	}
	return level
}
