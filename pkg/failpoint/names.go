// Package failpoint is a tiny facility for crash testing: named points on
// the sealed state's durability boundaries where a test can make the code
// fail or "crash".
//
// Code under test calls Inject(name) at each point and treats a non-nil
// result as a failure at that point (usually returning it). Tests call
// Enable to make a point run a function of theirs: return an error, count
// hits, or simulate a crash (cut the process's I/O, then return an error so
// that the code unwinds without doing anything further).
//
// Points are process-global: a test that enables one must not run in
// parallel with other tests that reach it.
//
// Builds with the "release" build tag compile Inject to a function that
// returns nil and Enable to one that fails with ErrNotCompiled: a release
// enclave cannot be made to fail on purpose, and links nothing of this
// facility but the point names and two empty functions. The facility is
// hand-written (about 60 lines) rather than pingcap/failpoint, which needs a
// code rewriting step and brings a dependency tree into the enclave.
package failpoint

import "errors"

// ErrNotCompiled is returned by Enable in release builds.
var ErrNotCompiled = errors.New("failpoint: failpoints are not compiled into release builds")

// Name names a failpoint.
type Name string

// The failpoints, in the order a mutation reaches them. See package sealed
// for what is durable at each.
const (
	// KeystoreBeforeReplicate: the change is applied inside its open
	// transaction and numbered; nothing has been sent to S3.
	KeystoreBeforeReplicate Name = "keystore/before-replicate"
	// ReplicaBeforeSegmentPut: the segment is sealed, not yet uploaded.
	ReplicaBeforeSegmentPut Name = "replica/before-segment-put"
	// ReplicaAfterSegmentPut: S3 holds the segment; the replica has not
	// advanced and the keystore has not committed. An error here looks like
	// a lost answer.
	ReplicaAfterSegmentPut Name = "replica/after-segment-put"
	// KeystoreAfterReplicateBeforeCommit: the Replicator said the record is
	// durable; the local transaction is still open. An error here is
	// handled as a failed local commit (the store is fenced).
	KeystoreAfterReplicateBeforeCommit Name = "keystore/after-replicate-before-commit"
	// ReplicaBeforeManifestSwap: compaction uploaded a snapshot; the
	// manifest still names the previous one.
	ReplicaBeforeManifestSwap Name = "replica/before-manifest-swap"
	// ReplicaAfterManifestSwap: the manifest names the new snapshot;
	// nothing has been deleted.
	ReplicaAfterManifestSwap Name = "replica/after-manifest-swap"
	// ReplicaBeforeOldSegmentDelete: compaction listed the segments and
	// snapshot the new manifest made redundant and is about to delete them.
	ReplicaBeforeOldSegmentDelete Name = "replica/before-old-segment-delete"
	// KeystoreAfterCommitBeforeAck: the change is durable and committed
	// (and any compaction it triggered has run); the mutation method has
	// not returned.
	KeystoreAfterCommitBeforeAck Name = "keystore/after-commit-before-ack"
)

// All returns every failpoint name, in the order a mutation that triggers
// a compaction reaches them.
func All() []Name {
	return []Name{
		KeystoreBeforeReplicate, ReplicaBeforeSegmentPut, ReplicaAfterSegmentPut,
		KeystoreAfterReplicateBeforeCommit, ReplicaBeforeManifestSwap, ReplicaAfterManifestSwap,
		ReplicaBeforeOldSegmentDelete, KeystoreAfterCommitBeforeAck,
	}
}
