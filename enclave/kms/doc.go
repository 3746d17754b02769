// Package kms gets the enclave's sealed-state data key from AWS KMS so that
// only an enclave with the right measurements can ever see it.
//
// # Contract
//
// A [Client] makes two calls, each with the KMS key it was configured with
// and the encryption context {[ContextKeyCosigner]: cosigner ID,
// [ContextKeyPurpose]: [PurposeSealedState]}:
//
//   - [Client.GenerateDataKey] asks KMS for a fresh 256-bit data key and
//     returns it (as secret.Bytes) together with its wrapped form, the KMS
//     CiphertextBlob, which is safe to store anywhere.
//   - [Client.Decrypt] turns a wrapped key back into the data key.
//
// Both send a Recipient: a fresh attestation document from the NSM whose
// public_key is an RSA-2048 key generated inside the enclave for that call
// alone. KMS checks the document, evaluates the key policy against its
// measurements, and returns the data key only as CMS EnvelopedData
// encrypted to that RSA key (CiphertextForRecipient), which the enclave
// opens with package cms. The private key never leaves the enclave and is
// wiped (as far as Go allows) when the call returns; the data key never
// crosses the host in the clear.
//
// Fail closed: a response that carries the data key in Plaintext (as a KMS
// stand-in that ignores Recipient would return it, readable by the host on
// the way) is refused with [ErrRecipientIgnored], and its bytes are not
// used. A CiphertextForRecipient that does not open to exactly 32 bytes
// with this call's key is refused with the single opaque [ErrBadResponse].
//
// # Boot flow
//
// First boot, only when the operator passes --init explicitly (never
// implied by a missing object): GenerateDataKey, store the wrapped key in S3
// beside the state, then create the SQLCipher database under the data key.
// Every boot: fetch the wrapped key from S3, Decrypt it, open the database.
// An existing cosigner whose wrapped key cannot be fetched or unwrapped
// stops with an error; it never starts empty.
//
// # Key policy
//
// The parent host holds the same AWS credentials as the enclave (it hands
// them over). A Decrypt without Recipient returns the plaintext to anyone
// with the role, so the KMS key policy is the only thing that keeps the
// data key inside the enclave. It must:
//
//   - allow kms:GenerateDataKey and kms:Decrypt only under conditions on
//     kms:RecipientAttestation:ImageSha384 (PCR0) or
//     kms:RecipientAttestation:PCR<n> naming the release's measurements
//     (conditions on these keys can only be met by a request with a valid
//     Recipient, so the plaintext path is closed);
//   - preferably also condition on kms:EncryptionContext:nitro-cosigner:cosigner,
//     so that one cosigner's enclave cannot unwrap another's key;
//   - not grant kms:PutKeyPolicy (or any grant-creating action) to the role
//     the host holds, or the host could rewrite the policy.
//
// `cosignerctl kms-policy` prints such a policy for an image's PCRs.
//
// # Errors
//
// Every error from KMS is translated at this boundary:
//
//   - [ErrNotAllowed]: KMS AccessDeniedException. The message names the
//     enclave's PCR0 (from its own attestation document; not secret) and
//     KMS's own message when it is safe to show.
//   - [ErrUnavailable]: the network, the egress proxy, throttling or a
//     KMS-side failure; callers retry with backoff. It is also returned,
//     together with context.DeadlineExceeded, when ctx's deadline passes;
//     a cancelled ctx returns context.Canceled alone.
//   - [ErrInvalidWrappedKey]: KMS InvalidCiphertextException or
//     IncorrectKeyException: the wrapped key is corrupt, belongs to
//     another KMS key, or was made for another cosigner (another
//     encryption context). KMS does not say which.
//   - [ErrRecipientIgnored] and [ErrBadResponse]: see above.
//
// Anything else (an unknown key, a disabled key, an attestation document
// KMS rejects) is returned as a plain error naming the KMS error code.
// No error and no log line carries the data key, a plaintext, or the RSA
// private key; AWS SDK request and response body logging is switched off
// for these calls whatever the caller's aws.Config says.
//
// # Transport
//
// The caller builds the *kms.Client (region, credentials, endpoint,
// retryer) and passes it in. Its HTTP client should come from
// [NewHTTPClient], which opens every connection with the dial function it is
// given: through the parent's egress proxy (over vsock) in production,
// directly in development. TLS to KMS is terminated inside the enclave, so
// the proxy and the host see only ciphertext.
package kms
