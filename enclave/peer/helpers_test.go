package peer_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/peer"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

var testCA = sync.OnceValue(func() *attestsim.CA {
	ca, err := attestsim.NewCA()
	if err != nil {
		panic(err)
	}
	return ca
})

func pcrs() map[int][]byte {
	return map[int][]byte{0: bytes.Repeat([]byte{0xa0}, 48), 1: bytes.Repeat([]byte{0xa1}, 48), 2: bytes.Repeat([]byte{0xa2}, 48)}
}

// fakeLink records the frames a Peer sends; if deliver is set it also
// hands each frame to the recipient in a goroutine, like a broker would.
type fakeLink struct {
	mu      sync.Mutex
	frames  []sent
	deliver func(to string, frame []byte)
	err     error
}

type sent struct {
	to    string
	frame []byte
}

func (l *fakeLink) Send(_ context.Context, to string, frame []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	l.frames = append(l.frames, sent{to, bytes.Clone(frame)})
	if l.deliver != nil {
		go l.deliver(to, bytes.Clone(frame))
	}
	return nil
}

func (l *fakeLink) take() []sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.frames
	l.frames = nil
	return out
}

// node is one party: its wire stack, peer and fake link.
type node struct {
	id       mpc.PartyID
	identity *wire.IdentityKey
	enc      *wire.EncryptionKey
	sessions *wire.SessionTable
	peer     *peer.Peer
	link     *fakeLink
	roster   *wire.Roster
}

// newNodes builds a roster of ids with attestsim documents bound to each
// identity, and a Peer per party over a fakeLink.
func newNodes(t *testing.T, queueLen int, ids ...mpc.PartyID) map[mpc.PartyID]*node {
	t.Helper()
	nodes := map[mpc.PartyID]*node{}
	var members []wire.Member
	for _, id := range ids {
		n := &node{id: id, sessions: wire.NewSessionTable(), link: &fakeLink{}}
		n.identity = must(wire.GenerateIdentityKey())
		n.enc = must(wire.GenerateEncryptionKey())
		nodes[id] = n
		members = append(members, n.member())
	}
	roster := must(wire.NewRoster(members...))
	for _, n := range nodes {
		n.roster = roster
		n.peer = n.newPeer(t, roster, queueLen)
	}
	return nodes
}

func (n *node) member() wire.Member {
	return wire.Member{ID: string(n.id), Identity: n.identity.Public(), Encryption: n.enc.Public(), PCRs: pcrs()}
}

func (n *node) newPeer(t *testing.T, roster *wire.Roster, queueLen int) *peer.Peer {
	t.Helper()
	return n.newPeerWith(t, roster, peer.Config{QueueLen: queueLen})
}

// newPeerWith is newPeer with cfg's options (LeanAttach, HoldFor, ...).
func (n *node) newPeerWith(t *testing.T, roster *wire.Roster, cfg peer.Config) *peer.Peer {
	t.Helper()
	doc := must(testCA().Attest(attestsim.Request{PCRs: pcrs(), UserData: n.member().Binding(), Time: time.Now()}))
	s := must(wire.NewSigner(wire.SignerConfig{ID: string(n.id), Identity: n.identity, Roster: roster, Attestation: doc}))
	r := must(wire.NewReceiver(wire.ReceiverConfig{
		Self: string(n.id), Encryption: n.enc, Roster: roster, Sessions: n.sessions, Roots: testCA().Roots(),
	}))
	cfg.Self, cfg.Signer, cfg.Receiver, cfg.Sessions, cfg.Link = n.id, s, r, n.sessions, n.link
	return must(peer.New(cfg))
}

// openAll opens the session with parties on every node.
func openAll(t *testing.T, nodes map[mpc.PartyID]*node, id mpc.SessionID, parties ...mpc.PartyID) {
	t.Helper()
	for _, p := range parties {
		if err := nodes[p].peer.Open(id, parties); err != nil {
			t.Fatal(err)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newSessionID(t *testing.T) mpc.SessionID {
	t.Helper()
	id, err := mpc.NewSessionID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// receiveNow returns the next queued envelope or fails.
func receiveNow(t *testing.T, p *peer.Peer) mpc.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	env, err := p.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return env
}

// wantEmpty fails if an envelope is queued.
func wantEmpty(t *testing.T, p *peer.Peer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if env, err := p.Receive(ctx); err == nil {
		t.Fatalf("unexpected envelope queued: %+v", env)
	}
}
