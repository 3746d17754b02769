package workspace_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/workspace"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// joiner is a cosigner started with a token, with its own keystore and
// audit log, on the world's network.
type joiner struct {
	c   *cosigner
	j   *workspace.Joiner
	n   *node // its storage; its Manager is made after pairing
	ev  *events
	log *testutil.Buffer
}

func (w *world) newJoiner(t *testing.T, id, token string, every time.Duration) *joiner {
	t.Helper()
	c := newCosigner(id)
	ks, store, aud, ev := newStorage(t, c)
	buf := new(testutil.Buffer)
	j, err := workspace.NewJoiner(workspace.JoinConfig{Token: token, Identity: c.identity, Member: c.wire(),
		Attest: c.attest(w.clock), Link: w.net.link(id), Store: store, Audit: aud, Every: every, Now: w.clock.Now,
		Logger: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	w.net.attach(id, j.Deliver)
	return &joiner{c: c, j: j, n: &node{c: c, ks: ks, store: store, aud: aud, ev: ev}, ev: ev, log: buf}
}

type joinResult struct {
	v   *ws.Version
	err error
}

// run runs the Joiner until it returns or the test ends.
func (jn *joiner) run(t *testing.T) <-chan joinResult {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan joinResult, 1)
	go func() {
		v, err := jn.j.Run(ctx)
		out <- joinResult{v, err}
	}()
	t.Cleanup(cancel)
	return out
}

func wait(t *testing.T, ch <-chan joinResult) joinResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the Joiner")
		return joinResult{}
	}
}

// The whole pairing: the new cosigner's request reaches the members, waits
// for the admins, one approval does nothing, the second applies the
// version; the Joiner then stores the chain from its token's version and
// returns the version that lists it, which every member holds too.
func TestJoinerPairsThroughTheManagers(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	nodes := map[string]*node{}
	for _, id := range []string{"co-1", "co-2", "co-3"} {
		nodes[id] = w.member(t, id)
	}
	tok, tk := w.token(t, w.v1, time.Hour, t0, w.b)
	jn := w.newJoiner(t, "co-4", tok, 20*time.Millisecond)
	done := jn.run(t)

	var p workspace.Pending
	for _, id := range []string{"co-1", "co-2", "co-3"} {
		p = nodes[id].pending(t, "co-4")
	}
	if p.TokenID != tk.ID || p.Member.Identity != ws.MemberOf(jn.c.wire(), nil).Identity {
		t.Fatalf("pending %+v", p)
	}
	raw := draft(w.v1, addMember(p.Member))
	co1 := nodes["co-1"]
	if res, err := co1.m.Propose(ctx, "admin-a", approve(raw, w.a)); err != nil || res.Applied {
		t.Fatalf("first approval: %+v, %v", res, err)
	}
	select {
	case r := <-done:
		t.Fatalf("the Joiner returned before the quorum approved: %+v", r)
	default:
	}
	if res, err := co1.m.Propose(ctx, "admin-b", approve(raw, w.b)); err != nil || !res.Applied {
		t.Fatalf("second approval: %+v, %v", res, err)
	}

	r := wait(t, done)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.v.Doc.Version != 2 || r.v.Hash != ws.Hash(raw) || r.v.Doc.Member("co-4") == nil {
		t.Fatalf("joined version %d", r.v.Doc.Version)
	}
	stored, err := jn.n.ks.WorkspaceVersionsFrom(ctx, 1, 10)
	if err != nil || len(stored) != 2 || stored[0].Version != 1 || stored[1].Version != 2 {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	if must(ws.FromStore(stored[0].Document)).Hash != w.v1.Hash || must(ws.FromStore(stored[1].Document)).Hash != r.v.Hash {
		t.Fatal("stored other versions than the chain")
	}
	if rec := jn.ev.audited(auditfmt.WorkspaceChanged); len(rec) != 1 || rec[0].Entry.Details["version"] != "2" {
		t.Fatalf("joiner audit %+v", rec)
	} else if puts := jn.ev.stored(); len(puts) != 2 || puts[0].lastAudit.Entry.Seq != rec[0].Entry.Seq {
		t.Fatalf("the chain was stored before its audit entry: %+v", puts)
	}
	for id, n := range nodes {
		eventually(t, id+" to hold version 2", func() bool { return n.holds(r.v) })
		if id == "co-1" {
			// co-1 may keep a request that was being verified while
			// the version was applied: see
			// TestRequestVerifiedDuringAChangeIsNotKept.
			continue
		}
		eventually(t, id+" to drop the request", func() bool { return len(n.m.Pending()) == 0 })
	}

	// The new member's own Manager starts from what the Joiner stored.
	m := w.manager(t, jn.n)
	if found, err := m.Load(ctx); !found || err != nil || m.Current().Hash != r.v.Hash {
		t.Fatalf("Load after pairing = %v, %v", found, err)
	}
}

// NewJoiner refuses an expired or malformed token and a missing field.
func TestNewJoinerRefuses(t *testing.T) {
	w := newWorld(t)
	c := newCosigner("co-4")
	_, store, aud, _ := newStorage(t, c)
	tok, _ := w.token(t, w.v1, time.Hour, t0, w.a)
	cfg := func(edit func(*workspace.JoinConfig)) workspace.JoinConfig {
		jc := workspace.JoinConfig{Token: tok, Identity: c.identity, Member: c.wire(), Attest: c.attest(w.clock),
			Link: w.net.link("co-4"), Store: store, Audit: aud, Now: w.clock.Now}
		edit(&jc)
		return jc
	}
	for name, c := range map[string]struct {
		cfg  workspace.JoinConfig
		want error
	}{
		"expired": {cfg(func(jc *workspace.JoinConfig) {
			jc.Now = func() time.Time { return t0.Add(time.Hour) }
		}), ws.ErrTokenExpired},
		"malformed token": {cfg(func(jc *workspace.JoinConfig) { jc.Token = tok[:len(tok)/2] }), ws.ErrMalformed},
		"no attestation":  {cfg(func(jc *workspace.JoinConfig) { jc.Attest = nil }), nil},
		"no store":        {cfg(func(jc *workspace.JoinConfig) { jc.Store = nil }), nil},
	} {
		j, err := workspace.NewJoiner(c.cfg)
		if err == nil || j != nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: NewJoiner = %v, %v; want %v", name, j, err, c.want)
		}
	}
	if _, err := workspace.NewJoiner(cfg(func(*workspace.JoinConfig) {})); err != nil {
		t.Fatalf("the good config: %v", err)
	}
}

// The Joiner sends its request to the token's members, and takes only a
// chain that starts at the token's version, carries each quorum, and ends
// listing it with its keys; it ignores everything else it receives.
func TestJoinerTakesOnlyAChainThatAddsIt(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	tok, _ := w.token(t, w.v1, time.Hour, t0, w.a)
	jn := w.newJoiner(t, "co-4", tok, time.Hour)
	eventuallyRequested := func() {
		for _, id := range []string{"co-1", "co-2", "co-3"} {
			eventually(t, "the request to "+id, func() bool { return len(w.net.to(id, ws.KindPair)) > 0 })
		}
	}
	done := jn.run(t)
	eventuallyRequested()
	sr := *w.net.to("co-1", ws.KindPair)[0].msg.(*ws.SignedRequest)
	ver, err := ws.VerifyRequest(sr, w.v1, ws.RequestCheck{Roots: testCA().Roots()}, t0)
	if err != nil {
		t.Fatalf("the Joiner's request does not verify: %v", err)
	}
	good := next(w.v1, addMember(ver.Member), w.a, w.b)

	// Another version 1 with the same admins, adding co-4 in its version 2.
	fd := w.v1.Doc.Clone()
	addUser("mallory")(fd)
	fd.Normalize()
	fv1 := must(ws.Genesis(approve(must(fd.Encode()), w.a, w.b)))
	otherKeys := ver.Member
	otherKeys.Identity = ws.MemberOf(newCosigner("co-4").wire(), nil).Identity

	bad := [][]ws.Signed{
		{w.v1.Signed}, // does not list co-4
		{w.v1.Signed, next(w.v1, addMember(ver.Member), w.a)}, // no quorum
		{good}, // does not start at the token's version
		{fv1.Signed, next(fv1, addMember(ver.Member), w.a, w.b)},    // another version 1
		{w.v1.Signed, next(w.v1, addMember(otherKeys), w.a, w.b)},   // lists co-4 with other keys
		{w.v1.Signed, next(w.v1, addUser("carol"), w.a, w.b), good}, // not a chain
		{},
	}
	for _, vs := range bad {
		jn.j.Deliver(ctx, must(ws.EncodeMessage(ws.KindVersions, ws.Update{From: "co-1", Versions: vs})))
	}
	jn.j.Deliver(ctx, []byte("garbage"))
	jn.j.Deliver(ctx, must(ws.EncodeMessage(ws.KindHello, ws.Hello{From: "co-1", Version: 9})))
	eventually(t, "every bad chain considered", func() bool {
		return strings.Count(jn.log.String(), "versions received but not usable yet") == len(bad)
	})
	select {
	case r := <-done:
		t.Fatalf("the Joiner took a bad chain: %+v", r)
	default:
	}
	if _, err := jn.n.ks.LatestWorkspace(ctx); err == nil || len(jn.ev.audited(auditfmt.WorkspaceChanged)) != 0 {
		t.Fatal("a bad chain was stored or audited")
	}

	jn.j.Deliver(ctx, must(ws.EncodeMessage(ws.KindVersions, ws.Update{From: "co-2", Versions: []ws.Signed{w.v1.Signed, good}})))
	r := wait(t, done)
	if r.err != nil || r.v.Hash != ws.Hash(good.Doc) {
		t.Fatalf("Run = %+v", r)
	}
	if _, err := ws.Next(w.v1, r.v.Signed); err != nil {
		t.Fatalf("joined a version without its quorum: %v", err)
	}
	stored, err := jn.n.ks.WorkspaceVersionsFrom(ctx, 1, 10)
	if err != nil || len(stored) != 2 || must(ws.FromStore(stored[1].Document)).Hash != r.v.Hash {
		t.Fatalf("stored %d versions, %v", len(stored), err)
	}
}

// The Joiner gives up with ErrTokenExpired once its token expires.
func TestJoinerGivesUpWhenTheTokenExpires(t *testing.T) {
	w := newWorld(t)
	tok, _ := w.token(t, w.v1, time.Hour, t0, w.a)
	jn := w.newJoiner(t, "co-4", tok, 10*time.Millisecond)
	done := jn.run(t)
	eventually(t, "the first request", func() bool { return len(w.net.to("co-1", ws.KindPair)) > 0 })
	w.clock.Set(t0.Add(time.Hour))
	if r := wait(t, done); !errors.Is(r.err, ws.ErrTokenExpired) || r.v != nil {
		t.Fatalf("Run = %+v", r)
	}
	if _, err := jn.n.ks.LatestWorkspace(context.Background()); err == nil {
		t.Fatal("stored a workspace")
	}
}

// A token issued at a later version: the Joiner gets and stores the chain
// from that version on (not version 1), and joins.
func TestJoinerWithATokenOfALaterVersion(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	co1 := w.member(t, "co-1")
	if res, err := co1.m.Propose(ctx, "admin", next(w.v1, addUser("carol"), w.a, w.b)); err != nil || !res.Applied {
		t.Fatalf("version 2: %+v, %v", res, err)
	}
	v2 := co1.m.Current()
	tok, _ := w.token(t, v2, time.Hour, t0, w.a)
	jn := w.newJoiner(t, "co-4", tok, 20*time.Millisecond)
	done := jn.run(t)
	p := co1.pending(t, "co-4")
	if res, err := co1.m.Propose(ctx, "admin", next(v2, addMember(p.Member), w.a, w.b)); err != nil || !res.Applied {
		t.Fatalf("version 3: %+v, %v", res, err)
	}
	r := wait(t, done)
	if r.err != nil || r.v.Hash != co1.m.Current().Hash {
		t.Fatalf("Run = %+v", r)
	}
	stored, err := jn.n.ks.WorkspaceVersionsFrom(ctx, 1, 10)
	if err != nil || len(stored) != 2 || stored[0].Version != 2 || stored[1].Version != 3 {
		t.Fatalf("stored %+v, %v", stored, err)
	}
}
