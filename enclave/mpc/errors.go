package mpc

import (
	"errors"
	"fmt"
)

// Sentinel errors: conditions callers branch on. Returned errors wrap them.
var (
	// ErrInvalidRequest: the request is malformed or not allowed (bad party
	// set, threshold, path, digest, or a presignature with a derived key).
	ErrInvalidRequest = errors.New("mpc: invalid request")
	// ErrDeadline: the session did not finish before its deadline. Peers
	// that dropped out, lost messages or disagree on the session ID all end
	// here.
	ErrDeadline = errors.New("mpc: session deadline passed")
	// ErrKeyNotFound: the store has no such key. Store implementations wrap
	// it.
	ErrKeyNotFound = errors.New("mpc: key not found")
	// ErrEpochMismatch: the request names another key epoch than the one
	// this party holds.
	ErrEpochMismatch = errors.New("mpc: key epoch mismatch")
	// ErrPresignatureUnavailable: this party has no presignature with the
	// requested ID for the key and signer set (never made, already used,
	// evicted, or made under an older epoch).
	ErrPresignatureUnavailable = errors.New("mpc: presignature unavailable")
	// ErrSessionIDReused: this engine has already run or is running a
	// session with that ID.
	ErrSessionIDReused = errors.New("mpc: session ID already used")
	// ErrStore: the store refused or failed; the operation's result was
	// discarded.
	ErrStore = errors.New("mpc: storing key failed")
)

// AbortError reports a session the protocol aborted. Culprits names the
// parties the library (or the engine, for malformed messages) blamed; it is
// empty when nobody could be identified.
type AbortError struct {
	Session  SessionID
	Op       Op
	Culprits []PartyID
	// Reason is the library's or the engine's own description. It never
	// carries text chosen by a peer.
	Reason string
}

func (e *AbortError) Error() string {
	return fmt.Sprintf("mpc: %s session %s aborted, culprits %v: %s", e.Op, e.Session, e.Culprits, e.Reason)
}

// PeerAbortError reports a session that a peer announced it aborted. The
// reporter is not a culprit: an honest party that catches a cheater aborts
// and tells everyone. The text a peer sends with its abort is dropped.
type PeerAbortError struct {
	Session  SessionID
	Op       Op
	Reporter PartyID
}

func (e *PeerAbortError) Error() string {
	return fmt.Sprintf("mpc: %s session %s aborted by peer %s", e.Op, e.Session, e.Reporter)
}

// sessionErr wraps err with the session's op and ID.
func sessionErr(op Op, id SessionID, err error) error {
	return fmt.Errorf("mpc: %s session %s: %w", op, id, err)
}
