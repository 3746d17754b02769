package workspace_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/workspace"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// A member added by a version receives the chain from its token's version
// on: the version the joiner checks the token against (CheckGenesis).
func TestNewMemberGetsTheChainFromItsTokenVersion(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	co1 := w.member(t, "co-1")
	if res, err := co1.m.Propose(ctx, "admin", next(w.v1, addUser("carol"), w.a, w.b)); err != nil || !res.Applied {
		t.Fatalf("version 2: %+v, %v", res, err)
	}
	v2 := co1.m.Current()
	tok, _ := w.token(t, v2, time.Hour, t0, w.a) // issued at version 2
	co1.m.Deliver(ctx, newCosigner("co-4").request(t, tok, t0, nil))
	p := co1.pending(t, "co-4")
	if p.Version != 2 {
		t.Fatalf("pending from version %d", p.Version)
	}
	if res, err := co1.m.Propose(ctx, "admin", next(v2, addMember(p.Member), w.a, w.b)); err != nil || !res.Applied {
		t.Fatalf("version 3: %+v, %v", res, err)
	}
	eventually(t, "versions sent to co-4", func() bool { return len(w.net.to("co-4", ws.KindVersions)) > 0 })
	if got := versionsOf(w.net.to("co-4", ws.KindVersions)[0]); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("co-4 got versions %v, want [2 3] (from its token's version)", got)
	}
}

// A version that adds several API users at once (or is approved through a
// caller with a long name) is audited and applied like any other.
func TestLargeChangeIsApplied(t *testing.T) {
	ctx := context.Background()
	for name, c := range map[string]struct {
		users int
		actor string
	}{
		"eight users": {8, "admin"},
		"long actor":  {1, "CN=" + strings.Repeat("x", 250)},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			n := w.member(t, "co-1")
			edit := func(d *ws.Doc) {
				for i := range c.users {
					addUser(strings.Repeat("u", 40) + string(rune('a'+i)))(d)
				}
			}
			res, err := n.m.Propose(ctx, c.actor, next(w.v1, edit, w.a, w.b))
			if err != nil || !res.Applied {
				t.Fatalf("Propose = %+v, %v", res, err)
			}
		})
	}
}

// An admin whose approvals are not deterministic (ECDSA) and who approves
// the same version many times still counts once, and does not block the
// version from being applied once another admin approves.
func TestRepeatedApprovalsDoNotBlockTheQuorum(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	n := w.member(t, "co-1")
	raw := draft(w.v1, addUser("carol"))
	for range 64 {
		res, err := n.m.Propose(ctx, "admin-b", approve(raw, w.b))
		if err != nil || res.Applied || res.Approvals != 1 {
			t.Fatalf("Propose = %+v, %v", res, err)
		}
	}
	res, err := n.m.Propose(ctx, "admin-a", approve(raw, w.a))
	if err != nil || !res.Applied {
		t.Fatalf("second admin: Propose = %+v, %v", res, err)
	}
	if got := len(n.m.Current().Signed.Approvals); got != 2 {
		t.Errorf("stored %d approvals for 2 admins", got)
	}
}

// gate is a clock that, once armed, stops the next caller until released:
// it holds handlePair between reading the held version and keeping the
// request.
type gate struct {
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (g *gate) now() time.Time {
	g.mu.Lock()
	armed := g.armed
	g.armed = false
	g.mu.Unlock()
	if armed {
		close(g.entered)
		<-g.release
	}
	return t0
}

func (g *gate) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = true
}

// A pairing request that was being verified against version 1 while the
// admins applied the version adding its cosigner must not be kept as
// pending afterwards: its cosigner is a member and its token is used.
func TestRequestVerifiedDuringAChangeIsNotKept(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	c := w.members["co-1"]
	ks, store, aud, ev := newStorage(t, c)
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	m, err := workspace.New(workspace.Config{Self: c.id, Store: store, Audit: aud, Link: w.net.link(c.id),
		Roots: testCA().Roots(), Now: g.now})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{c: c, ks: ks, store: store, aud: aud, ev: ev, m: m}
	if err := m.Bootstrap(ctx, w.v1.Signed); err != nil {
		t.Fatal(err)
	}
	n.run(t)
	tok, _ := w.token(t, w.v1, time.Hour, t0, w.a)
	frame := newCosigner("co-4").request(t, tok, t0, nil)
	m.Deliver(ctx, frame)
	p := n.pending(t, "co-4")

	g.arm()
	m.Deliver(ctx, frame) // the request, sent again
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the request was not handled")
	}
	if res, err := m.Propose(ctx, "admin", next(w.v1, addMember(p.Member), w.a, w.b)); err != nil || !res.Applied {
		t.Fatalf("Propose = %+v, %v", res, err)
	}
	if len(m.Pending()) != 0 {
		t.Fatal("the applied version did not clear the request")
	}
	close(g.release)
	// A hello handled after the request is a barrier.
	m.Deliver(ctx, must(ws.EncodeMessage(ws.KindHello, ws.Hello{From: "co-2", Version: 1})))
	eventually(t, "the hello answered", func() bool { return len(w.net.to("co-2", ws.KindVersions)) == 2 })
	if ps := m.Pending(); len(ps) != 0 {
		t.Fatalf("version %d lists co-4 and marks its token used, yet its request is pending: %+v", m.Current().Doc.Version, ps)
	}
}
