package workspace_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// t0 is the instant the tests run at.
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

// goodPCRs are the PCRs of the release image tokens pin.
func goodPCRs() map[int][]byte { return map[int][]byte{0: pcr(0xa0), 1: pcr(0xa1), 2: pcr(0xa2)} }

// must returns v, panicking on err: for test setup, where an error is a
// broken test rather than a finding.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newEd25519Admin(t testing.TB) crypto.Signer {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	return must[crypto.Signer](priv, err)
}

func newECDSAAdmin(t testing.TB) crypto.Signer {
	return must[crypto.Signer](ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
}

// pubB64 is a key's public half as documents name it: base64 of PKIX DER.
func pubB64(t testing.TB, k crypto.Signer) string {
	return base64.StdEncoding.EncodeToString(must(x509.MarshalPKIXPublicKey(k.Public())))
}

// cosigner is a member or would-be member with real keys.
type cosigner struct {
	id       string
	identity *wire.IdentityKey
	enc      *wire.EncryptionKey
}

func newCosigner(t testing.TB, id string) *cosigner {
	return &cosigner{id: id, identity: must(wire.GenerateIdentityKey()), enc: must(wire.GenerateEncryptionKey())}
}

func (c *cosigner) wire() wire.Member {
	return wire.Member{ID: c.id, Identity: c.identity.Public(), Encryption: c.enc.Public(), PCRs: goodPCRs()}
}

func (c *cosigner) member() ws.Member { return ws.MemberOf(c.wire(), nil) }

func newUser(t testing.TB, name string, roles ...string) ws.User {
	return ws.User{Name: name, Roles: roles, PublicKey: pubB64(t, newECDSAAdmin(t))}
}

// fixture is a workspace at version 1: admins a (Ed25519) and b (ECDSA
// P-256) with quorum 2, members co-1..co-3, two API users.
type fixture struct {
	a, b    crypto.Signer
	members []*cosigner
	v1      *ws.Version
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{a: newEd25519Admin(t), b: newECDSAAdmin(t)}
	for _, id := range []string{"co-1", "co-2", "co-3"} {
		f.members = append(f.members, newCosigner(t, id))
	}
	d := genesisDoc(t, "ws-test", []crypto.Signer{f.a, f.b}, 2, f.members...)
	d.Users = []ws.User{newUser(t, "alice", ws.RoleAdmin, ws.RoleSigner), newUser(t, "bob", ws.RoleSigner)}
	d.Users[0].Signers = []string{"bob"}
	f.v1 = must(ws.Genesis(approve(t, encode(t, d), f.a, f.b)))
	return f
}

func genesisDoc(t testing.TB, name string, admins []crypto.Signer, quorum int, members ...*cosigner) *ws.Doc {
	t.Helper()
	d := &ws.Doc{Workspace: name, Version: 1, Quorum: quorum}
	for _, m := range members {
		d.Members = append(d.Members, m.member())
	}
	for _, a := range admins {
		d.Admins = append(d.Admins, pubB64(t, a))
	}
	d.Normalize()
	return d
}

func encode(t testing.TB, d *ws.Doc) []byte {
	t.Helper()
	return must(d.Encode())
}

// approve returns raw with an approval by each key.
func approve(t testing.TB, raw []byte, keys ...crypto.Signer) ws.Signed {
	t.Helper()
	s := ws.Signed{Doc: raw}
	for _, k := range keys {
		s.Approvals = append(s.Approvals, must(ws.Approve(raw, k)))
	}
	return s
}

// next builds held's successor, edited by edit and approved by keys.
func next(t testing.TB, held *ws.Version, edit func(*ws.Doc), keys ...crypto.Signer) ws.Signed {
	t.Helper()
	d := held.Doc.Next(held.Signed.Doc)
	if edit != nil {
		edit(d)
	}
	d.Normalize()
	return approve(t, encode(t, d), keys...)
}

// addUser is an edit that adds an API user.
func addUser(t testing.TB, name string) func(*ws.Doc) {
	u := newUser(t, name, ws.RoleSigner)
	return func(d *ws.Doc) { d.Users = append(d.Users, u) }
}

// issue makes a token for v, pinning pcrs, issued by key at now.
func issue(t testing.TB, v *ws.Version, pcrs map[int][]byte, ttl time.Duration, now time.Time, key crypto.Signer) string {
	t.Helper()
	tok := must(ws.NewToken(v, pcrs, ttl, now))
	return must(tok.Issue(key))
}

// attest mints an attestation document from the test CA.
func attest(t testing.TB, pcrs map[int][]byte, userData []byte, at time.Time) []byte {
	t.Helper()
	return must(testCA().Attest(attestsim.Request{PCRs: pcrs, UserData: userData, Time: at}))
}

// request is c's pairing request with token, made at at with an
// attestation of the good image binding c's keys; edit may change it
// before c signs it.
func request(t testing.TB, c *cosigner, token string, at time.Time, edit func(*ws.PairRequest)) ws.SignedRequest {
	t.Helper()
	m := c.member()
	r := &ws.PairRequest{Token: token, ID: c.id, Identity: m.Identity, Encryption: m.Encryption,
		Attestation: attest(t, goodPCRs(), c.wire().Binding(), at), Time: at.UnixMilli()}
	if edit != nil {
		edit(r)
	}
	return must(ws.SignRequest(r, c.identity))
}

func check() ws.RequestCheck { return ws.RequestCheck{Roots: testCA().Roots()} }
