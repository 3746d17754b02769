// Package mpcpath tests the MPC engine end to end across the path frames
// take in production: engine → enclave/peer (pkg/wire signer, attestation
// documents bound to identity keys) → enclave/link → parent/relay → broker
// → relay → link → peer (wire receiver) → engine, with three cosigners in
// one process, each with its own stack, over loopback TCP.
//
// # Brokers
//
// The same suite runs against each broker, a fresh server per test:
// NATS JetStream embedded (TestNATS), Kafka on kfake (TestKafka) and SQS
// on goaws (TestSQS; skipped if goaws cannot be built, unless
// NITRO_GOAWS_REQUIRED=1). The cosigners and the brokers are
// test/internal/mpcharness's, shared with test/reliability: every relay
// publishes through a hostile wrapper of its broker client that, at rates
// set per test and with choices drawn from a seed (-mpcpath.seed), drops,
// duplicates, reorders (holds back and releases later), delays, replays
// (any earlier frame, from any session, into its own inbox) and alters
// frames, counts what it did, and records in a ledger which frames the
// relays published and which it made up. Between each link and its peer a
// watch records the wire receiver's verdict on every frame delivered.
//
// # What the tests prove, per broker
//
//   - Invariant of every test: a receiver accepts only frames a relay
//     published to its own inbox, each at most once; nothing altered,
//     replayed or injected gets through.
//   - Clean: FROST 2-of-3 keygen and a sign succeed and the BIP-340
//     signature verifies; no frame is dropped for a security reason.
//   - Hostile: with duplicates, reordering, delays, replays and
//     alterations but no loss, sessions still succeed; every altered frame
//     is dropped by a check up to the signature's (bad_signature among
//     them), every copy of an accepted frame as a replay or for its ended
//     session, and nothing else is dropped.
//   - Drops: with frames lost (Publish returns nil for a frame never
//     stored), each party of each session succeeds or ends with a named
//     error (mpc.ErrDeadline, *mpc.AbortError, *mpc.PeerAbortError) within
//     a slack of its deadline; parties that succeed agree and their
//     signatures verify; the cosigners sign again once the broker is
//     honest.
//   - TamperedFrame: a frame replaced by a tampered copy ends the session
//     at its deadline, the copy is dropped as bad_signature, and the next
//     session succeeds.
//   - Refusals: frames a host injects into a running keygen's session,
//     signed with carol's key but carrying a document with other PCRs, of
//     a debug-mode enclave, expired, bound to another identity or under
//     another root, or signed by an unknown key posing as carol, or by a
//     sender not in the roster, are dropped by every receiver under their
//     own reason; a copy of every frame of the keygen is dropped as a
//     replay; the keygen succeeds and its key signs.
//
// TestMisroutedBroadcast moves every frame published to bob during a
// keygen into carol's inbox: each is dropped as wrong_recipient (carol's
// own as own_frame), broadcasts included, since every frame names its
// recipient. BenchmarkSignBrokerBytes measures the bytes and frames
// one FROST sign puts on the broker, with the attestation document on
// every frame and with peer.Config.LeanAttach.
package mpcpath
