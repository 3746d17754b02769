// Package coord agrees, among cosigners, on which MPC session to run, and
// runs it. An API call reaches one cosigner (the initiator); coord carries
// the proposal to the other parties, lets each decide for itself whether
// to take part, and starts the engine on every party only once all have
// agreed and are ready for the session's frames.
//
// # Protocol
//
// Control messages travel as ordinary signed frames (enclave/peer,
// pkg/wire) in one long-lived control session, [ControlSession], whose
// parties are the whole roster; the session a message is about is in its
// payload. For a proposal P of the initiator I:
//
//  1. I checks P, asks its own [Judge], opens P's session (so frames for
//     it are accepted) and sends "propose" to every other party.
//  2. Each party checks P (I is a party, it is one too, the session ID is
//     new, the deadline is in the future and not too far), asks its own
//     Judge — which for a sign parses the payload and computes the digest
//     itself, evaluates its policy and approval and writes its audit entry
//     — then opens the session and answers "accept", or answers "refuse"
//     with a [Code].
//  3. When every party has accepted, I sends "go" and starts the engine;
//     each party starts on "go". On a refusal or the deadline, I sends
//     "cancel" and fails with a [*RefusedError] or [ErrDeadline].
//  4. For a keygen or refresh, each party sends "stored" to I once its
//     engine call returned, which it does only after the new share is
//     durable (mpc.Store.PutKey). I reports success only when every party
//     has said so within AcceptTimeout of its own result, else it fails
//     with [ErrNotStored]: a key one of whose shares was never stored (a
//     party crashed in between) is never reported created.
//
// A sign makes Signs signatures (a PSBT needs one per input): each runs
// as its own engine session ([SubSession]), all at once, and every party
// refuses a proposal whose count differs from its own parse of the
// request.
//
// The extra messages cost two broker trips before the first MPC round.
// They are what makes "go" safe: a party starts sending only when every
// other has opened the session, so no frame is dropped for an unknown
// session (see enclave/peer).
//
// # Trust
//
// Nothing in a proposal is taken on trust but the initiator's identity,
// which the wire layer authenticates. Each party computes what it signs
// from the request bytes itself (the Judge's job); a digest in a proposal
// is never used. A refusal carries only a code from a fixed list, never
// text chosen by a peer. Proposals are remembered by session ID until
// their deadline passes, so a replayed proposal is ignored (the wire layer
// drops replayed frames too). Every session has a deadline; a party that
// waits for "go" gives up at it.
package coord
