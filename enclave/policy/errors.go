package policy

import (
	"errors"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/quorum"
)

// Sentinel errors. Callers test them with errors.Is; the package wraps them
// with context that never echoes the untrusted input.
var (
	// ErrMalformed means a policy document does not parse or does not
	// validate (see Parse).
	ErrMalformed = errors.New("policy: malformed policy document")

	// ErrQuorum means the approvals of a new document do not reach the
	// admin threshold (see VerifyApprovals).
	ErrQuorum = quorum.ErrQuorum

	// ErrAdminSet means the configured admin set is unusable: no keys, an
	// unsupported or repeated key, a threshold out of range.
	ErrAdminSet = quorum.ErrAdminSet

	// ErrStaleVersion means a new document's version is not greater than
	// the stored one's.
	ErrStaleVersion = errors.New("policy: document version is not newer than the stored one")

	// ErrNoPolicy means no policy document is stored yet.
	ErrNoPolicy = errors.New("policy: no policy document stored")
)
