// Package api is the cosigner's gRPC server (proto/cosigner/v1) over a
// Node, the enclave's keys, signing, policy, audit log and attestation in
// domain types. It owns transport security, authentication, authorization,
// rate limits, validation, idempotency and the mapping of errors to
// status codes; it makes no signing or policy decision of its own.
//
// # Transport
//
// TLS terminates in the enclave, with TLS 1.3 only. The server's key and
// self-signed certificate are made inside the enclave at boot (ServerCert);
// clients trust it by checking that an attestation document from
// GetAttestation binds its SHA-256 (the server refuses to return one that
// binds another certificate). Every caller presents a client certificate
// that verifies against Config.ClientCAs (tls.RequireAndVerifyClientCert);
// without one, the handshake fails.
//
// # Roles
//
// A caller's roles come from its verified certificate's URI SANs
// (urn:nitro-cosigner:role:{admin,signer,auditor}, see CallerFromCert),
// never from a message. One table (methodRoles) says who may call what;
// a method missing from it is denied to everyone:
//
//	KeyService        CreateKey, RefreshKey                 admin
//	                  GetKey, ListKeys, DerivePublicKey     admin, signer, auditor
//	SigningService    Sign                                  signer
//	                  GetSignOperation                      signer, auditor
//	PolicyService     GetPolicy                             admin, signer, auditor
//	                  SetPolicy                             admin
//	AuditService      ExportAudit, StreamAudit              auditor
//	AttestationService GetAttestation                       admin, signer, auditor
//	grpc.health.v1, grpc.reflection.v1 and v1alpha          admin, signer, auditor
//
// # Every call, in order
//
//  1. A panic anywhere below is recovered, logged with its stack, and
//     answered INTERNAL "internal error"; the server keeps serving. Panics
//     in operations running in the background end that operation the same
//     way.
//  2. Authentication: the verified leaf certificate must name a known
//     role, else PERMISSION_DENIED.
//  3. Rate limit per caller (Caller.ID, i.e. per client key): a token
//     bucket (RateLimit); over it, RESOURCE_EXHAUSTED. Limiters live in a
//     bounded table; idle ones are evicted first.
//  4. Authorization by the table above: PERMISSION_DENIED.
//  5. A request message that does not decode is INVALID_ARGUMENT
//     "malformed request message" (the server's codec marks it instead of
//     letting gRPC answer INTERNAL with the decoder's text). gRPC itself
//     answers, with its own text, a message larger than
//     Config.MaxRecvMsgSize (default 1 MiB: RESOURCE_EXHAUSTED) and a
//     streaming call without a request message (INTERNAL).
//  6. Validation of every field by the rules of the .proto comments: bad
//     input is INVALID_ARGUMENT with a message that names the field and
//     what it must be, never the value sent.
//  7. The Node call, and the mapping of its error (below).
//
// # Errors
//
// A Node error is mapped by the sentinel it wraps, with a fixed message
// (per RPC where one says more, e.g. "key not found"); its own text is
// only logged:
//
//	ErrNotFound           NOT_FOUND
//	ErrInvalidArgument    INVALID_ARGUMENT (OUT_OF_RANGE in the audit RPCs: start_seq past the end)
//	ErrFailedPrecondition FAILED_PRECONDITION
//	ErrPermissionDenied   PERMISSION_DENIED (SetPolicy: too few valid approvals)
//	ErrUnavailable        UNAVAILABLE
//	ErrDeadline           DEADLINE_EXCEEDED
//	ErrAborted            ABORTED
//	ErrUnimplemented      UNIMPLEMENTED
//	ErrDataLoss           DATA_LOSS
//
// Anything else is INTERNAL "internal error", logged with its text. A call
// whose context ended is CANCELED or DEADLINE_EXCEEDED; a background
// operation that ran past Config.OperationTimeout is DEADLINE_EXCEEDED.
// ALREADY_EXISTS, ABORTED and RESOURCE_EXHAUSTED also come from the
// idempotency and capacity rules below.
//
// # Idempotency
//
// CreateKey, RefreshKey, Sign and SetPolicy take an idempotency_key (1 to
// 128 printable ASCII characters, required). Its scope is (caller ID, full
// method, key); the record's key in the store is a hash of the three (for
// Sign: the operation ID, itself a hash of caller ID and key). The
// request's identity is SHA-256 of its deterministic protobuf encoding with
// idempotency_key cleared (and, for Sign, max_wait, which says how long to
// wait and not what to do).
//
//   - The operation runs in the background, detached from the call, under
//     Config.OperationTimeout: a client that leaves does not stop it.
//   - When it ends without error (a sign: in any final state, REJECTED and
//     FAILED included), its final response (the last stream message for
//     CreateKey and RefreshKey) is stored for IdempotencyTTL (24 h) through
//     Config.Idempotency before it is returned. A repeat with the same
//     request then returns it without calling the Node; a streaming RPC
//     sends that one last message.
//   - The same key with a different request is ALREADY_EXISTS, whether the
//     first call is running or finished.
//   - A repeat while the first call runs: Sign waits on the same
//     operation; CreateKey and RefreshKey attach to the running operation
//     and stream its events from the first; SetPolicy is ABORTED "in
//     progress; retry".
//   - An error is not stored: the same key may be used again, and runs
//     again. If the store cannot be written, the error is logged and the
//     response still returned; a repeat then runs again. The store being
//     unreadable is UNAVAILABLE and nothing runs.
//   - A restart forgets running operations; a repeat of one starts it
//     again (Sign with the same OperationID, derived from caller and key).
//
// # Sign operations
//
// Sign returns a SignOperation ("signOperations/{32 hex}", the ID derived
// from the caller ID and the idempotency key) when it ends, after max_wait
// (default 30 s, at most 120 s), or 0.5 s before the call's deadline,
// whichever is first; an unfinished operation is PENDING and goes on.
// A policy or approval refusal is an operation in state REJECTED with its
// reason. A Node error before any client saw the operation fails the call
// (INVALID_ARGUMENT for a payload that does not parse, NOT_FOUND,
// FAILED_PRECONDITION) and leaves no operation; after, it makes the
// operation FAILED with the closest reason. Operations live in an
// in-memory table of Config.MaxOperations (default 10 000): a finished one
// is kept for OperationRetention (24 h) or until the bound evicts it, the
// earliest finished first; when every operation in the table is running,
// Sign is RESOURCE_EXHAUSTED. GetSignOperation (any signer or auditor, by
// name) reads the table, and for an operation no longer there (evicted,
// or finished before a restart) its idempotency record, so a finished
// operation can be read for IdempotencyTTL; an operation that was running
// at a restart is lost.
//
// # Limits
//
// At most Config.MaxInFlight (default 256) background operations run at
// once; more are RESOURCE_EXHAUSTED "too many operations in progress". A
// running key operation keeps at most 64 progress events. ListKeys'
// page_size is 1 to 1000 (0 means 100); page tokens are opaque. ExportAudit chunks are 1 byte to
// 64 KiB. Per connection, at most 256 concurrent streams and 64 KiB of
// headers; handshakes must finish in 10 s.
//
// # Shutdown
//
// Serve returns when its context ends: health turns NOT_SERVING, waiting
// calls (Sign, key operation streams, SetPolicy, StreamAudit) return,
// the rest get until Config.ShutdownTimeout and are then cut, and
// background operations get what is left of that deadline before they are
// canceled.
package api
