package peer_test

import (
	"context"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/peer"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// TestOnAccept: the hook sees every accepted frame's authenticated sender
// and timestamp, and no refused frame.
func TestOnAccept(t *testing.T) {
	nodes := newNodes(t, 0, abc...)
	type seen struct {
		from mpc.PartyID
		sent time.Time
	}
	got := make(chan seen, 4)
	bob := nodes["bob"]
	var members []wire.Member
	for _, id := range abc {
		members = append(members, nodes[id].member())
	}
	roster := must(wire.NewRoster(members...))
	doc := must(testCA().Attest(attestsim.Request{PCRs: pcrs(), UserData: bob.member().Binding(), Time: time.Now()}))
	s := must(wire.NewSigner(wire.SignerConfig{ID: "bob", Identity: bob.identity, Roster: roster, Attestation: doc}))
	r := must(wire.NewReceiver(wire.ReceiverConfig{Self: "bob", Encryption: bob.enc, Roster: roster, Sessions: bob.sessions, Roots: testCA().Roots()}))
	bob.peer = must(peer.New(peer.Config{Self: "bob", Signer: s, Receiver: r, Sessions: bob.sessions, Link: bob.link,
		OnAccept: func(from mpc.PartyID, sent time.Time) { got <- seen{from, sent} }}))

	sid := newSessionID(t)
	openAll(t, nodes, sid, abc...)
	before := time.Now()
	frame := sendOne(t, nodes["alice"], mpc.Envelope{Session: sid, From: "alice", To: "bob", Protocol: "p", Round: 1, Payload: []byte("x")})
	bob.peer.Deliver(context.Background(), frame.frame)
	select {
	case s := <-got:
		if s.from != "alice" || s.sent.Before(before.Add(-time.Second)) || s.sent.After(time.Now().Add(time.Second)) {
			t.Fatalf("OnAccept(%q, %v)", s.from, s.sent)
		}
	default:
		t.Fatal("OnAccept not called for an accepted frame")
	}
	bob.peer.Deliver(context.Background(), frame.frame) // a replay
	bob.peer.Deliver(context.Background(), []byte("junk"))
	if len(got) != 0 {
		t.Fatal("OnAccept called for a refused frame")
	}
}
