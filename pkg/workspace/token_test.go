package workspace_test

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// A token issued by either kind of admin parses back to what was issued
// and checks against the version it names until it expires.
func TestTokenRoundTrip(t *testing.T) {
	f := newFixture(t)
	for name, key := range map[string]crypto.Signer{"ed25519": f.a, "p256": f.b} {
		t.Run(name, func(t *testing.T) {
			tok, err := ws.NewToken(f.v1, goodPCRs(), time.Hour, t0)
			if err != nil {
				t.Fatal(err)
			}
			s, err := tok.Issue(key)
			if err != nil {
				t.Fatal(err)
			}
			st, err := ws.ParseToken(s)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(st.Token, tok) {
				t.Fatalf("parsed %+v, issued %+v", st.Token, tok)
			}
			if tok.Workspace != "ws-test" || tok.Version != 1 || tok.DocHash != f.v1.HashHex() ||
				!slices.Equal(tok.Members, []string{"co-1", "co-2", "co-3"}) || tok.Expires != t0.Add(time.Hour).Unix() {
				t.Fatalf("token %+v", tok)
			}
			if pcrs, err := ws.ParsePCRs(tok.PCRs); err != nil || !reflect.DeepEqual(pcrs, goodPCRs()) {
				t.Fatalf("token PCRs %v, %v", tok.PCRs, err)
			}
			if err := st.Check(f.v1, t0.Add(time.Hour-time.Second)); err != nil {
				t.Fatalf("Check just before expiry: %v", err)
			}
			if err := st.Check(f.v1, t0.Add(time.Hour)); !errors.Is(err, ws.ErrTokenExpired) {
				t.Fatalf("Check at expiry: %v", err)
			}
			if err := st.CheckGenesis(f.v1); err != nil {
				t.Fatalf("CheckGenesis: %v", err)
			}
		})
	}
	other, err := ws.NewToken(f.v1, goodPCRs(), time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	if tok := must(ws.NewToken(f.v1, goodPCRs(), time.Hour, t0)); tok.ID == other.ID {
		t.Fatal("two tokens with one ID")
	}
}

// NewToken refuses a TTL that is not positive or above the maximum, and a
// token that pins no PCR.
func TestNewTokenRefuses(t *testing.T) {
	f := newFixture(t)
	for name, c := range map[string]struct {
		pcrs map[int][]byte
		ttl  time.Duration
	}{
		"zero TTL":     {goodPCRs(), 0},
		"negative TTL": {goodPCRs(), -time.Hour},
		"TTL too long": {goodPCRs(), ws.MaxTokenTTL + time.Second},
		"no PCRs":      {nil, time.Hour},
	} {
		if tok, err := ws.NewToken(f.v1, c.pcrs, c.ttl, t0); !errors.Is(err, ws.ErrMalformed) || tok != nil {
			t.Errorf("%s: NewToken = %+v, %v", name, tok, err)
		}
	}
}

// replacePart swaps part i (0 token, 1 admin key, 2 signature) of a
// token's text form.
func replacePart(s string, i int, b []byte) string {
	parts := strings.Split(strings.TrimPrefix(s, "nct1."), ".")
	parts[i] = base64.RawURLEncoding.EncodeToString(b)
	return "nct1." + strings.Join(parts, ".")
}

func tokenPart(t *testing.T, s string, i int) []byte {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(s, "nct1."), ".")
	return must(base64.RawURLEncoding.DecodeString(parts[i]))
}

// Check refuses expired, used, forged and tampered tokens with the error
// that names why.
func TestTokenCheckRefusals(t *testing.T) {
	f := newFixture(t)
	tok := must(ws.NewToken(f.v1, goodPCRs(), time.Hour, t0))
	good := must(tok.Issue(f.a))
	st := must(ws.ParseToken(good))

	// Version 2 records the token as used; version 2' replaces admin a.
	used := must(ws.Next(f.v1, next(t, f.v1, func(d *ws.Doc) { d.Tokens = []string{tok.ID} }, f.a, f.b)))
	c := newEd25519Admin(t)
	withoutA := must(ws.Next(f.v1, next(t, f.v1, func(d *ws.Doc) { d.Admins = []string{pubB64(t, c), pubB64(t, f.b)} }, f.a, f.b)))
	// A token for version 2, checked by a member that holds version 1.
	early := must(must(ws.NewToken(used, goodPCRs(), time.Hour, t0)).Issue(f.a))
	// Another workspace's token, by the same admin.
	elsewhere := func() string {
		d := genesisDoc(t, "ws-other", []crypto.Signer{f.a, f.b}, 2, newCosigner(t, "co-1"))
		v := must(ws.Genesis(approve(t, encode(t, d), f.a, f.b)))
		return must(must(ws.NewToken(v, goodPCRs(), time.Hour, t0)).Issue(f.a))
	}()
	longer := *tok
	longer.Expires += 3600
	flipped := tokenPart(t, good, 2)
	flipped[len(flipped)/2] ^= 1

	cases := []struct {
		name  string
		token string
		held  *ws.Version
		now   time.Time
		want  error
	}{
		{"expired", good, f.v1, t0.Add(2 * time.Hour), ws.ErrTokenExpired},
		{"used", good, used, t0, ws.ErrTokenUsed},
		{"signed by a non-admin", must(tok.Issue(newEd25519Admin(t))), f.v1, t0, ws.ErrTokenForged},
		{"issuer no longer an admin", good, withoutA, t0, ws.ErrTokenForged},
		{"for a version not held yet", early, f.v1, t0, ws.ErrTokenForged},
		{"another workspace", elsewhere, f.v1, t0, ws.ErrTokenForged},
		{"token bytes changed", replacePart(good, 0, must(json.Marshal(&longer))), f.v1, t0, ws.ErrTokenForged},
		{"signature changed", replacePart(good, 2, flipped), f.v1, t0, ws.ErrTokenForged},
		{"admin key swapped", replacePart(good, 1, tokenPart(t, must(tok.Issue(f.b)), 1)), f.v1, t0, ws.ErrTokenForged},
		{"admin key garbage", replacePart(good, 1, []byte("garbage")), f.v1, t0, ws.ErrTokenForged},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := ws.ParseToken(c.token)
			if err != nil {
				t.Fatalf("ParseToken: %v", err)
			}
			if err := st.Check(c.held, c.now); !errors.Is(err, c.want) {
				t.Fatalf("Check = %v, want %v", err, c.want)
			}
		})
	}
	if err := st.Check(f.v1, t0); err != nil {
		t.Fatalf("the good token: %v", err)
	}
}

// ParseToken refuses anything but a well-formed token, with ErrMalformed.
func TestParseTokenRefuses(t *testing.T) {
	f := newFixture(t)
	tok := must(ws.NewToken(f.v1, goodPCRs(), time.Hour, t0))
	good := must(tok.Issue(f.a))
	edited := func(edit func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(tokenPart(t, good, 0), &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		return replacePart(good, 0, must(json.Marshal(m)))
	}
	cases := map[string]string{
		"empty":             "",
		"no prefix":         strings.TrimPrefix(good, "nct1."),
		"other prefix":      "nct2." + strings.TrimPrefix(good, "nct1."),
		"two parts":         good[:strings.LastIndex(good, ".")],
		"four parts":        good + ".AA",
		"padded base64":     good + "=",
		"not base64":        good[:len(good)-2] + "!!",
		"not JSON":          replacePart(good, 0, []byte("nope")),
		"trailing JSON":     replacePart(good, 0, append(tokenPart(t, good, 0), []byte("{}")...)),
		"unknown field":     edited(func(m map[string]any) { m["extra"] = 1 }),
		"no PCRs":           edited(func(m map[string]any) { delete(m, "pcrs") }),
		"bad PCR":           edited(func(m map[string]any) { m["pcrs"] = map[string]string{"0": "00"} }),
		"ID not hex":        edited(func(m map[string]any) { m["id"] = "token" }),
		"doc hash short":    edited(func(m map[string]any) { m["doc_hash"] = "abcd" }),
		"version 0":         edited(func(m map[string]any) { m["version"] = 0 }),
		"no members":        edited(func(m map[string]any) { m["members"] = []string{} }),
		"members unsorted":  edited(func(m map[string]any) { m["members"] = []string{"co-2", "co-1"} }),
		"member with space": edited(func(m map[string]any) { m["members"] = []string{"co 1"} }),
		"workspace empty":   edited(func(m map[string]any) { m["workspace"] = "" }),
		"too long":          good + strings.Repeat("A", 16<<10),
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			if st, err := ws.ParseToken(s); !errors.Is(err, ws.ErrMalformed) || st != nil {
				t.Fatalf("ParseToken = %+v, %v", st, err)
			}
		})
	}
}

// CheckGenesis, on a new cosigner, takes only the exact version the token
// names, and only a token from one of its admins.
func TestCheckGenesis(t *testing.T) {
	f := newFixture(t)
	st := must(ws.ParseToken(must(must(ws.NewToken(f.v1, goodPCRs(), time.Hour, t0)).Issue(f.b))))
	if err := st.CheckGenesis(f.v1); err != nil {
		t.Fatal(err)
	}
	v2 := must(ws.Next(f.v1, next(t, f.v1, addUser(t, "carol"), f.a, f.b)))
	forkV1 := func() *ws.Version {
		d := f.v1.Doc.Clone()
		d.Users = d.Users[:1]
		d.Users[0].Signers = nil
		return must(ws.Genesis(approve(t, encode(t, d), f.a, f.b)))
	}()
	outsider := must(ws.ParseToken(must(must(ws.NewToken(f.v1, goodPCRs(), time.Hour, t0)).Issue(newECDSAAdmin(t)))))
	for name, c := range map[string]struct {
		st *ws.SignedToken
		v  *ws.Version
	}{
		"a later version":       {st, v2},
		"another version 1":     {st, forkV1},
		"issued by a non-admin": {outsider, f.v1},
	} {
		if err := c.st.CheckGenesis(c.v); !errors.Is(err, ws.ErrTokenForged) {
			t.Errorf("%s: CheckGenesis = %v", name, err)
		}
	}
}
