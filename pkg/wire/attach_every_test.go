package wire

import (
	"testing"
	"time"
)

// With AttachEvery the document goes to each recipient at most that often,
// whatever the session, and at once after SetAttestation; frames without
// it are accepted by a receiver that cached it.
func TestAttachEvery(t *testing.T) {
	c := newCluster(t, "alice", "bob", "carol")
	alice := c.p("alice")
	s, err := NewSigner(SignerConfig{ID: "alice", Identity: alice.identity, Roster: c.roster, Attestation: alice.doc,
		Clock: alice.clock.Now, AttachEvery: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	other := SessionID{9}
	if err := c.sessions.Add(other, "alice", "bob", "carol"); err != nil {
		t.Fatal(err)
	}
	seal := func(session SessionID, to string) []byte {
		t.Helper()
		raw, err := s.Seal(broadcast(session, 1, to, "x"))
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	attached := func(raw []byte) bool {
		t.Helper()
		var got bool
		reencode(t, raw, func(b *body) { got = b.Attestation != nil })
		return got
	}
	first := seal(c.session, "bob")
	if !attached(first) || !attached(seal(c.session, "carol")) {
		t.Fatal("the first frame to a recipient has no document")
	}
	second := seal(other, "bob")
	if attached(second) {
		t.Fatal("a frame of another session within AttachEvery carries the document again")
	}
	c.mustAccept(t, "bob", first)
	c.mustAccept(t, "bob", second) // the document is cached
	alice.clock.Set(alice.clock.Now().Add(10 * time.Second))
	if !attached(seal(other, "bob")) {
		t.Fatal("no document after AttachEvery")
	}
	if err := s.SetAttestation(mint(t, alice, goodPCRs(), alice.member().Binding(), alice.clock.Now())); err != nil {
		t.Fatal(err)
	}
	if !attached(seal(other, "bob")) {
		t.Fatal("no document after SetAttestation")
	}
	if attached(seal(other, "bob")) || !attached(seal(other, "carol")) || attached(seal(other, "carol")) {
		t.Fatal("after SetAttestation: not once per recipient")
	}
	s.AttachNext("bob") // bob restarted: its cache is empty
	if !attached(seal(other, "bob")) || attached(seal(other, "carol")) {
		t.Fatal("AttachNext did not put the document on the next frame to that recipient only")
	}
	if _, err := NewSigner(SignerConfig{ID: "alice", Identity: alice.identity, Roster: c.roster, Attestation: alice.doc, AttachEvery: -1}); err == nil {
		t.Fatal("a negative AttachEvery was accepted")
	}
}
