// Package wire seals and verifies the frames cosigner enclaves exchange
// through hosts and brokers they do not trust.
//
// # Contract
//
// A [Signer] turns one protocol message to one recipient (a [Frame]) into
// an envelope signed by the enclave's long-term Ed25519 identity key,
// stamped with the digest of its current attestation document and naming
// its recipient; a direct (point-to-point) payload is also encrypted to the
// recipient enclave. A [Receiver] returns a [Message] only for an envelope
// that passes every check listed on [Receiver.Receive]; anything else is
// dropped, counted by [DropReason] in [Receiver.Stats], and reported as an
// error that names the reason and repeats nothing from the frame. The
// package does no I/O and reads the clock only through the configured
// Clock.
//
// # Identity binding
//
// An enclave's attestation document carries, in user_data,
// [BindingUserData](cosigner ID, Ed25519 identity public key, X25519
// encryption public key) (see [Member.Binding]). A receiver accepts a
// document for a sender only if its user_data is the binding of that
// sender's roster keys, its PCRs are the roster's, it is not from a
// debug-mode enclave (unless allowed, in development), and it verifies
// against the pinned AWS Nitro root (or roots configured for development) at
// the receiver's clock. So a valid signature proves the frame comes from
// the key that a measured enclave image vouched for.
//
// # Recipients
//
// Every frame names its recipient under the signature, broadcasts
// included, and a Receiver accepts only frames addressed to itself
// (DropWrongRecipient), so a frame is accepted by the party it was sent to
// and, with the replay guard, only once. A broadcast message reaches each
// party as a frame of its own, sealed once per recipient with its own
// sequence number; the broadcast flag marks the payload as the message all
// parties get, but each frame belongs to one of them. Were broadcast
// frames unaddressed, a broker could move the copy sealed for bob into
// carol's inbox: its replay key (session, sender, round, seq) is not that
// of carol's own copy, so carol would accept the message a second time and
// hand her protocol a duplicate. Named recipients leave a broker able to
// drop, delay, duplicate and reorder frames, but not to redirect one.
//
// Envelope version 1 named no recipient in broadcast frames; version 2
// requires one in every frame. The field's meaning changed, so the version
// did: each version drops the other's frames as DropVersion rather than
// misreading them, and a cluster's cosigners must all run one version.
//
// # Envelope
//
// A frame is a tagged COSE_Sign1 (RFC 9052) in canonical CBOR:
//
//	18([
//	  h'A10127',          / protected: {1: -8}, alg EdDSA (Ed25519) /
//	  {},                 / unprotected: empty /
//	  payload,            / bstr: the body below /
//	  signature           / 64 bytes over Sig_structure, no external AAD /
//	])
//
// The body is a CBOR map in core deterministic encoding:
//
//	1  version       uint, 2
//	2  session       bstr, 32 bytes
//	3  protocol      tstr, 1..64 printable ASCII
//	4  round         uint, 0..65535
//	5  from          tstr, sender cosigner ID
//	6  to            tstr, recipient cosigner ID (every frame)
//	7  broadcast     bool, the payload is a broadcast message
//	8  seq           uint > 0, the sender's frame counter
//	9  time          uint, sender's clock, Unix milliseconds
//	10 att_digest    bstr, SHA-256 of the sender's current attestation document
//	11 enc           bstr, 32-byte HPKE encapsulated key (direct frames only)
//	12 payload       bstr, plaintext (broadcast) or HPKE ciphertext (direct)
//	13 attestation   bstr, the attestation document itself (optional)
//
// The signature covers the whole body: every field above, the recipient
// and the broadcast flag included, so nobody can re-address a frame or
// turn a direct frame into a broadcast without the sender's key.
//
// Decoding is strict: at most [MaxFrameSize] bytes, well-formed, no
// indefinite lengths, tags other than the outer 18, duplicate or unknown
// keys; every field has its type and size; and the bytes must be the
// canonical encoding of what was decoded, so every frame has exactly one
// byte form. A frame of another version is dropped as DropVersion.
//
// # Direct payloads: encrypt, then sign
//
// multi-party-sig sends secret material in direct messages (FROST keygen
// sends each party its share fₗ(i) as a plain scalar) and assumes a
// confidential channel. The broker and host must not see it, so a direct
// payload is sealed with HPKE (RFC 9180, base mode, DHKEM(X25519,
// HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, info "nitro-cosigner wire
// v1 direct payload") to the recipient's X25519 key, which its attestation
// binds like the identity key. The associated data is the canonical
// encoding of every header field (fields 1 to 10: version, session,
// protocol, round, from, to, broadcast, seq, time, att_digest). The whole
// body, ciphertext included, is then signed.
//
// Encrypt-then-sign is chosen because (1) receivers authenticate, window-
// and replay-check a frame before spending a decryption on it; (2) the
// signature covers the ciphertext and encapsulated key, so nobody can swap
// them; and (3) the usual weakness of encrypt-then-sign, a third party
// stripping the signature and re-signing the ciphertext as its own, is
// closed by the associated data: the ciphertext opens only under the
// original header, whose "from" names the original sender and whose
// att_digest names its document. The recipient cannot prove to others what
// plaintext a direct frame held (the signature is over the ciphertext); a
// culprit named by multi-party-sig for a bad direct message is named to us,
// not proven to third parties. Broadcast payloads are signed only.
//
// # Attestation documents
//
// A frame names its sender's document by digest; the Signer attaches the
// document itself to every frame of the first round of broadcasts, and of
// the first round of direct frames, it sends to each recipient in a
// session, and again after
// [Signer.SetAttestation], or whenever [Frame.Attach] is set. A Receiver
// verifies an attached document once and caches it by digest (at most
// MaxCachedAttestations, each until the first certificate of its chain
// expires); later frames carry only the 32-byte digest. A frame whose
// document is neither attached nor cached is dropped
// (DropUnknownAttestation); it is not recorded as seen, so a redelivered
// copy is accepted once the document has arrived. A broker that reorders
// a later round ahead of the first round's frames can therefore stall a
// session until its deadline; set Frame.Attach on every frame where that
// matters more than bytes.
//
// # Replay guard and its memory
//
// A frame is accepted only if its timestamp is within Window (default one
// minute) of the receiver's clock, either way, and (session, sender, round,
// seq) was not accepted before; a frame for another party never reaches
// the guard (see Recipients). Each accepted key is kept exactly until
// its timestamp leaves the window (timestamp + Window), after which the
// timestamp check refuses any copy; expired keys are swept at most once per
// Window. Memory is therefore bounded by the frames accepted in about two
// windows, and hard-capped at MaxReplayEntries keys in all (default 2^18,
// about 25 MB), MaxReplaySessions sessions and MaxFramesPerSession keys per
// session: beyond the caps frames are refused (DropReplayCapacity), never
// accepted unchecked. Only frames that passed
// the signature and party-set checks reach the guard, so only session
// parties can fill it. [Receiver.EndSession] drops a session's keys at once
// and refuses its frames for two windows (DropSessionEnded); the Sessions
// provider forgetting the session refuses them for good
// (DropNotInSession). Sequence numbers come from one counter per Signer,
// so they never repeat within the Signer's life; it starts at a random
// 62-bit value, so a restarted process's new Signer does not repeat its
// predecessor's numbers in a long-lived session either.
//
// # Reliable broadcast: what multi-party-sig does and what remains
//
// multi-party-sig v0.7.0-alpha-2025-01-28 (pkg/protocol/handler.go) runs an
// echo-broadcast check itself, for every broadcast round but the last:
//
//   - When a party has received every party's broadcast of round r
//     (receivedAll), it hashes them, in party order and including its own,
//     into broadcastHashes[r] (each message hash covers SSID, sender,
//     protocol, round, content and its own BroadcastVerification).
//   - Every message it sends in round r+1, broadcast or direct, carries
//     that hash as BroadcastVerification.
//   - Before finalizing round r+1 it checks that every received round r+1
//     message carries a hash equal to its own broadcastHashes[r]
//     (checkBroadcastHash) and aborts with "broadcast verification failed"
//     otherwise. Each round r+1 needs a message from every other party, so
//     each pair of parties confirms it saw the same round-r broadcasts, and
//     since the hash of round r+1 covers those fields, the check chains.
//
// The final round of a protocol has no round after it, so its broadcasts
// are never echoed. In this version the final round is a broadcast round
// in every protocol we run: CMP keygen and refresh (round 5, Schnorr
// responses), CMP sign (round 5, σ shares), CMP presign (round 7 presign7,
// or abort1), presign-online sign (round 8 sign2, or abort2; it is the only
// broadcast round of that protocol, so nothing of it is echoed), FROST
// keygen (round 3, chain-key decommitments, beside the direct shares) and
// FROST sign (round 3, z shares). Each of those values is bound by an
// earlier, echoed commitment or checked against the result (a signature
// must verify), so an equivocating party cannot make honest parties accept
// different outputs; it can make some parties finish and others abort.
// For signing that only costs a retry; for keygen, refresh and presign it
// would leave some cosigners storing a key, refreshed shares or a
// presignature that others dropped.
//
// So enclave/mpc, for keygen, refresh and presign, before it persists or
// reports a result (see its package doc for what this does and does not
// guarantee): record each party's final-round broadcast
// (accepted Messages and our own) in a [Transcript]; send every other party
// a broadcast frame with Protocol [EchoProtocol], the final round number
// and the 32-byte [Transcript.Digest] as payload; wait (within the session
// deadline) for every other party's echo and check it with
// [Transcript.CheckEcho]; and commit only if all agree. A party that sent
// two different signed broadcasts is proven by the two frames
// (Transcript.Record reports it when both reach one party).
//
// Abort messages (round 0) are unauthenticated text in multi-party-sig;
// inside our frames they are signed, so an abort is attributable to its
// sender.
package wire
