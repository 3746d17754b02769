package workspace

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/quorum"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// Limits on a document.
const (
	MaxDocSize = 1 << 20
	MaxMembers = 64
	MaxUsers   = 1024
	MaxTokens  = 4096
	// MaxPolicySize is enclave/policy's MaxDocumentSize.
	MaxPolicySize = 256 << 10
	maxNameLen    = 64
)

// Roles an API user may hold.
const (
	RoleAdmin   = "admin"
	RoleSigner  = "signer"
	RoleAuditor = "auditor"
)

var knownRoles = []string{RoleAdmin, RoleAuditor, RoleSigner}

// ErrMalformed wraps every reason a document, token or request does not
// parse or validate. Messages never echo the untrusted input.
var ErrMalformed = errors.New("workspace: malformed")

// Doc is one version of the workspace document.
type Doc struct {
	Workspace string `json:"workspace"`
	Version   uint64 `json:"version"`
	// Prev is the hex SHA-256 of the previous version's exact bytes;
	// empty in version 1.
	Prev    string   `json:"prev,omitempty"`
	Members []Member `json:"members"` // sorted by ID
	// Admins are the admins' public keys (standard base64 of PKIX DER,
	// Ed25519 or ECDSA P-256); Quorum of them approve the next version.
	Admins []string `json:"admins"`
	Quorum int      `json:"quorum"`
	Users  []User   `json:"users"` // sorted by name
	// Tokens are the IDs of the pairing tokens already used, sorted: a
	// token works once.
	Tokens []string `json:"tokens,omitempty"`
	// Policy, if set, is the signing policy document (enclave/policy's
	// format, exact bytes) every member runs: a member installs it when
	// it stores the version, unless it already runs a newer one.
	Policy []byte `json:"policy,omitempty"`

	// byKey indexes Users by KeyFingerprint; Parse fills it, so that
	// naming an API caller (UserByKey, on every call) is one lookup.
	byKey map[[32]byte]int
}

// Member is one cosigner of the roster.
type Member struct {
	ID         string `json:"id"`
	Identity   string `json:"identity"`   // hex Ed25519 public key
	Encryption string `json:"encryption"` // hex X25519 public key
	// PCRs are the measurements its attestation documents must carry:
	// decimal index -> hex value.
	PCRs map[string]string `json:"pcrs"`
	// Inbox is the broker inbox its frames reach it at. The relay names
	// inboxes by cosigner ID, so it must equal ID.
	Inbox string `json:"inbox"`
	// ApprovalKey is its approval-callback signing key (hex PKIX DER),
	// for the callback handler to pin.
	ApprovalKey string `json:"approval_key,omitempty"`
	// Token is the pairing token it joined with; empty for members of
	// version 1.
	Token string `json:"token,omitempty"`
}

// User is an API user: a caller identified by its public key (the key of
// its client certificate), with roles. Keys a user creates belong to it;
// Signers are the other users it lets sign with them.
type User struct {
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`      // sorted, from admin, auditor, signer
	PublicKey string   `json:"public_key"` // standard base64 of PKIX DER
	Signers   []string `json:"signers,omitempty"`
}

// Parse parses and validates a document in its canonical spelling.
func Parse(raw []byte) (*Doc, error) {
	if len(raw) > MaxDocSize {
		return nil, fmt.Errorf("%w: document larger than %d bytes", ErrMalformed, MaxDocSize)
	}
	var d Doc
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil || dec.More() {
		return nil, fmt.Errorf("%w: document does not parse", ErrMalformed)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	canon, err := d.Encode()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, raw) {
		return nil, fmt.Errorf("%w: document is not in canonical form", ErrMalformed)
	}
	d.byKey = make(map[[32]byte]int, len(d.Users))
	for i, u := range d.Users {
		fp, _ := u.KeyFingerprint() // validated above
		d.byKey[fp] = i
	}
	return &d, nil
}

// Encode returns the document's canonical bytes. It does not validate.
func (d *Doc) Encode() ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return b, nil
}

// Hash is the SHA-256 of a document's exact bytes: what the next version's
// Prev names.
func Hash(raw []byte) [32]byte { return sha256.Sum256(raw) }

// Validate checks the document's fields (not its approvals or chain).
func (d *Doc) Validate() error {
	switch {
	case !validName(d.Workspace):
		return fmt.Errorf("%w: workspace ID", ErrMalformed)
	case d.Version == 0 || d.Version > 1<<53:
		return fmt.Errorf("%w: version", ErrMalformed)
	case (d.Version == 1) != (d.Prev == ""):
		return fmt.Errorf("%w: prev must be empty exactly in version 1", ErrMalformed)
	case d.Prev != "" && !isHex(d.Prev, 32):
		return fmt.Errorf("%w: prev is not a hex SHA-256", ErrMalformed)
	case len(d.Members) == 0 || len(d.Members) > MaxMembers:
		return fmt.Errorf("%w: 1 to %d members", ErrMalformed, MaxMembers)
	case d.Users == nil:
		return fmt.Errorf("%w: users must be a list (empty: [])", ErrMalformed)
	case len(d.Users) > MaxUsers || len(d.Tokens) > MaxTokens || len(d.Policy) > MaxPolicySize:
		return fmt.Errorf("%w: too many users or tokens", ErrMalformed)
	}
	if _, err := d.AdminSet(); err != nil {
		return fmt.Errorf("%w: admins: %v", ErrMalformed, err)
	}
	if _, err := d.Roster(); err != nil {
		return err
	}
	if err := d.validateUsers(); err != nil {
		return err
	}
	if !sortedUnique(d.Tokens, func(s string) string { return s }) {
		return fmt.Errorf("%w: tokens must be sorted and unique", ErrMalformed)
	}
	for _, t := range d.Tokens {
		if !isHex(t, tokenIDSize) {
			return fmt.Errorf("%w: token ID", ErrMalformed)
		}
	}
	return nil
}

func (d *Doc) validateUsers() error {
	if !sortedUnique(d.Users, func(u User) string { return u.Name }) {
		return fmt.Errorf("%w: users must be sorted by name and unique", ErrMalformed)
	}
	keys := map[[32]byte]bool{}
	for i, u := range d.Users {
		switch {
		case !validName(u.Name) || bytes.ContainsRune([]byte(u.Name), '/'):
			return fmt.Errorf("%w: user %d: name", ErrMalformed, i)
		case len(u.Roles) == 0 || !sortedUnique(u.Roles, func(s string) string { return s }):
			return fmt.Errorf("%w: user %d: roles must be sorted, unique and not empty", ErrMalformed, i)
		case !sortedUnique(u.Signers, func(s string) string { return s }):
			return fmt.Errorf("%w: user %d: signers must be sorted and unique", ErrMalformed, i)
		}
		for _, r := range u.Roles {
			if !slices.Contains(knownRoles, r) {
				return fmt.Errorf("%w: user %d: unknown role", ErrMalformed, i)
			}
		}
		for _, s := range u.Signers {
			if s == u.Name || d.User(s) == nil {
				return fmt.Errorf("%w: user %d: a signer is not another user", ErrMalformed, i)
			}
		}
		fp, err := u.KeyFingerprint()
		if err != nil {
			return fmt.Errorf("%w: user %d: %v", ErrMalformed, i, err)
		}
		if keys[fp] {
			return fmt.Errorf("%w: user %d: public key of another user", ErrMalformed, i)
		}
		keys[fp] = true
	}
	return nil
}

// AdminSet returns the admin quorum.
func (d *Doc) AdminSet() (quorum.AdminSet, error) {
	set := quorum.AdminSet{Threshold: d.Quorum}
	for _, a := range d.Admins {
		der, err := base64.StdEncoding.DecodeString(a)
		if err != nil {
			return quorum.AdminSet{}, errors.New("an admin key is not base64")
		}
		k, err := quorum.ParseAdminKey(der)
		if err != nil {
			return quorum.AdminSet{}, err
		}
		set.Keys = append(set.Keys, k)
	}
	return set, set.Validate()
}

// Roster returns the members as the wire layer takes them, checking each.
func (d *Doc) Roster() ([]wire.Member, error) {
	if !sortedUnique(d.Members, func(m Member) string { return m.ID }) {
		return nil, fmt.Errorf("%w: members must be sorted by ID and unique", ErrMalformed)
	}
	out := make([]wire.Member, 0, len(d.Members))
	for i, m := range d.Members {
		wm, err := m.Wire()
		if err != nil {
			return nil, fmt.Errorf("%w: member %d: %v", ErrMalformed, i, err)
		}
		out = append(out, wm)
	}
	if _, err := wire.NewRoster(out...); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return out, nil
}

// Wire returns the member as the wire layer takes it.
func (m Member) Wire() (wire.Member, error) {
	if m.Inbox != m.ID {
		return wire.Member{}, errors.New("inbox must equal the cosigner ID")
	}
	if m.Token != "" && !isHex(m.Token, tokenIDSize) {
		return wire.Member{}, errors.New("token ID")
	}
	if m.ApprovalKey != "" {
		if b, err := hex.DecodeString(m.ApprovalKey); err != nil || hex.EncodeToString(b) != m.ApprovalKey {
			return wire.Member{}, errors.New("approval key is not lower-case hex")
		}
	}
	id, err := hex.DecodeString(m.Identity)
	if err != nil || len(id) != ed25519.PublicKeySize || !isHex(m.Identity, ed25519.PublicKeySize) {
		return wire.Member{}, errors.New("identity is not a hex Ed25519 key")
	}
	encRaw, err := hex.DecodeString(m.Encryption)
	if err != nil || hex.EncodeToString(encRaw) != m.Encryption {
		return wire.Member{}, errors.New("encryption is not lower-case hex")
	}
	enc, err := ecdh.X25519().NewPublicKey(encRaw)
	if err != nil {
		return wire.Member{}, errors.New("encryption is not an X25519 key")
	}
	pcrs, err := ParsePCRs(m.PCRs)
	if err != nil {
		return wire.Member{}, err
	}
	return wire.Member{ID: m.ID, Identity: id, Encryption: enc, PCRs: pcrs}, nil
}

// ParsePCRs parses decimal index -> hex value.
func ParsePCRs(in map[string]string) (map[int][]byte, error) {
	out := make(map[int][]byte, len(in))
	for k, v := range in {
		i, err := strconv.Atoi(k)
		if err != nil || strconv.Itoa(i) != k || i < 0 || i > 31 {
			return nil, errors.New("a PCR index is not a number from 0 to 31")
		}
		b, err := hex.DecodeString(v)
		if err != nil || (len(b) != 32 && len(b) != 48 && len(b) != 64) || hex.EncodeToString(b) != v {
			return nil, errors.New("a PCR value is not 32, 48 or 64 bytes of lower-case hex")
		}
		out[i] = b
	}
	return out, nil
}

// FormatPCRs is the inverse of ParsePCRs.
func FormatPCRs(pcrs map[int][]byte) map[string]string {
	out := make(map[string]string, len(pcrs))
	for i, v := range pcrs {
		out[strconv.Itoa(i)] = hex.EncodeToString(v)
	}
	return out
}

// MemberOf returns the roster entry of a wire member.
func MemberOf(m wire.Member, approvalKey []byte) Member {
	out := Member{ID: m.ID, Identity: hex.EncodeToString(m.Identity), Encryption: hex.EncodeToString(m.Encryption.Bytes()),
		PCRs: FormatPCRs(m.PCRs), Inbox: m.ID}
	if len(approvalKey) > 0 {
		out.ApprovalKey = hex.EncodeToString(approvalKey)
	}
	return out
}

// Member returns the member with that ID, or nil.
func (d *Doc) Member(id string) *Member {
	i := slices.IndexFunc(d.Members, func(m Member) bool { return m.ID == id })
	if i < 0 {
		return nil
	}
	return &d.Members[i]
}

// MemberIDs returns the members' IDs, sorted.
func (d *Doc) MemberIDs() []string {
	ids := make([]string, len(d.Members))
	for i, m := range d.Members {
		ids[i] = m.ID
	}
	return ids
}

// User returns the user with that name, or nil.
func (d *Doc) User(name string) *User {
	i := slices.IndexFunc(d.Users, func(u User) bool { return u.Name == name })
	if i < 0 {
		return nil
	}
	return &d.Users[i]
}

// UserByKey returns the user whose public key is pub, or nil.
func (d *Doc) UserByKey(pub crypto.PublicKey) *User {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	fp := sha256.Sum256(der)
	if d.byKey != nil {
		if i, ok := d.byKey[fp]; ok {
			return &d.Users[i]
		}
		return nil
	}
	for i := range d.Users {
		if f, err := d.Users[i].KeyFingerprint(); err == nil && f == fp {
			return &d.Users[i]
		}
	}
	return nil
}

// KeyFingerprint is the SHA-256 of the user's public key in canonical
// PKIX DER.
func (u User) KeyFingerprint() ([32]byte, error) {
	der, err := base64.StdEncoding.DecodeString(u.PublicKey)
	if err != nil {
		return [32]byte{}, errors.New("public key is not base64")
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return [32]byte{}, errors.New("public key is not PKIX")
	}
	canon, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return [32]byte{}, errors.New("public key type is not supported")
	}
	return sha256.Sum256(canon), nil
}

// MaySignWith reports whether user may sign with a key owned by owner:
// it is the owner, or one of the owner's Signers, and holds the signer
// role.
func (d *Doc) MaySignWith(user, owner string) bool {
	u := d.User(user)
	if u == nil || !slices.Contains(u.Roles, RoleSigner) {
		return false
	}
	if user == owner {
		return true
	}
	o := d.User(owner)
	return o != nil && slices.Contains(o.Signers, user)
}

// Clone returns a deep copy, for building the next version.
func (d *Doc) Clone() *Doc {
	b, err := json.Marshal(d)
	if err != nil {
		panic(err) // a Doc always marshals
	}
	var out Doc
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return &out
}

// Next returns a copy of d as the draft of the version after the one
// whose exact bytes are raw: version+1, Prev set. The caller edits it and
// calls Normalize before encoding.
func (d *Doc) Next(raw []byte) *Doc {
	n := d.Clone()
	n.Version++
	h := Hash(raw)
	n.Prev = hex.EncodeToString(h[:])
	return n
}

// Normalize sorts the lists into their canonical order.
func (d *Doc) Normalize() {
	slices.SortFunc(d.Members, func(a, b Member) int { return cmpString(a.ID, b.ID) })
	slices.SortFunc(d.Users, func(a, b User) int { return cmpString(a.Name, b.Name) })
	for i := range d.Users {
		slices.Sort(d.Users[i].Roles)
		slices.Sort(d.Users[i].Signers)
		if len(d.Users[i].Signers) == 0 {
			d.Users[i].Signers = nil
		}
	}
	slices.Sort(d.Tokens)
	if len(d.Tokens) == 0 {
		d.Tokens = nil
	}
	if d.Users == nil {
		d.Users = []User{}
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortedUnique[T any](s []T, key func(T) string) bool {
	for i := 1; i < len(s); i++ {
		if key(s[i-1]) >= key(s[i]) {
			return false
		}
	}
	return true
}

// validName: 1..64 bytes of printable ASCII without spaces (cosigner IDs
// follow the wire layer's rule, which is the same).
func validName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func isHex(s string, n int) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == n && hex.EncodeToString(b) == s
}
