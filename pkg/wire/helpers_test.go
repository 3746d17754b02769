package wire

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
)

// t0 is the instant every test starts at.
var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// testCA is shared: minting a CA costs two P-384 keys.
var testCA = sync.OnceValue(func() *attestsim.CA {
	ca, err := attestsim.NewCA()
	if err != nil {
		panic(err)
	}
	return ca
})

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func pcr(b byte) []byte { return bytes.Repeat([]byte{b}, attestsim.PCRSize) }

// goodPCRs are the PCRs of the release image every roster expects.
func goodPCRs() map[int][]byte { return map[int][]byte{0: pcr(0xa0), 1: pcr(0xa1), 2: pcr(0xa2)} }

// party is one cosigner of a test cluster.
type party struct {
	id       string
	identity *IdentityKey
	enc      *EncryptionKey
	doc      []byte
	signer   *Signer
	recv     *Receiver
	clock    *clock
}

func (p *party) member() Member {
	return Member{ID: p.id, Identity: p.identity.Public(), Encryption: p.enc.Public(), PCRs: goodPCRs()}
}

// cluster is a roster of parties that share one session.
type cluster struct {
	parties  map[string]*party
	roster   *Roster
	sessions *SessionTable
	session  SessionID
}

var testSession = SessionID{1, 2, 3, 4, 5, 6, 7, 8}

// newCluster makes parties with valid documents, a roster of all of them, a
// session table holding testSession with all of them, and a Signer and
// Receiver per party.
func newCluster(t testing.TB, ids ...string) *cluster {
	t.Helper()
	c := &cluster{parties: map[string]*party{}, sessions: NewSessionTable(), session: testSession}
	var members []Member
	for _, id := range ids {
		p := newParty(t, id)
		c.parties[id] = p
		members = append(members, p.member())
	}
	roster, err := NewRoster(members...)
	if err != nil {
		t.Fatal(err)
	}
	c.roster = roster
	if err := c.sessions.Add(c.session, ids...); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.parties {
		p.doc = mint(t, p, goodPCRs(), p.member().Binding(), t0)
		p.signer = c.newSigner(t, p, p.doc)
		p.recv = c.newReceiver(t, p, nil)
	}
	return c
}

func newParty(t testing.TB, id string) *party {
	t.Helper()
	ik, err := GenerateIdentityKey()
	if err != nil {
		t.Fatal(err)
	}
	ek, err := GenerateEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	return &party{id: id, identity: ik, enc: ek, clock: newClock()}
}

func mint(t testing.TB, p *party, pcrs map[int][]byte, userData []byte, at time.Time) []byte {
	t.Helper()
	raw, err := testCA().Attest(attestsim.Request{PCRs: pcrs, UserData: userData, Time: at})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (c *cluster) newSigner(t testing.TB, p *party, doc []byte) *Signer {
	t.Helper()
	s, err := NewSigner(SignerConfig{ID: p.id, Identity: p.identity, Roster: c.roster, Attestation: doc, Clock: p.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (c *cluster) newReceiver(t testing.TB, p *party, edit func(*ReceiverConfig)) *Receiver {
	t.Helper()
	cfg := ReceiverConfig{
		Self:       p.id,
		Encryption: p.enc,
		Roster:     c.roster,
		Sessions:   c.sessions,
		Roots:      testCA().Roots(),
		Clock:      p.clock.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	r, err := NewReceiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (c *cluster) p(id string) *party { return c.parties[id] }

// seal seals f from party id, failing the test on error.
func (c *cluster) seal(t testing.TB, from string, f Frame) []byte {
	t.Helper()
	raw, err := c.p(from).signer.Seal(f)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// broadcast is one recipient's frame of a broadcast message.
func broadcast(session SessionID, round uint16, to, payload string) Frame {
	return Frame{Session: session, Protocol: "cmp/sign", Round: round, To: to, Broadcast: true, Payload: []byte(payload)}
}

func direct(session SessionID, round uint16, to, payload string) Frame {
	return Frame{Session: session, Protocol: "frost/keygen", Round: round, To: to, Payload: []byte(payload)}
}

// mustAccept receives raw at party id and fails unless it is accepted.
func (c *cluster) mustAccept(t testing.TB, id string, raw []byte) *Message {
	t.Helper()
	m, err := c.p(id).recv.Receive(raw)
	if err != nil {
		t.Fatalf("%s: Receive: %v", id, err)
	}
	return m
}

// wantDrop receives raw at party id and checks the drop reason and its
// counter.
func wantDrop(t testing.TB, r *Receiver, raw []byte, want DropReason) {
	t.Helper()
	before := r.Stats().Dropped[want]
	m, err := r.Receive(raw)
	if m != nil || err == nil {
		t.Fatalf("Receive accepted a frame; want drop %v", want)
	}
	got := reasonOf(err)
	if got != want {
		t.Fatalf("drop reason = %v, want %v", got, want)
	}
	if after := r.Stats().Dropped[want]; after != before+1 {
		t.Fatalf("counter %v = %d, want %d", want, after, before+1)
	}
}

// resign decodes a frame, lets edit change its body and signs it again with
// the given signer's key, as a sender (or a forger holding the key) could.
func resign(t testing.TB, s *Signer, raw []byte, edit func(*body)) []byte {
	t.Helper()
	f, err := parseFrame(raw)
	if err != nil {
		t.Fatal(err)
	}
	b := f.body
	edit(&b)
	out, err := s.sign(&b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// reencode changes a frame's body without signing it again.
func reencode(t testing.TB, raw []byte, edit func(*body)) []byte {
	t.Helper()
	f, err := parseFrame(raw)
	if err != nil {
		t.Fatal(err)
	}
	b := f.body
	edit(&b)
	payload, err := b.encode()
	if err != nil {
		t.Fatal(err)
	}
	f.msg.Payload = payload
	out, err := f.msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
