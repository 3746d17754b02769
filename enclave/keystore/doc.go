// Package keystore is the enclave's sealed state: one SQLCipher database in
// a tmpfs directory holding key shares, the enclave identity, policy
// documents, the policy engine's window state (spends counted against
// rolling-window limits), the audit chain and idempotency records. It is
// the only package that imports the SQLCipher driver; nothing outside it
// writes SQL.
//
// # Sealing
//
// The database is encrypted page by page with a 256-bit key given as
// secret.Bytes (the KMS data key). Every file the database writes — the main
// file, its -wal and -shm files, snapshots — holds ciphertext only, so any of
// them may leave the enclave. See connector for how the key reaches SQLCipher.
//
// # Durability
//
// Every mutation goes through one path (Store.apply): one writer at a time,
// one SQL transaction that applies the change and builds a deterministic
// change Record numbered by a strictly increasing sequence, the Record handed
// to the Replicator while the transaction is still open, and the commit only
// once the Replicator said the Record is durable. A mutation method returns
// nil only after that commit: then the change is in the database and (with a
// Replicator) durable outside the enclave. On any error the transaction is
// rolled back and the previous state is untouched.
//
// Records rebuild the state elsewhere: ApplyRecord and Replay apply records
// in sequence order to a store opened from an older Snapshot (or from an
// empty database) and give the same state the writer had.
package keystore
