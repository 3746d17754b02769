// Package kmsemu is an AWS KMS emulator for development and tests. It is a
// stand-in, never a KMS: it must not be used in production, holds its keys
// in process memory (or in a plain state file), and checks no AWS
// signature or identity.
//
// It speaks the KMS JSON 1.1 protocol (POST /, X-Amz-Target:
// TrentService.<Operation>, Content-Type: application/x-amz-json-1.1, JSON
// bodies with base64 blobs, errors as {"__type": "...", "message": "..."}
// with KMS's HTTP status), so the real aws-sdk-go-v2 KMS client talks to it
// through BaseEndpoint. Unlike other emulators it honours the Recipient
// parameter the way KMS does for AWS Nitro Enclaves.
//
// # Operations
//
//   - CreateKey: symmetric ENCRYPT_DECRYPT keys only, with an optional key
//     policy (default: allow every action).
//   - Encrypt, Decrypt, GenerateDataKey (KeySpec AES_256 or AES_128, or
//     NumberOfBytes 1..1024), GenerateRandom.
//
// Any other operation fails with UnknownOperationException. Key IDs are
// accepted as bare IDs or key ARNs; aliases are not supported.
//
// # Ciphertext blobs
//
// A ciphertext blob is AES-256-GCM under a key derived (HKDF-SHA-256) from
// the KMS key's 256-bit material, with the key ID and the encryption
// context bound as additional data: Decrypt with another context, another
// key or an altered blob fails with InvalidCiphertextException. Blobs are
// not compatible with real KMS.
//
// # Recipient
//
// When Decrypt, GenerateDataKey or GenerateRandom carries a Recipient, the
// emulator verifies its attestation document with attestation.Verify against
// Options.Roots at the emulator's clock (Options.Now), takes the RSA public
// key from the document's public_key field, and returns the plaintext only
// as CiphertextForRecipient: CMS EnvelopedData made by cms.Encrypt, the
// shape KMS emits. Plaintext is then omitted from the response, as KMS
// does. A document that does not verify, or carries no RSA key of 2048 to
// 4096 bits, is refused with ValidationException.
//
// # Key policies
//
// A key policy is an IAM-style JSON document: a Statement (one object or a
// list) of statements with Effect (Allow or Deny), Action (string or list;
// "*" and "?" wildcards, case-insensitive) and an optional Condition. It is
// evaluated for Encrypt, Decrypt and GenerateDataKey: an explicit Deny wins,
// and without a matching Allow the request is refused with
// AccessDeniedException. Principal and Resource are accepted and ignored
// (the emulator has no identities). NotAction, NotPrincipal and NotResource
// are refused at CreateKey, and so is any condition operator other than
// StringEquals, StringNotEquals, StringEqualsIgnoreCase and
// StringNotEqualsIgnoreCase: a policy the emulator cannot evaluate exactly
// is an error, never silently looser.
//
// Condition keys, with IAM semantics (keys ANDed, values of one key ORed;
// a key absent from the request matches no positive operator and every
// negated one):
//
//   - kms:RecipientAttestation:ImageSha384 (PCR0) and
//     kms:RecipientAttestation:PCR<n>: lowercase hex of the verified
//     document's PCR; present only when the request has a Recipient.
//   - kms:EncryptionContext:<key>: the request's encryption context value;
//     the <key> part is case-sensitive, the prefix is not.
//
// # State
//
// New keeps keys in memory. Open also persists them to a state file,
// written atomically (temporary file, fsync, rename) before CreateKey
// returns; the file holds key material in the clear, mode 0600.
//
// # Logs
//
// The emulator logs one line per request (operation, status, error code) to
// Options.Logger. It never logs or returns plaintext, data keys or key
// material; error messages name the failed check only.
package kmsemu
