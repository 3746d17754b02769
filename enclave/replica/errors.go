package replica

import (
	"errors"
	"fmt"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
)

var (
	// ErrFenced is keystore.ErrFenced: another instance took over this
	// cosigner's history (or a change rolled back here reached S3), so this
	// replica and its keystore stop writing.
	ErrFenced = keystore.ErrFenced

	// ErrUnavailable means S3 could not be reached or refused a request.
	// The operation did not happen (or its outcome is unknown, see the
	// package comment); the caller retries with backoff.
	ErrUnavailable = errors.New("replica: S3 unavailable")

	// ErrNoState means there is no manifest under the prefix: there is no
	// cosigner to restore. Only Init starts a new one.
	ErrNoState = errors.New("replica: no replicated state (no manifest); refusing to start empty without init")

	// ErrExists means Init found objects under the prefix already.
	ErrExists = errors.New("replica: replicated state already exists; refusing to init over it")

	// ErrCorrupt means replicated state failed verification. A
	// *CorruptError carries the position.
	ErrCorrupt = errors.New("replica: replicated state failed verification")
)

// CorruptError names the object and position that failed verification. Its
// message never echoes object contents.
type CorruptError struct {
	Object string // object key (relative to the prefix)
	Gen    uint64 // generation, if the object has one
	Seq    uint64 // sequence number, if the object has one
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("replica: %s (generation %d, seq %d): %s", e.Object, e.Gen, e.Seq, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func corrupt(object string, gen, seq uint64, reason string) error {
	return &CorruptError{Object: object, Gen: gen, Seq: seq, Reason: reason}
}
