package kms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Errors callers branch on (see the package documentation).
var (
	// ErrNotAllowed means KMS refused the call (AccessDeniedException):
	// the key policy does not allow this enclave's measurements, or this
	// role, to use the key.
	ErrNotAllowed = errors.New("kms: the key policy does not allow this enclave's measurements")

	// ErrUnavailable means KMS could not be reached or could not serve the
	// call now (network, proxy, throttling, KMS-side failure); retry with
	// backoff.
	ErrUnavailable = errors.New("kms: KMS is unavailable")

	// ErrInvalidWrappedKey means the wrapped key does not decrypt under
	// this KMS key and encryption context: it is corrupt, belongs to
	// another KMS key, or was made for another cosigner.
	ErrInvalidWrappedKey = errors.New("kms: the wrapped data key is corrupt or belongs to another key or cosigner")

	// ErrRecipientIgnored means the response carried the data key in
	// Plaintext despite the Recipient parameter: the service ignores
	// Recipient (as local-kms does) and the key crossed the host in the
	// clear. The key is refused.
	ErrRecipientIgnored = errors.New("kms: the response carries the data key in plaintext despite Recipient; refused")

	// ErrBadResponse means the response's CiphertextForRecipient or
	// CiphertextBlob is missing or does not open to a 32-byte key with this
	// enclave's key. It says no more, whatever the reason.
	ErrBadResponse = errors.New("kms: the response does not hold a data key for this enclave")
)

// KMS error codes this package translates.
const (
	codeAccessDenied      = "AccessDeniedException"
	codeInvalidCiphertext = "InvalidCiphertextException"
	codeIncorrectKey      = "IncorrectKeyException"
)

// transientCodes are KMS error codes of transient failures: a retry may
// succeed.
var transientCodes = map[string]bool{
	"DependencyTimeoutException":  true,
	"KMSInternalException":        true,
	"KeyUnavailableException":     true,
	"ThrottlingException":         true,
	"InternalFailure":             true,
	"ServiceUnavailable":          true,
	"ServiceUnavailableException": true,
}

// translate maps an error from the SDK to this package's errors.
func (c *Client) translate(ctx context.Context, op string, r *recipient, err error) error {
	code := apiCode(err)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, ctx.Err())
	case ctx.Err() != nil:
		return fmt.Errorf("kms: %s: %w", op, ctx.Err())
	case code == codeAccessDenied:
		return fmt.Errorf("%w (PCR0 %s): %s on key %s refused; KMS says %s",
			ErrNotAllowed, r.pcr0(), op, c.keyID, kmsMessage(err))
	case code == codeInvalidCiphertext || code == codeIncorrectKey:
		return fmt.Errorf("%w: %s on key %s: %s", ErrInvalidWrappedKey, op, c.keyID, code)
	case unavailable(err, code):
		return fmt.Errorf("%w: %s: %s", ErrUnavailable, op, describe(err))
	}
	return fmt.Errorf("kms: %s on key %s failed: %s", op, c.keyID, describe(err))
}

// unavailable reports whether err is a transient failure, which a retry
// may avoid: the request or response did not cross the network, the
// response did not decode, or KMS answered with throttling or a
// server-side failure.
func unavailable(err error, code string) bool {
	var sendErr *smithyhttp.RequestSendError
	var decodeErr *smithy.DeserializationError
	var netErr net.Error
	var status interface{ HTTPStatusCode() int }
	switch {
	case errors.As(err, &sendErr), errors.As(err, &decodeErr), errors.As(err, &netErr):
		return true
	case transientCodes[code]:
		return true
	case errors.As(err, &status):
		return status.HTTPStatusCode() >= 500 || status.HTTPStatusCode() == 429
	}
	return false
}

// apiCode returns the KMS error code of err, or "" if KMS did not answer
// with an error.
func apiCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// describe says what went wrong without echoing response bodies: an API
// error as its code and (checked) message, a decoding failure as the HTTP
// status only, a failure to send as the Go network stack's error, anything
// else (a credentials failure, say) as its text.
func describe(err error) string {
	var apiErr smithy.APIError
	var decodeErr *smithy.DeserializationError
	var sendErr *smithyhttp.RequestSendError
	switch {
	case errors.As(err, &apiErr):
		return printable(apiErr.ErrorCode(), 64) + ": " + kmsMessage(err)
	case errors.As(err, &decodeErr):
		return "the response" + httpStatus(err) + " could not be decoded"
	case errors.As(err, &sendErr) && sendErr.Err != nil:
		return sendErr.Err.Error()
	}
	return err.Error()
}

// httpStatus returns " (HTTP <status>)" if err carries a response status.
func httpStatus(err error) string {
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() != 0 {
		return " (HTTP " + strconv.Itoa(status.HTTPStatusCode()) + ")"
	}
	return ""
}

// Limits on text from KMS shown in errors.
const (
	maxMessageSize = 512
	// maxEncodedRun is the longest run of base64 or hex characters allowed
	// in a KMS message shown: 32 key bytes are 44 in base64, 64 in hex.
	// Real KMS messages (ARNs, condition keys) have shorter runs, cut by
	// ':', '/' and '-'.
	maxEncodedRun = 43
)

// kmsMessage returns the message of the KMS error in err, quoted, or a
// placeholder. Only messages from a KMS response (a smithy.APIError) are
// shown, as printable ASCII, truncated, and withheld if they hold anything
// that looks like encoded bytes: nothing a misbehaving service sends can
// put key material into our errors or logs.
func kmsMessage(err error) string {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorMessage() == "" {
		return "nothing"
	}
	msg := apiErr.ErrorMessage()
	if longestEncodedRun(msg) > maxEncodedRun {
		return "(message withheld: it holds what looks like encoded data)"
	}
	return strconv.Quote(printable(msg, maxMessageSize))
}

// printable replaces every byte outside printable ASCII with '?' and
// truncates the result to max bytes.
func printable(s string, max int) string {
	out := []byte(s)
	for i, b := range out {
		if b < 0x20 || b > 0x7e {
			out[i] = '?'
		}
	}
	if len(out) > max {
		return string(out[:max]) + "..."
	}
	return string(out)
}

func longestEncodedRun(s string) int {
	longest, run := 0, 0
	for _, b := range []byte(s) {
		if isEncodingChar(b) {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

func isEncodingChar(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '+' || b == '/' || b == '='
}
