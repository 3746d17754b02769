package coord

import (
	"errors"
	"fmt"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// Code says why a party refused a proposal. Codes are the only thing a
// refusal carries: never text chosen by a peer.
type Code uint8

// Refusal codes.
const (
	CodeInternal   Code = iota + 1 // the party failed to decide (fail closed)
	CodeInvalid                    // malformed proposal or request
	CodePolicy                     // the party's policy denies it
	CodeApproval                   // the approval callback did not approve
	CodeBusy                       // too many sessions in progress
	CodeUnknownKey                 // the party does not hold the key or epoch
	// CodePresignature: the presignature the proposal names is not
	// available to it here: this party does not hold it, or has promised
	// it to another sign (see enclave/judge). The initiator may propose
	// again with another presignature, or a full sign.
	CodePresignature
)

func (c Code) String() string {
	switch c {
	case CodeInternal:
		return "internal"
	case CodeInvalid:
		return "invalid"
	case CodePolicy:
		return "policy"
	case CodeApproval:
		return "approval"
	case CodeBusy:
		return "busy"
	case CodeUnknownKey:
		return "unknown_key"
	case CodePresignature:
		return "presignature_unavailable"
	}
	return "unknown_code"
}

// Refusal is what a Judge returns to decline a proposal with a code. Any
// other error from a Judge is sent as CodeInternal. Err stays local.
type Refusal struct {
	Code Code
	Err  error
}

func (r *Refusal) Error() string {
	if r.Err == nil {
		return fmt.Sprintf("coord: refused (%s)", r.Code)
	}
	return fmt.Sprintf("coord: refused (%s): %v", r.Code, r.Err)
}

func (r *Refusal) Unwrap() error { return r.Err }

// codeOf is the code sent for a Judge's error.
func codeOf(err error) Code {
	var r *Refusal
	if errors.As(err, &r) && r.Code >= CodeInternal && r.Code <= CodePresignature {
		return r.Code
	}
	if errors.Is(err, ErrInvalid) {
		return CodeInvalid
	}
	return CodeInternal
}

// RefusedError is the initiator's error when a party refused.
type RefusedError struct {
	Party string
	Code  Code
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("coord: party %s refused the session (%s)", e.Party, e.Code)
}

// NoAnswerError is the initiator's error when some parties did not accept
// in time (they may be down). It matches ErrDeadline.
type NoAnswerError struct {
	Missing []mpc.PartyID
}

func (e *NoAnswerError) Error() string {
	return fmt.Sprintf("coord: no answer from %v before the accept timeout", e.Missing)
}

func (e *NoAnswerError) Unwrap() error { return ErrDeadline }

// Errors callers branch on.
var (
	// ErrDeadline means the parties did not all accept before the deadline.
	ErrDeadline = errors.New("coord: parties did not all accept before the deadline")
	// ErrCancelled means the initiator cancelled the session before "go".
	ErrCancelled = errors.New("coord: the initiator cancelled the session")
	// ErrBusy means this party runs as many sessions as it may.
	ErrBusy = errors.New("coord: too many sessions in progress")
	// ErrNotStored means the initiator's keygen or refresh finished but
	// not every other party confirmed in time that its share is durable:
	// the result must not be reported done (some shares may be missing;
	// parties that stored keep theirs).
	ErrNotStored = errors.New("coord: not every party confirmed its new share is stored")
)
