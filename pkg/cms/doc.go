// Package cms reads and writes the one CMS EnvelopedData shape (RFC 5652)
// that AWS KMS returns as CiphertextForRecipient when a request carries a
// Nitro Enclaves attestation document in its Recipient parameter.
//
// # Shape
//
// A ContentInfo of type envelopedData (1.2.840.113549.1.7.3) holding an
// EnvelopedData of version 2, without originatorInfo or unprotectedAttrs,
// with exactly one KeyTransRecipientInfo of version 2 whose rid is
// [0] SubjectKeyIdentifier, the SHA-256 of the recipient's
// SubjectPublicKeyInfo DER (see [SubjectKeyID]). The content key is
// wrapped with RSAES-OAEP, SHA-256 and MGF1-SHA-256, empty label (sha256
// parameters NULL, as KMS writes them, or absent, as RFC 4055 prefers and
// OpenSSL writes them); the content, of type id-data,
// is encrypted with AES-256-CBC, a 16-byte IV and PKCS #7 padding. The
// encrypted content is a primitive [0] or a constructed [0] of primitive
// OCTET STRING chunks. The input is BER: KMS uses indefinite lengths on the
// outer layers. Anything else is refused with [ErrMalformed].
//
// # Errors
//
// [Parse] fails with [ErrMalformed]: the structure is public, so its errors
// say which part is wrong (never echoing input bytes). Once the structure is
// sound, every failure that involves the private key (a recipient identifier
// that is not the key's, an RSA-OAEP failure, a content key of the wrong
// size, bad padding) is the one opaque [ErrDecrypt], and [Decrypt] does the
// same work whichever check fails, so that a caller cannot tell them apart.
//
// # Integrity
//
// EnvelopedData carries no MAC: AES-CBC content can be altered without
// detection by anyone on the path. Its integrity comes from the channel
// (TLS to KMS, terminated inside the enclave), not from this format; a
// caller that stores or relays these bytes must authenticate them itself.
package cms
