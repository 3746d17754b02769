package workspace_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// Parse never panics, and whatever it accepts is valid, encodes to exactly
// the bytes it came from, survives Clone, and drafts a valid successor.
func FuzzParse(f *testing.F) {
	fx := newFixture(f)
	v2 := next(f, fx.v1, addUser(f, "carol"), fx.a, fx.b)
	indented := new(bytes.Buffer)
	if err := json.Indent(indented, v2.Doc, "", " "); err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{fx.v1.Signed.Doc, v2.Doc, indented.Bytes(), []byte("{}"), []byte("null"), nil,
		bytes.Replace(v2.Doc, []byte(`"users":[`), []byte(`"users":null,"x":[`), 1)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := ws.Parse(raw)
		if err != nil {
			if !errors.Is(err, ws.ErrMalformed) || d != nil {
				t.Fatalf("Parse = %v, %v", d, err)
			}
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid document: %v", err)
		}
		if b := must(d.Encode()); !bytes.Equal(b, raw) {
			t.Fatalf("encodes to\n%s\nnot\n%s", b, raw)
		}
		if b := must(d.Clone().Encode()); !bytes.Equal(b, raw) {
			t.Fatalf("clone encodes to\n%s", b)
		}
		if _, err := d.Roster(); err != nil {
			t.Fatalf("Roster: %v", err)
		}
		if d.Version < 1<<53 {
			n := d.Next(raw)
			n.Normalize()
			if _, err := ws.Parse(must(n.Encode())); err != nil {
				t.Fatalf("the successor draft does not parse: %v", err)
			}
		}
	})
}

// ParseToken never panics; what it accepts is well formed, and checking it
// gives nil or a token error.
func FuzzParseToken(f *testing.F) {
	fx := newFixture(f)
	tok := must(ws.NewToken(fx.v1, goodPCRs(), time.Hour, t0))
	good := must(tok.Issue(fx.a))
	for _, seed := range []string{good, must(tok.Issue(fx.b)), good[:len(good)-3], "nct1.", "nct1...", "nct1.e30.AA.AA", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ws.ParseToken(s)
		if err != nil {
			if !errors.Is(err, ws.ErrMalformed) || st != nil {
				t.Fatalf("ParseToken = %v, %v", st, err)
			}
			return
		}
		tk := st.Token
		if len(tk.Members) == 0 || !slices.IsSorted(tk.Members) || len(tk.ID) != 32 || len(tk.DocHash) != 64 || tk.Version == 0 {
			t.Fatalf("accepted token %+v", tk)
		}
		if pcrs, err := ws.ParsePCRs(tk.PCRs); err != nil || len(pcrs) == 0 {
			t.Fatalf("accepted PCRs %v", tk.PCRs)
		}
		err = st.Check(fx.v1, t0)
		if err != nil && !errors.Is(err, ws.ErrTokenForged) && !errors.Is(err, ws.ErrTokenExpired) && !errors.Is(err, ws.ErrTokenUsed) {
			t.Fatalf("Check = %v", err)
		}
		if err := st.CheckGenesis(fx.v1); err != nil && !errors.Is(err, ws.ErrTokenForged) {
			t.Fatalf("CheckGenesis = %v", err)
		}
	})
}

// DecodeMessage never panics; what it accepts re-encodes to a message that
// decodes to the same value, and handing its contents to the verifiers
// does not panic either.
func FuzzDecodeMessage(f *testing.F) {
	fx := newFixture(f)
	tok := issue(f, fx.v1, goodPCRs(), time.Hour, t0, fx.a)
	sr := request(f, newCosigner(f, "co-4"), tok, t0, nil)
	v2 := next(f, fx.v1, addUser(f, "carol"), fx.a, fx.b)
	for _, m := range []struct {
		k byte
		v any
	}{
		{ws.KindPair, sr},
		{ws.KindVersions, ws.Update{From: "co-1", Versions: []ws.Signed{v2}}},
		{ws.KindVersions, ws.Update{From: "co-1", Versions: []ws.Signed{fx.v1.Signed, v2}}},
		{ws.KindHello, ws.Hello{From: "co-2", Version: 1}},
	} {
		f.Add(must(ws.EncodeMessage(m.k, m.v)))
	}
	f.Add([]byte{0xd2, 0x84})
	f.Add(append(bytes.Clone(ws.Magic), 2, '{', '}'))
	f.Fuzz(func(t *testing.T, frame []byte) {
		k, v, err := ws.DecodeMessage(frame)
		if err != nil {
			if !errors.Is(err, ws.ErrMalformed) || v != nil {
				t.Fatalf("DecodeMessage = %d, %v, %v", k, v, err)
			}
			return
		}
		again, err := ws.EncodeMessage(k, reflect.ValueOf(v).Elem().Interface())
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		k2, v2, err := ws.DecodeMessage(again)
		if err != nil || k2 != k || !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip: %d %+v, %v; was %d %+v", k2, v2, err, k, v)
		}
		switch m := v.(type) {
		case *ws.SignedRequest:
			_, _ = ws.VerifyRequest(*m, fx.v1, check(), t0)
			_, _ = ws.Joined(*m, fx.v1)
		case *ws.Update:
			for _, s := range m.Versions {
				_, _ = ws.Next(fx.v1, s)
			}
		}
	})
}

// VerifyRequest never panics on any request bytes and signature; what it
// accepts is a new, valid roster entry signed by the identity it names.
func FuzzVerifyRequest(f *testing.F) {
	fx := newFixture(f)
	tok := issue(f, fx.v1, goodPCRs(), time.Hour, t0, fx.a)
	nc := newCosigner(f, "co-4")
	good := request(f, nc, tok, t0, nil)
	f.Add(good.Request, good.Signature)
	f.Add(good.Request, []byte{})
	f.Add(request(f, nc, tok, t0, func(r *ws.PairRequest) { r.ID = "co-1" }).Request, good.Signature)
	f.Add([]byte(`{"token":"nct1.","id":"x","time":0}`), []byte{1})
	f.Add([]byte(`{`), []byte(nil))
	f.Fuzz(func(t *testing.T, req, sig []byte) {
		sr := ws.SignedRequest{Request: req, Signature: sig}
		ver, err := ws.VerifyRequest(sr, fx.v1, check(), t0)
		id := ws.RequestID(sr)
		if _, ok := ws.Joined(sr, fx.v1); ok {
			t.Fatal("Joined to a version that does not list the cosigner")
		}
		if err != nil {
			if ver != nil {
				t.Fatal("a refusal returned a verified request")
			}
			if !errors.Is(err, ws.ErrRequest) && !errors.Is(err, ws.ErrTokenForged) && !errors.Is(err, ws.ErrTokenExpired) && !errors.Is(err, ws.ErrTokenUsed) {
				t.Fatalf("VerifyRequest = %v", err)
			}
			return
		}
		if _, err := ver.Member.Wire(); err != nil || id != ver.Member.ID || fx.v1.Doc.Member(id) != nil {
			t.Fatalf("accepted entry %+v (RequestID %q): %v", ver.Member, id, err)
		}
		pub := must(hex.DecodeString(ver.Member.Identity))
		if !reflect.DeepEqual(ver.Member.PCRs, ws.FormatPCRs(goodPCRs())) || len(pub) != ed25519.PublicKeySize {
			t.Fatalf("accepted entry %+v", ver.Member)
		}
	})
}
