package workspace

import (
	"crypto"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/quorum"
)

// Errors of the version chain, tested with errors.Is.
var (
	// ErrStale means an offered version is not newer than the one held.
	ErrStale = errors.New("workspace: version is older than or equal to the one held")
	// ErrFork means an offered version conflicts with the one held: the
	// same version with other bytes, or a next version that names another
	// predecessor, or another workspace.
	ErrFork = errors.New("workspace: version forks from the one held")
	// ErrGap means an offered version skips versions: the ones between
	// are needed first.
	ErrGap = errors.New("workspace: version skips the ones before it")
	// ErrQuorum means the approvals do not reach the admin quorum of the
	// previous version (of the version itself, for version 1).
	ErrQuorum = quorum.ErrQuorum
)

// Approval is one admin's signature over quorum.WorkspaceMessage of a
// document's exact bytes.
type Approval struct {
	Admin     string `json:"admin"`     // standard base64 of PKIX DER
	Signature string `json:"signature"` // standard base64
}

// Signed is a document with its approvals, as members store and exchange
// it.
type Signed struct {
	Doc       []byte     `json:"doc"` // exact bytes (base64 in JSON)
	Approvals []Approval `json:"approvals"`
}

// Version is a verified version.
type Version struct {
	Doc    *Doc
	Signed Signed
	Hash   [32]byte
}

// HashHex is Hash in hex.
func (v *Version) HashHex() string { return hex.EncodeToString(v.Hash[:]) }

// Approve signs a document's exact bytes with an admin key.
func Approve(raw []byte, key crypto.Signer) (Approval, error) {
	sig, der, err := quorum.Sign(quorum.WorkspaceMessage(raw), key)
	if err != nil {
		return Approval{}, err
	}
	return Approval{Admin: base64.StdEncoding.EncodeToString(der), Signature: base64.StdEncoding.EncodeToString(sig)}, nil
}

// approvals decodes approvals for quorum.Verify; undecodable ones count
// for nothing.
func approvals(in []Approval) []quorum.Approval {
	out := make([]quorum.Approval, 0, len(in))
	for _, a := range in {
		der, err1 := base64.StdEncoding.DecodeString(a.Admin)
		sig, err2 := base64.StdEncoding.DecodeString(a.Signature)
		if err1 != nil || err2 != nil {
			continue
		}
		k, err := quorum.ParseAdminKey(der)
		if err != nil {
			continue
		}
		out = append(out, quorum.Approval{AdminKey: k, Signature: sig})
	}
	return out
}

// CountApprovals returns how many distinct admins of set validly approved
// raw (for a progress report; Verify decides).
func CountApprovals(raw []byte, in []Approval, set quorum.AdminSet) int {
	msg := quorum.WorkspaceMessage(raw)
	seen := make([]bool, len(set.Keys))
	n := 0
	for _, a := range approvals(in) {
		i := set.Index(a.AdminKey)
		if i >= 0 && !seen[i] && quorum.VerifyOne(set.Keys[i], msg, a.Signature) {
			seen[i] = true
			n++
		}
	}
	return n
}

// Genesis verifies version 1: a valid document approved by its own admin
// quorum.
func Genesis(s Signed) (*Version, error) {
	d, err := Parse(s.Doc)
	if err != nil {
		return nil, err
	}
	if d.Version != 1 {
		return nil, fmt.Errorf("%w: a new workspace starts at version 1", ErrMalformed)
	}
	set, _ := d.AdminSet() // validated by Parse
	if err := quorum.Verify(quorum.WorkspaceMessage(s.Doc), approvals(s.Approvals), set); err != nil {
		return nil, fmt.Errorf("version 1: %w", err)
	}
	return &Version{Doc: d, Signed: s, Hash: Hash(s.Doc)}, nil
}

// Next verifies an offered version against the held one: it must be
// held's successor, chain from it, and carry the quorum of held's admins.
// It fails with ErrStale, ErrFork, ErrGap, ErrQuorum or ErrMalformed.
func Next(held *Version, s Signed) (*Version, error) {
	d, err := Parse(s.Doc)
	if err != nil {
		return nil, err
	}
	h := Hash(s.Doc)
	switch {
	case d.Workspace != held.Doc.Workspace:
		return nil, fmt.Errorf("%w: another workspace", ErrFork)
	case d.Version < held.Doc.Version:
		return nil, fmt.Errorf("%w: offered %d, held %d", ErrStale, d.Version, held.Doc.Version)
	case d.Version == held.Doc.Version && h == held.Hash:
		return nil, fmt.Errorf("%w: version %d is the one held", ErrStale, d.Version)
	case d.Version == held.Doc.Version:
		return nil, fmt.Errorf("%w: another version %d", ErrFork, d.Version)
	case d.Version > held.Doc.Version+1:
		return nil, fmt.Errorf("%w: offered %d, held %d", ErrGap, d.Version, held.Doc.Version)
	case d.Prev != held.HashHex():
		return nil, fmt.Errorf("%w: version %d does not follow the held version %d", ErrFork, d.Version, held.Doc.Version)
	}
	set, _ := held.Doc.AdminSet() // validated when held was
	if err := quorum.Verify(quorum.WorkspaceMessage(s.Doc), approvals(s.Approvals), set); err != nil {
		return nil, fmt.Errorf("version %d: %w", d.Version, err)
	}
	return &Version{Doc: d, Signed: s, Hash: h}, nil
}

// FromStore re-reads a version this cosigner verified and stored, checking
// only that it parses (its approvals were verified before it was stored).
func FromStore(raw []byte) (*Version, error) {
	var s Signed
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%w: stored version does not parse", ErrMalformed)
	}
	d, err := Parse(s.Doc)
	if err != nil {
		return nil, err
	}
	return &Version{Doc: d, Signed: s, Hash: Hash(s.Doc)}, nil
}

// Encode returns the signed version as stored and exchanged.
func (s Signed) Encode() ([]byte, error) { return json.Marshal(s) }

// ParseSigned parses a signed version (not yet verified).
func ParseSigned(raw []byte) (Signed, error) {
	var s Signed
	if len(raw) > 2*MaxDocSize {
		return s, fmt.Errorf("%w: signed version too large", ErrMalformed)
	}
	if err := json.Unmarshal(raw, &s); err != nil || len(s.Approvals) > quorum.MaxApprovals {
		return Signed{}, fmt.Errorf("%w: signed version does not parse", ErrMalformed)
	}
	return s, nil
}

// DecodeApproval returns approval i's admin key (PKIX DER) and signature.
func (s Signed) DecodeApproval(i int) (der, sig []byte, err error) {
	if i < 0 || i >= len(s.Approvals) {
		return nil, nil, errors.New("workspace: no such approval")
	}
	der, err1 := base64.StdEncoding.DecodeString(s.Approvals[i].Admin)
	sig, err2 := base64.StdEncoding.DecodeString(s.Approvals[i].Signature)
	if err1 != nil || err2 != nil {
		return nil, nil, fmt.Errorf("%w: approval is not base64", ErrMalformed)
	}
	return der, sig, nil
}
