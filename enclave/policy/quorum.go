package policy

import (
	"crypto"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/quorum"
)

// ApprovalLabel starts every message an admin signs to approve a policy
// document (pkg/quorum defines it for every client too).
const ApprovalLabel = quorum.PolicyLabel

// MaxApprovals is the most approvals VerifyApprovals looks at.
const MaxApprovals = quorum.MaxApprovals

// AdminSet is the configured M-of-N admin quorum that may replace the
// policy (pkg/quorum.AdminSet).
type AdminSet = quorum.AdminSet

// Approval is one admin's signature over ApprovalMessage of a document.
type Approval = quorum.Approval

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
	return quorum.ParseAdminKey(der)
}

// VerifyApprovals reports whether approvals carry valid signatures of at
// least admins.Threshold distinct admin keys over ApprovalMessage(canonical)
// (see quorum.Verify for the rules). It fails with ErrAdminSet or
// ErrQuorum; the error says how many counted, not which approval failed
// why.
func VerifyApprovals(canonical []byte, approvals []Approval, admins AdminSet) error {
	return quorum.Verify(ApprovalMessage(canonical), approvals, admins)
}
