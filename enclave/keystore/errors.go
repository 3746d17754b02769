package keystore

import "errors"

// Sentinel errors. Callers test them with errors.Is; the store wraps them
// with context.
var (
	// ErrWrongKey means the database could not be read with the given key:
	// a wrong key, or a file that is not a keystore database. The two are
	// deliberately indistinguishable.
	ErrWrongKey = errors.New("keystore: wrong key or not a keystore database")

	// ErrNewerSchema means the database was written by a newer version of
	// this package; it is refused rather than misread.
	ErrNewerSchema = errors.New("keystore: database schema is newer than this build")

	// ErrKeyNotFound means no key with that ID is stored.
	ErrKeyNotFound = errors.New("keystore: key not found")

	// ErrNotFound means the identity, policy, idempotency record or spend
	// reservation asked for does not exist (or, for idempotency records,
	// has expired; for reservations, was released or pruned).
	ErrNotFound = errors.New("keystore: not found")

	// ErrStaleEpoch means PutKey was given an epoch equal to or lower than the
	// stored one. The stored record is unchanged.
	ErrStaleEpoch = errors.New("keystore: key epoch is not newer than the stored one")

	// ErrStaleVersion means PutPolicy was given a version equal to or lower
	// than the latest stored one.
	ErrStaleVersion = errors.New("keystore: policy version is not newer than the latest one")

	// ErrExists means a write-once value (the identity, an unexpired
	// idempotency key, a spend reservation ID) is already stored.
	ErrExists = errors.New("keystore: already exists")

	// ErrAuditChain means an audit entry does not extend the chain: its
	// sequence number is not the next one or its previous hash is not the
	// last entry's hash.
	ErrAuditChain = errors.New("keystore: audit entry does not extend the chain")

	// ErrInvalid means an argument is malformed (wrong length, out of range).
	ErrInvalid = errors.New("keystore: invalid argument")

	// ErrBadRecord means a change record cannot be applied: it does not
	// decode, is out of sequence, or does not apply to the current state.
	ErrBadRecord = errors.New("keystore: bad change record")

	// ErrFenced means this store may no longer mutate because its history
	// and the replicated one have parted: another writer of the same
	// cosigner took over, a change this store rolled back reached the
	// replica after all, or a local commit failed after the change was
	// replicated. A Replicator returns an error wrapping ErrFenced for the
	// first two; from then on every mutation fails with ErrFenced. Reads
	// still work but may be stale: the process should stop and restore.
	ErrFenced = errors.New("keystore: fenced: replicated history moved on without this store")

	// ErrClosed means the store was closed.
	ErrClosed = errors.New("keystore: closed")
)
