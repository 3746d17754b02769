package wire

import (
	"testing"
)

// A roster replaced by a new workspace version takes effect on the next
// frame: the removed member's frames are refused as from an unknown
// sender, and an invalid replacement leaves the roster as it was.
func TestRosterReplace(t *testing.T) {
	c := newCluster(t, "alice", "bob", "carol")
	fromCarol := c.seal(t, "carol", broadcast(c.session, 1, "alice", "before"))
	c.mustAccept(t, "alice", fromCarol)

	if err := c.roster.Replace(c.p("alice").member(), Member{ID: "bad"}); err == nil {
		t.Fatal("an invalid roster was accepted")
	}
	if _, ok := c.roster.Member("carol"); !ok {
		t.Fatal("a refused replacement changed the roster")
	}

	if err := c.roster.Replace(c.p("alice").member(), c.p("bob").member()); err != nil {
		t.Fatal(err)
	}
	if ids := c.roster.IDs(); len(ids) != 2 || ids[0] != "alice" || ids[1] != "bob" {
		t.Fatalf("IDs after the replacement: %v", ids)
	}
	wantDrop(t, c.p("alice").recv, c.seal(t, "carol", broadcast(c.session, 2, "alice", "after")), DropUnknownSender)
	c.mustAccept(t, "alice", c.seal(t, "bob", broadcast(c.session, 2, "alice", "still a member")))
	if _, err := c.p("alice").signer.Seal(direct(c.session, 3, "carol", "to a removed member")); err == nil {
		t.Fatal("a direct frame was sealed to a removed member")
	}
}
