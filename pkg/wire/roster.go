package wire

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/veraison/go-cose"
)

// Limits on the identifiers a frame carries.
const (
	// MaxIDSize is the longest cosigner ID, in bytes. IDs are 1..MaxIDSize
	// bytes of printable ASCII without spaces.
	MaxIDSize = 64
	// MaxProtocolSize is the longest protocol name, in bytes, with the
	// same alphabet as IDs.
	MaxProtocolSize = 64
)

// SessionID names one protocol run. Every party of a session must use the
// same ID (multi-party-sig hangs otherwise) and IDs must never repeat.
type SessionID [32]byte

// String returns the first 8 bytes in hex, enough to tell sessions apart in
// logs.
func (s SessionID) String() string { return hex.EncodeToString(s[:8]) }

// Member is one cosigner of the roster: the identity and encryption keys its
// enclave binds into its attestation user_data (see [Member.Binding]), and
// the PCRs its enclave image must have.
type Member struct {
	ID         string
	Identity   ed25519.PublicKey // verifies the member's frames
	Encryption *ecdh.PublicKey   // X25519; direct payloads to it are sealed to it
	PCRs       map[int][]byte    // expected PCRs (index 0..31: 32, 48 or 64 bytes); at least one
}

// Binding returns the user_data the member's attestation documents must
// carry: BindingUserData(ID, Identity, Encryption public key bytes).
func (m Member) Binding() []byte {
	return BindingUserData(m.ID, m.Identity, m.Encryption.Bytes())
}

// Roster is the set of cosigners a Signer may send to and a Receiver
// accepts frames from. Replace swaps the whole set at once (a new
// workspace version): frames of a member it removes are refused from then
// on. It is safe for concurrent use.
type Roster struct {
	mu      sync.RWMutex
	members map[string]*member
}

// member is a Member with what verifying and sealing need, computed once.
type member struct {
	Member
	binding  []byte
	verifier cose.Verifier
	hpkePub  hpke.PublicKey
}

// NewRoster checks the members and returns their roster. IDs must be unique
// and valid, each identity key 32 bytes, each encryption key X25519, and each
// member must pin at least one PCR: a roster never accepts any enclave image.
func NewRoster(members ...Member) (*Roster, error) {
	set, err := memberSet(members)
	if err != nil {
		return nil, err
	}
	return &Roster{members: set}, nil
}

// Replace checks the members as NewRoster does and, if they are valid,
// makes them the roster; otherwise the roster is unchanged.
func (r *Roster) Replace(members ...Member) error {
	set, err := memberSet(members)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.members = set
	r.mu.Unlock()
	return nil
}

func memberSet(members []Member) (map[string]*member, error) {
	set := make(map[string]*member, len(members))
	for i, m := range members {
		mm, err := newMember(m)
		if err != nil {
			return nil, fmt.Errorf("wire: roster entry %d: %w", i, err)
		}
		if _, dup := set[m.ID]; dup {
			return nil, fmt.Errorf("wire: roster entry %d: duplicate ID", i)
		}
		set[m.ID] = mm
	}
	return set, nil
}

func newMember(m Member) (*member, error) {
	if err := checkMember(m); err != nil {
		return nil, err
	}
	m = cloneMember(m)
	verifier, err := cose.NewVerifier(cose.AlgorithmEdDSA, m.Identity)
	if err != nil {
		return nil, errors.New("identity key rejected by COSE")
	}
	pub, err := hpke.NewDHKEMPublicKey(m.Encryption)
	if err != nil {
		return nil, errors.New("encryption key rejected by HPKE")
	}
	return &member{Member: m, binding: m.Binding(), verifier: verifier, hpkePub: pub}, nil
}

func checkMember(m Member) error {
	switch {
	case !validName(m.ID, MaxIDSize):
		return errors.New("invalid ID")
	case len(m.Identity) != ed25519.PublicKeySize:
		return errors.New("identity key is not 32 bytes")
	case m.Encryption == nil || m.Encryption.Curve() != ecdh.X25519():
		return errors.New("encryption key is not X25519")
	case len(m.PCRs) == 0:
		return errors.New("no expected PCRs")
	}
	for i, v := range m.PCRs {
		if i < 0 || i > 31 || (len(v) != 32 && len(v) != 48 && len(v) != 64) {
			return fmt.Errorf("invalid expected PCR%d", i)
		}
	}
	return nil
}

func cloneMember(m Member) Member {
	m.Identity = bytes.Clone(m.Identity)
	pcrs := make(map[int][]byte, len(m.PCRs))
	for i, v := range m.PCRs {
		pcrs[i] = bytes.Clone(v)
	}
	m.PCRs = pcrs
	return m
}

// validName reports whether s is 1..max bytes of printable ASCII without
// spaces.
func validName(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Member returns a copy of the member with that ID.
func (r *Roster) Member(id string) (Member, bool) {
	m := r.lookup(id)
	if m == nil {
		return Member{}, false
	}
	return cloneMember(m.Member), true
}

// IDs returns the members' IDs in ascending order.
func (r *Roster) IDs() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.members))
}

// lookup returns the member with that ID; members are never modified, so
// the result stays valid after a Replace.
func (r *Roster) lookup(id string) *member {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.members[id]
}

// Sessions tells a Receiver which cosigners take part in which session. A
// session that ended or was never proposed has no parties.
type Sessions interface {
	IsParty(session SessionID, id string) bool
}

// SessionTable is an in-memory [Sessions], safe for concurrent use.
type SessionTable struct {
	mu       sync.RWMutex
	sessions map[SessionID]map[string]bool
}

// NewSessionTable returns an empty table.
func NewSessionTable() *SessionTable {
	return &SessionTable{sessions: make(map[SessionID]map[string]bool)}
}

// Add records a session's parties. A session ID can be added once.
func (t *SessionTable) Add(session SessionID, parties ...string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.sessions[session]; ok {
		return errors.New("wire: session already added")
	}
	set := make(map[string]bool, len(parties))
	for _, p := range parties {
		set[p] = true
	}
	t.sessions[session] = set
	return nil
}

// Remove forgets a session: its frames are refused from now on.
func (t *SessionTable) Remove(session SessionID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.sessions, session)
}

// Replace sets a session's parties, adding the session if it is new: the
// long-lived control session follows the roster this way.
func (t *SessionTable) Replace(session SessionID, parties ...string) {
	set := make(map[string]bool, len(parties))
	for _, p := range parties {
		set[p] = true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sessions[session] = set
}

// IsParty implements [Sessions].
func (t *SessionTable) IsParty(session SessionID, id string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.sessions[session][id]
}
