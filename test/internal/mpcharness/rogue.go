package mpcharness

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// keygenProtocol is the multi-party-sig protocol of FROST Taproot keygen,
// so that a rogue frame, if it were accepted, would reach the running
// keygen and make it abort.
const keygenProtocol = "frost/keygen-threshold-taproot"

// Rogue is a broadcast a host injects straight into the broker: one frame
// per recipient, each addressed to its inbox's owner.
type Rogue struct {
	Name   string
	Frames map[mpc.PartyID][]byte
	Want   []wire.DropReason // the verdicts allowed: any of these
}

// RogueFrames returns frames for the session, each signed by an enclave
// that must not be believed, and the reason each must be dropped for:
// carol's identity key with a document of other PCRs, of a debug-mode
// enclave, expired, bound to another identity or under another root; an
// unknown key posing as carol; a sender not in the roster.
//
// They are final-round (3) keygen broadcasts with a junk payload, one
// frame per recipient (every frame names its recipient). Each has its own
// sequence number, above 64 (the rogue signer first seals frames for
// another session), while carol sends fewer than 64 frames in a keygen:
// so no rogue frame has the replay key of another or of one of carol's,
// and each is judged on its own merits.
func (c *Cluster) RogueFrames(tb testing.TB, session mpc.SessionID) []Rogue {
	tb.Helper()
	carol := c.Cos["carol"]
	malloryKey := Must(wire.GenerateIdentityKey())
	mallory := wire.Member{ID: "mallory", Identity: malloryKey.Public(),
		Encryption: Must(wire.GenerateEncryptionKey()).Public(), PCRs: PCRs()}
	now := time.Now()
	doc := func(ca *attestsim.CA, pcrs map[int][]byte, m wire.Member, at time.Time) []byte {
		return Must(ca.Attest(attestsim.Request{PCRs: pcrs, UserData: m.Binding(), Time: at}))
	}
	sealed := 0
	seal := func(id string, key *wire.IdentityKey, roster *wire.Roster, doc []byte, to []mpc.PartyID) map[mpc.PartyID][]byte {
		s := Must(wire.NewSigner(wire.SignerConfig{ID: id, Identity: key, Roster: roster, Attestation: doc}))
		frame := wire.Frame{Session: wire.SessionID(Must(mpc.NewSessionID())), Protocol: keygenProtocol, Round: 3,
			To: string(to[0]), Broadcast: true, Payload: bytes.Repeat([]byte{0x5a}, 64), Attach: true}
		for range 64 + sealed {
			Must(s.Seal(frame))
		}
		sealed += len(to)
		frame.Session = wire.SessionID(session)
		out := make(map[mpc.PartyID][]byte, len(to))
		for _, id := range to {
			frame.To = string(id)
			out[id] = Must(s.Seal(frame))
		}
		return out
	}
	ab := []mpc.PartyID{"alice", "bob"}
	asCarol := func(doc []byte) map[mpc.PartyID][]byte { return seal("carol", carol.Identity, c.Roster, doc, ab) }
	otherPCRs := PCRs()
	otherPCRs[0] = bytes.Repeat([]byte{0xbb}, 48)
	expired := now.Add(-attestsim.LeafLifetime - time.Hour)
	notCarol := Must(wire.NewRoster(c.Cos["alice"].Member(), c.Cos["bob"].Member()))
	one := func(r wire.DropReason) []wire.DropReason { return []wire.DropReason{r} }
	return []Rogue{
		{"carol's key in an enclave with other PCRs", asCarol(doc(TestCA(), otherPCRs, carol.Member(), now)), one(wire.DropAttestationPCR)},
		{"carol's key in a debug-mode enclave", asCarol(doc(TestCA(), nil, carol.Member(), now)), one(wire.DropAttestationDebug)},
		{"carol's key with an expired document", asCarol(doc(TestCA(), PCRs(), carol.Member(), expired)), one(wire.DropAttestationExpired)},
		{"carol's key with a document bound to another identity", asCarol(doc(TestCA(), PCRs(), mallory, now)), one(wire.DropAttestationBinding)},
		{"carol's key with a document under another root", asCarol(doc(Must(attestsim.NewCA()), PCRs(), carol.Member(), now)), one(wire.DropAttestationInvalid)},
		{"an unknown key posing as carol", seal("carol", malloryKey, notCarol, doc(TestCA(), PCRs(), mallory, now), ab), one(wire.DropBadSignature)},
		{"an identity not in the roster", seal("mallory", malloryKey, c.Roster, doc(TestCA(), PCRs(), mallory, now), ABC), one(wire.DropUnknownSender)},
	}
}

// Publish stores frame in to's inbox through b, retrying as a relay does,
// for up to Patience.
func Publish(tb testing.TB, b broker.Broker, to mpc.PartyID, frame []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	for {
		err := b.Publish(ctx, string(to), frame)
		if err == nil {
			return
		}
		if Sleep(ctx, 100*time.Millisecond) != nil {
			tb.Fatalf("publishing to %s: %v", to, err)
		}
	}
}
