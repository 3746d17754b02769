package apiclient

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
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
	msg := ApprovalMessage(document)
	var (
		sig []byte
		err error
	)
	switch pub := key.Public().(type) {
	case ed25519.PublicKey:
		sig, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("apiclient: admin ECDSA keys must be on P-256")
		}
		h := sha256.Sum256(msg)
		sig, err = key.Sign(rand.Reader, h[:], crypto.SHA256)
	default:
		return nil, fmt.Errorf("apiclient: admin keys are Ed25519 or ECDSA P-256, not %T", pub)
	}
	if err != nil {
		return nil, fmt.Errorf("apiclient: signing the approval: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("apiclient: encoding the admin key: %w", err)
	}
	return &cosignerv1.PolicyApproval{AdminPublicKey: der, Signature: sig}, nil
}
