package workspace_test

import (
	"bytes"
	"crypto"
	"errors"
	"slices"
	"testing"

	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// The edits build canonical successors that Next accepts with the held
// version's quorum, each making exactly its change; the same edit made
// twice gives the same bytes (two admins' approvals count together); bad
// edits are refused.
func TestEdits(t *testing.T) {
	f := newFixture(t)
	newcomer := newCosigner(t, "co-4").member()
	newcomer.Token = "0123456789abcdef0123456789abcdef"
	c := newECDSAAdmin(t)
	carol := newUser(t, "carol", ws.RoleSigner)
	cases := []struct {
		name  string
		edit  func(*ws.Version) (*ws.Doc, []byte, error)
		check func(*ws.Doc) bool
	}{
		{"add member", func(v *ws.Version) (*ws.Doc, []byte, error) { return ws.AddMember(v, newcomer) },
			func(d *ws.Doc) bool { return d.Member("co-4") != nil && slices.Contains(d.Tokens, newcomer.Token) }},
		{"remove member", func(v *ws.Version) (*ws.Doc, []byte, error) { return ws.RemoveMember(v, "co-3") },
			func(d *ws.Doc) bool { return d.Member("co-3") == nil && len(d.Members) == 2 }},
		{"put user", func(v *ws.Version) (*ws.Doc, []byte, error) { return ws.PutUser(v, carol) },
			func(d *ws.Doc) bool { return d.User("carol") != nil && len(d.Users) == 3 }},
		{"revoke user", func(v *ws.Version) (*ws.Doc, []byte, error) { return ws.RevokeUser(v, "bob") },
			func(d *ws.Doc) bool { return d.User("bob") == nil && len(d.User("alice").Signers) == 0 }},
		{"set admins", func(v *ws.Version) (*ws.Doc, []byte, error) {
			return ws.SetAdmins(v, []crypto.PublicKey{c.Public(), f.a.Public()}, 1)
		}, func(d *ws.Doc) bool { return len(d.Admins) == 2 && d.Quorum == 1 }},
		{"set policy", func(v *ws.Version) (*ws.Doc, []byte, error) { return ws.SetPolicy(v, []byte(`{"version":1}`)) },
			func(d *ws.Doc) bool { return string(d.Policy) == `{"version":1}` }},
	}
	for _, tc := range cases {
		d, raw, err := tc.edit(f.v1)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !tc.check(d) || d.Version != 2 {
			t.Errorf("%s: the change is not the one asked for", tc.name)
		}
		if _, again, _ := tc.edit(f.v1); !bytes.Equal(raw, again) {
			t.Errorf("%s: the same edit gave other bytes", tc.name)
		}
		if _, err := ws.Next(f.v1, approve(t, raw, f.a)); !errors.Is(err, ws.ErrQuorum) {
			t.Errorf("%s: one approval of two: %v", tc.name, err)
		}
		if _, err := ws.Next(f.v1, approve(t, raw, f.a, f.b)); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	for name, edit := range map[string]func() error{
		"member again":          func() error { _, _, err := ws.AddMember(f.v1, f.members[0].member()); return err },
		"member without token":  func() error { _, _, err := ws.AddMember(f.v1, newCosigner(t, "co-5").member()); return err },
		"remove unknown member": func() error { _, _, err := ws.RemoveMember(f.v1, "co-9"); return err },
		"remove every member": func() error {
			v := f.v1
			for _, m := range f.members[:2] {
				_, raw, err := ws.RemoveMember(v, m.member().ID)
				if err != nil {
					return err
				}
				v = must(ws.Next(v, approve(t, raw, f.a, f.b)))
			}
			_, _, err := ws.RemoveMember(v, f.members[2].member().ID)
			return err
		},
		"revoke unknown user": func() error { _, _, err := ws.RevokeUser(f.v1, "zed"); return err },
		"quorum above admins": func() error { _, _, err := ws.SetAdmins(f.v1, []crypto.PublicKey{c.Public()}, 2); return err },
		"empty policy":        func() error { _, _, err := ws.SetPolicy(f.v1, nil); return err },
	} {
		if err := edit(); !errors.Is(err, ws.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// UserByKey names an API caller by its certificate's key, in a parsed
// version (indexed) and in a draft alike; another key is no user.
func TestUserByKey(t *testing.T) {
	f := newFixture(t)
	key := newECDSAAdmin(t)
	u, err := ws.NewUser("carol", []string{ws.RoleSigner}, key.Public(), nil)
	if err != nil {
		t.Fatal(err)
	}
	draft, raw, err := ws.PutUser(f.v1, u)
	if err != nil {
		t.Fatal(err)
	}
	parsed := must(ws.Next(f.v1, approve(t, raw, f.a, f.b))).Doc
	for name, d := range map[string]*ws.Doc{"draft": draft, "parsed": parsed} {
		if got := d.UserByKey(key.Public()); got == nil || got.Name != "carol" {
			t.Errorf("%s: carol's key names %v", name, got)
		}
		if got := d.UserByKey(newECDSAAdmin(t).Public()); got != nil {
			t.Errorf("%s: an unknown key names %s", name, got.Name)
		}
	}
}
