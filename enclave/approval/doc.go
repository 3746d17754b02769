// Package approval asks an external approval handler whether the cosigner
// may sign, over HTTPS, with both the question and the answer signed as
// JWTs. It is the last gate before a signature, after the in-enclave
// policy: only an answer that passes every check below approves.
//
// # Contract
//
// [Client.Ask] sends one [Request] and returns one [Decision]. The result
// is exactly one of:
//
//   - a Decision with Verdict [Approve], [Reject] or [Retry] and a nil
//     error: the handler's signed answer, checked in full. Only Approve
//     allows the signature; Reject and Retry carry the handler's reason,
//     sanitized (printable, at most [MaxReasonBytes] bytes).
//   - the zero Decision (Verdict [NoVerdict]) and an error: there is no
//     valid answer, and therefore no signature. Nothing from an unverified
//     answer is ever returned together with an error.
//
// Fail closed: a timeout, a transport or TLS failure, an HTTP status other
// than 200, a content type other than application/jwt, an oversized body,
// a body that is not a JWT, a JWT with another algorithm than the pinned
// key's (alg "none", HMAC, ...), a bad signature, an expired answer or one
// issued before the question, an answer bound to another question, an
// unknown decision: each is an error, never an approval. Callers branch
// on the sentinel errors:
//
//   - [ErrTimeout]: no answer before the deadline (Config.Timeout or the
//     caller's context, whichever ends first); it also matches
//     context.DeadlineExceeded. A cancelled context returns
//     context.Canceled instead.
//   - [ErrTransport]: the handler could not be reached or TLS failed (an
//     untrusted or misnamed certificate, a failed handshake), or the
//     connection broke.
//   - [ErrBadSignature]: the answer is a JWT, but not one signed by the
//     pinned handler key with its algorithm.
//   - [ErrExpired]: a validly signed answer that is expired, not yet
//     valid, or issued before the question.
//   - [ErrMismatch]: a validly signed answer to another question (another
//     request ID or JWT ID: a replay), for another audience, or from
//     another issuer.
//   - [ErrUnexpected]: anything else the handler sent: an HTTP status
//     other than 200, a redirect, a wrong content type, an oversized or
//     malformed body, a "crit" header, a missing claim, an unknown
//     decision.
//   - [ErrRequest] (the request cannot be sent) and [ErrConfig] (New).
//
// A failing Config.Signer gives an error wrapping the signer's own, and
// nothing is sent: the package checks each signature it makes before
// sending it.
//
// The handler decides; this package does not retry. [Client.AskWithRetry]
// is the bounded exception: it asks again (with a fresh JWT ID) only while
// the handler answers RETRY, up to a number of attempts and within the
// caller's context.
//
// # Wire format
//
// The question is an HTTPS POST to Config.URL with Content-Type and Accept
// application/jwt, whose body is a compact JWS signed by Config.Signer:
// ES256 for a P-256 key, RS256 for an RSA key of 2048 bits or more. Its
// header carries "kid" (Config.KeyID) when set; its claims:
//
//	iss             Config.CosignerID
//	aud             Config.Audience (the handler's name; a one-element array)
//	iat, exp        now, and now + Config.Timeout rounded up to a second
//	jti             crypto/rand.Text (128 bits or more), fresh per question
//	request_id      Request.ID (the same on every retry)
//	key_id          Request.KeyID
//	caller          Request.Caller
//	kind            Request.Kind
//	payload         Request.Payload, as JSON
//	payload_sha256  hex SHA-256 of the payload member's exact bytes
//
// The answer is HTTP 200 with Content-Type application/jwt, at most
// Config.MaxResponseBytes bytes (surrounding ASCII whitespace ignored),
// whose body is a compact JWS signed by Config.HandlerKey. Checks, in
// order:
//
//  1. the header's alg is the one fixed by the pinned key's type (ES256
//     for P-256, RS256 for RSA); the header never chooses the key or the
//     algorithm (kid, jku, jwk and x5u are ignored) and a "crit" header is
//     refused;
//  2. the signature verifies under Config.HandlerKey;
//  3. iss is Config.Audience and aud contains Config.CosignerID;
//  4. exp is present and not passed, nbf (if present) has passed, and iat
//     is present, not in the future, and not before the question's iat,
//     all with Config.ClockSkew of leeway;
//  5. request_id and request_jti equal the question's request_id and jti,
//     so an answer serves one question only;
//  6. decision is exactly "APPROVE", "REJECT" or "RETRY"; reason is
//     optional; retry_after (seconds) is optional and clamped to
//     [0, MaxRetryAfter].
//
// # Transport
//
// The caller builds Config.HTTPClient, normally with [NewHTTPClient] on
// the enclave's egress dialer (enclave/egress), so the connection goes
// through the parent's CONNECT proxy while TLS runs from inside the
// enclave to the handler: the host sees only ciphertext. Redirects are
// refused and cookies are not kept, whatever the client given. Plain
// http:// URLs are refused unless Config.AllowInsecureHTTP is set, which
// exists for tests only.
//
// # Logging
//
// One line per question: request ID, key ID, caller, kind, verdict, the
// sanitized reason, the error and the duration. Never a JWT, a payload,
// or a key.
package approval
