package kmsemu

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"strconv"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/cms"
)

// keyEncryptionRSAOAEPSHA256 is the only KeyEncryptionAlgorithm KMS
// supports for Recipient.
const keyEncryptionRSAOAEPSHA256 = "RSAES_OAEP_SHA_256"

// Recipient public keys must be RSA of this many bits.
const (
	minRecipientBits = 2048
	maxRecipientBits = 4096
)

// recipientInfo is the Recipient request parameter.
type recipientInfo struct {
	KeyEncryptionAlgorithm string `json:",omitempty"`
	AttestationDocument    []byte `json:",omitempty"`
}

// recipient is a verified Recipient: its attestation document and the RSA
// key it carries.
type recipient struct {
	doc *attestation.Document
	pub *rsa.PublicKey
}

// verifyRecipient checks ri: the algorithm, then the attestation document
// (attestation.Verify against Options.Roots at Options.Now, plus the age
// limit if set), then its public_key (an RSA SPKI of 2048..4096 bits). A
// nil ri means no Recipient and returns nil.
func (e *Emulator) verifyRecipient(ri *recipientInfo) (*recipient, *apiError) {
	if ri == nil {
		return nil, nil
	}
	if ri.KeyEncryptionAlgorithm != keyEncryptionRSAOAEPSHA256 {
		return nil, validation("Recipient.KeyEncryptionAlgorithm must be %s", keyEncryptionRSAOAEPSHA256)
	}
	if len(ri.AttestationDocument) == 0 {
		return nil, validation("Recipient.AttestationDocument is required")
	}
	now := e.opts.Now()
	doc, err := attestation.Verify(ri.AttestationDocument, attestation.VerifyOptions{Time: now, Roots: e.opts.Roots})
	if err != nil {
		return nil, validation("the attestation document in Recipient is not valid: %v", err)
	}
	if e.opts.MaxAttestationAge > 0 {
		p := attestation.Policy{AllowDebug: true, MaxAge: e.opts.MaxAttestationAge}
		if err := p.Check(doc, now); err != nil {
			return nil, validation("the attestation document in Recipient is too old: %v", err)
		}
	}
	pub, aerr := recipientKey(doc.PublicKey)
	if aerr != nil {
		return nil, aerr
	}
	return &recipient{doc: doc, pub: pub}, nil
}

func recipientKey(spki []byte) (*rsa.PublicKey, *apiError) {
	if spki == nil {
		return nil, validation("the attestation document has no public_key")
	}
	k, err := x509.ParsePKIXPublicKey(spki)
	pub, ok := k.(*rsa.PublicKey)
	if err != nil || !ok {
		return nil, validation("the attestation document's public_key is not an RSA public key")
	}
	if n := pub.N.BitLen(); n < minRecipientBits || n > maxRecipientBits {
		return nil, validation("the attestation document's RSA key must have %d to %d bits", minRecipientBits, maxRecipientBits)
	}
	return pub, nil
}

// seal encrypts plaintext to the recipient's key as KMS does.
func (r *recipient) seal(plaintext []byte) ([]byte, *apiError) {
	out, err := cms.Encrypt(plaintext, r.pub, nil)
	if err != nil {
		return nil, internalError()
	}
	return out, nil
}

// addConditions adds the kms:RecipientAttestation condition keys.
func (r *recipient) addConditions(rc requestContext) {
	if r == nil {
		return
	}
	for i, v := range r.doc.PCRs {
		rc["kms:recipientattestation:pcr"+strconv.Itoa(i)] = hex.EncodeToString(v)
	}
	if pcr0, ok := r.doc.PCRs[0]; ok {
		rc["kms:recipientattestation:imagesha384"] = hex.EncodeToString(pcr0)
	}
}
