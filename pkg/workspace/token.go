package workspace

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/quorum"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

const (
	tokenIDSize  = 16
	tokenPrefix  = "nct1."
	maxTokenSize = 16 << 10
	// MaxTokenTTL is the longest a pairing token may live.
	MaxTokenTTL = 7 * 24 * time.Hour
)

// Refusals of a pairing token or request, tested with errors.Is. Each is
// audited and logged by the member that refuses.
var (
	ErrTokenExpired = errors.New("workspace: pairing token expired")
	ErrTokenUsed    = errors.New("workspace: pairing token already used")
	ErrTokenForged  = errors.New("workspace: pairing token not signed by an admin of this workspace")
	ErrRequest      = errors.New("workspace: pairing request refused")
)

// Token is a one-time pairing token: which workspace (at which version) a
// new cosigner may join, which members to send its request to, the PCRs
// its enclave must have, and until when. One admin signs it; joining still
// takes the admin quorum's approval of the version that adds the cosigner.
type Token struct {
	Workspace string            `json:"workspace"`
	ID        string            `json:"id"` // hex, 16 random bytes
	Version   uint64            `json:"version"`
	DocHash   string            `json:"doc_hash"` // hex SHA-256 of that version's bytes
	Members   []string          `json:"members"`  // inboxes the request goes to
	PCRs      map[string]string `json:"pcrs"`     // expected measurements, at least one
	Expires   int64             `json:"expires"`  // Unix seconds
}

// SignedToken is a token with its issuing admin's signature.
type SignedToken struct {
	Token     *Token
	Raw       []byte // the token's exact bytes
	Admin     []byte // PKIX DER
	Signature []byte
}

// NewToken fills a token for the held version v, valid for ttl from now.
func NewToken(v *Version, pcrs map[int][]byte, ttl time.Duration, now time.Time) (*Token, error) {
	if ttl <= 0 || ttl > MaxTokenTTL {
		return nil, fmt.Errorf("%w: the TTL must be positive and at most %s", ErrMalformed, MaxTokenTTL)
	}
	if len(pcrs) == 0 {
		return nil, fmt.Errorf("%w: a token pins at least one PCR", ErrMalformed)
	}
	id := make([]byte, tokenIDSize)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	return &Token{Workspace: v.Doc.Workspace, ID: hex.EncodeToString(id), Version: v.Doc.Version, DocHash: v.HashHex(),
		Members: v.Doc.MemberIDs(), PCRs: FormatPCRs(pcrs), Expires: now.Add(ttl).Unix()}, nil
}

// Issue signs the token with an admin key and returns its text form.
func (t *Token) Issue(key crypto.Signer) (string, error) {
	raw, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	sig, der, err := quorum.Sign(quorum.TokenMessage(raw), key)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return tokenPrefix + enc.EncodeToString(raw) + "." + enc.EncodeToString(der) + "." + enc.EncodeToString(sig), nil
}

// ParseToken parses a token's text form and checks its fields, not its
// signature (see SignedToken.Check).
func ParseToken(s string) (*SignedToken, error) {
	bad := fmt.Errorf("%w: pairing token does not parse", ErrMalformed)
	if len(s) > maxTokenSize || !strings.HasPrefix(s, tokenPrefix) {
		return nil, bad
	}
	parts := strings.Split(strings.TrimPrefix(s, tokenPrefix), ".")
	if len(parts) != 3 {
		return nil, bad
	}
	var bs [3][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			return nil, bad
		}
		bs[i] = b
	}
	var t Token
	dec := json.NewDecoder(bytes.NewReader(bs[0]))
	dec.DisallowUnknownFields()
	if dec.Decode(&t) != nil || dec.More() {
		return nil, bad
	}
	pcrs, err := ParsePCRs(t.PCRs)
	switch {
	case err != nil || len(pcrs) == 0:
		return nil, fmt.Errorf("%w: pairing token PCRs", ErrMalformed)
	case !validName(t.Workspace) || !isHex(t.ID, tokenIDSize) || !isHex(t.DocHash, 32) || t.Version == 0:
		return nil, bad
	case len(t.Members) == 0 || len(t.Members) > MaxMembers || !slices.IsSorted(t.Members):
		return nil, bad
	}
	for _, m := range t.Members {
		if !validName(m) {
			return nil, bad
		}
	}
	return &SignedToken{Token: &t, Raw: bs[0], Admin: bs[1], Signature: bs[2]}, nil
}

// Check verifies the token against the held version at now: same
// workspace, issued at or before this version by an admin of it who is
// still an admin, not expired, not used.
func (st *SignedToken) Check(v *Version, now time.Time) error {
	t := st.Token
	set, err := v.Doc.AdminSet()
	if err != nil {
		return err
	}
	key, err := quorum.ParseAdminKey(st.Admin)
	switch {
	case t.Workspace != v.Doc.Workspace:
		return fmt.Errorf("%w: another workspace", ErrTokenForged)
	case err != nil || set.Index(key) < 0 || !quorum.VerifyOne(key, quorum.TokenMessage(st.Raw), st.Signature):
		return ErrTokenForged
	case t.Version > v.Doc.Version:
		return fmt.Errorf("%w: issued for a version this member does not hold yet", ErrTokenForged)
	case now.Unix() >= t.Expires:
		return ErrTokenExpired
	case slices.Contains(v.Doc.Tokens, t.ID):
		return ErrTokenUsed
	}
	return nil
}

// CheckGenesis verifies, on a new cosigner, that the token was issued by an
// admin of the version it names, and that v is that version.
func (st *SignedToken) CheckGenesis(v *Version) error {
	if st.Token.DocHash != v.HashHex() || st.Token.Version != v.Doc.Version {
		return fmt.Errorf("%w: the workspace sent is not the one the token names", ErrTokenForged)
	}
	set, err := v.Doc.AdminSet()
	if err != nil {
		return err
	}
	key, err := quorum.ParseAdminKey(st.Admin)
	if err != nil || set.Index(key) < 0 || !quorum.VerifyOne(key, quorum.TokenMessage(st.Raw), st.Signature) {
		return ErrTokenForged
	}
	return nil
}

// PairRequest is what a new cosigner sends the token's members: its
// roster keys, bound into a fresh attestation document, and the token.
type PairRequest struct {
	Token       string `json:"token"`
	ID          string `json:"id"`
	Identity    string `json:"identity"`   // hex Ed25519
	Encryption  string `json:"encryption"` // hex X25519
	ApprovalKey string `json:"approval_key,omitempty"`
	Attestation []byte `json:"attestation"` // user_data = wire.BindingUserData(ID, Identity, Encryption)
	Time        int64  `json:"time"`        // Unix milliseconds
}

// SignedRequest is a request signed with the new cosigner's identity key.
type SignedRequest struct {
	Request   []byte `json:"request"`
	Signature []byte `json:"signature"`
}

// pairLabel starts what a new cosigner signs.
const pairLabel = "nitro-cosigner/pairing-request/v1\x00"

func requestMessage(raw []byte) []byte {
	h := sha256.Sum256(raw)
	return append([]byte(pairLabel), h[:]...)
}

// SignRequest encodes and signs a request with the identity key.
func SignRequest(r *PairRequest, key *wire.IdentityKey) (SignedRequest, error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return SignedRequest{}, err
	}
	return SignedRequest{Request: raw, Signature: key.Sign(requestMessage(raw))}, nil
}

// Verified is a pairing request whose every check passed.
type Verified struct {
	Token  *SignedToken
	Member Member // the roster entry it asks for: PCRs from the token
	// Attestation is the request's verified document.
	Attestation *attestation.Document
}

// RequestCheck says how to verify a pairing request.
type RequestCheck struct {
	Roots      *x509.CertPool // attestation roots; nil: the AWS Nitro root
	AllowDebug bool
	// Window is how far the request's time may be from now (default 5
	// minutes); documents older than MaxAge (default 10 minutes) are
	// refused.
	Window, MaxAge time.Duration
}

// VerifyRequest checks a pairing request against the held version at now:
// the token (Check), the cosigner ID is new, the signature verifies with
// the identity key, the request is recent, and the attestation document is
// valid, recent, not debug, has the token's PCRs and binds the request's
// keys. Every refusal wraps ErrRequest or a token error.
func VerifyRequest(sr SignedRequest, v *Version, check RequestCheck, now time.Time) (*Verified, error) {
	r, err := parseRequest(sr)
	if err != nil {
		return nil, err
	}
	st, err := ParseToken(r.Token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRequest, err)
	}
	if err := st.Check(v, now); err != nil {
		return nil, err
	}
	m := Member{ID: r.ID, Identity: r.Identity, Encryption: r.Encryption, PCRs: st.Token.PCRs, Inbox: r.ID,
		ApprovalKey: r.ApprovalKey, Token: st.Token.ID}
	wm, err := m.Wire()
	if err != nil || !validName(r.ID) {
		return nil, fmt.Errorf("%w: roster entry: invalid", ErrRequest)
	}
	if v.Doc.Member(r.ID) != nil {
		return nil, fmt.Errorf("%w: cosigner ID already in the roster", ErrRequest)
	}
	if !ed25519.Verify(wm.Identity, requestMessage(sr.Request), sr.Signature) {
		return nil, fmt.Errorf("%w: signature does not verify with the identity key", ErrRequest)
	}
	window, maxAge := orDur(check.Window, 5*time.Minute), orDur(check.MaxAge, 10*time.Minute)
	if t := time.UnixMilli(r.Time); t.Before(now.Add(-window)) || t.After(now.Add(window)) {
		return nil, fmt.Errorf("%w: request time is outside the window (replayed or skewed clock)", ErrRequest)
	}
	doc, err := attestation.Verify(r.Attestation, attestation.VerifyOptions{Time: now, Roots: check.Roots})
	if err != nil {
		return nil, fmt.Errorf("%w: attestation does not verify", ErrRequest)
	}
	pol := attestation.Policy{PCRs: wm.PCRs, AllowDebug: check.AllowDebug, UserData: attestation.Equal(wm.Binding()), MaxAge: maxAge}
	if err := pol.Check(doc, now); err != nil {
		return nil, fmt.Errorf("%w: attestation: %s", ErrRequest, attestationReason(err))
	}
	return &Verified{Token: st, Member: m, Attestation: doc}, nil
}

const maxRequestSize = 64 << 10

func attestationReason(err error) string {
	switch {
	case errors.Is(err, attestation.ErrDebug):
		return "debug-mode enclave"
	case errors.Is(err, attestation.ErrPCRMismatch):
		return "PCRs differ from the token's"
	case errors.Is(err, attestation.ErrFieldMismatch):
		return "user_data does not bind the request's keys"
	case errors.Is(err, attestation.ErrStale):
		return "document too old"
	}
	return "refused"
}

func orDur(v, d time.Duration) time.Duration {
	if v <= 0 {
		return d
	}
	return v
}

// parseRequest decodes a request strictly.
func parseRequest(sr SignedRequest) (*PairRequest, error) {
	var r PairRequest
	dec := json.NewDecoder(bytes.NewReader(sr.Request))
	dec.DisallowUnknownFields()
	if len(sr.Request) > maxRequestSize || dec.Decode(&r) != nil || dec.More() {
		return nil, fmt.Errorf("%w: does not parse", ErrRequest)
	}
	return &r, nil
}

// RequestID returns the cosigner ID a request claims, for logs and audit
// details: "invalid" unless it is a valid ID.
func RequestID(sr SignedRequest) string {
	r, err := parseRequest(sr)
	if err != nil || !validName(r.ID) {
		return "invalid"
	}
	return r.ID
}

// Joined reports whether the request comes from a cosigner that the held
// version already lists with the request's identity key and token (its
// signature verifying): it may have missed the versions that added it,
// which are then sent again from the token's version on.
func Joined(sr SignedRequest, v *Version) (from uint64, ok bool) {
	r, err := parseRequest(sr)
	if err != nil {
		return 0, false
	}
	st, err := ParseToken(r.Token)
	if err != nil {
		return 0, false
	}
	m := v.Doc.Member(r.ID)
	if m == nil || m.Identity != r.Identity || m.Token != st.Token.ID {
		return 0, false
	}
	id, err := hex.DecodeString(r.Identity)
	if err != nil || len(id) != ed25519.PublicKeySize || !ed25519.Verify(id, requestMessage(sr.Request), sr.Signature) {
		return 0, false
	}
	return st.Token.Version, true
}
