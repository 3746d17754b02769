// Package mpc is the cosigner's MPC engine: it runs this party's side of the
// multi-party-sig protocols (github.com/taurusgroup/multi-party-sig) as
// sessions that always end, keeps presignatures so that an ECDSA sign is one
// round, and never uses a presignature twice. It knows nothing of the wire,
// the broker or the database: messages cross the Transport interface and
// key shares the Store interface, both declared here.
//
// # Operations
//
// CMP threshold ECDSA on secp256k1: Keygen (t-of-n, 2 ≤ t ≤ n ≤ 16),
// Refresh (new shares, same public key, epoch + 1), Presign, Sign from a
// presignature (one round) and full Sign. FROST on secp256k1 with BIP-340
// keys: FROSTKeygen and Sign. Non-hardened BIP-32 derivation per request
// (SignRequest.Path, elements < 2³¹); DeriveKey computes derived public keys
// locally, with no session. Every party of a session calls the same method
// with the same SessionSpec (ID, party set, deadline) and request. Who
// proposes sessions and which signers to use is decided outside.
//
// Identifiers: a key is named by the ID of its keygen session (KeyID), a
// presignature by the ID of the presign session that made it
// (PresignatureID), so every party files it under the same name without
// further agreement. Thresholds count signers: a 2-of-3 key has Threshold 2
// (the library's t is one less).
//
// # Sessions
//
// A session has an ID, an operation, a party set, a deadline and a context,
// and ends in exactly one of: a result; an *AbortError naming culprits when
// the library (or the engine, for a malformed message) identifies them; a
// *PeerAbortError when a peer announced it aborted; ErrDeadline; or the
// context's error on cancellation. Errors never carry a share, a config, a
// presignature or text chosen by a peer.
//
// The caller's goroutine drives the library's handler: it reads the
// session's inbox and calls Accept. A second goroutine, the pump, drains
// the handler's outgoing channel into the Transport. When the session ends
// the pump is stopped and waited for; the handler spawns no goroutine of
// its own (the engine passes no worker pool, see below), so nothing is left
// behind. A round's computation cannot be interrupted: a deadline that
// passes during one is acted on when it completes (seconds at most, in
// keygen). Parties that disagree on the session ID, lost messages and
// silent peers all end at the deadline. A party that ends a session on its
// own (it caught a cheater, got a malformed message, was cancelled) sends
// its peers an abort notice so they end at once.
//
// Incoming envelopes are routed by session ID. Those for a session not
// started yet are held (at most 256 sessions × 64 messages, 30 s), since
// peers start at slightly different times. A session ID is never run twice
// by one engine (the last 4096 are remembered), so neither a replayed
// proposal nor a buggy coordinator can reuse one.
//
// # Delivery
//
// Transport sends one Envelope to one party and receives the envelopes
// addressed to this one; Engine.Run pumps Receive. An envelope is routing
// in the clear (session ID, from, to, protocol, round, broadcast flag) plus
// an opaque payload: the library's protocol.Message in its binary form, so
// the wire layer can sign everything. A broadcast is sent as one envelope
// per peer with the same payload and Broadcast set. The engine trusts the
// Transport to authenticate From and checks that the payload agrees with
// the envelope (sender, recipient, protocol, round, broadcast), so a peer
// cannot speak for another. A payload that does not decode, or disagrees,
// aborts the session naming its sender.
//
// Reliable broadcast: the library checks it for every broadcast round but
// the last. Every message of the round after a broadcast round carries a
// hash of all broadcasts that party received, and a mismatch aborts. The
// last broadcast of a protocol is not echoed. In a sign it feeds a
// signature that is verified before it is returned, so equivocating there
// only makes the session abort. In keygen, refresh and presign a party
// equivocating in that round could make some honest parties finish while
// others abort, leaving a key, new shares or a presignature that only some
// hold. The engine therefore runs a final echo for keygen, refresh, presign
// and FROST keygen: every party records every broadcast it sent and
// accepted (pkg/wire's Transcript), and once the protocol has a result it
// sends its digest of the last broadcast round to every peer and waits for
// all of theirs. A differing digest aborts the session before the result is
// stored or pooled; the reason names the echoer but no culprit, since the
// receiver cannot tell whether the echoer or a broadcaster lied. A party
// caught sending two different broadcasts in one round is named. The echo
// costs one message per peer and one network trip.
//
// What the echo guarantees: two honest parties that both return a result
// saw the same broadcasts, so their shares or presignatures belong
// together. What it cannot: that all honest parties return it. A party
// that withholds its echo from one peer (or a network that loses it) leaves
// that peer at its deadline without the result while the others keep it;
// no finite exchange removes that, so the layer above treats a key as
// created only when every party has reported it (TestWithheldEcho shows the
// case). A result that raced with the deadline is dropped when it still
// needed its echo.
//
// # Storage
//
// Keygen and Refresh return only after Store.PutKey succeeded; on failure
// the caller gets ErrStore and the new shares are not used. Stored shares
// are the library's marshalled CMP config, or a versioned CBOR form of the
// FROST Taproot config (the library has none). Loaded keys are cached in
// memory and cross-checked against the record's public fields.
//
// # Presignature pools
//
// Pools hold CMP presignatures per key and signer set, in memory only: a
// restart, or a database restored from an older copy, can never bring back
// a presignature that was used. EnablePool turns on background refill for
// a set; every signer of the set must enable it. Exactly one party
// proposes refills, deterministically: the lowest party ID of the set.
// When its pool falls below the low-water mark it proposes presign sessions
// (PoolConfig.Concurrent at a time, with back-off after failures) until the
// target depth is reached. The others join a proposal only if it comes from
// that proposer, for a pool they enabled, at the key's current epoch, with
// room, under a session ID not seen before; so parties never race to make
// duplicates. A party that refuses a well-formed proposal (say, it has not
// enabled the pool yet) answers with an abort notice, and the proposer
// backs off (1 s, doubling up to 1 min) instead of waiting for the
// deadline; a duplicated or replayed proposal is ignored. A pool holds at
// most 2×target+concurrency presignatures; past that the oldest is
// evicted, which also ages out a presignature that only some parties
// finished. Refresh empties the key's pools. Pools reports depth, claims,
// sessions in flight and counters (made, consumed, failed, evicted, refill
// rate) for metrics.
//
// Consume-once rule: a presignature is removed from its pool, under one
// engine-wide lock, before the online session is created, and the online
// share is computed only when the session is created; once removed it is
// never put back, whatever happens to the session. Two signs naming the
// same presignature therefore cannot both get it: the second fails with
// ErrPresignatureUnavailable. The coordinator calls ClaimPresignature,
// which moves the oldest presignature out of its pool and returns its ID,
// names that ID in its proposal, and every signer (the coordinator too)
// passes it to Sign. A signer that does not hold it refuses. If the pool is
// empty, the coordinator proposes a full sign instead.
//
// Presignatures serve only the key itself, never a derived key: combining
// presignatures with additive key derivation weakens ECDSA (Groth and
// Shoup, "On the Security of ECDSA with Additive Key Derivation and
// Presignatures", Eurocrypt 2022). A sign with a path is a full sign.
//
// # Library faults contained here
//
// Worker pool (pkg/pool): a worker that finishes the last task of a
// Parallelize or Search call can be left blocked forever on an unbuffered
// send, because the caller may see the counter reach zero and return
// first; TearDown cannot free it. Measured here: 2000 pools of 4 workers,
// one Parallelize(8) each, stranded 1887 goroutines. A long-lived pool
// loses a worker each time and eventually hangs every caller; a
// per-session pool torn down at the end still leaks its stranded workers.
// Speed here (2 cores, all parties in one process, 2-of-3; BenchmarkPoolChoice
// with -tags soak; two runs of 4 iterations; no pool / a pool.NewPool(0)
// per party per session): keygen 7.7/6.3 s and 6.8/8.5 s (dominated by the
// safe-prime search, which never uses the pool, and noisy); refresh
// 7.0/5.9 s and 9.2/7.3 s (the pool is 15-20 % faster: the proofs about
// the Paillier modulus parallelise); presign 1.37/1.37 s and 1.70/1.73 s;
// full sign 1.29/1.47 s and 1.57/1.71 s (the pool is slower: the parties
// already fill both cores). The engine runs without a pool: only refresh
// gains, refresh is rare, and no session may leave a goroutine behind.
//
// Paillier precomputation: not possible. CMP keygen and refresh generate
// their Paillier safe primes inside round 1 (paillier.NewSecretKey(nil) in
// protocols/cmp/keygen), with no parameter to pass precomputed primes and
// not even the session's pool, so a background pool of primes could not be
// used without changing the library.
//
// MultiHandler.Stop is inverted: it acts only on a finished handler, and
// then closes an already closed channel (a panic). The engine never calls
// it; a session ends by stopping its pump and dropping the handler.
//
// MultiHandler.Accept sends the messages of the rounds it completes on a
// channel of 2n slots while holding the handler's lock, so a caller that
// reads that channel on the same goroutine as it calls Accept can deadlock
// when one message completes two rounds. The pump drains it concurrently.
//
// protocol.Message.UnmarshalBinary returns nil when decoding fails. The
// engine decodes payloads itself, strictly (no duplicate or unknown keys,
// bounded sizes).
//
// A round-0 message from a peer makes the library abort naming that peer as
// the culprit, with the peer's text in the error. Honest parties send one
// when they catch a cheater, so the library blames the messenger. The
// engine replaces these with its own empty abort notice and reports the
// sender as Reporter in a *PeerAbortError, not as a culprit.
//
// Shared configs race: saferith.Nat, the library's big number, rewrites its
// own limbs when compared (Cmp via resizedLimbs), so two sessions using one
// CMP config race; the race detector caught it in concurrent presigns.
// Each presign, full sign and refresh gets a private copy of the config
// (about 6 ms, under 0.5 % of those operations); the online sign only
// reads the config and shares it.
//
// Config.DeriveBIP32 and TaprootConfig.DeriveChild panic on hardened
// indices; paths are checked first. Secp256k1Point.XBytes normalises its
// receiver in place, a data race on shared points; the engine reads points
// with MarshalBinary. Any panic in the library while starting a session or
// accepting a message is recovered: the session ends with an *AbortError
// naming the message's sender (or ErrInvalidRequest at start).
package mpc
