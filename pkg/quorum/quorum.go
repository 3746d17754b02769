// Package quorum defines the messages admins sign when they approve a
// change that needs an admin quorum, and the M-of-N check of their
// signatures, so that the enclave that verifies approvals (enclave/policy,
// pkg/workspace) and the tools that make them (pkg/apiclient, cosignerctl)
// build and check the same bytes from one definition.
//
// A message is a purpose label followed by the SHA-256 of the exact
// document approved. Ed25519 admins sign the message as is (pure Ed25519,
// RFC 8032); P-256 admins sign it with ECDSA over SHA-256, giving an ASN.1
// DER signature.
package quorum

import "crypto/sha256"

// PolicyLabel starts the message that approves a policy document.
const PolicyLabel = "nitro-cosigner/policy-approval/v1\x00"

// PolicyMessage is what an admin signs to approve the policy document
// whose canonical bytes are doc: PolicyLabel || SHA-256(doc).
func PolicyMessage(doc []byte) []byte { return message(PolicyLabel, doc) }

// WorkspaceLabel starts the message that approves a workspace document
// version (pkg/workspace).
const WorkspaceLabel = "nitro-cosigner/workspace-approval/v1\x00"

// WorkspaceMessage is what an admin signs to approve the workspace
// document version whose exact bytes are doc: WorkspaceLabel ||
// SHA-256(doc).
func WorkspaceMessage(doc []byte) []byte { return message(WorkspaceLabel, doc) }

// TokenLabel starts the message an admin signs to issue a pairing token
// (pkg/workspace).
const TokenLabel = "nitro-cosigner/pairing-token/v1\x00"

// TokenMessage is what an admin signs to issue the pairing token whose
// exact bytes are tok: TokenLabel || SHA-256(tok).
func TokenMessage(tok []byte) []byte { return message(TokenLabel, tok) }

func message(label string, doc []byte) []byte {
	h := sha256.Sum256(doc)
	return append([]byte(label), h[:]...)
}
