package attestation

import "crypto/ecdsa"

// Hooks for the external tests (package attestation_test), which also use
// package attestsim and so cannot live in this package.

// SignPayload wraps any payload bytes, valid or not, in a Nitro-shaped
// COSE_Sign1 signed by key, so that tests can reach the payload checks with
// a signature that would verify.
func SignPayload(payload []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	msg := &sign1{Protected: protectedES384, Unprotected: emptyMap, Payload: payload}
	if err := msg.sign(key); err != nil {
		return nil, err
	}
	return msg.encode()
}

// SignWithHeaders is SignPayload with chosen headers (raw CBOR).
func SignWithHeaders(protected, unprotected, payload []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	msg := &sign1{Protected: protected, Unprotected: unprotected, Payload: payload}
	if err := msg.sign(key); err != nil {
		return nil, err
	}
	return msg.encode()
}

// Verified reports whether d came from Verify.
func Verified(d *Document) bool { return d.verified }
