// Package sealed boots the enclave's sealed state: it ties the KMS data key
// bound to the enclave's attestation (package kms), the SQLCipher keystore
// in tmpfs (package keystore) and its replication to S3 (package replica)
// into the two calls the enclave makes at start: Init, once in a
// cosigner's life, and Open, at every other boot.
//
// # Layout in S3
//
// Under Config.Prefix:
//
//	datakey.wrapped   the KMS CiphertextBlob of the data key, with a small
//	                  header naming the KMS key and the cosigner (see wrapped.go)
//	state/...         the replicated keystore (see package replica)
//
// Nothing stored holds plaintext: the data key leaves KMS only encrypted to
// an RSA key generated inside the enclave (Recipient), the database and its
// snapshots are SQLCipher ciphertext, segments are AES-GCM ciphertext.
//
// # Boot flow
//
// Init (the enclave's --init flag, never implied): refuse if any of the
// state exists (ErrExists) → KMS GenerateDataKey with Recipient → check
// that KMS unwraps it again for this enclave → store the wrapped key with
// If-None-Match: * (of two initialisers one wins) → replica.Init (empty
// keystore, generation 1).
//
// Open (every boot): fetch and check the wrapped key → KMS Decrypt with
// Recipient → replica.Restore (manifest, snapshot, segments, each verified;
// then take over the history, which fences any older instance still
// running) → the store serves.
//
// Both return a State whose Store is ready, and then wipe their copy of the
// data key. The store keeps its own copy (wiped by Close) and SQLCipher
// derives its page key from it in every connection (C memory, zeroed when
// the connection closes); the replica keeps HKDF-derived keys: a MAC key
// (wiped by Close) and an AES-GCM key schedule inside crypto/cipher, which
// cannot be wiped. Go cannot promise that no other copy exists — the
// garbage collector may have moved a buffer, and the kms package wipes the
// RSA key and CMS plaintext only as far as math/big and crypto allow — so
// wiping shortens the key's life; it does not end it.
//
// # Durability contract
//
// A mutation of the State's Store (PutKey, PutIdentity, PutPolicy,
// AppendAudit, PutIdempotency...) is acknowledged — returns nil — only once
// its change record is durable in S3. In order, holding the store's writer
// lock (one mutation at a time):
//
//  1. the change is applied inside an open SQL transaction and numbered;
//  2. the replica seals it as the segment at (generation, sequence number)
//     and PUTs it with If-None-Match: *; the change is durable from the
//     moment S3 accepts that PUT, whatever happens next;
//  3. the transaction commits;
//  4. every SnapshotSegments changes, a compaction uploads a snapshot,
//     swaps the manifest (If-Match) and deletes what it made redundant;
//     its failure is logged and does not fail the mutation, which is
//     already durable;
//  5. the mutation returns nil.
//
// After a crash at any point, Open restores every acknowledged mutation,
// plus the mutation in flight if and only if its segment reached S3 (step
// 2 done), and nothing else: mutations are serialized, so at most one is
// in flight. A caller that did not see the answer of a mutation must
// therefore treat it as "maybe done" and retry idempotently: PutKey of the
// same epoch then fails with keystore.ErrStaleEpoch, and API calls carry
// idempotency keys.
//
// Who retries:
//
//   - Inside a mutation, only the S3 SDK client (its own retryer, configured
//     by whoever builds it); a retried PUT that finds its own bytes already
//     stored counts as success. The store itself never retries.
//   - A failed mutation was not acknowledged and its change was rolled back
//     locally; the caller decides whether to retry it. An error wrapping
//     replica.ErrUnavailable (S3 unreachable, timed out, 5xx) may be
//     retried on the same store. An error wrapping ErrFenced may not:
//     another instance took over, or a change whose outcome was reported
//     as an error reached S3 after all; every further mutation fails with
//     ErrFenced and the process must stop and Open again.
//   - Init and Open retry S3 and KMS unavailability themselves, with
//     exponential backoff and jitter up to Config.Retry.Budget, logging each
//     attempt; then they return ErrUnavailable, and the process may exit to
//     be restarted.
//
// A restore cannot tell that the host dropped the newest segments or served
// an older copy of the whole bucket (a rollback); only a trusted monotonic
// counter could. See package replica.
//
// # Errors of Init and Open
//
//   - ErrConfig: a Config field is missing or invalid, or the stored
//     wrapped key names another KMS key or cosigner than configured.
//   - ErrNoState (Open): nothing is stored for this cosigner: start with
//     --init. The message says so, or, if the wrapped key exists without
//     replicated state, that an earlier --init did not finish.
//   - ErrExists (Init): state exists; an existing cosigner never starts over.
//   - ErrNotAllowed (kms.ErrNotAllowed): the KMS key policy does not allow
//     this enclave's measurements; the message names its PCR0. Not retried.
//   - kms.ErrInvalidWrappedKey: KMS refused the stored wrapped key (altered,
//     another key or another encryption context). Not retried.
//   - ErrCorrupt: stored state failed verification (with a
//     *replica.CorruptError naming object, generation and sequence number
//     when it is replicated state), or the wrapped key is missing beside
//     existing state. Not retried; never answered by starting empty.
//   - ErrUnavailable: S3 or KMS unreachable for the whole retry budget.
//     Nothing was changed.
//
// # Failpoints
//
// Builds without the "release" tag carry named failpoints (package
// failpoint) at every boundary of the contract above, in the order a
// mutation reaches them:
//
//	keystore/before-replicate                step 1 done, nothing sent
//	replica/before-segment-put               segment sealed, not sent
//	replica/after-segment-put                segment in S3 (durable)
//	keystore/after-replicate-before-commit   durable, not committed
//	replica/before-manifest-swap             snapshot uploaded, manifest old
//	replica/after-manifest-swap              manifest new, nothing deleted
//	replica/before-old-segment-delete        redundant objects listed
//	keystore/after-commit-before-ack         committed, not yet returned
//
// The tests crash the process at each of them and check the contract.
package sealed
