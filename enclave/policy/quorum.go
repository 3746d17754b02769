package policy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"fmt"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/quorum"
)

// ApprovalLabel starts every message an admin signs to approve a policy
// document (pkg/quorum defines it for every client too).
const ApprovalLabel = quorum.PolicyLabel

// MaxApprovals is the most approvals VerifyApprovals looks at.
const MaxApprovals = 64

// AdminSet is the configured M-of-N admin quorum that may replace the
// policy: Keys are ed25519.PublicKey or *ecdsa.PublicKey on P-256, no key
// twice; Threshold is M, from 1 to len(Keys).
type AdminSet struct {
	Keys      []crypto.PublicKey
	Threshold int
}

// Approval is one admin's signature over ApprovalMessage of a document.
type Approval struct {
	AdminKey  crypto.PublicKey
	Signature []byte
}

// ApprovalMessage returns what an admin signs to approve the document
// whose Canonical bytes are canonical:
//
//	ApprovalLabel || SHA-256(canonical)
//
// Ed25519 admins sign this message as is (pure Ed25519, RFC 8032). P-256
// admins sign it with ECDSA over SHA-256 (the message is hashed once
// more, as ECDSA_SHA_256 in AWS KMS with MessageType RAW or a PIV token
// does), giving an ASN.1 DER signature.
func ApprovalMessage(canonical []byte) []byte { return quorum.PolicyMessage(canonical) }

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
		if a.index(k) != i {
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

// index returns the position of k in the set, or -1. k is untrusted: it
// is checked before its Equal method runs (ecdsa's panics on a nil
// coordinate).
func (a AdminSet) index(k crypto.PublicKey) int {
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

// VerifyApprovals reports whether approvals carry valid signatures of at
// least admins.Threshold distinct admin keys over ApprovalMessage(canonical).
// It checks, in order:
//
//   - admins is a valid set (see AdminSet.Validate), else ErrAdminSet;
//   - there are at most MaxApprovals approvals, else ErrQuorum;
//   - each approval's key is one of admins.Keys — approvals by unknown or
//     unsupported keys count for nothing;
//   - a key already counted counts for nothing again, whatever its
//     signature (so one admin signing twice, or a second ECDSA signature
//     of the same admin, is one approval);
//   - the signature verifies over ApprovalMessage(canonical) (see there
//     for each algorithm) — a signature over another document, or of
//     another key, counts for nothing.
//
// If fewer than Threshold approvals count, it fails with ErrQuorum. The
// error says how many counted, not which approval failed why.
func VerifyApprovals(canonical []byte, approvals []Approval, admins AdminSet) error {
	if err := admins.Validate(); err != nil {
		return err
	}
	if len(approvals) > MaxApprovals {
		return fmt.Errorf("%w: more than %d approvals", ErrQuorum, MaxApprovals)
	}
	msg := ApprovalMessage(canonical)
	counted := make([]bool, len(admins.Keys))
	n := 0
	for _, ap := range approvals {
		i := admins.index(ap.AdminKey)
		if i < 0 || counted[i] || !verify(admins.Keys[i], msg, ap.Signature) {
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

// verify checks sig over msg with an admin key (one of the set, so of a
// supported type).
func verify(key crypto.PublicKey, msg, sig []byte) bool {
	switch k := key.(type) {
	case ed25519.PublicKey:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		h := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(k, h[:], sig)
	}
	return false
}
