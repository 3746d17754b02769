package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

type callerKey struct{}

// callerFrom returns the authenticated caller the interceptors put in ctx;
// the zero Caller (no roles) if there is none.
func callerFrom(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// unary runs every unary call: see admit for the steps before the handler,
// and call.end for what happens to its result.
func (s *Server) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	c := s.newCall(ctx, info.FullMethod)
	defer func() { err = c.end(recover(), err) }()
	malformed := s.codec.malformed(req)
	if c.ctx, err = s.admit(c); err != nil {
		return nil, err
	}
	if malformed {
		return nil, failure(codes.InvalidArgument, msgMalformed)
	}
	return handler(c.ctx, req)
}

// stream runs every streaming call, like unary. The request is decoded in
// the handler, through serverStream.RecvMsg.
func (s *Server) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	c := s.newCall(ss.Context(), info.FullMethod)
	defer func() { err = c.end(recover(), err) }()
	if c.ctx, err = s.admit(c); err != nil {
		return err
	}
	return handler(srv, &serverStream{ServerStream: ss, ctx: c.ctx, codec: s.codec, clientStreams: info.IsClientStream})
}

// admit runs the checks before a handler, in order: the verified client
// certificate names a role (authentication: UNAUTHENTICATED without a
// certificate, which TLS already refuses, PERMISSION_DENIED without a
// role); the caller is within its rate limit (RESOURCE_EXHAUSTED); the
// caller's roles may call the method (PERMISSION_DENIED). It returns the
// call's context carrying the Caller.
func (s *Server) admit(c *call) (context.Context, error) {
	caller, err := s.authenticate(c.ctx)
	if err != nil {
		return c.ctx, err
	}
	c.caller = caller.ID
	if !s.limits.allow(caller.ID) {
		return c.ctx, failure(codes.ResourceExhausted, msgRateLimited)
	}
	if !authorized(caller, c.method) {
		return c.ctx, failure(codes.PermissionDenied, msgDenied)
	}
	return context.WithValue(c.ctx, callerKey{}, caller), nil
}

// authenticate derives the caller from the client certificate: through
// Config.Users when set (the workspace's API users, by public key), else
// from the role URIs of the chain TLS verified against the client CAs.
func (s *Server) authenticate(ctx context.Context) (Caller, error) {
	p, _ := peer.FromContext(ctx)
	var state tls.ConnectionState
	if p != nil {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			state = ti.State
		}
	}
	if s.users != nil {
		if len(state.PeerCertificates) == 0 {
			return Caller{}, failure(codes.Unauthenticated, "a client certificate is required")
		}
		caller, err := s.users.Caller(state.PeerCertificates[0])
		if err != nil {
			return Caller{}, failure(codes.PermissionDenied, msgNoUser)
		}
		return caller, nil
	}
	chains := state.VerifiedChains
	if len(chains) == 0 || len(chains[0]) == 0 {
		return Caller{}, failure(codes.Unauthenticated, "a verified client certificate is required")
	}
	caller, err := CallerFromCert(chains[0][0])
	if err != nil {
		return Caller{}, failure(codes.PermissionDenied, msgNoRole)
	}
	return caller, nil
}

// call is one RPC as the interceptors see it.
type call struct {
	s      *Server
	ctx    context.Context
	method string
	caller string // Caller.ID once authenticated
	start  time.Time
}

func (s *Server) newCall(ctx context.Context, method string) *call {
	return &call{s: s, ctx: ctx, method: method, start: time.Now()}
}

// end is the last step of every call. A panic is logged with its stack
// and becomes INTERNAL "internal error" (the server keeps serving); an
// error becomes a status by toStatus, and an unexpected one is logged with
// its text, which the client never sees.
func (c *call) end(panicked any, err error) error {
	attrs := []any{"method", c.method, "caller", c.caller, "duration", time.Since(c.start)}
	if panicked != nil {
		c.s.log.Error("api: call panicked", append(attrs, "panic", fmt.Sprint(panicked), "stack", string(debug.Stack()))...)
		return status.Error(codes.Internal, msgInternal)
	}
	if err == nil {
		c.s.log.Debug("api: call", append(attrs, "code", codes.OK.String())...)
		return nil
	}
	st, internal := toStatus(c.ctx, err)
	if internal {
		c.s.log.Error("api: call failed", append(attrs, "err", err.Error())...)
	} else {
		c.s.log.Debug("api: call", append(attrs, "code", status.Code(st).String(), "err", detail(err))...)
	}
	return st
}

// serverStream gives a streaming handler the call's context (with the
// Caller), and turns a request that does not decode into
// INVALID_ARGUMENT.
type serverStream struct {
	grpc.ServerStream
	ctx   context.Context
	codec *requestCodec
	// clientStreams is set for methods whose client sends a stream
	// (reflection), for which io.EOF is the stream's normal end.
	clientStreams bool
}

func (s *serverStream) Context() context.Context { return s.ctx }

func (s *serverStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	switch {
	case err == nil && s.codec.malformed(m):
		return failure(codes.InvalidArgument, msgMalformed)
	case err == nil, errors.Is(err, io.EOF) && s.clientStreams:
		return err
	}
	// gRPC has already sent the client its own status for this (a message
	// too large, missing or not decompressing, or the call ended): the
	// client's doing, not an internal error to log as one.
	return &apiError{code: status.Code(err), msg: "receiving the request failed", cause: err}
}

// detail is an error's text for the log: an apiError's cause if it has
// one, since its own text is what the client saw.
func detail(err error) string {
	var ae *apiError
	if errors.As(err, &ae) && ae.cause != nil {
		return ae.cause.Error()
	}
	return err.Error()
}
