package attestation

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"time"
)

// Limits from the AWS Nitro attestation specification
// (aws-nitro-enclaves-nsm-api, docs/attestation_process.md, section 3.2.2).
const (
	// MaxPublicKeySize is the largest public_key a document may carry.
	MaxPublicKeySize = 1024
	// MaxUserDataSize is the largest user_data a document may carry.
	MaxUserDataSize = 512
	// MaxNonceSize is the largest nonce a document may carry.
	MaxNonceSize = 512
	// MaxDocumentSize caps the raw input: the largest payload the
	// specification allows (16 KiB) plus the COSE_Sign1 envelope.
	MaxDocumentSize = maxPayloadSize + 128

	maxPayloadSize   = 16 * 1024
	maxCertSize      = 1024
	maxPCRs          = 32 // PCR indexes are 0..31
	maxCABundle      = 16 // ours: real bundles hold 4 certificates
	digestSHA384     = "SHA384"
	signatureSize    = 96 // ES384 r||s
	pcrIndexMaxDebug = 2  // PCR0..PCR2 identify the image; all zero in debug mode
)

// Document is a verified Nitro attestation document. Only [Verify] returns
// one that [Policy.Check] accepts; a Document built by hand is for [Sign].
type Document struct {
	ModuleID    string            // issuing Nitro hypervisor module ID
	Timestamp   time.Time         // creation time, millisecond precision, UTC
	Digest      string            // always "SHA384"
	PCRs        map[int][]byte    // PCR index (0..31) -> 32, 48 or 64 bytes
	Certificate *x509.Certificate // leaf certificate that signed the document
	CABundle    [][]byte          // DER certificates, root first
	PublicKey   []byte            // nil when absent (CBOR null)
	UserData    []byte            // nil when absent (CBOR null)
	Nonce       []byte            // nil when absent (CBOR null)
	Raw         []byte            // the exact bytes that were verified

	verified bool // set by Verify only
}

// VerifyOptions configures [Verify].
type VerifyOptions struct {
	// Time is the time at which every certificate of the chain must be
	// valid. It is required: Verify never reads the clock.
	Time time.Time

	// Roots are the trusted roots. Nil means the pinned AWS Nitro root G1
	// only ([AWSNitroRoots]); pass another pool only for test CAs.
	Roots *x509.CertPool
}

var errNoTime = errors.New("attestation: VerifyOptions.Time is required")

// Verify parses raw as a Nitro attestation document and verifies it. It
// returns the document, or an error wrapping [ErrMalformed], [ErrChain] or
// [ErrSignature]; never both. The checks, in order:
//
//  1. opts.Time is set.
//  2. raw is at most [MaxDocumentSize] bytes.
//  3. raw is one CBOR COSE_Sign1 array of four items, optionally under tag
//     18, with no trailing bytes, no other tags and no duplicate map keys.
//  4. The protected header is exactly {1: -35} (alg ES384) and the
//     unprotected header is an empty map.
//  5. The payload is 1..16384 bytes and the signature is 96 bytes.
//  6. The payload is a map (definite or indefinite length) holding exactly
//     the nine fields module_id, digest, timestamp, pcrs, certificate,
//     cabundle, public_key, user_data and nonce.
//  7. Each field has its type and size: module_id non-empty text; digest
//     "SHA384"; timestamp an unsigned integer > 0; pcrs a map of 1..32
//     entries, index 0..31 to 32, 48 or 64 bytes; certificate 1..1024 bytes
//     of X.509 DER; cabundle 1..16 entries of 1..1024 bytes; public_key null
//     or 1..1024 bytes; user_data and nonce null or 0..512 bytes.
//  8. The leaf certificate's key is ECDSA P-384.
//  9. Each cabundle entry is an X.509 certificate.
//  10. The leaf chains through cabundle[1:] to a root in opts.Roots (or the
//     pinned AWS root), every certificate valid at opts.Time, with basic
//     constraints and path lengths honoured.
//  11. The chain is exactly the bundle: leaf, cabundle[n-1] ... cabundle[1],
//     and a trusted root equal to cabundle[0]; cabundle[0] itself is never
//     trusted.
//  12. Key usage: the leaf has digitalSignature and is not a CA; every CA
//     certificate has keyCertSign.
//  13. The signature verifies with the leaf key (ECDSA P-384, SHA-384) over
//     the COSE Sig_structure ["Signature1", protected, h”, payload].
//
// The returned document owns a copy of raw.
func Verify(raw []byte, opts VerifyOptions) (*Document, error) {
	if opts.Time.IsZero() {
		return nil, errNoTime
	}
	raw = bytes.Clone(raw)
	msg, doc, err := parse(raw)
	if err != nil {
		return nil, err
	}
	key, err := verifyChain(doc, opts)
	if err != nil {
		return nil, err
	}
	if err := msg.verify(key); err != nil {
		return nil, err
	}
	doc.verified = true
	return doc, nil
}

// parse runs checks 2 to 7 of Verify.
func parse(raw []byte) (*sign1, *Document, error) {
	msg, err := parseSign1(raw)
	if err != nil {
		return nil, nil, err
	}
	doc, err := parsePayload(msg.Payload)
	if err != nil {
		return nil, nil, err
	}
	doc.Raw = raw
	return msg, doc, nil
}

// SHA256 returns the SHA-256 of the raw document, the key under which a
// verified document can be cached. It equals DocDigest(d.Raw).
func (d *Document) SHA256() [32]byte {
	return DocDigest(d.Raw)
}

// DocDigest returns the SHA-256 of raw document bytes, so a cache of verified
// documents can be looked up before verifying.
func DocDigest(raw []byte) [32]byte {
	return sha256.Sum256(raw)
}

// IsDebug reports whether the document comes from an enclave in debug mode:
// PCR0, PCR1 and PCR2 are all present and all zero.
func (d *Document) IsDebug() bool {
	for i := 0; i <= pcrIndexMaxDebug; i++ {
		v, ok := d.PCRs[i]
		if !ok || !allZero(v) {
			return false
		}
	}
	return true
}

func allZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return acc == 0
}

// UnverifiedTimestamp returns the timestamp of raw after the structural
// checks 2 to 7 of Verify, without checking the chain or the signature. The
// value is whatever the document's author wrote: use it only to choose the
// instant at which to Verify a recorded document (whose leaf certificate has
// since expired), never as a fact about the document.
func UnverifiedTimestamp(raw []byte) (time.Time, error) {
	_, doc, err := parse(raw)
	if err != nil {
		return time.Time{}, err
	}
	return doc.Timestamp, nil
}
