package peer_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/peer"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// Regression test (test/reliability's hostile peer suite found it): a
// refused frame that means misbehaviour (here a tampered one) is named at
// WARN, so a production log at info level shows it; a copy of an accepted
// frame, which brokers deliver routinely, stays at DEBUG; and the WARN
// lines are rate-limited, so a flood of forged frames cannot fill the log.
func TestDropsNamedInLog(t *testing.T) {
	nodes := newNodes(t, 0, abc...)
	var logs testutil.Buffer
	bob := nodes["bob"].withLogger(t, nodes, &logs)
	sid := newSessionID(t)
	openAll(t, nodes, sid, abc...)
	ctx := context.Background()
	frame := sendOne(t, nodes["alice"], mpc.Envelope{Session: sid, From: "alice", To: "bob", Protocol: "p", Round: 1, Payload: []byte("x")}).frame
	bob.Deliver(ctx, frame)
	bob.Deliver(ctx, frame)
	tampered := bytes.Clone(frame)
	tampered[len(tampered)-1] ^= 1
	for range 100 {
		bob.Deliver(ctx, tampered)
	}
	out := logs.String()
	if !strings.Contains(out, `level=DEBUG msg="frame dropped" party=bob reason=replay`) {
		t.Errorf("a replay is not named at DEBUG:\n%s", out)
	}
	warns := strings.Count(out, `level=WARN msg="frame dropped" party=bob reason=bad_signature`)
	if warns == 0 || warns >= 100 {
		t.Errorf("%d WARN lines for 100 tampered frames, want some and fewer than 100:\n%s", warns, out)
	}
	if n := bob.Stats().Wire.Dropped[wire.DropBadSignature]; n != 100 {
		t.Errorf("%d tampered frames counted, want every one (100)", n)
	}
}

// withLogger replaces the node's Peer by one logging to w at DEBUG.
func (n *node) withLogger(t *testing.T, nodes map[mpc.PartyID]*node, w *testutil.Buffer) *peer.Peer {
	t.Helper()
	var members []wire.Member
	for _, id := range abc {
		members = append(members, nodes[id].member())
	}
	roster := must(wire.NewRoster(members...))
	doc := must(testCA().Attest(attestsim.Request{PCRs: pcrs(), UserData: n.member().Binding(), Time: time.Now()}))
	s := must(wire.NewSigner(wire.SignerConfig{ID: string(n.id), Identity: n.identity, Roster: roster, Attestation: doc}))
	r := must(wire.NewReceiver(wire.ReceiverConfig{
		Self: string(n.id), Encryption: n.enc, Roster: roster, Sessions: n.sessions, Roots: testCA().Roots(),
	}))
	n.peer = must(peer.New(peer.Config{Self: n.id, Signer: s, Receiver: r, Sessions: n.sessions, Link: n.link,
		Logger: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))}))
	return n.peer
}
