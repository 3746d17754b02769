package mpcpath_test

import (
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	"github.com/nitro-cosigner/nitro-cosigner/test/internal/mpcharness"
)

// Frames injected into the broker by a host, during a keygen and in its
// session, signed by an enclave that must not be believed (other PCRs, a
// debug-mode document, an expired document, a document of another
// identity or under another root, an unknown key, a sender not in the
// roster) are dropped by every receiver under their own reason; a copy of
// every frame of the keygen, injected once it has been accepted, is
// dropped as a replay. The keygen succeeds and its key signs.
func testRefusals(t *testing.T, be mpcharness.Backend) {
	c := mpcharness.NewCluster(t, be, mpcharness.Options{})
	host := c.NewClient("carol") // a host writes to every inbox
	t.Cleanup(func() { host.Close() })
	spec := c.Open(mpcharness.ABC, mpcharness.Generous)
	rogues := c.RogueFrames(t, spec.ID)
	keygen := mpcharness.Start(c, spec, mpcharness.FROSTKeygen)
	for _, r := range rogues {
		for to, frame := range r.Frames {
			mpcharness.Publish(t, host, to, frame)
		}
	}
	// The session stays open until every verdict is in, so each is the
	// frame's own, not its session's end.
	for _, r := range rogues {
		for to, frame := range r.Frames {
			w := c.Cos[to].Watch
			w.WaitDelivered(t, frame, 0, r.Name)
			for _, v := range w.Verdicts(frame) {
				if !slices.Contains(r.Want, v) {
					t.Errorf("%s: %s's verdict %s, want %v", r.Name, to, mpcharness.VerdictName(v), r.Want)
				}
			}
		}
	}
	key := mpcharness.MustAll(t, "keygen beside rogue frames", mpcharness.Await(c, spec, keygen))
	replayAll(t, c, host)
	c.Close(spec)

	digest := mpcharness.RandomDigest()
	sig := mpcharness.MustAll(t, "sign", mpcharness.Second(mpcharness.Run(c, mpcharness.ABC, mpcharness.Generous, mpcharness.Signer(key.Key, digest))))
	if !mpcharness.SchnorrValid(t, key.PublicKey, digest, sig) {
		t.Fatal("BIP-340 signature does not verify")
	}
	var want []wire.DropReason
	for _, r := range rogues {
		want = append(want, r.Want...)
	}
	checkDrops(t, c, want...)
}

// replayAll publishes again, through host, every frame the relays have
// published so far, once each receiver has accepted it, and checks that
// each copy is dropped as a replay.
func replayAll(tb testing.TB, c *mpcharness.Cluster, host broker.Broker) {
	tb.Helper()
	type replayed struct {
		to    mpc.PartyID
		frame []byte
		n     int // deliveries before the replay
	}
	var rs []replayed
	for _, id := range mpcharness.ABC {
		w := c.Cos[id].Watch
		for _, f := range c.Ledger.FramesTo(string(id)) {
			w.WaitAccepted(tb, f)
			rs = append(rs, replayed{id, f, len(w.Verdicts(f))})
			mpcharness.Publish(tb, host, id, f)
		}
	}
	if len(rs) == 0 {
		tb.Fatal("no frame to replay")
	}
	for _, r := range rs {
		w := c.Cos[r.to].Watch
		w.WaitDelivered(tb, r.frame, r.n, "replayed frame")
		if v := w.Verdicts(r.frame)[r.n:]; slices.ContainsFunc(v, func(v wire.DropReason) bool { return v != wire.DropReplay }) {
			tb.Errorf("%s's verdicts on a replayed frame: %v, want replay", r.to, mpcharness.VerdictNames(v))
		}
	}
	tb.Logf("replayed %d frames", len(rs))
}

// A frame a relay published to bob, stored by the broker in carol's inbox
// instead, must not be accepted by carol: she gets her own copy of every
// broadcast, so a second one is a replay in all but its sequence number.
// Every frame names its recipient, broadcasts included, so each is dropped
// as wrong_recipient (as own_frame if carol sent it, a check that comes
// first). The session stays open meanwhile, so each verdict is the
// frame's own, not its session's end.
func TestMisroutedBroadcast(t *testing.T) {
	c := mpcharness.NewCluster(t, mpcharness.NATS, mpcharness.Options{})
	host := c.NewClient("carol")
	t.Cleanup(func() { host.Close() })
	spec := c.Open(mpcharness.ABC, mpcharness.Generous)
	mpcharness.MustAll(t, "keygen", mpcharness.Await(c, spec, mpcharness.Start(c, spec, mpcharness.FROSTKeygen)))
	w := c.Cos["carol"].Watch
	broadcasts := 0
	for _, f := range c.Ledger.FramesTo("bob") {
		from, broadcast := unverifiedHeader(t, f)
		want := wire.DropWrongRecipient
		if from == "carol" {
			want = wire.DropOwnFrame
		} else if broadcast {
			broadcasts++
		}
		mpcharness.Publish(t, host, "carol", f)
		w.WaitDelivered(t, f, 0, "a frame for bob, in carol's inbox")
		if v := w.Verdicts(f); slices.ContainsFunc(v, func(v wire.DropReason) bool { return v != want }) {
			t.Errorf("carol's verdicts on a %s frame from %s published to bob: %v, want %v",
				kindName(broadcast), from, mpcharness.VerdictNames(v), want)
		}
	}
	if broadcasts == 0 {
		t.Fatal("no broadcast frame published to bob by another party was moved")
	}
	t.Logf("moved %d frames for bob to carol, %d of them others' broadcasts", len(c.Ledger.FramesTo("bob")), broadcasts)
	c.Close(spec)
}

func kindName(broadcast bool) string {
	if broadcast {
		return "broadcast"
	}
	return "direct"
}

// unverifiedHeader reads a frame's sender and broadcast flag without
// verifying anything, so that a test knows what it moved.
func unverifiedHeader(tb testing.TB, frame []byte) (from string, broadcast bool) {
	tb.Helper()
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(frame); err != nil {
		tb.Fatalf("decoding a published frame: %v", err)
	}
	var body struct {
		From      string `cbor:"5,keyasint"`
		Broadcast bool   `cbor:"7,keyasint"`
	}
	if err := cbor.Unmarshal(msg.Payload, &body); err != nil {
		tb.Fatalf("decoding a published frame's body: %v", err)
	}
	return body.From, body.Broadcast
}
