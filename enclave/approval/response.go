package approval

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Bounds on what an answer may carry.
const (
	// MaxReasonBytes bounds Decision.Reason; longer reasons are cut.
	MaxReasonBytes = 256
	// MaxRetryAfter bounds Decision.RetryAfter.
	MaxRetryAfter = 5 * time.Minute
)

// Verdict is the handler's answer. Its zero value, NoVerdict, approves
// nothing.
type Verdict uint8

const (
	// NoVerdict: there is no valid answer (it comes with an error).
	NoVerdict Verdict = iota
	// Approve: the handler approves; the only verdict that allows a
	// signature.
	Approve
	// Reject: the handler refuses.
	Reject
	// Retry: the handler cannot decide yet; the caller may ask again.
	Retry
)

// The decision claim's values.
const (
	decisionApprove = "APPROVE"
	decisionReject  = "REJECT"
	decisionRetry   = "RETRY"
)

func (v Verdict) String() string {
	switch v {
	case Approve:
		return decisionApprove
	case Reject:
		return decisionReject
	case Retry:
		return decisionRetry
	default:
		return "NONE"
	}
}

// Decision is a checked answer.
type Decision struct {
	Verdict Verdict
	// Reason is the handler's reason, sanitized: printable characters
	// only (others replaced by '?'), at most MaxReasonBytes bytes.
	Reason string
	// RetryAfter is how long the handler asks the caller to wait before
	// asking again (Retry only), at most MaxRetryAfter.
	RetryAfter time.Duration
}

// Approved reports whether d allows the signature.
func (d Decision) Approved() bool { return d.Verdict == Approve }

// responseClaims are the claims of an answer.
type responseClaims struct {
	jwt.RegisteredClaims
	RequestID  string `json:"request_id"`
	RequestJTI string `json:"request_jti"`
	Decision   string `json:"decision"`
	Reason     string `json:"reason,omitempty"`
	RetryAfter int64  `json:"retry_after,omitempty"`
}

// newParser returns the parser of answers: the algorithm of key only,
// strict base64, exp required, iat checked, iss and aud fixed.
func newParser(method jwt.SigningMethod, cosignerID, audience string, skew time.Duration,
	now func() time.Time) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods([]string{method.Alg()}),
		jwt.WithStrictDecoding(),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(skew),
		jwt.WithTimeFunc(now),
		jwt.WithIssuer(audience),
		jwt.WithAudience(cosignerID),
	)
}

// verify checks body as the answer to the question b and returns its
// decision; see the package documentation for the checks. It returns the
// zero Decision with every error.
func (c *Client) verify(body []byte, b binding) (Decision, error) {
	raw := strings.Trim(string(body), " \t\r\n")
	var claims responseClaims
	if _, err := c.parser.ParseWithClaims(raw, &claims, c.keyFunc); err != nil {
		return Decision{}, tokenError(err)
	}
	if err := c.bound(&claims, b); err != nil {
		return Decision{}, err
	}
	return claims.decision()
}

// keyFunc returns the pinned key, for the pinned algorithm only (the
// parser already refused any other alg; this is a second lock).
func (c *Client) keyFunc(t *jwt.Token) (any, error) {
	if t.Method != c.verifyMethod {
		return nil, errors.New("unexpected algorithm")
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, errCritHeader
	}
	return c.handlerKey, nil
}

// bound checks that the answer was issued for question b, after it.
func (c *Client) bound(claims *responseClaims, b binding) error {
	switch {
	case claims.IssuedAt == nil:
		return fmt.Errorf("%w: no iat claim", ErrUnexpected)
	case claims.IssuedAt.Before(b.issued.Add(-c.skew)):
		return fmt.Errorf("%w: issued before the question", ErrExpired)
	case claims.RequestID != b.requestID || claims.RequestJTI != b.jti:
		return fmt.Errorf("%w: it answers another question", ErrMismatch)
	}
	return nil
}

// decision maps the decision claim, exactly, to a Decision.
func (claims *responseClaims) decision() (Decision, error) {
	d := Decision{Reason: sanitize(claims.Reason)}
	switch claims.Decision {
	case decisionApprove:
		d.Verdict = Approve
	case decisionReject:
		d.Verdict = Reject
	case decisionRetry:
		d.Verdict = Retry
		d.RetryAfter = time.Duration(min(max(claims.RetryAfter, 0), int64(MaxRetryAfter/time.Second))) * time.Second
	default:
		return Decision{}, fmt.Errorf("%w: unknown decision", ErrUnexpected)
	}
	return d, nil
}

// sanitize returns s with every non-printable character (controls, format
// characters such as bidirectional overrides, invalid UTF-8) replaced by
// '?', cut to at most MaxReasonBytes bytes on a character boundary.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > MaxReasonBytes {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
