package attestation

import (
	"errors"
	"fmt"
)

// Errors callers branch on. Each error returned by this package wraps one of
// the first four; the policy errors also wrap [ErrPolicy].
var (
	// ErrMalformed means the bytes are not a well-formed Nitro attestation
	// document: bad CBOR, a wrong type, a missing or unknown field, a value
	// out of the limits of the AWS specification, or an oversized input.
	ErrMalformed = errors.New("attestation: malformed document")

	// ErrChain means the document's certificate chain does not lead to a
	// trusted root at the verification time, or a certificate in it is not
	// fit for its place in the chain.
	ErrChain = errors.New("attestation: untrusted certificate chain")

	// ErrSignature means the COSE signature does not verify with the key of
	// the document's (trusted) leaf certificate.
	ErrSignature = errors.New("attestation: invalid signature")

	// ErrPolicy means a verified document is not acceptable to a [Policy].
	ErrPolicy = errors.New("attestation: policy violation")

	// ErrDebug means the document comes from an enclave running in debug
	// mode (PCR0, PCR1 and PCR2 all zero) and the policy does not allow it.
	ErrDebug = fmt.Errorf("%w: debug-mode enclave", ErrPolicy)

	// ErrPCRMismatch means a PCR is missing or differs from the policy.
	ErrPCRMismatch = fmt.Errorf("%w: PCR mismatch", ErrPolicy)

	// ErrFieldMismatch means public_key, user_data or nonce is refused by
	// the policy's [Matcher].
	ErrFieldMismatch = fmt.Errorf("%w: field mismatch", ErrPolicy)

	// ErrStale means the document's timestamp is older than the policy's
	// MaxAge, or too far in the future.
	ErrStale = fmt.Errorf("%w: stale document", ErrPolicy)
)

func malformed(what string) error {
	return fmt.Errorf("%w: %s", ErrMalformed, what)
}

func chainError(what string) error {
	return fmt.Errorf("%w: %s", ErrChain, what)
}
