package peer_test

import (
	"context"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/peer"
)

// With LeanAttach only the first frame to each recipient in a session
// carries the sender's document. A later frame that overtakes it is held,
// not dropped, and accepted once the document arrives; one whose document
// never comes is dropped when its hold expires.
func TestLeanAttachHoldsOvertakingFrames(t *testing.T) {
	nodes := newNodes(t, 0, abc...)
	for _, n := range nodes {
		n.peer = n.newPeerWith(t, n.roster, peer.Config{LeanAttach: true, HoldFor: 200 * time.Millisecond})
	}
	sid := newSessionID(t)
	openAll(t, nodes, sid, abc...)
	alice, bob := nodes["alice"], nodes["bob"]
	first := sendOne(t, alice, mpc.Envelope{Session: sid, From: "alice", To: "bob", Protocol: "p", Round: 1, Broadcast: true, Payload: []byte("one")})
	second := sendOne(t, alice, mpc.Envelope{Session: sid, From: "alice", To: "bob", Protocol: "p", Round: 2, Broadcast: true, Payload: []byte("two")})
	if len(second.frame) >= len(first.frame) {
		t.Fatalf("the second frame (%d bytes) carries the document too (first: %d)", len(second.frame), len(first.frame))
	}

	bob.peer.Deliver(context.Background(), second.frame)
	if st := bob.peer.Stats(); st.Held != 1 || st.Queued != 0 {
		t.Fatalf("after the overtaking frame: %+v", st)
	}
	bob.peer.Deliver(context.Background(), first.frame)
	if got := []string{string(receiveNow(t, bob.peer).Payload), string(receiveNow(t, bob.peer).Payload)}; got[0] != "one" || got[1] != "two" {
		t.Fatalf("payloads %v", got)
	}
	if st := bob.peer.Stats(); st.HeldAccepted != 1 || st.Queued != 2 {
		t.Fatalf("after the document: %+v", st)
	}
	bob.peer.Deliver(context.Background(), second.frame) // a copy: a replay now
	if st := bob.peer.Stats(); st.Queued != 2 {
		t.Fatalf("a copy of the held frame was accepted again: %+v", st)
	}

	// carol's document never reaches bob: her second frame expires.
	carol := nodes["carol"]
	sendOne(t, carol, mpc.Envelope{Session: sid, From: "carol", To: "bob", Protocol: "p", Round: 1, Broadcast: true, Payload: []byte("lost")})
	late := sendOne(t, carol, mpc.Envelope{Session: sid, From: "carol", To: "bob", Protocol: "p", Round: 2, Broadcast: true, Payload: []byte("late")})
	bob.peer.Deliver(context.Background(), late.frame)
	time.Sleep(250 * time.Millisecond)
	third := sendOne(t, alice, mpc.Envelope{Session: sid, From: "alice", To: "bob", Protocol: "p", Round: 3, Broadcast: true, Payload: []byte("three")})
	bob.peer.Deliver(context.Background(), third.frame) // an accepted frame retries the held ones
	if got := string(receiveNow(t, bob.peer).Payload); got != "three" {
		t.Fatalf("payload %q", got)
	}
	if st := bob.peer.Stats(); st.Held != 2 || st.HeldAccepted != 1 || st.Queued != 3 {
		t.Fatalf("after the expiry: %+v", st)
	}
}
