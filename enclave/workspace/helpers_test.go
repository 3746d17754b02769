package workspace_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/audit"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/workspace"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// t0 is the instant the tests start at.
var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// testCA is shared: minting a CA costs two P-384 keys.
var testCA = sync.OnceValue(func() *attestsim.CA {
	ca, err := attestsim.NewCA()
	if err != nil {
		panic(err)
	}
	return ca
})

func pcr(b byte) []byte { return bytes.Repeat([]byte{b}, attestsim.PCRSize) }

func goodPCRs() map[int][]byte { return map[int][]byte{0: pcr(0xa0), 1: pcr(0xa1), 2: pcr(0xa2)} }

// must returns v, panicking on err: for test setup.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

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

// eventually polls cond until it holds, failing the test after a deadline
// that only guards against hangs.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cosigner is a member or would-be member with real keys.
type cosigner struct {
	id       string
	identity *wire.IdentityKey
	enc      *wire.EncryptionKey
}

func newCosigner(id string) *cosigner {
	return &cosigner{id: id, identity: must(wire.GenerateIdentityKey()), enc: must(wire.GenerateEncryptionKey())}
}

func (c *cosigner) wire() wire.Member {
	return wire.Member{ID: c.id, Identity: c.identity.Public(), Encryption: c.enc.Public(), PCRs: goodPCRs()}
}

// attest is c's attestation function: documents of the good image binding
// c's keys, dated by the clock.
func (c *cosigner) attest(clk *clock) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) {
		return testCA().Attest(attestsim.Request{PCRs: goodPCRs(), UserData: c.wire().Binding(), Time: clk.Now()})
	}
}

// request is c's signed pairing request with token at at, as a frame.
func (c *cosigner) request(t *testing.T, token string, at time.Time, edit func(*ws.PairRequest)) []byte {
	t.Helper()
	m := ws.MemberOf(c.wire(), nil)
	r := &ws.PairRequest{Token: token, ID: c.id, Identity: m.Identity, Encryption: m.Encryption, Time: at.UnixMilli(),
		Attestation: must(testCA().Attest(attestsim.Request{PCRs: goodPCRs(), UserData: c.wire().Binding(), Time: at}))}
	if edit != nil {
		edit(r)
	}
	return must(ws.EncodeMessage(ws.KindPair, must(ws.SignRequest(r, c.identity))))
}

func pubB64(k crypto.Signer) string {
	return base64.StdEncoding.EncodeToString(must(x509.MarshalPKIXPublicKey(k.Public())))
}

// world is a workspace at version 1: admins a (Ed25519) and b (ECDSA
// P-256), quorum 2; members co-1, co-2, co-3.
type world struct {
	a, b    crypto.Signer
	members map[string]*cosigner
	v1      *ws.Version
	clock   *clock
	net     *network
}

func newWorld(t *testing.T) *world {
	t.Helper()
	_, a, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{a: a, b: must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)), members: map[string]*cosigner{},
		clock: &clock{now: t0}, net: newNetwork()}
	d := &ws.Doc{Workspace: "ws-test", Version: 1, Quorum: 2, Admins: []string{pubB64(w.a), pubB64(w.b)}}
	for _, id := range []string{"co-1", "co-2", "co-3"} {
		w.members[id] = newCosigner(id)
		d.Members = append(d.Members, ws.MemberOf(w.members[id].wire(), nil))
	}
	d.Normalize()
	w.v1 = must(ws.Genesis(approve(must(d.Encode()), w.a, w.b)))
	return w
}

func approve(raw []byte, keys ...crypto.Signer) ws.Signed {
	s := ws.Signed{Doc: raw}
	for _, k := range keys {
		s.Approvals = append(s.Approvals, must(ws.Approve(raw, k)))
	}
	return s
}

// draft returns the raw successor of held after edit.
func draft(held *ws.Version, edit func(*ws.Doc)) []byte {
	d := held.Doc.Next(held.Signed.Doc)
	if edit != nil {
		edit(d)
	}
	d.Normalize()
	return must(d.Encode())
}

// next is held's successor after edit, approved by keys, and verified when
// it carries the quorum.
func next(held *ws.Version, edit func(*ws.Doc), keys ...crypto.Signer) ws.Signed {
	return approve(draft(held, edit), keys...)
}

func verified(held *ws.Version, s ws.Signed) *ws.Version { return must(ws.Next(held, s)) }

func addUser(name string) func(*ws.Doc) {
	u := ws.User{Name: name, Roles: []string{ws.RoleSigner}, PublicKey: pubB64(must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)))}
	return func(d *ws.Doc) { d.Users = append(d.Users, u) }
}

// addMember adds a pending request's entry and marks its token used.
func addMember(m ws.Member) func(*ws.Doc) {
	return func(d *ws.Doc) {
		d.Members = append(d.Members, m)
		d.Tokens = append(d.Tokens, m.Token)
	}
}

func (w *world) token(t *testing.T, v *ws.Version, ttl time.Duration, at time.Time, key crypto.Signer) (string, *ws.Token) {
	t.Helper()
	tok := must(ws.NewToken(v, goodPCRs(), ttl, at))
	return must(tok.Issue(key)), tok
}

// network carries frames between the test's cosigners: each Send is
// recorded and handed to the recipient's Deliver, if it has one.
type network struct {
	mu      sync.Mutex
	sent    []sent
	deliver map[string]func(context.Context, []byte)
}

type sent struct {
	from, to string
	kind     byte
	msg      any // *ws.SignedRequest, *ws.Update or *ws.Hello
}

func newNetwork() *network { return &network{deliver: map[string]func(context.Context, []byte){}} }

func (n *network) attach(id string, deliver func(context.Context, []byte)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.deliver[id] = deliver
}

func (n *network) link(from string) workspace.Link { return &link{n: n, from: from} }

type link struct {
	n    *network
	from string
}

func (l *link) Send(ctx context.Context, to string, frame []byte) error {
	kind, msg, err := ws.DecodeMessage(frame)
	if err != nil {
		return fmt.Errorf("test link: %s sent an undecodable frame: %w", l.from, err)
	}
	l.n.mu.Lock()
	l.n.sent = append(l.n.sent, sent{from: l.from, to: to, kind: kind, msg: msg})
	deliver := l.n.deliver[to]
	l.n.mu.Unlock()
	if deliver != nil {
		deliver(ctx, bytes.Clone(frame))
	}
	return nil
}

// to returns the messages of kind sent to id so far.
func (n *network) to(id string, kind byte) []sent {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []sent
	for _, s := range n.sent {
		if s.to == id && s.kind == kind {
			out = append(out, s)
		}
	}
	return out
}

func (n *network) reset() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = nil
}

// versionsOf lists the versions an Update carries.
func versionsOf(s sent) []uint64 {
	var out []uint64
	for _, sv := range s.msg.(*ws.Update).Versions {
		out = append(out, must(ws.Parse(sv.Doc)).Version)
	}
	return out
}

// events is a node's record of its audit appends and workspace stores, in
// the order they happened.
type events struct {
	mu      sync.Mutex
	records []auditfmt.Record
	puts    []put
	changes []*ws.Version // OnChange calls
	hellos  []string      // OnHello calls
}

// put is a PutWorkspace call and the last audit entry committed before it.
type put struct {
	version   uint64
	lastAudit auditfmt.Record
}

// recAuditor is the real audit log, recording what it commits; it fails
// while failing is set.
type recAuditor struct {
	log     *audit.Log
	ev      *events
	failing bool
}

func (a *recAuditor) Append(ctx context.Context, e auditfmt.Event) (auditfmt.Record, error) {
	a.ev.mu.Lock()
	defer a.ev.mu.Unlock()
	if a.failing {
		return auditfmt.Record{}, errors.New("test auditor: failing")
	}
	rec, err := a.log.Append(ctx, e)
	if err == nil {
		a.ev.records = append(a.ev.records, rec)
	}
	return rec, err
}

// recStore is the real keystore, recording each PutWorkspace with the
// audit entry committed last before it.
type recStore struct {
	*keystore.Store
	ev *events
}

func (s *recStore) PutWorkspace(ctx context.Context, version uint64, doc []byte) error {
	s.ev.mu.Lock()
	p := put{version: version}
	if n := len(s.ev.records); n > 0 {
		p.lastAudit = s.ev.records[n-1]
	}
	s.ev.mu.Unlock()
	if err := s.Store.PutWorkspace(ctx, version, doc); err != nil {
		return err
	}
	s.ev.mu.Lock()
	s.ev.puts = append(s.ev.puts, p)
	s.ev.mu.Unlock()
	return nil
}

// audited returns the records of type typ.
func (e *events) audited(typ auditfmt.Type) []auditfmt.Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []auditfmt.Record
	for _, r := range e.records {
		if r.Entry.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

func (e *events) stored() []put {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.puts)
}

func (e *events) changed() []*ws.Version {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.changes)
}

func (e *events) setFailing(a *recAuditor, on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a.failing = on
}

// node is one cosigner's keystore, audit log and Manager.
type node struct {
	c     *cosigner
	ks    *keystore.Store
	store *recStore
	aud   *recAuditor
	ev    *events
	m     *workspace.Manager
}

// newStorage creates a keystore and audit log for c.
func newStorage(t *testing.T, c *cosigner) (*keystore.Store, *recStore, *recAuditor, *events) {
	t.Helper()
	ctx := context.Background()
	key := make([]byte, keystore.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.Create(ctx, t.TempDir(), secret.New(key), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	log, err := audit.New(ctx, audit.Config{CosignerID: c.id, Store: ks, Signer: audit.IdentitySigner(c.identity)})
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	return ks, &recStore{Store: ks, ev: ev}, &recAuditor{log: log, ev: ev}, ev
}

// newNode makes c's node on the world's network, holding nothing yet.
func (w *world) newNode(t *testing.T, c *cosigner) *node {
	t.Helper()
	ks, store, aud, ev := newStorage(t, c)
	n := &node{c: c, ks: ks, store: store, aud: aud, ev: ev}
	n.m = w.manager(t, n)
	return n
}

// manager makes a Manager over n's storage (a restart makes another).
func (w *world) manager(t *testing.T, n *node) *workspace.Manager {
	t.Helper()
	m, err := workspace.New(workspace.Config{Self: n.c.id, Store: n.store, Audit: n.aud, Link: w.net.link(n.c.id),
		Roots: testCA().Roots(), Now: w.clock.Now, OnChange: func(v *ws.Version) {
			n.ev.mu.Lock()
			defer n.ev.mu.Unlock()
			n.ev.changes = append(n.ev.changes, v)
		}, OnHello: func(member string) {
			n.ev.mu.Lock()
			defer n.ev.mu.Unlock()
			n.ev.hellos = append(n.ev.hellos, member)
		}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// member starts a node for member id holding version 1, running and
// attached to the network.
func (w *world) member(t *testing.T, id string) *node {
	t.Helper()
	n := w.newNode(t, w.members[id])
	if err := n.m.Bootstrap(context.Background(), w.v1.Signed); err != nil {
		t.Fatal(err)
	}
	n.run(t)
	w.net.attach(id, n.m.Deliver)
	return n
}

// run runs the Manager until the test ends.
func (n *node) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Run: %v", n.c.id, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Run did not return", n.c.id)
		}
	})
}

// holds reports whether the node holds version v (by hash).
func (n *node) holds(v *ws.Version) bool {
	cur := n.m.Current()
	return cur != nil && cur.Hash == v.Hash
}

// latest is the newest version in the keystore.
func (n *node) latest(t *testing.T) *ws.Version {
	t.Helper()
	wv, err := n.ks.LatestWorkspace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return must(ws.FromStore(wv.Document))
}

// pending waits for the node to hold a pairing request from id.
func (n *node) pending(t *testing.T, id string) workspace.Pending {
	t.Helper()
	var p workspace.Pending
	eventually(t, n.c.id+" to hold a pairing request from "+id, func() bool {
		for _, q := range n.m.Pending() {
			if q.Member.ID == id {
				p = q
				return true
			}
		}
		return false
	})
	return p
}

// deliverVersions hands the node an Update from from.
func (n *node) deliverVersions(from string, versions ...ws.Signed) {
	n.m.Deliver(context.Background(), must(ws.EncodeMessage(ws.KindVersions, ws.Update{From: from, Versions: versions})))
}
