package mpc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/taurusgroup/multi-party-sig/pkg/protocol"
)

// abortProtocol marks the engine's abort notice: the sender ended the
// session early (it caught a cheater, got a malformed message, or was
// cancelled) and tells its peers so they need not wait for the deadline.
// It replaces the library's own notice, which carries error text; the
// notice carries nothing, and receivers treat it as a PeerAbortError.
const abortProtocol = "nitro-cosigner/abort/v1"

// noticeTimeout bounds sending abort notices after a cancellation.
const noticeTimeout = time.Second

// session is one protocol execution on this party. It is driven by one
// goroutine (the caller of run) plus one pump goroutine that forwards the
// handler's outgoing messages; both are gone when run returns.
type session struct {
	id      SessionID
	op      Op
	self    PartyID
	parties []PartyID // sorted, self included
	inbox   chan Envelope
	tr      Transport
	echo    *echo // nil for ops that need no final echo
}

func newSession(id SessionID, op Op, self PartyID, parties []PartyID, tr Transport) *session {
	return &session{
		id: id, op: op, self: self, parties: parties, tr: tr,
		inbox: make(chan Envelope, inboxSize(len(parties))),
	}
}

// inboxSize holds every message peers can send before they need ours again
// (two rounds, a broadcast and a direct message each), with room to spare.
func inboxSize(n int) int { return 8*n + 32 }

func (s *session) isPeer(id PartyID) bool {
	_, ok := slices.BinarySearch(s.parties, id)
	return ok && id != s.self
}

// run creates the handler and drives it until it ends: a result, an abort,
// the deadline, or cancellation. The handler's first round is computed
// before any message is read.
func (s *session) run(ctx context.Context, start protocol.StartFunc) (any, error) {
	h, err := newHandler(start, s.id)
	if err != nil {
		return nil, err
	}
	return s.drive(ctx, h)
}

// newHandler wraps protocol.NewMultiHandler, turning a library panic into an
// error.
func newHandler(start protocol.StartFunc, id SessionID) (h *protocol.MultiHandler, err error) {
	defer func() {
		if recover() != nil {
			h, err = nil, fmt.Errorf("%w: the library could not start the protocol", ErrInvalidRequest)
		}
	}()
	h, err = protocol.NewMultiHandler(start, id[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	return h, nil
}

// drive is the session loop. The handler is only ever touched from this
// goroutine, and its outgoing channel is drained by the pump until drive
// has stopped calling Accept, so Accept can never block on a full channel.
// A round's computation is not interruptible: a deadline that passes during
// Accept is noticed when Accept returns.
func (s *session) drive(ctx context.Context, h *protocol.MultiHandler) (any, error) {
	finished := make(chan error, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.pump(ctx, h.Listen(), stop, finished)
	}()
	defer func() { close(stop); wg.Wait() }()
	for {
		select {
		case err := <-finished:
			return s.finish(ctx, h, err)
		case env := <-s.inbox:
			if err := s.accept(h, env); err != nil {
				s.noticeIfOurs(ctx, err)
				return nil, err
			}
		case <-ctx.Done():
			res, err := s.late(ctx, h, finished)
			s.noticeIfOurs(ctx, err)
			return res, err
		}
	}
}

// noticeIfOurs tells peers this party ended the session, when it did so on
// its own: an abort it raised, or a cancellation. A deadline needs no
// notice (every party has one) and a peer's abort was already announced.
func (s *session) noticeIfOurs(ctx context.Context, err error) {
	var abort *AbortError
	switch {
	case errors.As(err, &abort):
		s.notifyAbort(ctx)
	case errors.Is(err, context.Canceled):
		nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), noticeTimeout)
		defer cancel()
		s.notifyAbort(nctx)
	}
}

// notifyAbort sends the abort notice to every peer, best effort.
func (s *session) notifyAbort(ctx context.Context) {
	env := Envelope{Session: s.id, From: s.self, Protocol: abortProtocol}
	for _, to := range s.peers() {
		env.To = to
		_ = s.tr.Send(ctx, env)
	}
}

// late prefers a result that raced with the deadline over the deadline,
// unless the result still needs its final echo, which can no longer run.
func (s *session) late(ctx context.Context, h *protocol.MultiHandler, finished <-chan error) (any, error) {
	select {
	case err := <-finished:
		if s.echo == nil {
			return s.outcome(h, err)
		}
	default:
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, ErrDeadline
	}
	return nil, ctx.Err()
}

// pump forwards outgoing messages until the handler closes its channel (the
// protocol ended) or drive stops. It reports the end, or the first send
// failure, once on finished, and keeps draining after a failure.
func (s *session) pump(ctx context.Context, out <-chan *protocol.Message, stop <-chan struct{}, finished chan<- error) {
	reported := false
	for {
		select {
		case m, ok := <-out:
			if !ok {
				if !reported {
					finished <- nil
				}
				return
			}
			if reported || ctx.Err() != nil {
				continue
			}
			if err := s.send(ctx, m); err != nil {
				finished <- err
				reported = true
			}
		case <-stop:
			return
		}
	}
}

// send marshals m once and sends it to its recipient, or to every peer.
// The library's abort notice (round 0) becomes the engine's.
func (s *session) send(ctx context.Context, m *protocol.Message) error {
	if m.RoundNumber == 0 {
		s.notifyAbort(ctx)
		return nil
	}
	payload, err := m.MarshalBinary()
	if err != nil {
		return fmt.Errorf("marshalling message: %w", err)
	}
	env := Envelope{
		Session: s.id, From: s.self, Protocol: m.Protocol,
		Round: uint16(m.RoundNumber), Broadcast: m.Broadcast, Payload: payload,
	}
	if m.Broadcast && s.echo != nil {
		if err := s.echo.record(s.self, env.Protocol, env.Round, payload); err != nil {
			return fmt.Errorf("recording our broadcast: %w", err)
		}
	}
	for _, to := range s.recipients(m) {
		env.To = to
		if err := s.tr.Send(ctx, env); err != nil && ctx.Err() == nil {
			return fmt.Errorf("sending to %s: %w", to, err)
		}
	}
	return nil
}

func (s *session) recipients(m *protocol.Message) []PartyID {
	if m.To != "" {
		return []PartyID{PartyID(m.To)}
	}
	return s.peers()
}

func (s *session) peers() []PartyID {
	return slices.DeleteFunc(slices.Clone(s.parties), func(p PartyID) bool { return p == s.self })
}

// accept hands one incoming envelope to the handler. Envelopes from outside
// the party set are ignored; a malformed one from a peer, or one that makes
// the library panic, aborts the session naming that peer.
func (s *session) accept(h *protocol.MultiHandler, env Envelope) error {
	if !s.isPeer(env.From) || env.To != s.self {
		return nil
	}
	switch env.Protocol {
	case abortProtocol:
		return &PeerAbortError{Session: s.id, Op: s.op, Reporter: env.From}
	case echoProtocol:
		if s.echo != nil {
			s.echo.stash(env.From, env.Payload)
		}
		return nil
	}
	m, err := decodeMessage(env.Payload)
	if err == nil {
		err = checkRouting(env, m)
	}
	if err != nil || m.RoundNumber == 0 {
		return s.abort(env.From, "malformed message")
	}
	if m.Broadcast && s.echo != nil {
		if s.echo.record(env.From, env.Protocol, env.Round, env.Payload) != nil {
			return s.abort(env.From, "sent two different broadcasts in one round")
		}
	}
	if !safeAccept(h, m) {
		return s.abort(env.From, "message made the protocol library fail")
	}
	return nil
}

func safeAccept(h *protocol.MultiHandler, m *protocol.Message) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	h.Accept(m)
	return true
}

func (s *session) abort(culprit PartyID, reason string) error {
	return &AbortError{Session: s.id, Op: s.op, Culprits: []PartyID{culprit}, Reason: reason}
}

// finish takes the handler's end state and, for ops that need it, runs the
// final echo before the result counts.
func (s *session) finish(ctx context.Context, h *protocol.MultiHandler, sendErr error) (any, error) {
	res, err := s.outcome(h, sendErr)
	if err != nil || s.echo == nil {
		return res, err
	}
	if err := s.confirm(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

// outcome turns the handler's end state into a result or a typed error.
func (s *session) outcome(h *protocol.MultiHandler, sendErr error) (any, error) {
	if sendErr != nil {
		return nil, sendErr
	}
	res, err := h.Result()
	if err == nil {
		return res, nil
	}
	var perr protocol.Error
	if errors.As(err, &perr) {
		return nil, &AbortError{Session: s.id, Op: s.op, Culprits: fromLib(perr.Culprits), Reason: libReason(perr)}
	}
	return nil, &AbortError{Session: s.id, Op: s.op, Reason: "protocol failed"}
}

func libReason(perr protocol.Error) string {
	if perr.Err == nil {
		return "protocol failed"
	}
	return perr.Err.Error()
}

// runSession registers a session with the router, runs it under its
// deadline and unregisters it. Errors name the op and session.
func (e *Engine) runSession(ctx context.Context, op Op, spec SessionSpec, parties []PartyID, start protocol.StartFunc) (any, error) {
	ctx, cancel := context.WithDeadline(ctx, spec.Deadline)
	defer cancel()
	s := newSession(spec.ID, op, e.self, parties, e.tr)
	if needsEcho(op) {
		ec, err := newEcho(spec.ID, parties)
		if err != nil {
			return nil, sessionErr(op, spec.ID, err)
		}
		s.echo = ec
	}
	if err := e.router.register(s); err != nil {
		return nil, sessionErr(op, spec.ID, err)
	}
	defer e.router.unregister(s.id)
	began := time.Now()
	res, err := s.run(ctx, start)
	e.logSession(s, began, err)
	if e.onEnd != nil {
		e.onEnd(SessionEnd{Session: s.id, Op: op, Took: time.Since(began), Err: err})
	}
	if err != nil {
		return nil, wrapSessionErr(op, spec.ID, err)
	}
	return res, nil
}

// wrapSessionErr names the op and session in err, unless err is a typed
// error that already does.
func wrapSessionErr(op Op, id SessionID, err error) error {
	var abort *AbortError
	var peer *PeerAbortError
	if errors.As(err, &abort) || errors.As(err, &peer) {
		return err
	}
	return sessionErr(op, id, err)
}

// SessionEnd describes a session that ended, for Config.OnSessionEnd. Err
// is nil for a success, else the session's error (an *AbortError, a
// *PeerAbortError, ErrDeadline, a context error, ...).
type SessionEnd struct {
	Session SessionID
	Op      Op
	Took    time.Duration
	Err     error
}

func (e *Engine) logSession(s *session, began time.Time, err error) {
	e.log.Debug("mpc session ended", "op", s.op.String(), "session", s.id.String(),
		"duration", time.Since(began), "ok", err == nil, "error", errString(err))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
