package wire

import "testing"

// Regression test (test/reliability's crash suite found it: a cosigner
// restarted after a crash could not accept any proposal for about a
// minute). A restarted process makes a new Signer for the same identity
// and sends in the same long-lived session (coord's control session).
// Counting from 1 again, its first frames had the replay keys of its
// predecessor's first frames, and receivers dropped them as replays until
// those expired. Its frames must be accepted at once.
func TestRestartedSignerNotAReplay(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	frame := broadcast(c.session, 1, "bob", "accept")
	c.mustAccept(t, "bob", c.seal(t, "alice", frame))
	alice := c.p("alice")
	alice.signer = c.newSigner(t, alice, alice.doc) // alice's process restarted
	c.mustAccept(t, "bob", c.seal(t, "alice", frame))
}
