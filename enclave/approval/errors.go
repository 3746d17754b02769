package approval

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/golang-jwt/jwt/v5"
)

// The errors of this package; see the package documentation for which
// means what. Every one of them means "no approval".
var (
	// ErrConfig reports an unusable Config.
	ErrConfig = errors.New("approval: bad configuration")
	// ErrRequest reports a Request that cannot be sent.
	ErrRequest = errors.New("approval: bad request")
	// ErrTimeout reports that no answer came before the deadline.
	ErrTimeout = errors.New("approval: no answer in time")
	// ErrTransport reports that the handler could not be reached, TLS
	// failed, or the connection broke.
	ErrTransport = errors.New("approval: cannot reach the handler")
	// ErrBadSignature reports an answer not signed by the pinned key with
	// the pinned algorithm.
	ErrBadSignature = errors.New("approval: answer not signed by the handler key")
	// ErrExpired reports a signed answer outside its validity window.
	ErrExpired = errors.New("approval: answer expired or not yet valid")
	// ErrMismatch reports a signed answer to another question, audience
	// or issuer.
	ErrMismatch = errors.New("approval: answer is not for this request")
	// ErrUnexpected reports any other unusable answer.
	ErrUnexpected = errors.New("approval: unexpected answer")
)

var (
	// errRedirect is returned by the HTTP client's CheckRedirect.
	errRedirect = errors.New("redirect refused")
	// errCritHeader is returned by Client.keyFunc for a "crit" header.
	errCritHeader = errors.New("critical header parameters are not supported")
)

// dialError marks an error from the dial function given to NewHTTPClient;
// its text (from the egress dialer) names only the target and the proxy,
// so it may be shown.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// contextError returns the error for a context that has ended.
func contextError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("approval: %w", ctx.Err())
}

// exchangeError translates an error of the HTTP exchange. It does not echo
// what the other end sent (certificate names, malformed headers).
func exchangeError(ctx context.Context, err error) error {
	var (
		de *dialError
		ne net.Error
		ve *tls.CertificateVerificationError
	)
	switch {
	case ctx.Err() != nil:
		return contextError(ctx)
	case errors.Is(err, errRedirect):
		return fmt.Errorf("%w: the handler answered with a redirect", ErrUnexpected)
	case errors.As(err, &ve):
		return fmt.Errorf("%w: the handler's TLS certificate did not verify", ErrTransport)
	case errors.As(err, &de):
		return fmt.Errorf("%w: %w", ErrTransport, de)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: the connection timed out", ErrTimeout)
	case isTLSError(err):
		return fmt.Errorf("%w: the TLS handshake with the handler failed", ErrTransport)
	default:
		return fmt.Errorf("%w: the exchange with the handler failed", ErrTransport)
	}
}

func isTLSError(err error) bool {
	var (
		ae tls.AlertError
		re tls.RecordHeaderError
	)
	return errors.As(err, &ae) || errors.As(err, &re)
}

// tokenError translates an error of jwt.Parser.ParseWithClaims. Claims
// errors come only after the signature verified.
func tokenError(err error) error {
	signed := errors.Is(err, jwt.ErrTokenInvalidClaims)
	switch {
	case errors.Is(err, errCritHeader):
		return fmt.Errorf("%w: a crit header", ErrUnexpected)
	case !signed && errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: the body is not a well-formed JWT", ErrUnexpected)
	case !signed:
		return ErrBadSignature
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fmt.Errorf("%w: wrong audience or issuer", ErrMismatch)
	case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenUsedBeforeIssued),
		errors.Is(err, jwt.ErrTokenNotValidYet):
		return ErrExpired
	default:
		return fmt.Errorf("%w: missing or invalid registered claims", ErrUnexpected)
	}
}
