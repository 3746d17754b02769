package wire

import (
	"errors"
	"sync/atomic"
)

// DropReason says why a Receiver refused a frame. Its String form is a
// stable snake_case name, fit for a metrics label.
type DropReason uint8

// The reasons a frame is dropped, in the order Receive checks them.
const (
	// DropMalformed: too large, not a canonical COSE_Sign1 with EdDSA, or
	// a field of the wrong type or size.
	DropMalformed DropReason = iota + 1
	// DropVersion: an envelope version this package does not know.
	DropVersion
	// DropOwnFrame: a frame we sent, reflected back by the broker.
	DropOwnFrame
	// DropUnknownSender: the sender is not in the roster.
	DropUnknownSender
	// DropWrongRecipient: a frame, direct or broadcast, addressed to
	// another cosigner.
	DropWrongRecipient
	// DropNotInSession: the session is unknown (never proposed or ended),
	// or the sender or we are not among its parties.
	DropNotInSession
	// DropSessionEnded: the session was ended with Receiver.EndSession.
	DropSessionEnded
	// DropBadSignature: the signature does not verify with the sender's
	// roster identity key.
	DropBadSignature
	// DropStale: the timestamp is outside the window around our clock.
	DropStale
	// DropReplay: the (session, sender, round, sequence) was accepted
	// before.
	DropReplay
	// DropUnknownAttestation: no document is attached and none with that
	// digest is cached.
	DropUnknownAttestation
	// DropAttestationMismatch: the attached document's digest is not the
	// one the header names.
	DropAttestationMismatch
	// DropAttestationInvalid: the document is malformed, its signature or
	// chain to the trusted root does not verify.
	DropAttestationInvalid
	// DropAttestationExpired: the document's leaf certificate is not valid
	// at our clock, or the document is older than the configured maximum.
	DropAttestationExpired
	// DropAttestationDebug: the document comes from a debug-mode enclave
	// and debug is not allowed.
	DropAttestationDebug
	// DropAttestationPCR: the document's PCRs differ from the roster's.
	DropAttestationPCR
	// DropAttestationBinding: the document's user_data is not the binding
	// of the sender's roster keys (a document of another identity).
	DropAttestationBinding
	// DropDecrypt: a direct payload that does not open with our key.
	DropDecrypt
	// DropReplayCapacity: the replay guard is full; the frame is refused
	// rather than risk accepting a replay.
	DropReplayCapacity

	numDropReasons = iota + 1
)

var dropNames = [numDropReasons]string{
	DropMalformed:           "malformed",
	DropVersion:             "unknown_version",
	DropOwnFrame:            "own_frame",
	DropUnknownSender:       "unknown_sender",
	DropWrongRecipient:      "wrong_recipient",
	DropNotInSession:        "not_in_session",
	DropSessionEnded:        "session_ended",
	DropBadSignature:        "bad_signature",
	DropStale:               "stale_timestamp",
	DropReplay:              "replay",
	DropUnknownAttestation:  "unknown_attestation",
	DropAttestationMismatch: "attestation_digest_mismatch",
	DropAttestationInvalid:  "attestation_invalid",
	DropAttestationExpired:  "attestation_expired",
	DropAttestationDebug:    "attestation_debug",
	DropAttestationPCR:      "attestation_pcr_mismatch",
	DropAttestationBinding:  "attestation_identity_mismatch",
	DropDecrypt:             "decrypt_failed",
	DropReplayCapacity:      "replay_guard_full",
}

// String returns the reason's metrics name, or "unknown".
func (r DropReason) String() string {
	if r == 0 || int(r) >= len(dropNames) {
		return "unknown"
	}
	return dropNames[r]
}

// DropReasons returns every reason, in order.
func DropReasons() []DropReason {
	out := make([]DropReason, 0, numDropReasons-1)
	for r := DropMalformed; r < numDropReasons; r++ {
		out = append(out, r)
	}
	return out
}

// ErrDropped is wrapped by every error Receive returns.
var ErrDropped = errors.New("wire: frame dropped")

// DropError is the error Receive returns: it names the reason and nothing
// from the frame.
type DropError struct {
	Reason DropReason
}

func (e *DropError) Error() string { return "wire: frame dropped: " + e.Reason.String() }

// Is makes errors.Is(err, ErrDropped) true.
func (e *DropError) Is(target error) bool { return target == ErrDropped }

func drop(r DropReason) error { return &DropError{Reason: r} }

// reasonOf returns the reason of an error from the checks, DropMalformed for
// any other error.
func reasonOf(err error) DropReason {
	var d *DropError
	if errors.As(err, &d) {
		return d.Reason
	}
	return DropMalformed
}

// Stats is a snapshot of a Receiver's counters and memory, for metrics.
type Stats struct {
	// Accepted counts frames Receive returned.
	Accepted uint64
	// Dropped counts refused frames by reason; every reason is present.
	Dropped map[DropReason]uint64
	// CachedAttestations is the number of verified documents cached.
	CachedAttestations int
	// ReplaySessions and ReplayEntries measure the replay guard.
	ReplaySessions, ReplayEntries int
}

// counters are the Receiver's atomic counters.
type counters struct {
	accepted atomic.Uint64
	dropped  [numDropReasons]atomic.Uint64
}

func (c *counters) drop(r DropReason) {
	if r > 0 && r < numDropReasons {
		c.dropped[r].Add(1)
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{Accepted: c.accepted.Load(), Dropped: make(map[DropReason]uint64, numDropReasons)}
	for _, r := range DropReasons() {
		s.Dropped[r] = c.dropped[r].Load()
	}
	return s
}
