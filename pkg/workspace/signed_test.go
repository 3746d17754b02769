package workspace_test

import (
	"bytes"
	"crypto"
	"errors"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/quorum"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// Version 1 needs its own admins' quorum: one of two is not enough, the
// same admin twice counts once, an outsider or a signature over other
// bytes counts for nothing; Ed25519 and ECDSA P-256 admins both work.
func TestGenesisNeedsItsOwnQuorum(t *testing.T) {
	for name, kinds := range map[string][2]func(testing.TB) crypto.Signer{
		"ed25519": {newEd25519Admin, newEd25519Admin},
		"p256":    {newECDSAAdmin, newECDSAAdmin},
		"mixed":   {newEd25519Admin, newECDSAAdmin},
	} {
		t.Run(name, func(t *testing.T) {
			a, b := kinds[0](t), kinds[1](t)
			outsider := newEd25519Admin(t)
			d := genesisDoc(t, "ws-g", []crypto.Signer{a, b}, 2, newCosigner(t, "co-1"))
			raw := encode(t, d)
			otherRaw := encode(t, genesisDoc(t, "ws-h", []crypto.Signer{a, b}, 2, newCosigner(t, "co-1")))
			refused := map[string]ws.Signed{
				"no approval":  {Doc: raw},
				"one of two":   approve(t, raw, a),
				"same twice":   approve(t, raw, b, b),
				"outsider":     approve(t, raw, a, outsider),
				"other bytes":  {Doc: raw, Approvals: []ws.Approval{approve(t, raw, a).Approvals[0], approve(t, otherRaw, b).Approvals[0]}},
				"garbage keys": {Doc: raw, Approvals: append(approve(t, raw, a).Approvals, ws.Approval{Admin: "!!", Signature: "!!"})},
			}
			for why, s := range refused {
				if v, err := ws.Genesis(s); !errors.Is(err, ws.ErrQuorum) || v != nil {
					t.Errorf("%s: Genesis = %v, %v; want ErrQuorum", why, v, err)
				}
			}
			v, err := ws.Genesis(approve(t, raw, b, a))
			if err != nil {
				t.Fatal(err)
			}
			if v.Doc.Version != 1 || v.Hash != ws.Hash(raw) || !bytes.Equal(v.Signed.Doc, raw) {
				t.Fatalf("version %d hash %x", v.Doc.Version, v.Hash)
			}
			set := must(d.AdminSet())
			if n := ws.CountApprovals(raw, refused["same twice"].Approvals, set); n != 1 {
				t.Fatalf("CountApprovals(same admin twice) = %d", n)
			}
			if n := ws.CountApprovals(raw, v.Signed.Approvals, set); n != 2 {
				t.Fatalf("CountApprovals = %d", n)
			}
		})
	}
}

// Genesis takes only a valid version 1.
func TestGenesisRefusesOtherVersions(t *testing.T) {
	f := newFixture(t)
	v2 := next(t, f.v1, addUser(t, "carol"), f.a, f.b)
	if _, err := ws.Genesis(v2); !errors.Is(err, ws.ErrMalformed) {
		t.Fatalf("Genesis(version 2) = %v", err)
	}
	if _, err := ws.Genesis(ws.Signed{Doc: []byte("{}")}); !errors.Is(err, ws.ErrMalformed) {
		t.Fatalf("Genesis(garbage) = %v", err)
	}
}

// Next accepts exactly the held version's successor that chains from it
// and carries its admins' quorum, and names every other offer's fault.
func TestNextChain(t *testing.T) {
	f := newFixture(t)
	v2s := next(t, f.v1, addUser(t, "carol"), f.a, f.b)
	v2, err := ws.Next(f.v1, v2s)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Doc.Version != 2 || v2.Doc.User("carol") == nil || v2.Hash != ws.Hash(v2s.Doc) {
		t.Fatalf("version 2: %+v", v2.Doc)
	}
	v3s := next(t, v2, addUser(t, "dave"), f.a, f.b)
	otherV2 := next(t, f.v1, addUser(t, "erin"), f.a, f.b)
	// Version 2 chained from bytes other than the held version 1's.
	wrongPrev := func() ws.Signed {
		d := f.v1.Doc.Next([]byte("not version 1"))
		d.Normalize()
		return approve(t, encode(t, d), f.a, f.b)
	}()
	otherWorkspace := func() ws.Signed {
		d := f.v1.Doc.Next(f.v1.Signed.Doc)
		d.Workspace = "ws-other"
		return approve(t, encode(t, d), f.a, f.b)
	}()
	cases := []struct {
		name  string
		held  *ws.Version
		offer ws.Signed
		want  error
	}{
		{"older", v2, f.v1.Signed, ws.ErrStale},
		{"the one held", v2, v2s, ws.ErrStale},
		{"same version, other bytes", v2, otherV2, ws.ErrFork},
		{"prev names other bytes", f.v1, wrongPrev, ws.ErrFork},
		{"another workspace", f.v1, otherWorkspace, ws.ErrFork},
		{"skips a version", f.v1, v3s, ws.ErrGap},
		{"one approval of two", f.v1, next(t, f.v1, addUser(t, "carol"), f.a), ws.ErrQuorum},
		{"same admin twice", f.v1, next(t, f.v1, addUser(t, "carol"), f.b, f.b), ws.ErrQuorum},
		{"not canonical", f.v1, ws.Signed{Doc: append(bytes.Clone(v2s.Doc), ' '), Approvals: v2s.Approvals}, ws.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := ws.Next(c.held, c.offer)
			if !errors.Is(err, c.want) || v != nil {
				t.Fatalf("Next = %v, %v; want %v", v, err, c.want)
			}
		})
	}
	if _, err := ws.Next(v2, v3s); err != nil {
		t.Fatalf("version 3 after 2: %v", err)
	}
}

// A version that changes the admin set is approved by the admins it
// replaces (the held version's quorum), not by the new ones; the version
// after it needs the new admins.
func TestAdminChangeNeedsTheOldQuorum(t *testing.T) {
	f := newFixture(t)
	c, d := newECDSAAdmin(t), newEd25519Admin(t)
	newAdmins := func(doc *ws.Doc) {
		doc.Admins = []string{pubB64(t, c), pubB64(t, d)}
		doc.Quorum = 2
	}
	raw := encode(t, func() *ws.Doc {
		n := f.v1.Doc.Next(f.v1.Signed.Doc)
		newAdmins(n)
		n.Normalize()
		return n
	}())
	for why, s := range map[string]ws.Signed{
		"new admins only":    approve(t, raw, c, d),
		"one old, one new":   approve(t, raw, f.a, c),
		"one old of two":     approve(t, raw, f.b),
		"new admins and one": approve(t, raw, c, d, f.a),
	} {
		if _, err := ws.Next(f.v1, s); !errors.Is(err, ws.ErrQuorum) {
			t.Errorf("%s: Next = %v, want ErrQuorum", why, err)
		}
	}
	v2, err := ws.Next(f.v1, approve(t, raw, f.a, f.b))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Next(v2, next(t, v2, addUser(t, "carol"), f.a, f.b)); !errors.Is(err, ws.ErrQuorum) {
		t.Fatalf("version 3 approved by the removed admins: %v", err)
	}
	if _, err := ws.Next(v2, next(t, v2, addUser(t, "carol"), c, d)); err != nil {
		t.Fatalf("version 3 approved by the new admins: %v", err)
	}
}

// A stored version reads back as the same version; ParseSigned bounds what
// it takes.
func TestSignedEncoding(t *testing.T) {
	f := newFixture(t)
	raw, err := f.v1.Signed.Encode()
	if err != nil {
		t.Fatal(err)
	}
	v, err := ws.FromStore(raw)
	if err != nil || v.Hash != f.v1.Hash || len(v.Signed.Approvals) != 2 {
		t.Fatalf("FromStore = %+v, %v", v, err)
	}
	s, err := ws.ParseSigned(raw)
	if err != nil || !bytes.Equal(s.Doc, f.v1.Signed.Doc) {
		t.Fatalf("ParseSigned = %+v, %v", s, err)
	}
	if _, err := ws.FromStore([]byte("{")); !errors.Is(err, ws.ErrMalformed) {
		t.Fatalf("FromStore(garbage) = %v", err)
	}
	many := ws.Signed{Doc: f.v1.Signed.Doc}
	for range quorum.MaxApprovals + 1 {
		many.Approvals = append(many.Approvals, f.v1.Signed.Approvals[0])
	}
	for name, b := range map[string][]byte{
		"too many approvals": must(many.Encode()),
		"not JSON":           []byte("nope"),
		"too large":          bytes.Repeat([]byte(" "), 2*ws.MaxDocSize+1),
	} {
		if _, err := ws.ParseSigned(b); !errors.Is(err, ws.ErrMalformed) {
			t.Errorf("%s: ParseSigned = %v", name, err)
		}
	}
	if _, err := ws.Genesis(many); !errors.Is(err, ws.ErrQuorum) {
		t.Fatalf("Genesis with more than %d approvals: %v", quorum.MaxApprovals, err)
	}
}
