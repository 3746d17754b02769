package kmsemu

import (
	"fmt"
	"net/http"
)

// apiError is a KMS error response: its __type, HTTP status and message.
// Messages name the failed check and never carry secrets.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func newAPIError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// KMS error codes the emulator returns. Common AWS errors use HTTP 400
// except where AWS documents otherwise.
const (
	codeAccessDenied      = "AccessDeniedException"
	codeDryRun            = "DryRunOperationException"
	codeIncorrectKey      = "IncorrectKeyException"
	codeInternal          = "KMSInternalException"
	codeInvalidCiphertext = "InvalidCiphertextException"
	codeMalformedPolicy   = "MalformedPolicyDocumentException"
	codeNotFound          = "NotFoundException"
	codeSerialization     = "SerializationException"
	codeTooLarge          = "RequestEntityTooLargeException"
	codeUnknownOperation  = "UnknownOperationException"
	codeUnsupported       = "UnsupportedOperationException"
	codeValidation        = "ValidationException"
)

func accessDenied(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, codeAccessDenied, format, args...)
}

func validation(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, codeValidation, format, args...)
}

func serialization(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, codeSerialization, format, args...)
}

func notFound(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, codeNotFound, format, args...)
}

func unsupported(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, codeUnsupported, format, args...)
}

func malformedPolicy(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, codeMalformedPolicy, format, args...)
}

func internalError() *apiError {
	return newAPIError(http.StatusInternalServerError, codeInternal, "internal error")
}

// errInvalidCiphertext is the one answer for any blob that does not open:
// malformed, altered, or used with another key or encryption context.
var errInvalidCiphertext = newAPIError(http.StatusBadRequest, codeInvalidCiphertext,
	"the ciphertext is invalid or does not match the key and encryption context")

var errDryRun = newAPIError(http.StatusPreconditionFailed, codeDryRun,
	"the request would have succeeded, but the DryRun parameter was set")
