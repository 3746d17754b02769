package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// DefaultQueueLen is the default bound on accepted envelopes waiting for
// the engine's Receive.
const DefaultQueueLen = 1024

// Link sends one frame to a cosigner's inbox. *enclave/link.Client
// satisfies it.
type Link interface {
	Send(ctx context.Context, to string, frame []byte) error
}

// SessionSet records which parties take part in which session. It must be
// the table the Receiver was configured with; *wire.SessionTable
// satisfies it.
type SessionSet interface {
	Add(session wire.SessionID, parties ...string) error
	Remove(session wire.SessionID)
}

// Config configures a Peer. Every field but QueueLen and Logger is
// required.
type Config struct {
	// Self is this party's ID: the engine's, the wire Signer's and
	// Receiver's, and the link inbox's.
	Self     mpc.PartyID
	Signer   *wire.Signer
	Receiver *wire.Receiver
	Sessions SessionSet
	Link     Link
	// LeanAttach leaves attaching our attestation document to the Signer's
	// default (the first round sent to each recipient in a session)
	// instead of every frame. It saves about the document's size per
	// frame. A frame that overtakes the one carrying the document is held
	// (HoldFor) until that one is accepted; one whose document never
	// comes is dropped as unknown_attestation when it expires.
	LeanAttach bool
	// HoldFor is how long a frame naming an unknown document is held
	// (default DefaultHoldFor); see hold.go.
	HoldFor time.Duration
	// QueueLen bounds accepted envelopes not yet received by the engine
	// (default DefaultQueueLen).
	QueueLen int
	// OnAccept, if set, is called for every accepted frame with its
	// authenticated sender and the sender's timestamp (for metrics: the
	// frame's time through both parents and the broker, plus clock skew).
	// It must not block.
	OnAccept func(from mpc.PartyID, sent time.Time)
	// Logger receives drop reasons (at WARN for frames that mean
	// misbehaviour, rate-limited; else at DEBUG), never a payload.
	Logger *slog.Logger
}

// ErrConfig is returned by New for an unusable configuration.
var ErrConfig = errors.New("peer: bad configuration")

// Peer is an mpc.Transport over pkg/wire and the parent link. It is safe
// for concurrent use.
type Peer struct {
	self     mpc.PartyID
	signer   *wire.Signer
	recv     *wire.Receiver
	sessions SessionSet
	link     Link
	log      *slog.Logger
	attach   bool
	queue    chan mpc.Envelope
	warn     *rate.Limiter // WARN lines about refused frames
	onAccept func(from mpc.PartyID, sent time.Time)
	hold     holding
	holdFor  time.Duration

	sent, sendFailed, queued, queueFull, refreshed, heldFrames, heldAccepted atomic.Uint64
}

// Stats are the Peer's counters and its Receiver's.
type Stats struct {
	Sent       uint64 // frames handed to the link
	SendFailed uint64 // envelopes that could not be sealed or handed over
	Queued     uint64 // accepted envelopes queued for the engine
	QueueFull  uint64 // accepted envelopes dropped because the queue was full
	Refreshed  uint64 // attestation documents replaced by KeepAttested
	// Held counts frames held because their document was not known yet
	// (each also counted once as unknown_attestation in Wire.Dropped);
	// HeldAccepted those of them accepted later.
	Held, HeldAccepted uint64
	Wire               wire.Stats
}

// New checks cfg and returns a Peer.
func New(cfg Config) (*Peer, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := cfg.QueueLen
	if n == 0 {
		n = DefaultQueueLen
	}
	holdFor := cfg.HoldFor
	if holdFor == 0 {
		holdFor = DefaultHoldFor
	}
	return &Peer{
		self: cfg.Self, signer: cfg.Signer, recv: cfg.Receiver, sessions: cfg.Sessions,
		link: cfg.Link, attach: !cfg.LeanAttach, log: log.With("party", string(cfg.Self)), queue: make(chan mpc.Envelope, n),
		onAccept: cfg.OnAccept, warn: rate.NewLimiter(rate.Every(warnEvery), warnBurst), holdFor: holdFor,
	}, nil
}

func checkConfig(cfg Config) error {
	switch {
	case cfg.Self == "":
		return fmt.Errorf("%w: Self is required", ErrConfig)
	case cfg.Signer == nil || cfg.Receiver == nil:
		return fmt.Errorf("%w: Signer and Receiver are required", ErrConfig)
	case cfg.Sessions == nil || cfg.Link == nil:
		return fmt.Errorf("%w: Sessions and Link are required", ErrConfig)
	case cfg.QueueLen < 0 || cfg.HoldFor < 0:
		return fmt.Errorf("%w: negative QueueLen or HoldFor", ErrConfig)
	}
	return nil
}

// Open records a session's parties (this party included) so that the
// Receiver accepts their frames. Call it on every party before any party
// starts the engine call. A session ID can be opened once.
func (p *Peer) Open(session mpc.SessionID, parties []mpc.PartyID) error {
	if !slices.Contains(parties, p.self) {
		return errors.New("peer: open: this party is not in the session")
	}
	ids := make([]string, len(parties))
	for i, id := range parties {
		ids[i] = string(id)
	}
	if err := p.sessions.Add(wire.SessionID(session), ids...); err != nil {
		return fmt.Errorf("peer: open: %w", err)
	}
	return nil
}

// Close ends a session after the engine call returned: its frames are
// refused from now on, and the Signer forgets which recipients it sent
// its document to. Envelopes already queued are left to the engine, which
// drops those of finished sessions.
func (p *Peer) Close(session mpc.SessionID) {
	id := wire.SessionID(session)
	p.sessions.Remove(id)
	p.recv.EndSession(id)
	p.signer.EndSession(id)
}

// Send seals env and hands the frame to the link, addressed to env.To. It
// refuses envelopes that do not come from this party. A nil error means
// queued on the link, not delivered.
func (p *Peer) Send(ctx context.Context, env mpc.Envelope) error {
	frame, err := p.seal(env)
	if err == nil {
		err = p.link.Send(ctx, string(env.To), frame)
	}
	if err != nil {
		p.sendFailed.Add(1)
		return fmt.Errorf("peer: send: %w", err)
	}
	p.sent.Add(1)
	return nil
}

// seal turns env into a signed (and, if direct, encrypted) frame addressed
// to env.To, broadcast or not: only env.To's Receiver accepts it, so the
// broker cannot redirect one party's copy of a broadcast to another.
func (p *Peer) seal(env mpc.Envelope) ([]byte, error) {
	switch {
	case env.From != p.self:
		return nil, errors.New("envelope not from this party")
	case env.To == "" || env.To == p.self:
		return nil, errors.New("envelope has no peer recipient")
	}
	return p.signer.Seal(wire.Frame{
		Session: wire.SessionID(env.Session), Protocol: env.Protocol, Round: env.Round, To: string(env.To),
		Broadcast: env.Broadcast, Payload: env.Payload, Attach: p.attach,
	})
}

// Deliver verifies one frame from the link and queues its envelope for
// Receive. It never blocks: a refused frame is counted by the Receiver, an
// accepted one that finds the queue full is dropped and counted in
// Stats.QueueFull. It matches enclave/link's Config.Receive.
func (p *Peer) Deliver(_ context.Context, frame []byte) {
	msg, err := p.recv.Receive(frame)
	switch {
	case err == nil:
		p.accept(msg)
		p.retryHeld()
	case unknownAttestation(err) && p.keep(frame):
		p.log.Debug("frame held", "reason", "unknown_attestation")
	default:
		p.logDrop(err)
	}
}

// accept queues an accepted frame's envelope for the engine.
func (p *Peer) accept(msg *wire.Message) {
	if p.onAccept != nil {
		p.onAccept(mpc.PartyID(msg.From), msg.Time)
	}
	select {
	case p.queue <- p.envelope(msg):
		p.queued.Add(1)
	default:
		p.queueFull.Add(1)
		p.log.Debug("frame dropped", "reason", "queue_full")
	}
}

// logDrop names a refused frame's reason in the log: at WARN when it
// means a peer or the host misbehaves (a forged, altered, misrouted or
// unattested frame), at most warnBurst lines at once and one a second
// after that, so a flood cannot fill the log; at DEBUG otherwise (a copy
// or a late frame, which at-least-once brokers deliver routinely) and
// past the WARN rate. Every drop is counted in Stats either way.
func (p *Peer) logDrop(err error) {
	var d *wire.DropError
	if !errors.As(err, &d) {
		p.log.Debug("frame dropped", "reason", "unknown")
		return
	}
	if suspicious(d.Reason) && p.warn.Allow() {
		p.log.Warn("frame dropped", "reason", d.Reason.String())
		return
	}
	p.log.Debug("frame dropped", "reason", d.Reason.String())
}

// suspicious reports whether a drop reason means misbehaviour rather than
// redelivery.
func suspicious(r wire.DropReason) bool {
	switch r {
	case wire.DropReplay, wire.DropSessionEnded, wire.DropNotInSession, wire.DropUnknownAttestation, wire.DropStale:
		return false
	}
	return true
}

// warnBurst and warnEvery bound the WARN lines about refused frames.
const (
	warnBurst = 20
	warnEvery = time.Second
)

// envelope maps an accepted message back: From is the authenticated
// sender, To is us (wire refused frames for anyone else).
func (p *Peer) envelope(m *wire.Message) mpc.Envelope {
	return mpc.Envelope{
		Session: mpc.SessionID(m.Session), From: mpc.PartyID(m.From), To: p.self,
		Protocol: m.Protocol, Round: m.Round, Broadcast: m.Broadcast, Payload: m.Payload,
	}
}

// Receive returns the next accepted envelope, or ctx's error.
func (p *Peer) Receive(ctx context.Context) (mpc.Envelope, error) {
	select {
	case env := <-p.queue:
		return env, nil
	case <-ctx.Done():
		return mpc.Envelope{}, ctx.Err()
	}
}

// Stats returns the counters, with a snapshot of the Receiver's.
func (p *Peer) Stats() Stats {
	return Stats{
		Sent: p.sent.Load(), SendFailed: p.sendFailed.Load(),
		Queued: p.queued.Load(), QueueFull: p.queueFull.Load(), Refreshed: p.refreshed.Load(),
		Held: p.heldFrames.Load(), HeldAccepted: p.heldAccepted.Load(), Wire: p.recv.Stats(),
	}
}

var _ mpc.Transport = (*Peer)(nil)
