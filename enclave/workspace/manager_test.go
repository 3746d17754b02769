package workspace_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/workspace"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// Bootstrap takes a version 1 that names this cosigner and carries its own
// quorum, audits it before storing it; the same file again is a no-op,
// also after a restart; a different version 1 is a fork.
func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	n := w.newNode(t, w.members["co-1"])

	if found, err := n.m.Load(ctx); found || err != nil {
		t.Fatalf("Load of an empty keystore = %v, %v", found, err)
	}
	if err := n.m.Bootstrap(ctx, approve(w.v1.Signed.Doc, w.a)); !errors.Is(err, ws.ErrQuorum) {
		t.Fatalf("Bootstrap with one approval of two: %v", err)
	}
	if _, err := n.ks.LatestWorkspace(ctx); !errors.Is(err, keystore.ErrNotFound) || n.m.Current() != nil {
		t.Fatalf("a refused bootstrap stored something: %v", err)
	}
	if err := n.m.Bootstrap(ctx, w.v1.Signed); err != nil {
		t.Fatal(err)
	}
	if !n.holds(w.v1) || n.latest(t).Hash != w.v1.Hash {
		t.Fatal("version 1 not held and stored")
	}
	changed := n.ev.audited(auditfmt.WorkspaceChanged)
	if len(changed) != 1 || changed[0].Entry.Details["via"] != "bootstrap" || changed[0].Entry.Details["version"] != "1" {
		t.Fatalf("audit: %+v", changed)
	}
	if puts := n.ev.stored(); len(puts) != 1 || puts[0].lastAudit.Entry.Seq != changed[0].Entry.Seq {
		t.Fatalf("stored %+v, not right after its audit entry %d", puts, changed[0].Entry.Seq)
	}
	if ch := n.ev.changed(); len(ch) != 1 || ch[0].Hash != w.v1.Hash {
		t.Fatalf("OnChange calls: %d", len(ch))
	}

	// Again: nothing happens.
	if err := n.m.Bootstrap(ctx, w.v1.Signed); err != nil {
		t.Fatalf("same bootstrap again: %v", err)
	}
	// Another version 1, of this workspace or of another: a fork.
	otherSame := w.v1.Doc.Clone()
	otherSame.Users = []ws.User{}
	addUser("mallory")(otherSame)
	otherName := w.v1.Doc.Clone()
	otherName.Workspace = "ws-other"
	for name, d := range map[string]*ws.Doc{"same workspace": otherSame, "other workspace": otherName} {
		if err := n.m.Bootstrap(ctx, approve(must(d.Encode()), w.a, w.b)); !errors.Is(err, ws.ErrFork) {
			t.Errorf("%s: Bootstrap = %v, want ErrFork", name, err)
		}
	}
	if len(n.ev.stored()) != 1 || len(n.ev.audited(auditfmt.WorkspaceChanged)) != 1 || !n.holds(w.v1) {
		t.Fatal("a repeated or forked bootstrap changed something")
	}

	// Restart: Load finds version 1; the same file is still a no-op and a
	// different one still a fork.
	m2 := w.manager(t, n)
	if found, err := m2.Load(ctx); !found || err != nil || m2.Current().Hash != w.v1.Hash {
		t.Fatalf("Load after restart = %v, %v", found, err)
	}
	if err := m2.Bootstrap(ctx, w.v1.Signed); err != nil {
		t.Fatalf("same bootstrap after restart: %v", err)
	}
	if err := m2.Bootstrap(ctx, approve(must(otherSame.Encode()), w.a, w.b)); !errors.Is(err, ws.ErrFork) {
		t.Fatalf("other bootstrap after restart: %v", err)
	}
	if len(n.ev.stored()) != 1 {
		t.Fatal("the restart stored again")
	}
}

// A cosigner that is not a member of version 1 refuses to bootstrap from
// it and stores nothing.
func TestBootstrapRefusesNonMember(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	n := w.newNode(t, newCosigner("co-9"))
	if err := n.m.Bootstrap(ctx, w.v1.Signed); err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("Bootstrap = %v", err)
	}
	if _, err := n.ks.LatestWorkspace(ctx); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("stored: %v", err)
	}
	if len(n.ev.audited(auditfmt.WorkspaceChanged)) != 0 || n.m.Current() != nil {
		t.Fatal("audited or holds a version")
	}
}

// A verified pairing request is kept for the admins and audited; the same
// request again is one pending entry; another cosigner's request with the
// same token is refused.
func TestPairingRequestIsPendingAndAudited(t *testing.T) {
	w := newWorld(t)
	n := w.member(t, "co-1")
	tok, tk := w.token(t, w.v1, time.Hour, t0, w.a)
	nc := newCosigner("co-4")
	frame := nc.request(t, tok, t0, nil)
	n.m.Deliver(context.Background(), frame)

	p := n.pending(t, "co-4")
	want := ws.MemberOf(nc.wire(), nil)
	want.Token = tk.ID
	if !sameEntry(p.Member, want) || p.TokenID != tk.ID || p.Version != 1 || p.ModuleID != attestsim.DefaultModuleID || !p.Received.Equal(t0) {
		t.Fatalf("pending %+v, want member %+v", p, want)
	}
	eventually(t, "pairing_requested", func() bool { return len(n.ev.audited(auditfmt.PairingRequested)) == 1 })
	rec := n.ev.audited(auditfmt.PairingRequested)[0]
	if rec.Entry.Details["cosigner"] != "co-4" || rec.Entry.Details["token"] != tk.ID || rec.Entry.Details["identity"] != want.Identity {
		t.Fatalf("audit details %v", rec.Entry.Details)
	}

	n.m.Deliver(context.Background(), frame)
	n.m.Deliver(context.Background(), newCosigner("co-5").request(t, tok, t0, nil))
	eventually(t, "the claim of a claimed token to be refused", func() bool {
		return len(n.ev.audited(auditfmt.PairingRefused)) == 1
	})
	refused := n.ev.audited(auditfmt.PairingRefused)[0]
	if refused.Entry.Details["cosigner"] != "co-5" || !strings.Contains(refused.Entry.Reason, "claimed") {
		t.Fatalf("refusal %+v", refused.Entry)
	}
	if ps := n.m.Pending(); len(ps) != 1 || ps[0].Member.ID != "co-4" {
		t.Fatalf("pending %+v", ps)
	}
	if st := n.m.Stats(); st.PairingRequests != 3 || st.PairingRefused != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func sameEntry(a, b ws.Member) bool {
	return a.ID == b.ID && a.Identity == b.Identity && a.Encryption == b.Encryption && a.Inbox == b.Inbox &&
		a.Token == b.Token && a.ApprovalKey == b.ApprovalKey && maps.Equal(a.PCRs, b.PCRs)
}

// Bad pairing requests are refused, each with an audit entry that says why;
// none becomes pending.
func TestBadPairingRequestsAreRefusedAndAudited(t *testing.T) {
	w := newWorld(t)
	n := w.member(t, "co-1")
	tok, _ := w.token(t, w.v1, time.Hour, t0, w.a)
	expired, _ := w.token(t, w.v1, time.Hour, t0.Add(-2*time.Hour), w.a)
	forged, _ := w.token(t, w.v1, time.Hour, t0, must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)))
	wrongPCRs := goodPCRs()
	wrongPCRs[0] = pcr(0xee)
	nc := newCosigner("co-4")
	cases := []struct {
		frame  []byte
		reason string
	}{
		{nc.request(t, tok, t0, func(r *ws.PairRequest) {
			r.Attestation = must(testCA().Attest(attestsim.Request{PCRs: wrongPCRs, UserData: nc.wire().Binding(), Time: t0}))
		}), "PCRs differ"},
		{nc.request(t, tok, t0, func(r *ws.PairRequest) {
			r.Attestation = must(testCA().Attest(attestsim.Request{UserData: nc.wire().Binding(), Time: t0}))
		}), "debug-mode"},
		{nc.request(t, expired, t0, nil), ws.ErrTokenExpired.Error()},
		{nc.request(t, forged, t0, nil), ws.ErrTokenForged.Error()},
		{nc.request(t, tok, t0.Add(-10*time.Minute), nil), "window"},
		{newCosigner("co-2").request(t, tok, t0, nil), "already in the roster"},
	}
	for _, c := range cases {
		n.m.Deliver(context.Background(), c.frame)
	}
	eventually(t, "every refusal audited", func() bool { return len(n.ev.audited(auditfmt.PairingRefused)) == len(cases) })
	for i, rec := range n.ev.audited(auditfmt.PairingRefused) {
		if !strings.Contains(rec.Entry.Reason, cases[i].reason) || rec.Entry.Details["cosigner"] == "" {
			t.Errorf("refusal %d: reason %q, details %v; want %q", i, rec.Entry.Reason, rec.Entry.Details, cases[i].reason)
		}
	}
	if ps := n.m.Pending(); len(ps) != 0 {
		t.Fatalf("pending %+v", ps)
	}
	if st := n.m.Stats(); st.PairingRefused != uint64(len(cases)) {
		t.Fatalf("stats %+v", st)
	}
}

// pairedWorld is three running members and a verified pairing request
// from co-4 (with a token issued at version 1) pending at co-1; co-4's
// inbox only records.
func pairedWorld(t *testing.T) (*world, map[string]*node, workspace.Pending) {
	t.Helper()
	w := newWorld(t)
	nodes := map[string]*node{}
	for _, id := range []string{"co-1", "co-2", "co-3"} {
		nodes[id] = w.member(t, id)
	}
	tok, _ := w.token(t, w.v1, time.Hour, t0, w.b)
	nodes["co-1"].m.Deliver(context.Background(), newCosigner("co-4").request(t, tok, t0, nil))
	return w, nodes, nodes["co-1"].pending(t, "co-4")
}

// One admin's approval is not enough when the quorum is two: nothing is
// stored, audited or sent, and the same admin approving again changes
// nothing. The second admin's approval applies the version: audited, then
// stored, OnChange called, and sent to every other member — the new one
// getting the chain from its token's version.
func TestProposeNeedsTheAdminQuorum(t *testing.T) {
	ctx := context.Background()
	w, nodes, p := pairedWorld(t)
	co1 := nodes["co-1"]
	raw := draft(w.v1, addMember(p.Member))
	w.net.reset()

	for range 2 { // the same admin twice
		res, err := co1.m.Propose(ctx, "admin-a", approve(raw, w.a))
		if err != nil {
			t.Fatal(err)
		}
		if res.Applied || res.Approvals != 1 || res.Quorum != 2 || res.Version != 2 {
			t.Fatalf("one approval: %+v", res)
		}
	}
	if !co1.holds(w.v1) || co1.latest(t).Doc.Version != 1 || co1.m.Current().Doc.Member("co-4") != nil {
		t.Fatal("one admin changed the roster")
	}
	if len(co1.ev.audited(auditfmt.WorkspaceChanged)) != 1 || len(co1.ev.changed()) != 1 || len(co1.m.Pending()) != 1 {
		t.Fatal("one approval audited a change, called OnChange or dropped the request")
	}

	res, err := co1.m.Propose(ctx, "admin-b", approve(raw, w.b))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Applied || res.Approvals != 2 || res.Version != 2 {
		t.Fatalf("two approvals: %+v", res)
	}
	v2 := co1.m.Current()
	if v2.Doc.Version != 2 || v2.Hash != ws.Hash(raw) || v2.Doc.Member("co-4") == nil || co1.latest(t).Hash != v2.Hash {
		t.Fatal("version 2 not held and stored")
	}
	if _, err := ws.Next(w.v1, v2.Signed); err != nil {
		t.Fatalf("the stored version does not verify: %v", err)
	}
	changed := co1.ev.audited(auditfmt.WorkspaceChanged)
	last := changed[len(changed)-1].Entry
	if last.Details["version"] != "2" || last.Details["members_added"] != "[co-4]" || !strings.Contains(last.Details["via"], "admin-b") {
		t.Fatalf("audit entry %+v", last)
	}
	puts := co1.ev.stored()
	if len(puts) != 2 || puts[1].version != 2 || puts[1].lastAudit.Entry.Seq != last.Seq {
		t.Fatalf("version 2 was not stored right after its audit entry %d: %+v", last.Seq, puts)
	}
	if ch := co1.ev.changed(); len(ch) != 2 || ch[1].Hash != v2.Hash {
		t.Fatalf("OnChange calls: %d", len(ch))
	}
	if len(co1.m.Pending()) != 0 {
		t.Fatal("the request of the added member is still pending")
	}

	// Sent to co-2 and co-3 (from version 2), to co-4 from its token's
	// version 1, and to nobody else.
	for id, want := range map[string][]uint64{"co-2": {2}, "co-3": {2}, "co-4": {1, 2}} {
		eventually(t, "versions sent to "+id, func() bool { return len(w.net.to(id, ws.KindVersions)) > 0 })
		if got := versionsOf(w.net.to(id, ws.KindVersions)[0]); !slices.Equal(got, want) {
			t.Errorf("%s got versions %v, want %v", id, got, want)
		}
	}
	if s := w.net.to("co-1", ws.KindVersions); len(s) != 0 {
		t.Fatalf("sent to itself: %+v", s)
	}
	for _, id := range []string{"co-2", "co-3"} {
		n := nodes[id]
		eventually(t, id+" to apply version 2", func() bool { return n.holds(v2) })
		if rec := n.ev.audited(auditfmt.WorkspaceChanged); rec[len(rec)-1].Entry.Details["via"] != "received" {
			t.Errorf("%s audit %+v", id, rec[len(rec)-1].Entry)
		}
		eventually(t, id+" to drop the request", func() bool { return len(n.m.Pending()) == 0 })
	}
}

// A member is added only with a verified pairing request here for exactly
// that entry, and a token marked used; Propose also refuses what does not
// follow the held version.
func TestProposeRefuses(t *testing.T) {
	ctx := context.Background()
	w, nodes, p := pairedWorld(t)
	co1 := nodes["co-1"]
	unpaired := ws.MemberOf(newCosigner("co-5").wire(), nil)
	unpaired.Token = strings.Repeat("ab", 16)
	otherPCRs := p.Member
	otherPCRs.PCRs = map[string]string{"0": p.Member.PCRs["0"]}
	otherKey := ws.MemberOf(newCosigner("co-4").wire(), nil)
	otherKey.Token = p.Member.Token
	noToken := p.Member
	noToken.Token = ""
	cases := map[string]struct {
		raw  []byte
		want []error // any of them
	}{
		"no pairing request":   {draft(w.v1, addMember(unpaired)), []error{workspace.ErrUnpaired}},
		"other PCRs":           {draft(w.v1, addMember(otherPCRs)), []error{workspace.ErrUnpaired}},
		"other identity":       {draft(w.v1, addMember(otherKey)), []error{workspace.ErrUnpaired}},
		"token not used":       {draft(w.v1, func(d *ws.Doc) { d.Members = append(d.Members, p.Member) }), []error{workspace.ErrUnpaired}},
		"member without token": {draft(w.v1, func(d *ws.Doc) { d.Members = append(d.Members, noToken) }), []error{workspace.ErrUnpaired}},
		"the held version":     {w.v1.Signed.Doc, []error{ws.ErrStale}},
		"skips a version":      {draft(verified(w.v1, next(w.v1, addUser("carol"), w.a, w.b)), nil), []error{ws.ErrGap, ws.ErrFork}},
		"other predecessor": {func() []byte {
			d := w.v1.Doc.Next([]byte("other"))
			d.Normalize()
			return must(d.Encode())
		}(), []error{ws.ErrFork}},
		"not canonical": {append(draft(w.v1, addUser("carol")), ' '), []error{ws.ErrMalformed}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := co1.m.Propose(ctx, "admin", approve(c.raw, w.a, w.b))
			if !slices.ContainsFunc(c.want, func(e error) bool { return errors.Is(err, e) }) || res.Applied {
				t.Fatalf("Propose = %+v, %v; want %v", res, err, c.want)
			}
		})
	}
	if !co1.holds(w.v1) || len(co1.ev.stored()) != 1 {
		t.Fatal("a refused proposal changed the workspace")
	}

	empty := w.newNode(t, newCosigner("co-1"))
	if _, err := empty.m.Propose(ctx, "admin", approve(draft(w.v1, addUser("carol")), w.a, w.b)); !errors.Is(err, workspace.ErrNoWorkspace) {
		t.Fatalf("Propose without a workspace: %v", err)
	}
}

// If the audit entry cannot be written, the version is not stored, not
// held and not sent; once the log works again, the change goes through.
func TestNoAuditNoChange(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	n := w.member(t, "co-1")
	v2 := next(w.v1, addUser("carol"), w.a, w.b)
	n.ev.setFailing(n.aud, true)
	if res, err := n.m.Propose(ctx, "admin", v2); err == nil || res.Applied {
		t.Fatalf("Propose with a failing audit log = %+v, %v", res, err)
	}
	if !n.holds(w.v1) || n.latest(t).Doc.Version != 1 || len(n.ev.changed()) != 1 {
		t.Fatal("changed without an audit entry")
	}
	if s := w.net.to("co-2", ws.KindVersions); len(s) != 0 {
		t.Fatal("sent a version it did not store")
	}
	// Received, likewise.
	m := w.newNode(t, w.members["co-2"])
	if err := m.m.Bootstrap(ctx, w.v1.Signed); err != nil {
		t.Fatal(err)
	}
	m.run(t)
	m.ev.setFailing(m.aud, true)
	m.deliverVersions("co-1", v2)
	m.m.Deliver(ctx, must(ws.EncodeMessage(ws.KindHello, ws.Hello{From: "co-3", Version: 0})))
	eventually(t, "co-2 to answer the hello after the update", func() bool { return len(w.net.to("co-3", ws.KindVersions)) > 0 })
	if !m.holds(w.v1) || m.latest(t).Doc.Version != 1 {
		t.Fatal("a received version was stored without an audit entry")
	}
	m.ev.setFailing(m.aud, false)
	m.deliverVersions("co-1", v2)
	eventually(t, "version 2 once the log works", func() bool { return m.m.Current().Doc.Version == 2 })

	n.ev.setFailing(n.aud, false)
	if res, err := n.m.Propose(ctx, "admin", v2); err != nil || !res.Applied {
		t.Fatalf("Propose once the log works = %+v, %v", res, err)
	}
}

// Received versions: the successor is applied; a copy of a held version is
// ignored; an older different version, a fork and a version without the
// quorum are refused with an audit entry and leave the held version; a
// gap makes the member ask the sender (Hello) without an audit entry.
func TestReceivedVersions(t *testing.T) {
	w := newWorld(t)
	n := w.member(t, "co-2")
	v2s := next(w.v1, addUser("carol"), w.a, w.b)
	v2 := verified(w.v1, v2s)
	v3s := next(v2, addUser("dave"), w.a, w.b)
	v4s := next(verified(v2, v3s), addUser("erin"), w.a, w.b)
	fork2 := next(w.v1, addUser("frank"), w.a, w.b)
	otherV1 := func() ws.Signed {
		d := w.v1.Doc.Clone()
		addUser("grace")(d)
		d.Normalize()
		return approve(must(d.Encode()), w.a, w.b)
	}()
	refusals := func() []auditfmt.Record { return n.ev.audited(auditfmt.WorkspaceRefused) }

	n.deliverVersions("co-1", v2s)
	eventually(t, "version 2", func() bool { return n.holds(v2) })
	if rec := n.ev.audited(auditfmt.WorkspaceChanged); len(rec) != 2 || rec[1].Entry.Details["users_added"] == "" {
		t.Fatalf("audit %+v", rec)
	}

	// A copy of version 1 (a replay), then a different version 1: both are
	// refusals, and the held version stays. A copy of the held version
	// itself is no refusal (a broadcast and a catch-up may cross).
	n.deliverVersions("co-1", v2s)
	n.deliverVersions("co-1", w.v1.Signed)
	n.deliverVersions("co-1", otherV1)
	eventually(t, "the stale versions refused", func() bool { return len(refusals()) == 2 })
	for _, rec := range refusals() {
		if r := rec.Entry; !strings.Contains(r.Reason, "older") || r.Details["held_version"] != "2" {
			t.Fatalf("stale refusal %+v", r)
		}
	}
	if !n.holds(v2) {
		t.Fatal("a stale version changed the held one")
	}

	n.deliverVersions("co-1", fork2)
	eventually(t, "the fork refused", func() bool { return len(refusals()) == 3 })
	if r := refusals()[2].Entry; !strings.Contains(r.Reason, "fork") {
		t.Fatalf("fork refusal %+v", r)
	}
	n.deliverVersions("co-1", next(v2, addUser("dave"), w.b))
	eventually(t, "the version without quorum refused", func() bool { return len(refusals()) == 4 })
	if r := refusals()[3].Entry; !strings.Contains(r.Reason, "approvals") {
		t.Fatalf("quorum refusal %+v", r)
	}
	if !n.holds(v2) || n.latest(t).Hash != v2.Hash || n.m.Stats().VersionsRefused != 4 {
		t.Fatal("a refused version changed the held one")
	}

	// A gap: co-2 asks co-1 for what it misses, and refuses nothing.
	eventually(t, "the hello of Run", func() bool { return len(w.net.to("co-1", ws.KindHello)) == 1 })
	w.net.reset()
	n.deliverVersions("co-1", v4s)
	eventually(t, "a hello to co-1", func() bool { return len(w.net.to("co-1", ws.KindHello)) > 0 })
	if h := w.net.to("co-1", ws.KindHello)[0].msg.(*ws.Hello); h.From != "co-2" || h.Version != 2 {
		t.Fatalf("hello %+v", h)
	}
	// The versions it asked for, with a held one first, apply in order.
	n.deliverVersions("co-1", v2s, v3s, v4s)
	eventually(t, "version 4", func() bool { return n.m.Current().Doc.Version == 4 })
	if len(refusals()) != 4 || n.latest(t).Doc.Version != 4 {
		t.Fatalf("refusals %d", len(refusals()))
	}
}

// A member that says hello with an older version gets the versions it
// misses; one that holds the newest, or a stranger, gets nothing. Run
// starts by saying hello to the other members.
func TestHelloGetsMissingVersions(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	n := w.member(t, "co-1")
	for _, id := range []string{"co-2", "co-3"} {
		eventually(t, "hello to "+id, func() bool { return len(w.net.to(id, ws.KindHello)) > 0 })
		if h := w.net.to(id, ws.KindHello)[0].msg.(*ws.Hello); h.From != "co-1" || h.Version != 1 {
			t.Fatalf("hello %+v", h)
		}
	}
	held := w.v1
	for _, u := range []string{"carol", "dave"} {
		res, err := n.m.Propose(ctx, "admin", next(held, addUser(u), w.a, w.b))
		if err != nil || !res.Applied {
			t.Fatalf("Propose = %+v, %v", res, err)
		}
		held = n.m.Current()
	}
	eventually(t, "the changes sent", func() bool {
		return len(w.net.to("co-2", ws.KindVersions)) == 2 && len(w.net.to("co-3", ws.KindVersions)) == 2
	})
	w.net.reset()

	hello := func(from string, v uint64) {
		n.m.Deliver(ctx, must(ws.EncodeMessage(ws.KindHello, ws.Hello{From: from, Version: v})))
	}
	hello("co-9", 1) // not a member
	hello("co-3", 3) // up to date
	hello("co-1", 1) // itself
	hello("co-2", 1)
	eventually(t, "versions for co-2", func() bool { return len(w.net.to("co-2", ws.KindVersions)) == 1 })
	if got := versionsOf(w.net.to("co-2", ws.KindVersions)[0]); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("co-2 got %v", got)
	}
	hello("co-2", 2)
	eventually(t, "more versions for co-2", func() bool { return len(w.net.to("co-2", ws.KindVersions)) == 2 })
	if got := versionsOf(w.net.to("co-2", ws.KindVersions)[1]); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("co-2 got %v", got)
	}
	for _, id := range []string{"co-1", "co-3", "co-9"} {
		if s := w.net.to(id, ws.KindVersions); len(s) != 0 {
			t.Errorf("%s got versions: %d", id, len(s))
		}
	}
	// OnHello hears of every other member that said hello (it restarted),
	// not of strangers or itself.
	n.ev.mu.Lock()
	defer n.ev.mu.Unlock()
	if !slices.Equal(n.ev.hellos, []string{"co-3", "co-2", "co-2"}) {
		t.Errorf("OnHello calls %v", n.ev.hellos)
	}
}
