package api

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/payload"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
)

// Node is what the API serves: this enclave's keys, signing, policy, audit
// log and attestation, in domain types. enclave/node implements it; the
// API tests fake it. Errors a Node returns wrap the sentinels below so
// the API can map them to status codes; any other error is INTERNAL and
// its text never reaches a client.
type Node interface {
	// Self is this cosigner's ID.
	Self() mpc.PartyID

	// CreateKey runs a keygen among req.Parties (this cosigner included)
	// and returns the stored key. progress, if not nil, is called in
	// order as the operation moves on; it must not block.
	CreateKey(ctx context.Context, req CreateKeyParams, progress func(Progress)) (Key, error)
	// RefreshKey refreshes a key's shares among all its parties.
	RefreshKey(ctx context.Context, caller Caller, id mpc.KeyID, progress func(Progress)) (Key, error)
	// Key returns a key (ErrNotFound).
	Key(ctx context.Context, id mpc.KeyID) (Key, error)
	// ListKeys returns up to limit keys ordered by ID after the given one
	// (nil: from the start), and whether more follow.
	ListKeys(ctx context.Context, after *mpc.KeyID, limit int) ([]Key, bool, error)
	// DerivePublicKey derives a non-hardened child public key.
	DerivePublicKey(ctx context.Context, id mpc.KeyID, path []uint32) (mpc.DerivedKey, mpc.Scheme, error)

	// Sign runs a sign to its end: every signer parses the payload, applies
	// its policy and approval, and signs. A refusal by policy or approval
	// is an outcome (StateRejected), not an error; errors are for requests
	// that never became an operation (bad payload: ErrInvalidArgument;
	// unknown key: ErrNotFound; payload for another scheme:
	// ErrFailedPrecondition).
	Sign(ctx context.Context, req SignParams) (SignOutcome, error)

	// Policy returns the current policy (ErrNotFound if none).
	Policy(ctx context.Context) (PolicyDoc, error)
	// SetPolicy stores a new policy version if approvals meet the admin
	// quorum (ErrPermissionDenied otherwise; ErrFailedPrecondition for a
	// version not above the current one; ErrInvalidArgument for a
	// malformed document).
	SetPolicy(ctx context.Context, caller Caller, doc []byte, approvals []policy.Approval) (PolicyDoc, error)

	// ExportAudit writes the audit log from seq from on in pkg/audit's
	// export format (header, entries, signed end record) and returns the
	// last seq written. Past the end: ErrInvalidArgument.
	ExportAudit(ctx context.Context, from uint64, w io.Writer) (uint64, error)
	// AuditHeader describes the log for entries from seq from on
	// (StreamAudit's header).
	AuditHeader(ctx context.Context, from uint64) (auditfmt.Header, error)
	// StreamAudit calls fn for every record from seq from on, waiting for
	// new ones, until ctx ends or fn fails.
	StreamAudit(ctx context.Context, from uint64, fn func(auditfmt.Record) error) error

	// Attest returns a fresh attestation document whose nonce is nonce and
	// whose user_data is wire.BindingUserData(cosigner ID, identity key,
	// encryption key, SHA-256 of the API's TLS certificate).
	Attest(ctx context.Context, nonce []byte) (Attestation, error)
}

// Errors a Node wraps; the API maps each to a status code.
var (
	ErrNotFound           = errors.New("not found")           // NOT_FOUND
	ErrInvalidArgument    = errors.New("invalid argument")    // INVALID_ARGUMENT
	ErrFailedPrecondition = errors.New("failed precondition") // FAILED_PRECONDITION
	ErrPermissionDenied   = errors.New("permission denied")   // PERMISSION_DENIED
	ErrUnavailable        = errors.New("unavailable")         // UNAVAILABLE: peers unreachable, try again
	ErrDeadline           = errors.New("deadline exceeded")   // DEADLINE_EXCEEDED
	// ErrAborted: a key operation's MPC session failed (ABORTED).
	ErrAborted = errors.New("aborted")
	// ErrUnimplemented: the key's scheme has no such operation, e.g. a
	// refresh of a FROST key (UNIMPLEMENTED).
	ErrUnimplemented = errors.New("unimplemented")
	// ErrDataLoss: stored data failed its integrity check, e.g. an audit
	// entry that does not verify (DATA_LOSS).
	ErrDataLoss = errors.New("data loss")
)

// Key is a key as the API shows it.
type Key struct {
	Info        mpc.KeyInfo
	DisplayName string
	Created     time.Time
	Updated     time.Time
}

// CreateKeyParams asks for a new key.
type CreateKeyParams struct {
	Caller      Caller
	RequestID   string // the idempotency key
	Scheme      mpc.Scheme
	Threshold   int
	Parties     []mpc.PartyID
	DisplayName string
}

// ProgressKind is a step of a key operation.
type ProgressKind int

// Steps of a key operation, in order.
const (
	ProgressQueued ProgressKind = iota + 1
	ProgressSessionStarted
)

// Progress is one step of a key operation.
type Progress struct {
	Kind     ProgressKind
	At       time.Time
	Session  mpc.SessionID // SessionStarted
	Key      mpc.KeyID     // SessionStarted: the key being made
	Parties  []mpc.PartyID // SessionStarted
	Deadline time.Time     // SessionStarted
}

// SignParams asks for a signature of one payload.
type SignParams struct {
	Caller      Caller
	OperationID string // unique; the API derives it from the idempotency key
	Key         mpc.KeyID
	Path        []uint32
	Note        string
	Payload     payload.Request
}

// SignState is where a sign operation ended.
type SignState int

// Final states.
const (
	StateSucceeded SignState = iota + 1
	StateRejected            // a signer's policy or approval refused
	StateFailed              // the session failed (abort, deadline, busy, internal)
)

// FailureReason says why a sign did not succeed.
type FailureReason int

// Reasons, matching the API's SignFailureReason.
const (
	ReasonNone FailureReason = iota
	ReasonPolicyDenied
	ReasonApprovalDenied
	ReasonUnknownKey
	ReasonBusy
	ReasonSessionAborted
	ReasonDeadlineExceeded
	ReasonInternal
)

// SignOutcome is a finished sign operation.
type SignOutcome struct {
	State     SignState
	Reason    FailureReason
	RefusedBy mpc.PartyID   // the signer that refused (Rejected)
	Culprits  []mpc.PartyID // parties an aborted session blamed
	Signers   []mpc.PartyID
	Digests   [][32]byte
	Created   time.Time
	Completed time.Time
	// Exactly one is set when State is StateSucceeded, by payload kind.
	Ethereum *payload.EthSigned // transactions, EIP-191, EIP-712
	PSBT     *payload.PSBTSigned
	Raw      []byte // raw digest: r||s||recovery-id (ECDSA) or the 64-byte BIP-340 signature
}

// PolicyDoc is a stored policy version.
type PolicyDoc struct {
	Version  uint64
	Document []byte
	Updated  time.Time
}

// Attestation is a fresh attestation and what it binds.
type Attestation struct {
	Document       []byte
	CosignerID     string
	IdentityKey    []byte // Ed25519
	EncryptionKey  []byte // X25519
	TLSCertificate [32]byte
}
