package workspace_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// A valid pairing request verifies into the roster entry it asks for, with
// the token's PCRs (not the document's) and the token's ID.
func TestVerifyRequest(t *testing.T) {
	f := newFixture(t)
	// The token pins PCR0 only: the entry must carry exactly that.
	pinned := map[int][]byte{0: pcr(0xa0)}
	tok := issue(t, f.v1, pinned, time.Hour, t0, f.a)
	st := must(ws.ParseToken(tok))
	nc := newCosigner(t, "co-4")
	approvalKey := []byte{1, 2, 3}
	sr := request(t, nc, tok, t0, func(r *ws.PairRequest) { r.ApprovalKey = hex.EncodeToString(approvalKey) })

	ver, err := ws.VerifyRequest(sr, f.v1, check(), t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := ws.MemberOf(wire.Member{ID: "co-4", Identity: nc.identity.Public(), Encryption: nc.enc.Public(), PCRs: pinned}, approvalKey)
	want.Token = st.Token.ID
	if !reflect.DeepEqual(ver.Member, want) {
		t.Fatalf("member %+v, want %+v", ver.Member, want)
	}
	if ver.Token.Token.ID != st.Token.ID || ver.Attestation == nil || ver.Attestation.ModuleID != attestsim.DefaultModuleID {
		t.Fatalf("verified %+v", ver)
	}
	if _, err := ver.Member.Wire(); err != nil {
		t.Fatalf("the entry is not a valid roster member: %v", err)
	}
	if id := ws.RequestID(sr); id != "co-4" {
		t.Fatalf("RequestID = %q", id)
	}
}

// Each bad request is refused, with ErrRequest (or the token's error) and a
// reason that says what was wrong, and nothing verified is returned.
func TestVerifyRequestRefusals(t *testing.T) {
	f := newFixture(t)
	tok := issue(t, f.v1, goodPCRs(), time.Hour, t0, f.a)
	nc := newCosigner(t, "co-4")
	other := newCosigner(t, "co-5")
	otherCA := must(attestsim.NewCA())
	bad := func(pcrs map[int][]byte, userData []byte, at time.Time) func(*ws.PairRequest) {
		return func(r *ws.PairRequest) { r.Attestation = attest(t, pcrs, userData, at) }
	}
	wrongPCRs := goodPCRs()
	wrongPCRs[1] = pcr(0xbb)
	usedV2 := must(ws.Next(f.v1, next(t, f.v1, func(d *ws.Doc) {
		d.Tokens = []string{must(ws.ParseToken(tok)).Token.ID}
	}, f.a, f.b)))

	type refusal struct {
		sr     ws.SignedRequest
		held   *ws.Version
		now    time.Time
		want   error
		reason string
	}
	cases := map[string]refusal{
		"wrong PCRs": {sr: request(t, nc, tok, t0, bad(wrongPCRs, nc.wire().Binding(), t0)),
			want: ws.ErrRequest, reason: "PCRs differ"},
		"debug-mode enclave": {sr: request(t, nc, tok, t0, bad(nil, nc.wire().Binding(), t0)),
			want: ws.ErrRequest, reason: "debug-mode"},
		"user_data binds another cosigner": {sr: request(t, nc, tok, t0, bad(goodPCRs(), other.wire().Binding(), t0)),
			want: ws.ErrRequest, reason: "user_data"},
		"no user_data": {sr: request(t, nc, tok, t0, bad(goodPCRs(), nil, t0)),
			want: ws.ErrRequest, reason: "user_data"},
		"user_data without the encryption key": {
			sr:   request(t, nc, tok, t0, bad(goodPCRs(), wire.BindingUserData("co-4", nc.identity.Public()), t0)),
			want: ws.ErrRequest, reason: "user_data"},
		"another CA": {sr: request(t, nc, tok, t0, func(r *ws.PairRequest) {
			r.Attestation = must(otherCA.Attest(attestsim.Request{PCRs: goodPCRs(), UserData: nc.wire().Binding(), Time: t0}))
		}), want: ws.ErrRequest, reason: "attestation does not verify"},
		"attestation too old": {sr: request(t, nc, tok, t0, bad(goodPCRs(), nc.wire().Binding(), t0.Add(-11*time.Minute))),
			want: ws.ErrRequest, reason: "too old"},
		"signed by another key": {sr: func() ws.SignedRequest {
			s := request(t, nc, tok, t0, nil)
			again := must(ws.SignRequest(mustRequest(t, s), other.identity))
			return again
		}(), want: ws.ErrRequest, reason: "signature"},
		"signature of other bytes": {sr: func() ws.SignedRequest {
			s := request(t, nc, tok, t0, nil)
			s.Signature = request(t, nc, tok, t0.Add(time.Second), nil).Signature
			return s
		}(), want: ws.ErrRequest, reason: "signature"},
		"replayed after the window": {sr: request(t, nc, tok, t0, nil), now: t0.Add(6 * time.Minute),
			want: ws.ErrRequest, reason: "window"},
		"dated in the future": {sr: request(t, nc, tok, t0, func(r *ws.PairRequest) { r.Time = t0.Add(6 * time.Minute).UnixMilli() }),
			want: ws.ErrRequest, reason: "window"},
		"ID already a member": {sr: request(t, &cosigner{id: "co-2", identity: nc.identity, enc: nc.enc}, tok, t0, nil),
			want: ws.ErrRequest, reason: "already in the roster"},
		"ID with a space": {sr: request(t, nc, tok, t0, func(r *ws.PairRequest) { r.ID = "co 4" }),
			want: ws.ErrRequest, reason: "roster entry"},
		"encryption key not X25519": {sr: request(t, nc, tok, t0, func(r *ws.PairRequest) { r.Encryption = "00" }),
			want: ws.ErrRequest, reason: "roster entry"},
		"malformed token": {sr: request(t, nc, tok, t0, func(r *ws.PairRequest) { r.Token = tok[:len(tok)-5] + "!" }),
			want: ws.ErrRequest, reason: "token"},
		"expired token": {sr: request(t, nc, tok, t0.Add(time.Hour), nil), now: t0.Add(time.Hour),
			want: ws.ErrTokenExpired},
		"used token":   {sr: request(t, nc, tok, t0, nil), held: usedV2, want: ws.ErrTokenUsed},
		"forged token": {sr: request(t, nc, issue(t, f.v1, goodPCRs(), time.Hour, t0, newEd25519Admin(t)), t0, nil), want: ws.ErrTokenForged},
		"not JSON":     {sr: ws.SignedRequest{Request: []byte("nope")}, want: ws.ErrRequest, reason: "parse"},
		"unknown field": {sr: func() ws.SignedRequest {
			s := request(t, nc, tok, t0, nil)
			s.Request = []byte(strings.Replace(string(s.Request), "{", `{"extra":1,`, 1))
			return s
		}(), want: ws.ErrRequest, reason: "parse"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			held, now := c.held, c.now
			if held == nil {
				held = f.v1
			}
			if now.IsZero() {
				now = t0
			}
			ver, err := ws.VerifyRequest(c.sr, held, check(), now)
			if !errors.Is(err, c.want) || ver != nil {
				t.Fatalf("VerifyRequest = %+v, %v; want %v", ver, err, c.want)
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("reason %q does not say %q", err, c.reason)
			}
		})
	}
	// The same request, in time, verifies: each case above failed for
	// its own fault.
	if _, err := ws.VerifyRequest(request(t, nc, tok, t0, nil), f.v1, check(), t0); err != nil {
		t.Fatal(err)
	}
}

// A debug-mode document passes only when the check allows debug.
func TestVerifyRequestAllowDebug(t *testing.T) {
	f := newFixture(t)
	pcr8 := map[int][]byte{8: pcr(0x08)}
	tok := issue(t, f.v1, pcr8, time.Hour, t0, f.a)
	nc := newCosigner(t, "co-4")
	sr := request(t, nc, tok, t0, func(r *ws.PairRequest) { r.Attestation = attest(t, pcr8, nc.wire().Binding(), t0) })
	if _, err := ws.VerifyRequest(sr, f.v1, check(), t0); !errors.Is(err, ws.ErrRequest) {
		t.Fatalf("debug document without AllowDebug: %v", err)
	}
	c := check()
	c.AllowDebug = true
	if _, err := ws.VerifyRequest(sr, f.v1, c, t0); err != nil {
		t.Fatalf("debug document with AllowDebug: %v", err)
	}
}

// mustRequest decodes the request a SignedRequest carries.
func mustRequest(t *testing.T, sr ws.SignedRequest) *ws.PairRequest {
	t.Helper()
	var r ws.PairRequest
	if err := json.Unmarshal(sr.Request, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// Joined recognises a request from a cosigner the held version already
// lists with that identity key and token, and says which version to send
// from; anything else is not joined.
func TestJoined(t *testing.T) {
	f := newFixture(t)
	tok := issue(t, f.v1, goodPCRs(), time.Hour, t0, f.a)
	nc := newCosigner(t, "co-4")
	sr := request(t, nc, tok, t0, nil)
	ver := must(ws.VerifyRequest(sr, f.v1, check(), t0))
	v2 := must(ws.Next(f.v1, next(t, f.v1, func(d *ws.Doc) {
		d.Members = append(d.Members, ver.Member)
		d.Tokens = append(d.Tokens, ver.Member.Token)
	}, f.a, f.b)))

	if from, ok := ws.Joined(sr, v2); !ok || from != 1 {
		t.Fatalf("Joined = %d, %v; want 1, true", from, ok)
	}
	// Long after: still joined (it may have missed the versions).
	if from, ok := ws.Joined(request(t, nc, tok, t0.Add(48*time.Hour), nil), v2); !ok || from != 1 {
		t.Fatalf("Joined later = %d, %v", from, ok)
	}
	impostor := &cosigner{id: "co-4", identity: newCosigner(t, "x").identity, enc: nc.enc}
	tampered := request(t, nc, tok, t0, nil)
	tampered.Signature[0] ^= 1
	otherTok := issue(t, f.v1, goodPCRs(), time.Hour, t0, f.a)
	for name, c := range map[string]struct {
		sr ws.SignedRequest
		v  *ws.Version
	}{
		"not a member yet":   {sr, f.v1},
		"other identity key": {request(t, impostor, tok, t0, nil), v2},
		"bad signature":      {tampered, v2},
		"other token":        {request(t, nc, otherTok, t0, nil), v2},
		"garbage":            {ws.SignedRequest{Request: []byte("{")}, v2},
	} {
		if _, ok := ws.Joined(c.sr, c.v); ok {
			t.Errorf("%s: joined", name)
		}
	}
	if id := ws.RequestID(ws.SignedRequest{Request: []byte("{")}); id != "invalid" {
		t.Fatalf("RequestID(garbage) = %q", id)
	}
	if id := ws.RequestID(request(t, nc, tok, t0, func(r *ws.PairRequest) { r.ID = "bad id\n" })); id != "invalid" {
		t.Fatalf("RequestID(bad ID) = %q", id)
	}
}
