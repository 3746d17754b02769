package peer_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/peer"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

var abc = []mpc.PartyID{"alice", "bob", "carol"}

// sendOne sends env from its sender and returns the one frame the link got.
func sendOne(t *testing.T, from *node, env mpc.Envelope) sent {
	t.Helper()
	if err := from.peer.Send(context.Background(), env); err != nil {
		t.Fatalf("Send: %v", err)
	}
	frames := from.link.take()
	if len(frames) != 1 {
		t.Fatalf("link got %d frames, want 1", len(frames))
	}
	return frames[0]
}

func TestRoundTrip(t *testing.T) {
	payload := []byte("share for bob: secret scalar")
	for _, tc := range []struct {
		name      string
		broadcast bool
	}{{"direct", false}, {"broadcast", true}} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := newNodes(t, 0, abc...)
			sid := newSessionID(t)
			openAll(t, nodes, sid, abc...)
			env := mpc.Envelope{Session: sid, From: "alice", To: "bob", Protocol: "frost/keygen-threshold",
				Round: 2, Broadcast: tc.broadcast, Payload: payload}
			s := sendOne(t, nodes["alice"], env)
			if s.to != "bob" {
				t.Fatalf("link recipient %q, want bob", s.to)
			}
			if !tc.broadcast && bytes.Contains(s.frame, payload) {
				t.Fatal("direct payload travels in the clear")
			}
			nodes["bob"].peer.Deliver(context.Background(), s.frame)
			got := receiveNow(t, nodes["bob"].peer)
			if got.Session != env.Session || got.From != env.From || got.To != env.To || got.Protocol != env.Protocol ||
				got.Round != env.Round || got.Broadcast != env.Broadcast || !bytes.Equal(got.Payload, env.Payload) {
				t.Fatalf("got %+v, want %+v", got, env)
			}
			if st := nodes["bob"].peer.Stats(); st.Queued != 1 || st.Wire.Accepted != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// A frame redirected to another party's inbox is refused there, direct or
// broadcast; the party it was sealed for still accepts it.
func TestRedirectedFrames(t *testing.T) {
	for _, tc := range []struct {
		name      string
		broadcast bool
	}{{"direct", false}, {"broadcast", true}} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := newNodes(t, 0, abc...)
			sid := newSessionID(t)
			openAll(t, nodes, sid, abc...)
			env := mpc.Envelope{Session: sid, From: "alice", To: "bob", Protocol: "p", Round: 1,
				Broadcast: tc.broadcast, Payload: []byte("x")}
			s := sendOne(t, nodes["alice"], env)
			carol, bob := nodes["carol"].peer, nodes["bob"].peer
			carol.Deliver(context.Background(), s.frame)
			wantEmpty(t, carol)
			wantDropped(t, carol, wire.DropWrongRecipient, 1)
			bob.Deliver(context.Background(), s.frame)
			if got := receiveNow(t, bob); got.To != "bob" || got.From != "alice" || got.Broadcast != tc.broadcast {
				t.Fatalf("bob got %+v", got)
			}
		})
	}
}

func wantDropped(t *testing.T, p *peer.Peer, r wire.DropReason, n uint64) {
	t.Helper()
	if got := p.Stats().Wire.Dropped[r]; got != n {
		t.Fatalf("drops %v = %d, want %d", r, got, n)
	}
}

func TestDrops(t *testing.T) {
	nodes := newNodes(t, 0, abc...)
	sid := newSessionID(t)
	env := mpc.Envelope{Session: sid, From: "alice", To: "bob", Protocol: "p", Round: 1, Payload: []byte("x")}
	bob := nodes["bob"].peer
	ctx := context.Background()

	openAll(t, nodes, sid, abc...)
	frame := sendOne(t, nodes["alice"], env).frame
	bob.Deliver(ctx, frame)
	bob.Deliver(ctx, frame)
	wantDropped(t, bob, wire.DropReplay, 1)

	unopened := env
	unopened.Session = newSessionID(t)
	bob.Deliver(ctx, sendOne(t, nodes["alice"], unopened).frame)
	wantDropped(t, bob, wire.DropNotInSession, 1)

	tampered := bytes.Clone(frame)
	tampered[len(tampered)-1] ^= 1
	bob.Deliver(ctx, tampered)
	wantDropped(t, bob, wire.DropBadSignature, 1)
	bob.Deliver(ctx, []byte("garbage"))
	wantDropped(t, bob, wire.DropMalformed, 1)

	receiveNow(t, bob)
	wantEmpty(t, bob)

	nodes["bob"].peer.Close(sid)
	env.Round = 3
	bob.Deliver(ctx, sendOne(t, nodes["alice"], env).frame)
	wantDropped(t, bob, wire.DropNotInSession, 2)
	wantEmpty(t, bob)
}

func TestQueueFullDoesNotBlock(t *testing.T) {
	nodes := newNodes(t, 2, abc...)
	sid := newSessionID(t)
	openAll(t, nodes, sid, abc...)
	bob := nodes["bob"].peer
	for r := range uint16(5) {
		env := mpc.Envelope{Session: sid, From: "alice", To: "bob", Protocol: "p", Round: r, Payload: []byte("x")}
		bob.Deliver(context.Background(), sendOne(t, nodes["alice"], env).frame)
	}
	if st := bob.Stats(); st.Queued != 2 || st.QueueFull != 3 || st.Wire.Accepted != 5 {
		t.Fatalf("stats %+v, want 2 queued, 3 dropped as full", st)
	}
	for range 2 {
		receiveNow(t, bob)
	}
	wantEmpty(t, bob)
}

func TestSendRefuses(t *testing.T) {
	nodes := newNodes(t, 0, abc...)
	alice := nodes["alice"]
	sid := newSessionID(t)
	for name, env := range map[string]mpc.Envelope{
		"spoofed sender":  {Session: sid, From: "bob", To: "carol", Protocol: "p"},
		"no recipient":    {Session: sid, From: "alice", Protocol: "p"},
		"to self":         {Session: sid, From: "alice", To: "alice", Protocol: "p"},
		"unknown peer":    {Session: sid, From: "alice", To: "mallory", Protocol: "p"},
		"invalid protcol": {Session: sid, From: "alice", To: "bob", Protocol: "has space"},
	} {
		if err := alice.peer.Send(context.Background(), env); err == nil {
			t.Errorf("%s: Send succeeded", name)
		}
	}
	if got := alice.link.take(); len(got) != 0 {
		t.Fatalf("link got %d frames", len(got))
	}
	alice.link.err = errors.New("link down")
	err := alice.peer.Send(context.Background(), mpc.Envelope{Session: sid, From: "alice", To: "bob", Protocol: "p"})
	if err == nil || alice.peer.Stats().SendFailed != 6 {
		t.Fatalf("Send over a failing link: %v, stats %+v", err, alice.peer.Stats())
	}
}

func TestOpenAndConfig(t *testing.T) {
	nodes := newNodes(t, 0, abc...)
	sid := newSessionID(t)
	if err := nodes["alice"].peer.Open(sid, []mpc.PartyID{"bob", "carol"}); err == nil {
		t.Fatal("Open without self succeeded")
	}
	if err := nodes["alice"].peer.Open(sid, abc); err != nil {
		t.Fatal(err)
	}
	if err := nodes["alice"].peer.Open(sid, abc); err == nil {
		t.Fatal("Open twice succeeded")
	}
	if _, err := peer.New(peer.Config{Self: "alice"}); !errors.Is(err, peer.ErrConfig) {
		t.Fatalf("New with no stack: %v", err)
	}
}

func TestReceiveEndsWithContext(t *testing.T) {
	nodes := newNodes(t, 0, abc...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := nodes["alice"].peer.Receive(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive = %v", err)
	}
}
