package wire

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
)

func TestAcceptBroadcast(t *testing.T) {
	c := newCluster(t, "alice", "bob", "carol")
	var first uint64 // a Signer's numbers start at random (TestRestartedSignerNotAReplay)
	for i, id := range []string{"bob", "carol"} {
		raw := c.seal(t, "alice", broadcast(c.session, 2, id, "commitments"))
		m := c.mustAccept(t, id, raw)
		if i == 0 {
			first = m.Seq
		}
		want := Message{
			Session: c.session, Protocol: "cmp/sign", Round: 2, From: "alice", To: id, Broadcast: true,
			Seq: first + uint64(i), Time: t0, Payload: []byte("commitments"),
			AttestationDigest: [32]byte(digestOf(c.p("alice").doc)),
		}
		if !equalMessage(m, &want) {
			t.Errorf("%s got %+v, want %+v", id, m, want)
		}
	}
	if s := c.p("bob").recv.Stats(); s.Accepted != 1 || s.CachedAttestations != 1 || s.ReplayEntries != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestAcceptDirect(t *testing.T) {
	c := newCluster(t, "alice", "bob", "carol")
	secretShare := "f_l(i) = 0x1234 secret scalar"
	raw := c.seal(t, "alice", direct(c.session, 3, "bob", secretShare))
	if bytes.Contains(raw, []byte(secretShare)) {
		t.Fatal("the direct payload is visible in the frame")
	}
	m := c.mustAccept(t, "bob", raw)
	if string(m.Payload) != secretShare || m.To != "bob" || m.Broadcast {
		t.Fatalf("got %+v", m)
	}
}

// TestDirectNotReadableByThirdMember: carol, a roster member with a valid
// key, can neither receive nor open a frame sealed to bob.
func TestDirectNotReadableByThirdMember(t *testing.T) {
	c := newCluster(t, "alice", "bob", "carol")
	raw := c.seal(t, "alice", direct(c.session, 3, "bob", "share for bob"))
	wantDrop(t, c.p("carol").recv, raw, DropWrongRecipient)

	f, err := parseFrame(raw)
	if err != nil {
		t.Fatal(err)
	}
	aad, err := f.body.header()
	if err != nil {
		t.Fatal(err)
	}
	carolKey, err := hpkePrivate(c.p("carol").enc.priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openDirect(carolKey, f.body.Enc, aad, f.body.Payload); !errors.Is(err, errOpen) {
		t.Fatalf("carol opened bob's payload: %v", err)
	}
	// Even claiming to be bob (re-addressed and re-signed by alice's key,
	// the strongest forger), it does not open with carol's key.
	forged := resign(t, c.p("alice").signer, raw, func(b *body) { b.To = "carol" })
	wantDrop(t, c.p("carol").recv, forged, DropDecrypt)
}

func TestAttestationAttachedOnceThenCached(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	alice, bob := c.p("alice"), c.p("bob")
	first := c.seal(t, "alice", direct(c.session, 2, "bob", "r2"))
	sameRound := c.seal(t, "alice", direct(c.session, 2, "bob", "r2 again"))
	later := c.seal(t, "alice", direct(c.session, 3, "bob", "r3"))
	if !hasAttestation(t, first) || !hasAttestation(t, sameRound) || hasAttestation(t, later) {
		t.Fatal("want the document in every frame of the first round only")
	}
	if len(first)-len(later) < len(alice.doc) {
		t.Fatalf("first frame %d bytes, later %d: the document is not attached once", len(first), len(later))
	}
	// Before the document arrived, the later frame is refused but not
	// recorded: once the document is cached, a redelivery is accepted.
	wantDrop(t, bob.recv, later, DropUnknownAttestation)
	c.mustAccept(t, "bob", first)
	c.mustAccept(t, "bob", later)
	c.mustAccept(t, "bob", sameRound)
	if n := bob.recv.Stats().CachedAttestations; n != 1 {
		t.Fatalf("cached documents = %d, want 1", n)
	}

	// A refreshed document rides along once again.
	alice.clock.Set(t0.Add(time.Hour))
	bob.clock.Set(t0.Add(time.Hour))
	doc2 := mint(t, alice, goodPCRs(), alice.member().Binding(), t0.Add(time.Hour))
	if err := alice.signer.SetAttestation(doc2); err != nil {
		t.Fatal(err)
	}
	next := c.seal(t, "alice", direct(c.session, 4, "bob", "r4"))
	if !hasAttestation(t, next) {
		t.Fatal("the refreshed document is not attached")
	}
	c.mustAccept(t, "bob", next)
	if n := bob.recv.Stats().CachedAttestations; n != 2 {
		t.Fatalf("cached documents = %d, want 2", n)
	}
}

func TestCachedDocumentExpires(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	c.mustAccept(t, "bob", c.seal(t, "alice", broadcast(c.session, 1, "bob", "a")))
	later := t0.Add(attestsim.LeafLifetime + time.Minute)
	c.p("alice").clock.Set(later)
	c.p("bob").clock.Set(later)
	raw := c.seal(t, "alice", broadcast(c.session, 2, "bob", "b"))
	wantDrop(t, c.p("bob").recv, raw, DropUnknownAttestation) // evicted: leaf expired
	raw = c.seal(t, "alice", Frame{Session: c.session, Protocol: "p", Round: 3, To: "bob", Broadcast: true, Attach: true})
	wantDrop(t, c.p("bob").recv, raw, DropAttestationExpired)
}

// TestDropReasons covers every reason a frame is refused.
func TestDropReasons(t *testing.T) {
	for _, tc := range dropCases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, "alice", "bob", "carol")
			raw := tc.frame(t, c)
			wantDrop(t, c.p("bob").recv, raw, tc.want)
		})
	}
}

type dropCase struct {
	name  string
	want  DropReason
	frame func(t *testing.T, c *cluster) []byte // from alice (or a forger) to bob
}

var dropCases = []dropCase{
	{"garbage", DropMalformed, func(t *testing.T, c *cluster) []byte {
		return []byte("not a frame")
	}},
	{"non-canonical", DropMalformed, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
		// The signature's length as a two-byte head: same value, other bytes.
		i := len(raw) - 66
		if raw[i] != 0x58 || raw[i+1] != 0x40 {
			t.Fatal("the frame does not end with a 64-byte signature")
		}
		return append(append(bytes.Clone(raw[:i]), 0x59, 0x00, 0x40), raw[i+2:]...)
	}},
	{"unknown version", DropVersion, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
		return resign(t, c.p("alice").signer, raw, func(b *body) { b.Version = Version + 1 })
	}},
	{"version 1 broadcast, no recipient", DropVersion, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
		return signRaw(t, c.p("alice").signer, editFields(t, raw, func(m map[int]any) {
			m[1] = 1
			delete(m, 6)
		}))
	}},
	{"own frame", DropOwnFrame, func(t *testing.T, c *cluster) []byte {
		return c.seal(t, "bob", broadcast(c.session, 1, "alice", "x"))
	}},
	{"unknown sender", DropUnknownSender, func(t *testing.T, c *cluster) []byte {
		return forger(t, c, "mallory").sealOrFail(t, broadcast(c.session, 1, "bob", "x"))
	}},
	{"bad signature: forged key", DropBadSignature, func(t *testing.T, c *cluster) []byte {
		return forger(t, c, "alice").sealOrFail(t, broadcast(c.session, 1, "bob", "x"))
	}},
	{"bad signature: tampered header", DropBadSignature, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
		return reencode(t, raw, func(b *body) { b.Round = 9 })
	}},
	{"bad signature: tampered payload", DropBadSignature, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", direct(c.session, 1, "bob", "share"))
		return reencode(t, raw, func(b *body) { b.Payload[0] ^= 1 })
	}},
	{"not in party set", DropNotInSession, func(t *testing.T, c *cluster) []byte {
		s := SessionID{9}
		if err := c.sessions.Add(s, "bob", "carol"); err != nil {
			t.Fatal(err)
		}
		return c.seal(t, "alice", broadcast(s, 1, "bob", "x"))
	}},
	{"unknown session", DropNotInSession, func(t *testing.T, c *cluster) []byte {
		return c.seal(t, "alice", broadcast(SessionID{7}, 1, "bob", "x"))
	}},
	{"replay from an ended session", DropSessionEnded, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
		c.mustAccept(t, "bob", raw)
		c.p("bob").recv.EndSession(c.session)
		return raw
	}},
	{"replay from a forgotten session", DropNotInSession, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
		c.mustAccept(t, "bob", raw)
		c.sessions.Remove(c.session)
		return raw
	}},
	{"replay from an old session past the window", DropStale, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
		c.mustAccept(t, "bob", raw)
		c.p("bob").recv.EndSession(c.session)
		c.p("bob").clock.Set(t0.Add(3 * DefaultWindow)) // tombstone gone too
		return raw
	}},
	{"wrong recipient", DropWrongRecipient, func(t *testing.T, c *cluster) []byte {
		return c.seal(t, "alice", direct(c.session, 1, "carol", "share"))
	}},
	{"broadcast for another recipient", DropWrongRecipient, func(t *testing.T, c *cluster) []byte {
		return c.seal(t, "alice", broadcast(c.session, 1, "carol", "x"))
	}},
	{"broadcast re-addressed, same signature", DropBadSignature, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", broadcast(c.session, 1, "carol", "x"))
		return reencode(t, raw, func(b *body) { b.To = "bob" })
	}},
	{"stale timestamp", DropStale, func(t *testing.T, c *cluster) []byte {
		c.p("alice").clock.Set(t0.Add(-DefaultWindow - time.Millisecond))
		return c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
	}},
	{"future timestamp", DropStale, func(t *testing.T, c *cluster) []byte {
		c.p("alice").clock.Set(t0.Add(DefaultWindow + time.Millisecond))
		return c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
	}},
	{"replay", DropReplay, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
		c.mustAccept(t, "bob", raw)
		return raw
	}},
	{"replay with new bytes, same key", DropReplay, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
		c.mustAccept(t, "bob", raw)
		return resign(t, c.p("alice").signer, raw, func(b *body) { b.Payload = []byte("y") })
	}},
	{"unknown attestation", DropUnknownAttestation, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
		return resign(t, c.p("alice").signer, raw, func(b *body) { b.Attestation = nil })
	}},
	{"attached document of another digest", DropAttestationMismatch, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
		return resign(t, c.p("alice").signer, raw, func(b *body) { b.Attestation = c.p("carol").doc })
	}},
	{"document of another CA", DropAttestationInvalid, func(t *testing.T, c *cluster) []byte {
		other, err := attestsim.NewCA()
		if err != nil {
			t.Fatal(err)
		}
		alice := c.p("alice")
		doc, err := other.Attest(attestsim.Request{PCRs: goodPCRs(), UserData: alice.member().Binding(), Time: t0})
		if err != nil {
			t.Fatal(err)
		}
		return withDocument(t, c, alice, doc)
	}},
	{"wrong PCRs", DropAttestationPCR, func(t *testing.T, c *cluster) []byte {
		alice := c.p("alice")
		pcrs := goodPCRs()
		pcrs[2] = pcr(0xee)
		return withDocument(t, c, alice, mint(t, alice, pcrs, alice.member().Binding(), t0))
	}},
	{"debug document", DropAttestationDebug, func(t *testing.T, c *cluster) []byte {
		alice := c.p("alice")
		return withDocument(t, c, alice, mint(t, alice, nil, alice.member().Binding(), t0))
	}},
	{"expired document", DropAttestationExpired, func(t *testing.T, c *cluster) []byte {
		alice := c.p("alice")
		made := t0.Add(-attestsim.LeafLifetime - time.Minute)
		return withDocument(t, c, alice, mint(t, alice, goodPCRs(), alice.member().Binding(), made))
	}},
	{"document for another identity", DropAttestationBinding, func(t *testing.T, c *cluster) []byte {
		return withDocument(t, c, c.p("alice"), c.p("carol").doc) // valid, but carol's
	}},
	{"document without binding", DropAttestationBinding, func(t *testing.T, c *cluster) []byte {
		alice := c.p("alice")
		return withDocument(t, c, alice, mint(t, alice, goodPCRs(), nil, t0))
	}},
	{"tampered ciphertext, re-signed by the sender", DropDecrypt, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", direct(c.session, 1, "bob", "share"))
		return resign(t, c.p("alice").signer, raw, func(b *body) { b.Payload[len(b.Payload)-1] ^= 1 })
	}},
	{"ciphertext moved to another header", DropDecrypt, func(t *testing.T, c *cluster) []byte {
		raw := c.seal(t, "alice", direct(c.session, 1, "bob", "share"))
		return resign(t, c.p("alice").signer, raw, func(b *body) { b.Round = 2 })
	}},
	{"ciphertext re-signed by another member", DropDecrypt, func(t *testing.T, c *cluster) []byte {
		// carol takes alice's sealed share for bob and sends it as hers.
		raw := c.seal(t, "alice", direct(c.session, 1, "bob", "alice's share"))
		carol := c.p("carol")
		return resign(t, carol.signer, raw, func(b *body) {
			b.From = "carol"
			b.AttDigest = digestOf(carol.doc)
			b.Attestation = carol.doc
		})
	}},
}

func TestReplayCapacity(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	bob := c.p("bob")
	bob.recv = c.newReceiver(t, bob, func(cfg *ReceiverConfig) { cfg.MaxFramesPerSession = 1 })
	c.mustAccept(t, "bob", c.seal(t, "alice", broadcast(c.session, 1, "bob", "x")))
	wantDrop(t, bob.recv, c.seal(t, "alice", broadcast(c.session, 2, "bob", "y")), DropReplayCapacity)

	// Once the first frame's time has passed, its entry is forgotten and
	// there is room again.
	later := t0.Add(DefaultWindow + time.Second)
	c.p("alice").clock.Set(later)
	bob.clock.Set(later)
	c.mustAccept(t, "bob", c.seal(t, "alice", broadcast(c.session, 3, "bob", "z")))
	if s := bob.recv.Stats(); s.ReplayEntries != 1 || s.ReplaySessions != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestReplayEntriesCap(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	bob := c.p("bob")
	bob.recv = c.newReceiver(t, bob, func(cfg *ReceiverConfig) { cfg.MaxReplayEntries = 2 })
	other := SessionID{42}
	if err := c.sessions.Add(other, "alice", "bob"); err != nil {
		t.Fatal(err)
	}
	c.mustAccept(t, "bob", c.seal(t, "alice", broadcast(c.session, 1, "bob", "x")))
	c.mustAccept(t, "bob", c.seal(t, "alice", broadcast(other, 1, "bob", "y")))
	wantDrop(t, bob.recv, c.seal(t, "alice", broadcast(other, 2, "bob", "z")), DropReplayCapacity)
	// Ending a session frees its entries at once.
	bob.recv.EndSession(c.session)
	c.mustAccept(t, "bob", c.seal(t, "alice", broadcast(other, 3, "bob", "w")))
}

func TestReplayGuardForgetsAfterWindow(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	bob := c.p("bob")
	for r := range uint16(10) {
		c.mustAccept(t, "bob", c.seal(t, "alice", broadcast(c.session, r, "bob", "x")))
	}
	if s := bob.recv.Stats(); s.ReplayEntries != 10 {
		t.Fatalf("entries = %d", s.ReplayEntries)
	}
	// A frame received two windows later triggers a sweep.
	later := t0.Add(2 * DefaultWindow)
	c.p("alice").clock.Set(later)
	bob.clock.Set(later)
	c.mustAccept(t, "bob", c.seal(t, "alice", broadcast(c.session, 11, "bob", "y")))
	if s := bob.recv.Stats(); s.ReplayEntries != 1 {
		t.Fatalf("entries after the window = %d, want 1", s.ReplayEntries)
	}
}

func TestAllowDebug(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	alice, bob := c.p("alice"), c.p("bob")
	// A development roster pins the debug image's zero PCRs.
	zero := map[int][]byte{0: pcr(0)}
	ma, mb := alice.member(), bob.member()
	ma.PCRs, mb.PCRs = zero, zero
	roster, err := NewRoster(ma, mb)
	if err != nil {
		t.Fatal(err)
	}
	c.roster = roster
	doc := mint(t, alice, nil, alice.member().Binding(), t0)
	alice.signer = c.newSigner(t, alice, doc)
	raw := c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
	bob.recv = c.newReceiver(t, bob, nil)
	wantDrop(t, bob.recv, raw, DropAttestationDebug)
	bob.recv = c.newReceiver(t, bob, func(cfg *ReceiverConfig) { cfg.AllowDebug = true })
	c.mustAccept(t, "bob", raw)
}

func TestDropErrorNamesNothingFromTheFrame(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	raw := c.seal(t, "alice", broadcast(SessionID{7}, 1, "bob", "x"))
	_, err := c.p("bob").recv.Receive(raw)
	if !errors.Is(err, ErrDropped) {
		t.Fatalf("err = %v", err)
	}
	var d *DropError
	if !errors.As(err, &d) || d.Reason != DropNotInSession {
		t.Fatalf("err = %v", err)
	}
	if err.Error() != "wire: frame dropped: not_in_session" {
		t.Fatalf("error text %q", err.Error())
	}
}

func TestStatsListsEveryReason(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	s := c.p("bob").recv.Stats()
	if len(s.Dropped) != len(DropReasons()) {
		t.Fatalf("Stats has %d reasons, want %d", len(s.Dropped), len(DropReasons()))
	}
	seen := map[string]bool{}
	for _, r := range DropReasons() {
		name := r.String()
		if name == "unknown" || seen[name] {
			t.Errorf("reason %d has name %q", r, name)
		}
		seen[name] = true
	}
	if DropReason(0).String() != "unknown" || DropReason(200).String() != "unknown" {
		t.Error("out-of-range reasons must print as unknown")
	}
}

func TestSealRefuses(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	s := c.p("alice").signer
	for name, f := range map[string]Frame{
		"no protocol":             {Session: c.session, To: "bob", Broadcast: true},
		"protocol with space":     {Session: c.session, Protocol: "a b", To: "bob", Broadcast: true},
		"broadcast to nobody":     {Session: c.session, Protocol: "p", Broadcast: true},
		"broadcast to ourselves":  {Session: c.session, Protocol: "p", To: "alice", Broadcast: true},
		"broadcast to a stranger": {Session: c.session, Protocol: "p", To: "mallory", Broadcast: true},
		"direct to nobody":        {Session: c.session, Protocol: "p"},
		"direct to ourselves":     {Session: c.session, Protocol: "p", To: "alice"},
		"direct to a stranger":    {Session: c.session, Protocol: "p", To: "mallory"},
		"payload too large":       {Session: c.session, Protocol: "p", To: "bob", Broadcast: true, Payload: make([]byte, MaxPayloadSize)},
	} {
		if _, err := s.Seal(f); err == nil {
			t.Errorf("%s: Seal accepted it", name)
		}
	}
	// The same frames with a valid recipient are sealed: the refusals above
	// are the recipient's, not something else's.
	for _, f := range []Frame{
		{Session: c.session, Protocol: "p", To: "bob", Broadcast: true},
		{Session: c.session, Protocol: "p", To: "bob"},
	} {
		if _, err := s.Seal(f); err != nil {
			t.Errorf("Seal(%+v): %v", f, err)
		}
	}
}

// TestMisroutedBroadcast: a broker moves alice's broadcast frame sealed for
// bob into carol's inbox. Carol has her own copy of the same broadcast
// (another frame, another sequence number), so without a recipient in the
// frame the replay guard would see a new frame; it is dropped as
// wrong_recipient instead, without touching her replay guard, and is still
// accepted, once, by bob.
func TestMisroutedBroadcast(t *testing.T) {
	c := newCluster(t, "alice", "bob", "carol")
	forBob := c.seal(t, "alice", broadcast(c.session, 1, "bob", "commitments"))
	forCarol := c.seal(t, "alice", broadcast(c.session, 1, "carol", "commitments"))
	carol := c.p("carol").recv
	wantDrop(t, carol, forBob, DropWrongRecipient) // before her own copy
	c.mustAccept(t, "carol", forCarol)
	wantDrop(t, carol, forBob, DropWrongRecipient) // and after it
	if s := carol.Stats(); s.Accepted != 1 || s.ReplayEntries != 1 {
		t.Fatalf("carol's stats = %+v, want one frame accepted and recorded", s)
	}
	m := c.mustAccept(t, "bob", forBob)
	if m.To != "bob" || !m.Broadcast || m.From != "alice" || string(m.Payload) != "commitments" {
		t.Fatalf("bob got %+v", m)
	}
	wantDrop(t, c.p("bob").recv, forBob, DropReplay)
	wantDrop(t, c.p("bob").recv, forCarol, DropWrongRecipient)
}

func TestConfigRefused(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	alice := c.p("alice")
	other, err := GenerateIdentityKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSigner(SignerConfig{ID: "alice", Identity: other, Roster: c.roster, Attestation: alice.doc}); err == nil {
		t.Error("NewSigner accepted an identity key that differs from the roster's")
	}
	if _, err := NewSigner(SignerConfig{ID: "alice", Identity: alice.identity, Roster: c.roster, Attestation: []byte("x")}); err == nil {
		t.Error("NewSigner accepted a malformed document")
	}
	otherEnc, err := GenerateEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewReceiver(ReceiverConfig{Self: "alice", Encryption: otherEnc, Roster: c.roster, Sessions: c.sessions}); err == nil {
		t.Error("NewReceiver accepted an encryption key that differs from the roster's")
	}
	if _, err := NewReceiver(ReceiverConfig{Self: "alice", Encryption: alice.enc, Roster: c.roster}); err == nil {
		t.Error("NewReceiver accepted no Sessions")
	}
}

func TestRosterRefuses(t *testing.T) {
	p := newParty(t, "alice")
	good := p.member()
	for name, edit := range map[string]func(*Member){
		"empty ID":        func(m *Member) { m.ID = "" },
		"ID with space":   func(m *Member) { m.ID = "al ice" },
		"long ID":         func(m *Member) { m.ID = string(bytes.Repeat([]byte("a"), MaxIDSize+1)) },
		"short identity":  func(m *Member) { m.Identity = m.Identity[:31] },
		"no encryption":   func(m *Member) { m.Encryption = nil },
		"no PCRs":         func(m *Member) { m.PCRs = nil },
		"bad PCR index":   func(m *Member) { m.PCRs = map[int][]byte{32: pcr(1)} },
		"bad PCR length":  func(m *Member) { m.PCRs = map[int][]byte{0: {1, 2, 3}} },
		"negative index":  func(m *Member) { m.PCRs = map[int][]byte{-1: pcr(1)} },
		"empty PCR value": func(m *Member) { m.PCRs = map[int][]byte{0: nil} },
	} {
		m := good
		m.PCRs = goodPCRs()
		edit(&m)
		if _, err := NewRoster(m); err == nil {
			t.Errorf("%s: NewRoster accepted it", name)
		}
	}
	if _, err := NewRoster(good, good); err == nil {
		t.Error("NewRoster accepted a duplicate ID")
	}
}

func TestRosterCopies(t *testing.T) {
	p := newParty(t, "alice")
	m := p.member()
	r, err := NewRoster(m)
	if err != nil {
		t.Fatal(err)
	}
	m.PCRs[0][0] ^= 1
	m.Identity[0] ^= 1
	got, _ := r.Member("alice")
	if got.PCRs[0][0] != 0xa0 || bytes.Equal(got.Identity, m.Identity) {
		t.Fatal("the roster shares its caller's slices")
	}
	if ids := r.IDs(); len(ids) != 1 || ids[0] != "alice" {
		t.Fatalf("IDs = %v", ids)
	}
}

// Helpers for the cases above.

func digestOf(doc []byte) []byte {
	d := sha256.Sum256(doc)
	return d[:]
}

func hasAttestation(t *testing.T, raw []byte) bool {
	t.Helper()
	f, err := parseFrame(raw)
	if err != nil {
		t.Fatal(err)
	}
	return f.body.Attestation != nil
}

// withDocument seals a broadcast from p that carries doc as p's document.
func withDocument(t *testing.T, c *cluster, p *party, doc []byte) []byte {
	t.Helper()
	s := c.newSigner(t, p, doc)
	raw, err := s.Seal(broadcast(c.session, 1, "bob", "x"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// forgerSigner signs as id with a key the roster does not hold.
type forgerSigner struct{ *Signer }

func forger(t *testing.T, c *cluster, id string) forgerSigner {
	t.Helper()
	p := newParty(t, id)
	bob := c.p("bob")
	roster, err := NewRoster(bob.member())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(SignerConfig{ID: id, Identity: p.identity, Roster: roster, Attestation: c.p("alice").doc, Clock: p.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return forgerSigner{s}
}

func (f forgerSigner) sealOrFail(t *testing.T, fr Frame) []byte {
	t.Helper()
	raw, err := f.Seal(fr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func equalMessage(a, b *Message) bool {
	return a.Session == b.Session && a.Protocol == b.Protocol && a.Round == b.Round &&
		a.From == b.From && a.To == b.To && a.Broadcast == b.Broadcast && a.Seq == b.Seq &&
		a.Time.Equal(b.Time) && bytes.Equal(a.Payload, b.Payload) && a.AttestationDigest == b.AttestationDigest
}

func TestMaxAttestationAge(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	bob := c.p("bob")
	bob.recv = c.newReceiver(t, bob, func(cfg *ReceiverConfig) { cfg.MaxAttestationAge = time.Hour })
	c.mustAccept(t, "bob", c.seal(t, "alice", broadcast(c.session, 1, "bob", "x")))
	later := t0.Add(time.Hour + time.Minute) // chain still valid, document too old
	c.p("alice").clock.Set(later)
	bob.clock.Set(later)
	wantDrop(t, bob.recv, c.seal(t, "alice", broadcast(c.session, 2, "bob", "y")), DropAttestationExpired)
}

// TestEveryReasonIsTested keeps the drop tests complete as reasons are
// added.
func TestEveryReasonIsTested(t *testing.T) {
	tested := map[DropReason]bool{DropReplayCapacity: true} // TestReplayCapacity
	for _, tc := range dropCases {
		tested[tc.want] = true
	}
	for _, r := range DropReasons() {
		if !tested[r] {
			t.Errorf("no test case drops a frame for %v", r)
		}
	}
}

// TestConcurrentReceive: duplicates delivered concurrently are accepted
// exactly once each.
func TestConcurrentReceive(t *testing.T) {
	c := newCluster(t, "alice", "bob", "carol")
	var frames [][]byte
	for i := range 40 {
		from := []string{"alice", "carol"}[i%2]
		frames = append(frames, c.seal(t, from, direct(c.session, uint16(i/2), "bob", "x")))
	}
	const copies = 4
	var wg sync.WaitGroup
	for range copies {
		wg.Go(func() {
			for _, raw := range frames {
				c.p("bob").recv.Receive(raw)
			}
		})
	}
	wg.Wait()
	s := c.p("bob").recv.Stats()
	accepted := s.Accepted
	dropped := s.Dropped[DropReplay] + s.Dropped[DropUnknownAttestation]
	if accepted+dropped != copies*uint64(len(frames)) {
		t.Fatalf("stats = %+v", s)
	}
	// Every frame was accepted once: redeliver each and expect a replay.
	for _, raw := range frames {
		if _, err := c.p("bob").recv.Receive(raw); reasonOf(err) != DropReplay {
			// A frame refused for want of its document in the race is
			// accepted now; then it must be a replay the next time.
			if err != nil {
				t.Fatalf("redelivery: %v", err)
			}
			wantDrop(t, c.p("bob").recv, raw, DropReplay)
		}
	}
}
