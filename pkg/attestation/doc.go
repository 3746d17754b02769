// Package attestation parses and verifies AWS Nitro Enclaves attestation
// documents and checks them against a measurement policy.
//
// # Contract
//
// [Verify] is the only way to obtain a [Document]. It takes the raw bytes an
// enclave's Nitro Security Module returned (a COSE_Sign1 structure, tagged or
// untagged) and either returns a document whose every field has been checked
// and whose signature chains to a pinned root, or an error: never both, and
// never unverified data. It does not read the clock: the caller passes the
// verification time.
//
// The only root trusted by default is the AWS Nitro Enclaves root G1, compiled
// into the package and checked against its known SHA-256 at init. The
// certificate bundle carried by a document is never trusted on its own: its
// first entry must be the pinned root the chain ends in. Any other root (the
// attestsim test CA, for instance) is used only when a caller passes it in
// [VerifyOptions.Roots].
//
// A verified document says which enclave image produced it; whether that image
// is acceptable is a separate decision, made by [Policy.Check] (expected PCRs,
// debug mode, nonce, user data, public key, freshness).
//
// # Errors
//
// Every failure wraps exactly one of [ErrMalformed], [ErrChain],
// [ErrSignature] or [ErrPolicy] (the latter refined by [ErrDebug],
// [ErrPCRMismatch], [ErrFieldMismatch] and [ErrStale]), with context naming
// the check that failed. Error text never repeats bytes from the document.
//
// # Format
//
// The format follows AWS's "Nitro Enclaves Attestation Process"
// (aws-nitro-enclaves-nsm-api, docs/attestation_process.md) and what real
// documents look like: protected header {1: -35} (ES384), an empty
// unprotected header, a payload map (definite or indefinite length) with the
// nine keys module_id, digest, timestamp, pcrs, certificate, cabundle,
// public_key, user_data and nonce, absent optional fields as CBOR null, and a
// 96-byte r||s signature over the COSE Sig_structure.
//
// [Sign] produces that format. It exists for simulators and round-trip tests
// (see package attestsim); production code only verifies.
package attestation
