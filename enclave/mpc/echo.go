package mpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// echoProtocol marks the engine's final echo: a broadcast whose round is
// the echoed round and whose payload is the 32-byte digest of every
// party's broadcast in that round, as this party saw them.
const echoProtocol = wire.EchoProtocol

// needsEcho reports whether op's result must be confirmed by a final echo
// before it is returned: keygen, refresh and presign leave state that all
// parties must hold alike. A signature is verified against the public key
// before it is returned, so a sign needs none (see the package doc).
func needsEcho(op Op) bool {
	switch op {
	case OpKeygen, OpRefresh, OpPresign, OpFROSTKeygen:
		return true
	}
	return false
}

// echo records the broadcasts of one session and runs its final echo
// round. Broadcasts are recorded from two goroutines (the pump records ours,
// drive records the peers'), so the last round is guarded by mu; the
// Transcript guards itself.
type echo struct {
	transcript *wire.Transcript
	mu         sync.Mutex
	last       uint16 // highest broadcast round recorded
	got        map[PartyID][]byte
}

func newEcho(id SessionID, parties []PartyID) (*echo, error) {
	ids := make([]string, len(parties))
	for i, p := range parties {
		ids[i] = string(p)
	}
	t, err := wire.NewTranscript(wire.SessionID(id), ids)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	return &echo{transcript: t, got: map[PartyID][]byte{}}, nil
}

// record adds a broadcast. A party that sent two different broadcasts in a
// round is reported as an equivocation.
func (e *echo) record(from PartyID, protocol string, round uint16, payload []byte) error {
	if err := e.transcript.Record(string(from), protocol, round, payload); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.last = max(e.last, round)
	return nil
}

// stash keeps a peer's echo until this party has finished the protocol. The
// first echo from a party counts; the wire layer drops replays, so a second
// one is a party contradicting itself, which the comparison catches anyway.
func (e *echo) stash(from PartyID, digest []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.got[from]; !ok {
		e.got[from] = digest
	}
}

func (e *echo) lastRound() uint16 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

// check compares every echo received so far with our digest and returns
// how many matched. A mismatch is an abort: the echoer or some broadcaster
// equivocated, and this party cannot tell which, so nobody is named a
// culprit; the reason names the echoer.
func (s *session) checkEchoes(round uint16) (int, error) {
	s.echo.mu.Lock()
	got := make(map[PartyID][]byte, len(s.echo.got))
	for p, d := range s.echo.got {
		got[p] = d
	}
	s.echo.mu.Unlock()
	for p, d := range got {
		err := s.echo.transcript.CheckEcho(string(p), round, d)
		var ee *wire.EchoError
		switch {
		case errors.As(err, &ee):
			return 0, &AbortError{Session: s.id, Op: s.op,
				Reason: fmt.Sprintf("final echo: %s saw different broadcasts in round %d", p, round)}
		case err != nil:
			return 0, &AbortError{Session: s.id, Op: s.op, Reason: "final echo: broadcast round incomplete"}
		}
	}
	return len(got), nil
}

// confirm runs the final echo once the protocol has produced a result:
// send our digest of the last broadcast round to every peer, then wait
// until every peer's echo matches it. It ends with an abort on a mismatch
// or a peer's abort notice, and with the deadline otherwise.
func (s *session) confirm(ctx context.Context) error {
	round := s.echo.lastRound()
	digest, err := s.echo.transcript.Digest(round)
	if err != nil {
		return &AbortError{Session: s.id, Op: s.op, Reason: "final echo: broadcast round incomplete"}
	}
	env := Envelope{Session: s.id, From: s.self, Protocol: echoProtocol, Round: round, Broadcast: true, Payload: digest[:]}
	for _, to := range s.peers() {
		env.To = to
		if err := s.tr.Send(ctx, env); err != nil && ctx.Err() == nil {
			return fmt.Errorf("sending echo to %s: %w", to, err)
		}
	}
	return s.awaitEchoes(ctx, round)
}

func (s *session) awaitEchoes(ctx context.Context, round uint16) error {
	for {
		n, err := s.checkEchoes(round)
		if err != nil {
			s.notifyAbort(ctx)
			return err
		}
		if n == len(s.parties)-1 {
			return nil
		}
		select {
		case env := <-s.inbox:
			if err := s.acceptAfterResult(env); err != nil {
				return err
			}
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return ErrDeadline
			}
			s.noticeIfOurs(ctx, ctx.Err())
			return ctx.Err()
		}
	}
}

// acceptAfterResult handles what may still arrive once the protocol has
// ended here: echoes and abort notices. Protocol messages are late
// duplicates and are ignored.
func (s *session) acceptAfterResult(env Envelope) error {
	if !s.isPeer(env.From) || env.To != s.self {
		return nil
	}
	switch env.Protocol {
	case abortProtocol:
		return &PeerAbortError{Session: s.id, Op: s.op, Reporter: env.From}
	case echoProtocol:
		s.echo.stash(env.From, env.Payload)
	}
	return nil
}
