package attestation

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
)

// Sign encodes d the way the Nitro Security Module does and signs it with
// key: an untagged COSE_Sign1 with protected header {1: -35}, an empty
// unprotected header, a definite-length payload map with the nine fields in
// AWS's order (absent optional fields as null, PCRs by ascending index) and
// an ES384 signature. d.Raw is ignored.
//
// key must be the P-384 key of d.Certificate. d must satisfy the same limits
// Verify enforces; Sign reports which one it breaks. Sign is for simulators
// (package attestsim) and tests: production code only verifies.
func Sign(d *Document, key *ecdsa.PrivateKey) ([]byte, error) {
	if err := checkSigner(d, key); err != nil {
		return nil, err
	}
	payload, err := d.marshalPayload()
	if err != nil {
		return nil, fmt.Errorf("attestation: cannot sign: %w", err)
	}
	msg := &sign1{Protected: protectedES384, Unprotected: emptyMap, Payload: payload}
	if err := msg.sign(key); err != nil {
		return nil, err
	}
	return msg.encode()
}

func checkSigner(d *Document, key *ecdsa.PrivateKey) error {
	switch {
	case d == nil:
		return errors.New("attestation: cannot sign a nil document")
	case key == nil || key.Curve != elliptic.P384():
		return errors.New("attestation: signing key is not ECDSA P-384")
	case d.Certificate == nil || !key.PublicKey.Equal(d.Certificate.PublicKey):
		return errors.New("attestation: signing key does not match the document's certificate")
	}
	return nil
}
