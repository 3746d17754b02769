package mpc

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/taurusgroup/multi-party-sig/pkg/party"
)

// Limits on what a session may name. They bound the work an incoming proposal
// or message can cause.
const (
	// MaxPartyIDLen is the longest party ID. The library maps an ID to a
	// scalar by its bytes and is only sound up to 32 bytes.
	MaxPartyIDLen = 32
	// MinParties and MaxParties bound a key's party set.
	MinParties = 2
	MaxParties = 16
	// MaxPathDepth is the deepest BIP-32 path (BIP-32 stores depth in a byte).
	MaxPathDepth = 255
)

// PartyID names one cosigner. It is 1 to 32 bytes of [A-Za-z0-9._-]: the
// library interpolates shares at the integer spelled by these bytes, so the
// alphabet keeps every ID non-zero and distinct as a scalar.
type PartyID string

func (p PartyID) validate() error {
	if len(p) == 0 || len(p) > MaxPartyIDLen {
		return fmt.Errorf("%w: party ID must be 1 to %d bytes", ErrInvalidRequest, MaxPartyIDLen)
	}
	for _, c := range []byte(p) {
		if !isIDByte(c) {
			return fmt.Errorf("%w: party ID has a byte outside [A-Za-z0-9._-]", ErrInvalidRequest)
		}
	}
	return nil
}

func isIDByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// SessionID identifies one protocol execution. Every party of a session uses
// the same ID; the coordinator picks it at random (NewSessionID). An engine
// never runs two sessions with the same ID.
type SessionID [32]byte

// NewSessionID returns a random session ID.
func NewSessionID() (SessionID, error) {
	var id SessionID
	if _, err := rand.Read(id[:]); err != nil {
		return SessionID{}, fmt.Errorf("mpc: drawing a session ID: %w", err)
	}
	return id, nil
}

// String returns the ID in hex.
func (id SessionID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero ID, which no session may use.
func (id SessionID) IsZero() bool { return id == SessionID{} }

// KeyID identifies a key: it is the ID of the keygen session that made it, so
// every party of the key knows it without further agreement.
type KeyID [32]byte

// String returns the ID in hex.
func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// PresignatureID identifies a presignature: it is the ID of the presign
// session that made it, so every signer of the set stores it under the same
// ID. The zero value means "no presignature".
type PresignatureID [32]byte

// String returns the ID in hex.
func (id PresignatureID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero ID.
func (id PresignatureID) IsZero() bool { return id == PresignatureID{} }

// Scheme is the signature scheme of a key.
type Scheme uint8

const (
	// SchemeECDSA is CMP threshold ECDSA on secp256k1.
	SchemeECDSA Scheme = iota + 1
	// SchemeTaproot is FROST threshold Schnorr on secp256k1 with BIP-340
	// (Taproot) keys and signatures.
	SchemeTaproot
)

func (s Scheme) String() string {
	switch s {
	case SchemeECDSA:
		return "ecdsa-cmp"
	case SchemeTaproot:
		return "taproot-frost"
	}
	return "unknown-scheme"
}

// Op names an operation; it appears in errors, logs and metrics.
type Op uint8

const (
	OpKeygen Op = iota + 1
	OpRefresh
	OpPresign
	OpSignPresigned
	OpSign
	OpFROSTKeygen
	OpFROSTSign
)

var opNames = map[Op]string{
	OpKeygen: "keygen", OpRefresh: "refresh", OpPresign: "presign",
	OpSignPresigned: "sign-presigned", OpSign: "sign",
	OpFROSTKeygen: "frost-keygen", OpFROSTSign: "frost-sign",
}

func (o Op) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return "unknown-op"
}

// SessionSpec is what every party of a session must agree on before it
// starts: the same ID, the same party set and (roughly) the same deadline.
type SessionSpec struct {
	ID SessionID
	// Parties is the session's party set, this engine included: every key
	// holder for keygen and refresh, the signers for presign and sign.
	Parties []PartyID
	// Deadline ends the session if it has not finished by then. Required.
	Deadline time.Time
}

// checkSpec validates spec for self and returns its party set, sorted.
func checkSpec(spec SessionSpec, self PartyID) ([]PartyID, error) {
	if spec.ID.IsZero() {
		return nil, fmt.Errorf("%w: zero session ID", ErrInvalidRequest)
	}
	if spec.Deadline.IsZero() {
		return nil, fmt.Errorf("%w: session has no deadline", ErrInvalidRequest)
	}
	parties, err := sortedParties(spec.Parties)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(parties, self) {
		return nil, fmt.Errorf("%w: this party is not in the session", ErrInvalidRequest)
	}
	return parties, nil
}

// sortedParties validates ids and returns a sorted copy.
func sortedParties(ids []PartyID) ([]PartyID, error) {
	if len(ids) < MinParties || len(ids) > MaxParties {
		return nil, fmt.Errorf("%w: a party set has %d to %d members", ErrInvalidRequest, MinParties, MaxParties)
	}
	out := slices.Clone(ids)
	slices.Sort(out)
	for i, id := range out {
		if err := id.validate(); err != nil {
			return nil, err
		}
		if i > 0 && out[i-1] == id {
			return nil, fmt.Errorf("%w: duplicate party ID", ErrInvalidRequest)
		}
	}
	return out, nil
}

// isSubset reports whether every member of sub is in set (both sorted).
func isSubset(sub, set []PartyID) bool {
	for _, id := range sub {
		if _, ok := slices.BinarySearch(set, id); !ok {
			return false
		}
	}
	return true
}

func toLib(ids []PartyID) []party.ID {
	out := make([]party.ID, len(ids))
	for i, id := range ids {
		out[i] = party.ID(id)
	}
	return out
}

func fromLib(ids []party.ID) []PartyID {
	out := make([]PartyID, len(ids))
	for i, id := range ids {
		out[i] = PartyID(id)
	}
	return out
}
