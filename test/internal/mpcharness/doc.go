// Package mpcharness runs cosigners on the path MPC frames take in
// production, in one process, for the tests of test/mpcpath and
// test/reliability: engine → enclave/peer (pkg/wire signer, attestation
// documents bound to identity keys) → enclave/link → parent/relay →
// broker → relay → link → peer (wire receiver) → engine, each cosigner
// with its own stack, over loopback TCP.
//
// A Cluster is three cosigners (alice, bob and carol) sharing a roster and
// a broker server (Backend: embedded NATS JetStream, Kafka on kfake, SQS
// on goaws). Every relay publishes through a Hostile wrapper of its broker
// client that, at rates set per test and with choices drawn from a seed,
// drops, duplicates, reorders, delays, replays and alters frames, counts
// what it did, and records in the cluster's Ledger which frames the relays
// published and which it made up. Between each link and its peer a Watch
// records the wire receiver's verdict on every frame delivered, so that
// the cluster can check, when the test ends, the invariant of every test:
// a receiver accepts only frames a relay published to its own inbox, each
// at most once.
//
// Only tests import this package.
package mpcharness
