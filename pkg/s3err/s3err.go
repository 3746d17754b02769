// Package s3err translates errors of the aws-sdk-go-v2 S3 client into the
// few conditions callers branch on. S3's answers come from an untrusted
// host: only the HTTP status and a sanitized error code reach a message,
// never a response body.
package s3err

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"
)

var (
	// ErrNotFound is a 404: the object does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrPrecondition is a 412: an If-Match or If-None-Match condition
	// failed.
	ErrPrecondition = errors.New("precondition failed")
)

// Classify maps err from S3 operation op on object name to ErrNotFound,
// ErrPrecondition, or an error wrapping unavailable (network failures, 5xx,
// throttling, auth: everything a caller may retry). A failure without an
// HTTP answer keeps the network error's text, which names no S3 content.
func Classify(op, name string, err, unavailable error) error {
	var status interface{ HTTPStatusCode() int }
	if !errors.As(err, &status) || status.HTTPStatusCode() == 0 {
		return fmt.Errorf("%w: %s %s: %w", unavailable, op, name, err)
	}
	switch status.HTTPStatusCode() {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusPreconditionFailed:
		return ErrPrecondition
	}
	return fmt.Errorf("%w: %s %s: HTTP %d %s", unavailable, op, name, status.HTTPStatusCode(), Code(err))
}

// Code returns S3's error code if it is a short alphanumeric token, else
// "unknown".
func Code(err error) string {
	var api smithy.APIError
	if !errors.As(err, &api) || !isToken(api.ErrorCode()) {
		return "unknown"
	}
	return api.ErrorCode()
}

func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.') {
			return false
		}
	}
	return true
}
