// Package peer is the MPC engine's Transport inside the enclave: it seals
// each outgoing mpc.Envelope into a pkg/wire frame (signed with the
// enclave's identity key, stamped with its attestation, and, if direct,
// encrypted to the recipient) and hands it to the parent link; frames from
// the link are verified by the wire Receiver and queued for the engine.
//
// # Mapping
//
// An envelope's session, protocol, round, recipient, broadcast flag and
// payload travel in the frame's fields of the same names, and the link
// addresses the frame to env.To's inbox. A broadcast envelope (the engine
// sends one per peer) is sealed as a broadcast frame, one frame per
// recipient, each naming its recipient like a direct frame: wire refuses a
// frame addressed to anyone else (wrong_recipient), so a broker that moves
// bob's copy into carol's inbox cannot make carol accept the broadcast a
// second time. On receipt, From is the frame's authenticated sender and To
// is this party, so nothing the broker or host controls reaches the
// engine's routing fields unverified.
//
// # Attestation documents
//
// By default every frame carries our attestation document (Frame.Attach),
// so a receiver can verify any frame on its own, whatever order the broker
// delivers them in: the relay publishes concurrently and brokers redeliver
// out of order. With Config.LeanAttach only the first frame to each
// recipient in a session carries it; a frame that overtakes that one is
// held (hold.go) until the document arrives, instead of being dropped for
// good (the link never delivers a frame again). With the Signer's
// AttachEvery the document goes to each recipient at most that often,
// across sessions; the enclave runs that way (every 10 s, frames held up
// to 15 s), so a one-round online sign carries no document, and a peer
// that restarted with an empty cache holds our frames until the next
// attachment instead of losing them.
//
// # Sessions
//
// The wire Receiver accepts a frame only for a session whose party set
// lists the sender and us. [Peer.Open] records a session's parties before
// the engine call, [Peer.Close] forgets them afterwards (and ends the
// session in the Signer and Receiver). Frames for a session that is not
// open are dropped by wire (not_in_session) and, since the link
// acknowledges every frame it hands over, are not delivered again. The
// engine's router holds early envelopes for sessions it has not started,
// but that only helps envelopes that got past wire: the coordinator must
// therefore Open a session on every party before starting the engine call
// on any party. For the same reason the engine's own presignature-pool
// proposals, which name fresh session IDs, are dropped unless the
// coordinator has opened those sessions; pools are not served by this
// package yet.
//
// # Loss
//
// Deliver never blocks the link: accepted envelopes go into a bounded
// queue, and when it is full the envelope is dropped and counted
// (Stats.QueueFull). Frames wire refuses are counted by reason in the
// Receiver's Stats (included in [Peer.Stats]). A lost message makes the
// session end at its deadline; the engine owns deadlines, so nothing here
// retries.
package peer
