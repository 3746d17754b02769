package api

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// apiError is a failure whose code and message this package chose and
// which is safe to send: the message is fixed text that never quotes a
// request, a peer or a library. cause, if any, is only logged.
type apiError struct {
	code  codes.Code
	msg   string
	cause error
}

func (e *apiError) Error() string              { return e.msg }
func (e *apiError) Unwrap() error              { return e.cause }
func (e *apiError) GRPCStatus() *status.Status { return status.New(e.code, e.msg) }

func failure(code codes.Code, msg string) error { return &apiError{code: code, msg: msg} }

// invalid refuses a request field. The message names the field and what it
// must be, never the value sent.
func invalid(field, want string) error {
	return &apiError{code: codes.InvalidArgument, msg: "invalid " + field + ": " + want}
}

// Messages sent for conditions every RPC shares.
const (
	msgInternal    = "internal error"
	msgMalformed   = "malformed request message"
	msgNoRole      = "the client certificate names no role"
	msgNoUser      = "the client certificate's key is not an API user of the workspace"
	msgDenied      = "the caller's role may not call this method"
	msgRateLimited = "too many requests from this caller; retry later"
	msgBusy        = "too many operations in progress; retry later"
	msgCanceled    = "call canceled"
	msgDeadline    = "deadline exceeded"
	msgConflict    = "idempotency_key was used with a different request"
	msgInProgress  = "a call with this idempotency_key is in progress; retry"
	msgStoreDown   = "idempotency records are unavailable; nothing was done, retry later"
)

// nodeCodes maps the errors a Node wraps to status codes and default
// messages. The first match wins.
var nodeCodes = []struct {
	err  error
	code codes.Code
	msg  string
}{
	{ErrNotFound, codes.NotFound, "not found"},
	{ErrInvalidArgument, codes.InvalidArgument, "invalid argument"},
	{ErrFailedPrecondition, codes.FailedPrecondition, "the request does not fit the current state"},
	{ErrPermissionDenied, codes.PermissionDenied, "permission denied"},
	{ErrUnavailable, codes.Unavailable, "peers, storage or the audit log are unavailable; nothing was done, retry later"},
	{ErrDeadline, codes.DeadlineExceeded, "the operation's deadline passed"},
	{ErrAborted, codes.Aborted, "the MPC session failed"},
	{ErrUnimplemented, codes.Unimplemented, "the key's scheme does not support this operation"},
	{ErrDataLoss, codes.DataLoss, "stored data failed its integrity check"},
}

// texts overrides nodeCodes' default messages for one RPC, by code.
type texts map[codes.Code]string

// fromNode turns an error of a Node call into an apiError when it wraps one
// of the Node sentinels: the code comes from the sentinel and the message
// from t or the default, never from the error's text. Other errors are
// returned as they are, for the interceptor to map (to INTERNAL, unless the
// call's context ended).
func fromNode(err error, t texts) error {
	if err == nil {
		return nil
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return err
	}
	for _, m := range nodeCodes {
		if errors.Is(err, m.err) {
			msg := m.msg
			if s, ok := t[m.code]; ok {
				msg = s
			}
			return &apiError{code: m.code, msg: msg, cause: err}
		}
	}
	return err
}

// toStatus is the last word on every error a handler returns: an apiError
// keeps its code and message; an error after the call's context ended
// becomes CANCELED or DEADLINE_EXCEEDED; a background operation's own
// deadline becomes DEADLINE_EXCEEDED; anything else is INTERNAL "internal
// error". internal reports whether err was unexpected (and so is worth
// logging with its text).
func toStatus(ctx context.Context, err error) (st error, internal bool) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.GRPCStatus().Err(), false
	case errors.Is(ctx.Err(), context.Canceled):
		return status.Error(codes.Canceled, msgCanceled), false
	case ctx.Err() != nil:
		return status.Error(codes.DeadlineExceeded, msgDeadline), false
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the operation's deadline passed"), false
	}
	return status.Error(codes.Internal, msgInternal), true
}
