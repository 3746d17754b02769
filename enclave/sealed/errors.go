package sealed

import (
	"errors"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
)

// Errors callers branch on. Every error Init and Open return wraps at most
// one of them, except ErrUnavailable, which also wraps the last attempt's
// error (itself wrapping replica.ErrUnavailable or kms.ErrUnavailable).
var (
	// ErrConfig means the Config is unusable, or the stored wrapped key
	// names another KMS key or cosigner than the Config does.
	ErrConfig = errors.New("sealed: bad configuration")

	// ErrNoState means there is no sealed state to open: this cosigner was
	// never initialized under the configured bucket and prefix, or an
	// earlier init did not finish (the message says which). Only Init
	// starts a new cosigner.
	ErrNoState = errors.New("sealed: no sealed state")

	// ErrExists means Init found sealed state (or part of it) already; an
	// existing cosigner is never started over.
	ErrExists = errors.New("sealed: sealed state already exists")

	// ErrUnavailable means S3 or KMS could not be reached within the retry
	// budget. Nothing was changed by the call that failed; the caller may
	// try again later.
	ErrUnavailable = errors.New("sealed: S3 or KMS unavailable")

	// ErrNotAllowed is kms.ErrNotAllowed: the KMS key policy does not allow
	// this enclave's measurements (the message names PCR0). It is not
	// retried: only another image or another policy changes it.
	ErrNotAllowed = kms.ErrNotAllowed

	// ErrCorrupt means stored state failed verification or is incomplete:
	// a malformed wrapped key object, a missing wrapped key beside existing
	// state, or replicated state that replica refused — then the chain also
	// holds a *replica.CorruptError naming the object, generation and
	// sequence number. Not retried.
	ErrCorrupt = errors.New("sealed: stored state failed verification")

	// ErrFenced is keystore.ErrFenced, returned by mutations once another
	// instance took over this cosigner: stop and Open again.
	ErrFenced = keystore.ErrFenced
)
