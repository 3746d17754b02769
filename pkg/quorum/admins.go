package quorum

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
)

// MaxApprovals is the most approvals Verify looks at, and the most keys an
// admin set holds.
const MaxApprovals = 64

// Sentinel errors, tested with errors.Is.
var (
	// ErrAdminSet means an admin set is unusable: no keys, an unsupported
	// or repeated key, a threshold out of range.
	ErrAdminSet = errors.New("quorum: invalid admin set")
	// ErrQuorum means approvals do not reach the admin threshold.
	ErrQuorum = errors.New("quorum: not enough valid admin approvals")
)

// AdminSet is an M-of-N admin quorum: Keys are ed25519.PublicKey or
// *ecdsa.PublicKey on P-256, no key twice; Threshold is M, from 1 to
// len(Keys).
type AdminSet struct {
	Keys      []crypto.PublicKey
	Threshold int
}

// Approval is one admin's signature over a message (PolicyMessage,
// WorkspaceMessage...).
type Approval struct {
	AdminKey  crypto.PublicKey
	Signature []byte
}

// ParseAdminKey parses a PKIX (SubjectPublicKeyInfo) DER public key and
// accepts it only if it is Ed25519 or ECDSA on P-256.
func ParseAdminKey(der []byte) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: not a PKIX public key", ErrAdminSet)
	}
	if err := checkAdminKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// Validate checks the set: 1 to MaxApprovals keys, each supported and
// valid, none twice, and a threshold from 1 to the number of keys.
func (a AdminSet) Validate() error {
	if len(a.Keys) == 0 || len(a.Keys) > MaxApprovals {
		return fmt.Errorf("%w: 1 to %d keys", ErrAdminSet, MaxApprovals)
	}
	for i, k := range a.Keys {
		if err := checkAdminKey(k); err != nil {
			return fmt.Errorf("key %d: %w", i, err)
		}
		if a.Index(k) != i {
			return fmt.Errorf("%w: key %d is listed twice", ErrAdminSet, i)
		}
	}
	if a.Threshold < 1 || a.Threshold > len(a.Keys) {
		return fmt.Errorf("%w: threshold must be 1 to %d", ErrAdminSet, len(a.Keys))
	}
	return nil
}

func checkAdminKey(k crypto.PublicKey) error {
	switch k := k.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 key of %d bytes", ErrAdminSet, len(k))
		}
		return nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return fmt.Errorf("%w: ECDSA keys must be on P-256", ErrAdminSet)
		}
		//lint:ignore SA1019 only tested for nil, which every crypto/ecdsa method dereferences
		if k.X == nil || k.Y == nil {
			return fmt.Errorf("%w: ECDSA key without a point", ErrAdminSet)
		}
		if _, err := k.Bytes(); err != nil {
			return fmt.Errorf("%w: invalid P-256 point", ErrAdminSet)
		}
		return nil
	}
	return fmt.Errorf("%w: unsupported key type %T", ErrAdminSet, k)
}

// Index returns the position of k in the set, or -1. k is untrusted: it
// is checked before its Equal method runs (ecdsa's panics on a nil
// coordinate).
func (a AdminSet) Index(k crypto.PublicKey) int {
	if checkAdminKey(k) != nil {
		return -1
	}
	eq, ok := k.(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return -1
	}
	for i, ak := range a.Keys {
		if eq.Equal(ak) {
			return i
		}
	}
	return -1
}

// Verify reports whether approvals carry valid signatures over msg of at
// least admins.Threshold distinct admin keys. It checks, in order:
//
//   - admins is a valid set (see AdminSet.Validate), else ErrAdminSet;
//   - there are at most MaxApprovals approvals, else ErrQuorum;
//   - each approval's key is one of admins.Keys — approvals by unknown or
//     unsupported keys count for nothing;
//   - a key already counted counts for nothing again, whatever its
//     signature (so one admin signing twice, or a second ECDSA signature
//     of the same admin, is one approval);
//   - the signature verifies over msg (see Sign for each algorithm) — a
//     signature over another message, or of another key, counts for
//     nothing.
//
// If fewer than Threshold approvals count, it fails with ErrQuorum. The
// error says how many counted, not which approval failed why.
func Verify(msg []byte, approvals []Approval, admins AdminSet) error {
	if err := admins.Validate(); err != nil {
		return err
	}
	if len(approvals) > MaxApprovals {
		return fmt.Errorf("%w: more than %d approvals", ErrQuorum, MaxApprovals)
	}
	counted := make([]bool, len(admins.Keys))
	n := 0
	for _, ap := range approvals {
		i := admins.Index(ap.AdminKey)
		if i < 0 || counted[i] || !VerifyOne(admins.Keys[i], msg, ap.Signature) {
			continue
		}
		counted[i] = true
		n++
	}
	if n < admins.Threshold {
		return fmt.Errorf("%w: %d of %d required", ErrQuorum, n, admins.Threshold)
	}
	return nil
}

// VerifyOne checks one admin's signature over msg. key must be a
// supported admin key (see ParseAdminKey); any other is false.
func VerifyOne(key crypto.PublicKey, msg, sig []byte) bool {
	switch k := key.(type) {
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize && ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		if checkAdminKey(k) != nil {
			return false
		}
		h := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(k, h[:], sig)
	}
	return false
}

// Sign signs msg with an admin key: an Ed25519 key signs it as is (pure
// Ed25519, RFC 8032); an ECDSA P-256 key signs its SHA-256, giving an
// ASN.1 DER signature (as ECDSA_SHA_256 in AWS KMS with MessageType RAW, or
// a PIV token, does). Other keys are refused. It returns the signature and
// the key as PKIX DER.
func Sign(msg []byte, key crypto.Signer) (sig, pkix []byte, err error) {
	switch pub := key.Public().(type) {
	case ed25519.PublicKey:
		sig, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, nil, errors.New("quorum: admin ECDSA keys must be on P-256")
		}
		h := sha256.Sum256(msg)
		sig, err = key.Sign(rand.Reader, h[:], crypto.SHA256)
	default:
		return nil, nil, fmt.Errorf("quorum: admin keys are Ed25519 or ECDSA P-256, not %T", pub)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("quorum: signing: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("quorum: encoding the admin key: %w", err)
	}
	return sig, der, nil
}
