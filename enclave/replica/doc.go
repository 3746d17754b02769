// Package replica makes the sealed keystore durable in S3: it implements
// keystore.Replicator (and keystore.Compactor) with the real aws-sdk-go-v2
// S3 client, and rebuilds a keystore from S3 at boot.
//
// # Layout
//
// Under a per-cosigner prefix:
//
//	manifest.json                 where a restore starts: generation, snapshot, its seq
//	snapshots/<gen>-<seq>.db      keystore snapshot (SQLCipher ciphertext) covering seq
//	segments/<gen>/<seq>          one sealed change record, or the seal of <gen>
//
// Numbers are zero-padded to 20 digits so that listing order is numeric
// order. Nothing written holds plaintext: snapshots are SQLCipher files,
// segments are AES-256-GCM ciphertext, the manifest holds names, numbers
// and a hash.
//
// # Segments
//
// A segment is AES-256-GCM under a key derived from the database data key
// with HKDF-SHA256 (label "nitro-cosigner segment v1"), with a random
// 96-bit nonce and associated data binding the cosigner ID, generation,
// sequence number and kind. The host cannot reorder, substitute, or splice
// segments across positions, generations or cosigners without failing
// authentication; dropping one from the middle is seen as a gap. The
// manifest is authenticated with HMAC-SHA256 under a second derived key
// ("nitro-cosigner manifest v1") and names the snapshot's SHA-256.
//
// # Generations and fencing
//
// Every object is created with If-None-Match: * and the manifest is
// replaced with If-Match on its ETag. A generation is owned by one running
// instance: Init creates generation 1; Restore replays the chain and then
// takes over by writing a seal into the last generation's next free slot,
// pointing to a new generation of its own. The slot is taken by exactly one
// writer: a stale instance still writing the old generation finds its next
// slot taken (412), reports keystore.ErrFenced, and its keystore refuses
// further mutations. Seals are never deleted, so the fence stands.
//
// # Durability
//
// Replicate returns nil once the segment is stored in S3 (PutObject
// succeeded, or a retry found the identical bytes already there). An error
// means the mutation is not acknowledged. If S3 stored it nevertheless (a
// timeout after the write), the next Replicate finds its slot taken and the
// store is fenced: a restore then contains that change. So after a restart
// the state holds every acknowledged change, plus possibly the one whose
// outcome was reported as an error. A restore can not detect that the host
// dropped the newest segments (or served an older copy of everything): that
// is a rollback, which only a trusted monotonic counter could detect.
//
// # Compaction
//
// After SnapshotSegments records or SnapshotBytes of segments, the store
// hands the replica a snapshot (holding its writer lock): the replica
// uploads it, replaces the manifest, then deletes the segments the snapshot
// covers (seals excepted) and the previous snapshot. A failed deletion
// leaves garbage, never a hole.
package replica
