package workspace_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// A document parses from its canonical bytes into the same document, and
// encodes back to the same bytes.
func TestDocumentRoundTrip(t *testing.T) {
	f := newFixture(t)
	raw := f.v1.Signed.Doc
	d, err := ws.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if again := encode(t, d); !bytes.Equal(again, raw) {
		t.Fatalf("re-encoded:\n%s\nwant:\n%s", again, raw)
	}
	if !reflect.DeepEqual(d, f.v1.Doc) {
		t.Fatalf("parsed %+v, want %+v", d, f.v1.Doc)
	}
	roster, err := d.Roster()
	if err != nil || len(roster) != 3 || roster[0].ID != "co-1" || !roster[0].Identity.Equal(f.members[0].identity.Public()) {
		t.Fatalf("roster %+v, %v", roster, err)
	}
	set, err := d.AdminSet()
	if err != nil || len(set.Keys) != 2 || set.Threshold != 2 {
		t.Fatalf("admin set %+v, %v", set, err)
	}
}

// Parse accepts only the canonical spelling: any other bytes for a
// document, even one that means the same, are ErrMalformed.
func TestParseRefusesNonCanonical(t *testing.T) {
	f := newFixture(t)
	raw := f.v1.Signed.Doc
	marshal := func(edit func(d *ws.Doc)) []byte {
		d := f.v1.Doc.Clone()
		edit(d)
		b, err := json.Marshal(d) // not Normalize: keeps the edit's order
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bobKey := f.v1.Doc.User("bob").PublicKey
	indented := new(bytes.Buffer)
	if err := json.Indent(indented, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"indented":           indented.Bytes(),
		"trailing newline":   append(bytes.Clone(raw), '\n'),
		"leading space":      append([]byte(" "), raw...),
		"two documents":      append(bytes.Clone(raw), raw...),
		"unknown field":      bytes.Replace(raw, []byte("{"), []byte(`{"extra":1,`), 1),
		"duplicate json key": bytes.Replace(raw, []byte("{"), []byte(`{"workspace":"other",`), 1),
		"members unsorted": marshal(func(d *ws.Doc) {
			d.Members[0], d.Members[2] = d.Members[2], d.Members[0]
		}),
		"users unsorted": marshal(func(d *ws.Doc) { d.Users[0], d.Users[1] = d.Users[1], d.Users[0] }),
		"roles unsorted": marshal(func(d *ws.Doc) { d.Users[0].Roles = []string{ws.RoleSigner, ws.RoleAdmin} }),
		"duplicate user name": marshal(func(d *ws.Doc) {
			d.Users[1].Name = d.Users[0].Name
			d.Users[0].Signers = nil
		}),
		"duplicate user key": marshal(func(d *ws.Doc) { d.Users[1].PublicKey = d.Users[0].PublicKey }),
		"duplicate member":   marshal(func(d *ws.Doc) { d.Members[1] = d.Members[0] }),
		"empty signers list": bytes.Replace(raw, []byte(`"`+bobKey+`"`), []byte(`"`+bobKey+`","signers":[]`), 1),
		"empty tokens list":  append(bytes.TrimSuffix(bytes.Clone(raw), []byte("}")), []byte(`,"tokens":[]}`)...),
		"json null":          []byte("null"),
		"empty object":       []byte("{}"),
		"empty":              nil,
		"too large":          append(bytes.Clone(raw), bytes.Repeat([]byte(" "), ws.MaxDocSize)...),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			d, err := ws.Parse(b)
			if !errors.Is(err, ws.ErrMalformed) || d != nil {
				t.Fatalf("Parse = %v, %v; want ErrMalformed", d, err)
			}
		})
	}
}

// Validate refuses documents whose fields break the rules, whatever their
// spelling.
func TestValidateRefuses(t *testing.T) {
	f := newFixture(t)
	p384 := pubB64(t, must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)))
	cases := map[string]func(d *ws.Doc){
		"no workspace ID":         func(d *ws.Doc) { d.Workspace = "" },
		"workspace ID with space": func(d *ws.Doc) { d.Workspace = "a b" },
		"version 0":               func(d *ws.Doc) { d.Version = 0 },
		"prev in version 1":       func(d *ws.Doc) { d.Prev = strings.Repeat("ab", 32) },
		"version 2 without prev":  func(d *ws.Doc) { d.Version = 2 },
		"prev not a hash": func(d *ws.Doc) {
			d.Version = 2
			d.Prev = strings.Repeat("AB", 32)
		},
		"no members":                func(d *ws.Doc) { d.Members = nil },
		"inbox is not the ID":       func(d *ws.Doc) { d.Members[0].Inbox = "elsewhere" },
		"member without PCRs":       func(d *ws.Doc) { d.Members[0].PCRs = nil },
		"PCR index 32":              func(d *ws.Doc) { d.Members[0].PCRs["32"] = hex.EncodeToString(pcr(1)) },
		"PCR index 01":              func(d *ws.Doc) { d.Members[0].PCRs["01"] = hex.EncodeToString(pcr(1)) },
		"PCR of 20 bytes":           func(d *ws.Doc) { d.Members[0].PCRs["0"] = strings.Repeat("00", 20) },
		"identity not a key":        func(d *ws.Doc) { d.Members[0].Identity = "00" },
		"encryption not a key":      func(d *ws.Doc) { d.Members[0].Encryption = strings.Repeat("00", 31) },
		"member token not an ID":    func(d *ws.Doc) { d.Members[0].Token = "abc" },
		"approval key not hex":      func(d *ws.Doc) { d.Members[0].ApprovalKey = "xyz" },
		"no admins":                 func(d *ws.Doc) { d.Admins = nil },
		"quorum 0":                  func(d *ws.Doc) { d.Quorum = 0 },
		"quorum above the admins":   func(d *ws.Doc) { d.Quorum = 3 },
		"admin twice":               func(d *ws.Doc) { d.Admins = []string{d.Admins[0], d.Admins[0]}; d.Quorum = 1 },
		"admin not base64":          func(d *ws.Doc) { d.Admins[0] = "!!" },
		"admin key P-384":           func(d *ws.Doc) { d.Admins[0] = p384 },
		"admin key not PKIX":        func(d *ws.Doc) { d.Admins[0] = "AAAA" },
		"user without roles":        func(d *ws.Doc) { d.Users[1].Roles = nil },
		"unknown role":              func(d *ws.Doc) { d.Users[1].Roles = []string{"root"} },
		"user name with slash":      func(d *ws.Doc) { d.Users[1].Name = "bob/x" },
		"signer is not a user":      func(d *ws.Doc) { d.Users[0].Signers = []string{"mallory"} },
		"signer is the user itself": func(d *ws.Doc) { d.Users[0].Signers = []string{"alice"} },
		"user key not PKIX":         func(d *ws.Doc) { d.Users[0].PublicKey = "AAAA" },
		"token ID not hex":          func(d *ws.Doc) { d.Tokens = []string{"zz"} },
		"tokens unsorted": func(d *ws.Doc) {
			d.Tokens = []string{strings.Repeat("bb", 16), strings.Repeat("aa", 16)}
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			d := f.v1.Doc.Clone()
			edit(d)
			if err := d.Validate(); !errors.Is(err, ws.ErrMalformed) {
				t.Fatalf("Validate = %v, want ErrMalformed", err)
			}
			if b, err := json.Marshal(d); err == nil {
				if _, err := ws.Parse(b); !errors.Is(err, ws.ErrMalformed) {
					t.Fatalf("Parse = %v, want ErrMalformed", err)
				}
			}
		})
	}
}

// The draft Next returns, edited in any order and normalized, is a
// document Parse accepts as version 2 naming version 1's hash; editing it
// leaves version 1 alone.
func TestNextNormalizeParses(t *testing.T) {
	f := newFixture(t)
	d := f.v1.Doc.Next(f.v1.Signed.Doc)
	d.Members = append(d.Members, newCosigner(t, "co-0").member()) // sorts first
	d.Members[0].PCRs["3"] = hex.EncodeToString(pcr(3))
	d.Users = append(d.Users, newUser(t, "aaron", ws.RoleSigner, ws.RoleAuditor))
	d.Users[0].Signers = []string{"bob", "aaron"}
	d.Tokens = []string{strings.Repeat("cd", 16), strings.Repeat("ab", 16)}
	d.Normalize()
	raw := encode(t, d)
	got, err := ws.Parse(raw)
	if err != nil {
		t.Fatalf("Parse of a normalized draft: %v\n%s", err, raw)
	}
	h := ws.Hash(f.v1.Signed.Doc)
	if got.Version != 2 || got.Prev != hex.EncodeToString(h[:]) || got.MemberIDs()[0] != "co-0" {
		t.Fatalf("version %d prev %s members %v", got.Version, got.Prev, got.MemberIDs())
	}
	if u := got.User("aaron"); u == nil || !reflect.DeepEqual(u.Roles, []string{ws.RoleAuditor, ws.RoleSigner}) {
		t.Fatalf("aaron: %+v", u)
	}
	if again := encode(t, f.v1.Doc); !bytes.Equal(again, f.v1.Signed.Doc) || len(f.v1.Doc.Members) != 3 {
		t.Fatal("editing the draft changed version 1")
	}
	if _, ok := f.v1.Doc.Members[0].PCRs["3"]; ok {
		t.Fatal("the draft shares its PCR maps with version 1")
	}

	// A draft whose lists are emptied normalizes to the canonical
	// spelling too.
	e := f.v1.Doc.Next(f.v1.Signed.Doc)
	e.Users, e.Tokens = nil, []string{}
	e.Normalize()
	if _, err := ws.Parse(encode(t, e)); err != nil {
		t.Fatalf("emptied draft: %v", err)
	}
}

// MaySignWith: the owner, or one of the owner's signers, holding the
// signer role.
func TestMaySignWith(t *testing.T) {
	f := newFixture(t)
	d := f.v1.Doc.Clone()
	d.Users = append(d.Users, newUser(t, "carol", ws.RoleAuditor), newUser(t, "dave", ws.RoleAdmin))
	d.Users[0].Signers = []string{"bob", "carol"}
	d.Users[1].Signers = []string{"alice"}
	d.Normalize()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, owner string
		want        bool
	}{
		{"alice", "alice", true},
		{"bob", "alice", true},    // listed, signer
		{"carol", "alice", false}, // listed, no signer role
		{"alice", "bob", true},
		{"dave", "dave", false}, // owner without the signer role
		{"bob", "carol", false}, // not listed
		{"mallory", "alice", false},
		{"alice", "mallory", false},
	} {
		if got := d.MaySignWith(c.user, c.owner); got != c.want {
			t.Errorf("MaySignWith(%s, %s) = %v", c.user, c.owner, got)
		}
	}
	if u := d.UserByKey(newECDSAAdmin(t).Public()); u != nil {
		t.Fatalf("UserByKey of a stranger: %+v", u)
	}
}

// One document, one spelling: bytes Parse accepts are the only bytes of
// that document (the package's promise that admins who build the same
// change sign the same bytes).
func TestParseHasOneSpellingPerDocument(t *testing.T) {
	f := newFixture(t)
	raw := f.v1.Signed.Doc
	m := f.v1.Doc.Members[0]
	cases := map[string][]byte{
		"upper-case identity": bytes.Replace(raw, []byte(m.Identity), []byte(strings.ToUpper(m.Identity)), 1),
		"upper-case PCR":      bytes.Replace(raw, []byte(m.PCRs["0"]), []byte(strings.ToUpper(m.PCRs["0"])), 1),
	}
	d := f.v1.Doc.Clone()
	d.Users = []ws.User{}
	withEmpty := encode(t, d)
	d.Users = nil
	cases["users null"] = encode(t, d)
	if _, err := ws.Parse(withEmpty); err != nil {
		t.Fatal(err)
	}
	for name, b := range cases {
		if _, err := ws.Parse(b); !errors.Is(err, ws.ErrMalformed) {
			t.Errorf("%s: Parse = %v, want ErrMalformed", name, err)
		}
	}
}
