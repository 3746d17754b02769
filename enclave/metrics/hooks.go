package metrics

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/approval"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// SessionEnded records a session's outcome and the round latencies its
// transport saw. It matches mpc.Config.OnSessionEnd.
func (m *Metrics) SessionEnded(e mpc.SessionEnd) {
	op := e.Op.String()
	m.sessions.WithLabelValues(op, sessionOutcome(e.Err)).Observe(e.Took.Seconds())
	for _, r := range m.tracker.finish(e.Session) {
		m.rounds.WithLabelValues(op, strconv.Itoa(int(r.round))).Observe(r.took.Seconds())
	}
}

// sessionOutcome maps a session's error to a fixed label value.
func sessionOutcome(err error) string {
	var (
		abort     *mpc.AbortError
		peerAbort *mpc.PeerAbortError
	)
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &abort):
		return "aborted"
	case errors.As(err, &peerAbort):
		return "peer_aborted"
	case errors.Is(err, mpc.ErrDeadline):
		return "deadline"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, mpc.ErrStore):
		return "store_failed"
	}
	return "error"
}

// FrameAccepted records an accepted frame's transit time. It matches
// peer.Config.OnAccept.
func (m *Metrics) FrameAccepted(from mpc.PartyID, sent time.Time) {
	m.transit.WithLabelValues(string(from)).Observe(max(time.Since(sent), 0).Seconds())
}

// Transport returns tr, timing the rounds of every session that sends
// through it; the timings are recorded by SessionEnded, so the engine
// that uses the returned transport must report to this Metrics.
func (m *Metrics) Transport(tr mpc.Transport) mpc.Transport {
	return timedTransport{Transport: tr, tracker: m.tracker}
}

type timedTransport struct {
	mpc.Transport
	tracker *roundTracker
}

// Send implements mpc.Transport.
func (t timedTransport) Send(ctx context.Context, env mpc.Envelope) error {
	if env.Round > 0 {
		t.tracker.sent(env.Session, env.Round, time.Now())
	}
	return t.Transport.Send(ctx, env)
}

// maxTracked bounds the sessions whose rounds are being timed; past it new
// sessions are not timed (an engine runs far fewer at once).
const maxTracked = 4096

// roundTracker remembers, per running session, when this party first sent
// each round, until the session ends.
type roundTracker struct {
	mu       sync.Mutex
	sessions map[mpc.SessionID]*rounds
}

type rounds struct {
	last   uint16
	lastAt time.Time
	done   []roundTime
}

type roundTime struct {
	round uint16
	took  time.Duration
}

func newRoundTracker() *roundTracker {
	return &roundTracker{sessions: map[mpc.SessionID]*rounds{}}
}

// sent notes a message of round in session at now. The first message of a
// round later than the last one closes the previous round.
func (t *roundTracker) sent(session mpc.SessionID, round uint16, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.sessions[session]
	switch {
	case !ok && len(t.sessions) < maxTracked:
		t.sessions[session] = &rounds{last: round, lastAt: now}
	case ok && round > r.last:
		r.done = append(r.done, roundTime{round: round, took: now.Sub(r.lastAt)})
		r.last, r.lastAt = round, now
	}
}

// finish forgets session and returns its round timings.
func (t *roundTracker) finish(session mpc.SessionID) []roundTime {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.sessions[session]
	if !ok {
		return nil
	}
	delete(t.sessions, session)
	return r.done
}

func (t *roundTracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sessions)
}

// Approver is the approval callback (judge.Approver; *approval.Client
// satisfies it).
type Approver interface {
	Ask(ctx context.Context, r approval.Request) (approval.Decision, error)
}

// Approver returns a, timing every request and counting its outcome.
func (m *Metrics) Approver(a Approver) Approver { return timedApprover{a: a, m: m} }

type timedApprover struct {
	a Approver
	m *Metrics
}

// Ask implements Approver.
func (t timedApprover) Ask(ctx context.Context, r approval.Request) (approval.Decision, error) {
	began := time.Now()
	d, err := t.a.Ask(ctx, r)
	t.m.approval.WithLabelValues(approvalOutcome(d, err)).Observe(time.Since(began).Seconds())
	return d, err
}

// approvalOutcome maps a callback's answer to a fixed label value.
func approvalOutcome(d approval.Decision, err error) string {
	if err == nil {
		switch d.Verdict {
		case approval.Approve:
			return "approve"
		case approval.Reject:
			return "reject"
		case approval.Retry:
			return "retry"
		}
		return "error"
	}
	for _, o := range []struct {
		err   error
		label string
	}{
		{approval.ErrTimeout, "timeout"}, {approval.ErrTransport, "transport"},
		{approval.ErrBadSignature, "bad_signature"}, {approval.ErrExpired, "expired"},
		{approval.ErrMismatch, "mismatch"}, {approval.ErrUnexpected, "unexpected"},
	} {
		if errors.Is(err, o.err) {
			return o.label
		}
	}
	return "error"
}

// Attest returns attest, counting its results and noting the time of the
// last document. Its type matches peer.AttestFunc.
func (m *Metrics) Attest(attest func(context.Context) ([]byte, error)) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		doc, err := attest(ctx)
		if err != nil {
			m.attests.WithLabelValues("failed").Inc()
			return nil, err
		}
		m.attests.WithLabelValues("ok").Inc()
		m.attestAt.SetToCurrentTime()
		return doc, nil
	}
}
