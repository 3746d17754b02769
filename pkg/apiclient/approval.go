package apiclient

import (
	"crypto"
	"fmt"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/quorum"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// ApprovalLabel starts the message an admin signs to approve a policy
// document (pkg/quorum; enclave/policy verifies with the same).
const ApprovalLabel = quorum.PolicyLabel

// ApprovalMessage returns what an admin signs to approve document, the
// exact bytes SetPolicy will carry: ApprovalLabel || SHA-256(document).
func ApprovalMessage(document []byte) []byte { return quorum.PolicyMessage(document) }

// Approve signs ApprovalMessage(document) with an admin key and returns
// the approval as SetPolicy takes it: the key as PKIX DER and the
// signature. An Ed25519 key signs the message as is (pure Ed25519); an
// ECDSA P-256 key signs its SHA-256, giving an ASN.1 DER signature. Other
// keys are refused.
func Approve(document []byte, key crypto.Signer) (*cosignerv1.PolicyApproval, error) {
	sig, der, err := quorum.Sign(ApprovalMessage(document), key)
	if err != nil {
		return nil, fmt.Errorf("apiclient: approval: %w", err)
	}
	return &cosignerv1.PolicyApproval{AdminPublicKey: der, Signature: sig}, nil
}
