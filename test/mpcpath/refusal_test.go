package mpcpath_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// keygenProtocol is the multi-party-sig protocol of FROST Taproot keygen,
// so that a rogue frame, if it were accepted, would reach the running
// keygen and make it abort.
const keygenProtocol = "frost/keygen-threshold-taproot"

// rogue is a broadcast a host injects straight into the broker: one frame
// per recipient, each addressed to its inbox's owner.
type rogue struct {
	name   string
	frames map[mpc.PartyID][]byte
	want   wire.DropReason
}

// rogueFrames returns frames for the session, each signed by an enclave
// that must not be believed, and the reason each must be dropped for.
//
// They are final-round (3) broadcasts with a junk payload, one frame per
// recipient (every frame names its recipient). Each has its own sequence
// number, above 64 (the rogue signer first seals frames for another
// session), while carol sends fewer than 64 frames in the cluster's first
// session: so no rogue frame has the replay key of another or of one of
// carol's, and each is judged on its own merits.
func (c *cluster) rogueFrames(tb testing.TB, session mpc.SessionID) []rogue {
	tb.Helper()
	carol := c.cos["carol"]
	malloryKey := must(wire.GenerateIdentityKey())
	mallory := wire.Member{ID: "mallory", Identity: malloryKey.Public(),
		Encryption: must(wire.GenerateEncryptionKey()).Public(), PCRs: pcrs()}
	now := time.Now()
	doc := func(ca *attestsim.CA, pcrs map[int][]byte, m wire.Member, at time.Time) []byte {
		return must(ca.Attest(attestsim.Request{PCRs: pcrs, UserData: m.Binding(), Time: at}))
	}
	sealed := 0
	seal := func(id string, key *wire.IdentityKey, roster *wire.Roster, doc []byte, to []mpc.PartyID) map[mpc.PartyID][]byte {
		s := must(wire.NewSigner(wire.SignerConfig{ID: id, Identity: key, Roster: roster, Attestation: doc}))
		frame := wire.Frame{Session: wire.SessionID(must(mpc.NewSessionID())), Protocol: keygenProtocol, Round: 3,
			To: string(to[0]), Broadcast: true, Payload: bytes.Repeat([]byte{0x5a}, 64), Attach: true}
		for range 64 + sealed {
			must(s.Seal(frame))
		}
		sealed += len(to)
		frame.Session = wire.SessionID(session)
		out := make(map[mpc.PartyID][]byte, len(to))
		for _, id := range to {
			frame.To = string(id)
			out[id] = must(s.Seal(frame))
		}
		return out
	}
	ab := []mpc.PartyID{"alice", "bob"}
	asCarol := func(doc []byte) map[mpc.PartyID][]byte { return seal("carol", carol.identity, c.roster, doc, ab) }
	otherPCRs := pcrs()
	otherPCRs[0] = bytes.Repeat([]byte{0xbb}, 48)
	expired := now.Add(-attestsim.LeafLifetime - time.Hour)
	notCarol := must(wire.NewRoster(c.cos["alice"].member(), c.cos["bob"].member()))
	return []rogue{
		{"carol's key in an enclave with other PCRs", asCarol(doc(testCA(), otherPCRs, carol.member(), now)), wire.DropAttestationPCR},
		{"carol's key in a debug-mode enclave", asCarol(doc(testCA(), nil, carol.member(), now)), wire.DropAttestationDebug},
		{"carol's key with an expired document", asCarol(doc(testCA(), pcrs(), carol.member(), expired)), wire.DropAttestationExpired},
		{"carol's key with a document bound to another identity", asCarol(doc(testCA(), pcrs(), mallory, now)), wire.DropAttestationBinding},
		{"carol's key with a document under another root", asCarol(doc(must(attestsim.NewCA()), pcrs(), carol.member(), now)), wire.DropAttestationInvalid},
		{"an unknown key posing as carol", seal("carol", malloryKey, notCarol, doc(testCA(), pcrs(), mallory, now), ab), wire.DropBadSignature},
		{"an identity not in the roster", seal("mallory", malloryKey, c.roster, doc(testCA(), pcrs(), mallory, now), abc), wire.DropUnknownSender},
	}
}

// publish stores frame in to's inbox, retrying as a relay does.
func publish(tb testing.TB, b broker.Broker, to mpc.PartyID, frame []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for {
		err := b.Publish(ctx, string(to), frame)
		if err == nil {
			return
		}
		if sleep(ctx, 100*time.Millisecond) != nil {
			tb.Fatalf("publishing to %s: %v", to, err)
		}
	}
}

// Frames injected into the broker by a host, during a keygen and in its
// session, signed by an enclave that must not be believed (other PCRs, a
// debug-mode document, an expired document, a document of another
// identity or under another root, an unknown key, a sender not in the
// roster) are dropped by every receiver under their own reason; a copy of
// every frame of the keygen, injected once it has been accepted, is
// dropped as a replay. The keygen succeeds and its key signs.
func testRefusals(t *testing.T, be backend) {
	c := newCluster(t, be, options{})
	host := c.client("carol") // a host writes to every inbox
	t.Cleanup(func() { host.Close() })
	spec := c.open(abc, generous)
	rogues := c.rogueFrames(t, spec.ID)
	keygen := start(c, spec, frostKeygen)
	for _, r := range rogues {
		for to, frame := range r.frames {
			publish(t, host, to, frame)
		}
	}
	// The session stays open until every verdict is in, so each is the
	// frame's own, not its session's end.
	for _, r := range rogues {
		for to, frame := range r.frames {
			w := c.cos[to].watch
			w.waitDelivered(t, frame, 0, r.name)
			for _, v := range w.verdicts(frame) {
				if v != r.want {
					t.Errorf("%s: %s's verdict %s, want %v", r.name, to, verdictName(v), r.want)
				}
			}
		}
	}
	key := mustAll(t, "keygen beside rogue frames", await(c, spec, keygen))
	c.replayAll(t, host)
	c.close(spec)

	digest := randomDigest()
	sig := mustAll(t, "sign", second(run(c, abc, generous, signer(key.Key, digest))))
	if !schnorrValid(t, key.PublicKey, digest, sig) {
		t.Fatal("BIP-340 signature does not verify")
	}
	var want []wire.DropReason
	for _, r := range rogues {
		want = append(want, r.want)
	}
	c.checkDrops(want...)
}

// replayAll publishes again, through host, every frame the relays have
// published so far, once each receiver has accepted it, and checks that
// each copy is dropped as a replay.
func (c *cluster) replayAll(tb testing.TB, host broker.Broker) {
	tb.Helper()
	type replayed struct {
		to    mpc.PartyID
		frame []byte
		n     int // deliveries before the replay
	}
	var rs []replayed
	for _, id := range abc {
		w := c.cos[id].watch
		for _, f := range c.ledger.framesTo(string(id)) {
			w.waitAccepted(tb, f)
			rs = append(rs, replayed{id, f, len(w.verdicts(f))})
			publish(tb, host, id, f)
		}
	}
	if len(rs) == 0 {
		tb.Fatal("no frame to replay")
	}
	for _, r := range rs {
		w := c.cos[r.to].watch
		w.waitDelivered(tb, r.frame, r.n, "replayed frame")
		if v := w.verdicts(r.frame)[r.n:]; slices.ContainsFunc(v, func(v wire.DropReason) bool { return v != wire.DropReplay }) {
			tb.Errorf("%s's verdicts on a replayed frame: %v, want replay", r.to, verdictNames(v))
		}
	}
	tb.Logf("replayed %d frames", len(rs))
}

// waitAccepted waits until the frame was accepted.
func (w *watch) waitAccepted(tb testing.TB, frame []byte) {
	tb.Helper()
	deadline := time.Now().Add(patience)
	for !slices.Contains(w.verdicts(frame), accepted) {
		if time.Now().After(deadline) {
			tb.Fatalf("a genuine frame was not accepted within %v", patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A frame a relay published to bob, stored by the broker in carol's inbox
// instead, must not be accepted by carol: she gets her own copy of every
// broadcast, so a second one is a replay in all but its sequence number.
// Every frame names its recipient, broadcasts included, so each is dropped
// as wrong_recipient (as own_frame if carol sent it, a check that comes
// first). The session stays open meanwhile, so each verdict is the
// frame's own, not its session's end.
func TestMisroutedBroadcast(t *testing.T) {
	c := newCluster(t, natsBackend, options{})
	host := c.client("carol")
	t.Cleanup(func() { host.Close() })
	spec := c.open(abc, generous)
	mustAll(t, "keygen", await(c, spec, start(c, spec, frostKeygen)))
	w := c.cos["carol"].watch
	broadcasts := 0
	for _, f := range c.ledger.framesTo("bob") {
		from, broadcast := unverifiedHeader(t, f)
		want := wire.DropWrongRecipient
		if from == "carol" {
			want = wire.DropOwnFrame
		} else if broadcast {
			broadcasts++
		}
		publish(t, host, "carol", f)
		w.waitDelivered(t, f, 0, "a frame for bob, in carol's inbox")
		if v := w.verdicts(f); slices.ContainsFunc(v, func(v wire.DropReason) bool { return v != want }) {
			t.Errorf("carol's verdicts on a %s frame from %s published to bob: %v, want %v",
				kindName(broadcast), from, verdictNames(v), want)
		}
	}
	if broadcasts == 0 {
		t.Fatal("no broadcast frame published to bob by another party was moved")
	}
	t.Logf("moved %d frames for bob to carol, %d of them others' broadcasts", len(c.ledger.framesTo("bob")), broadcasts)
	c.close(spec)
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
