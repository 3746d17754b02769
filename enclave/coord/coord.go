package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// DefaultMaxSessions bounds the sessions a party joins at once.
const DefaultMaxSessions = 64

// DefaultAcceptTimeout is how long an initiator waits for the parties to
// accept a proposal.
const DefaultAcceptTimeout = 15 * time.Second

// maxRemembered bounds the proposals remembered for replay detection.
const maxRemembered = 4096

// Engine is the part of *mpc.Engine the coordinator drives.
type Engine interface {
	Keygen(ctx context.Context, spec mpc.SessionSpec, threshold int) (mpc.KeyInfo, error)
	FROSTKeygen(ctx context.Context, spec mpc.SessionSpec, threshold int) (mpc.KeyInfo, error)
	Refresh(ctx context.Context, spec mpc.SessionSpec, key mpc.KeyID, epoch uint64) (mpc.KeyInfo, error)
	Sign(ctx context.Context, spec mpc.SessionSpec, req mpc.SignRequest) (mpc.Signature, error)
	Presign(ctx context.Context, spec mpc.SessionSpec, key mpc.KeyID, epoch uint64) (mpc.PresignatureID, error)
}

// Sessions opens and closes sessions on the wire layer; *enclave/peer.Peer
// satisfies it.
type Sessions interface {
	Open(session mpc.SessionID, parties []mpc.PartyID) error
	Close(session mpc.SessionID)
}

// Judge decides, on every party (the initiator included, with from equal to
// itself), whether to run a proposal. For OpSign it returns the sign
// requests this party built itself from p.Request: its own digests (one per
// signature; p.Signs of them) and path. It must have written any audit entry the decision needs before it
// returns. A *Refusal names the code sent back; any other error is sent as
// CodeInternal.
type Judge interface {
	Judge(ctx context.Context, from mpc.PartyID, p *Proposal) (Task, error)
}

// Task is what a Judge agreed to.
type Task struct {
	// Signs are the requests to sign (OpSign only), one per signature, in
	// the order the payload lists them. Their Key, Epoch and Presignature
	// are set from the proposal; each runs in its own session (see
	// SubSession).
	Signs []mpc.SignRequest
	// Done, if set, is called once with the outcome after the Judge
	// agreed: the engine's result, or why the session never ran.
	Done func(Result, error)
}

func (t Task) done(r Result, err error) {
	if t.Done != nil {
		t.Done(r, err)
	}
}

// Result is a session's outcome: Key for keygen and refresh, Signatures
// (in the order of Task.Signs) for a sign.
type Result struct {
	Key        mpc.KeyInfo
	Signatures []mpc.Signature
}

// Config configures a Coordinator. Every field but MaxSessions, Now and
// Logger is required.
type Config struct {
	Self     mpc.PartyID
	Mux      *Mux // its transport sends our control frames
	Sessions Sessions
	Engine   Engine
	Judge    Judge
	// MaxSessions bounds sessions joined at once (default
	// DefaultMaxSessions); proposals beyond it are refused as busy.
	MaxSessions int
	// AcceptTimeout bounds how long an initiator waits for every party to
	// accept (default DefaultAcceptTimeout, and never past the proposal's
	// deadline): a party that is down is found quickly, and the caller
	// can propose again without it (NoAnswerError names who is missing).
	AcceptTimeout time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
}

// ErrConfig is returned by New for an unusable configuration.
var ErrConfig = errors.New("coord: bad configuration")

// Coordinator runs proposals as initiator and answers them as a party.
type Coordinator struct {
	cfg   Config
	log   *slog.Logger
	slots chan struct{}

	mu      sync.Mutex
	waiters map[mpc.SessionID]*waiter
	seen    map[mpc.SessionID]*seenProposal // until their deadline

	bg sync.WaitGroup
}

// seenProposal is what is remembered of a proposal: until its deadline,
// to ignore replays, and whether its initiator cancelled it before this
// party was ready to hear it.
type seenProposal struct {
	deadline  time.Time
	proposer  mpc.PartyID
	cancelled bool
}

// waiter collects the answers of a session's expected senders.
type waiter struct {
	from map[mpc.PartyID]bool
	ch   chan answer
}

type answer struct {
	from mpc.PartyID
	msg  message
}

// New checks cfg and returns a Coordinator; Run starts it.
func New(cfg Config) (*Coordinator, error) {
	switch {
	case cfg.Self == "" || cfg.Mux == nil || cfg.Sessions == nil || cfg.Engine == nil || cfg.Judge == nil:
		return nil, fmt.Errorf("%w: Self, Mux, Sessions, Engine and Judge are required", ErrConfig)
	case cfg.MaxSessions < 0 || cfg.AcceptTimeout < 0:
		return nil, fmt.Errorf("%w: negative MaxSessions or AcceptTimeout", ErrConfig)
	}
	if cfg.AcceptTimeout == 0 {
		cfg.AcceptTimeout = DefaultAcceptTimeout
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Coordinator{
		cfg: cfg, log: log.With("party", string(cfg.Self)), slots: make(chan struct{}, cfg.MaxSessions),
		waiters: map[mpc.SessionID]*waiter{}, seen: map[mpc.SessionID]*seenProposal{},
	}, nil
}

// Run handles control frames until ctx ends, then waits for the sessions
// it joined to end (their deadlines bound that).
func (c *Coordinator) Run(ctx context.Context) error {
	defer c.bg.Wait()
	for {
		select {
		case env := <-c.cfg.Mux.control:
			c.handle(ctx, env)
		case <-ctx.Done():
			return nil
		}
	}
}

func (c *Coordinator) handle(ctx context.Context, env mpc.Envelope) {
	m, err := decode(env.Payload)
	if err != nil || env.From == c.cfg.Self || env.To != c.cfg.Self {
		c.log.Debug("control frame ignored", "from", string(env.From), "reason", "malformed")
		return
	}
	if m.Type == msgPropose {
		c.propose(ctx, env.From, m.Proposal)
		return
	}
	c.mu.Lock()
	w := c.waiters[m.Session]
	if w == nil && m.Type == msgCancel {
		c.markCancelled(m.Session, env.From)
	}
	c.mu.Unlock()
	if w == nil || !w.from[env.From] {
		return // late, unsolicited, or from a party not asked
	}
	select {
	case w.ch <- answer{from: env.From, msg: m}:
	default: // more answers than parties: a duplicate; the first counts
	}
}

// Initiate runs p with this party as initiator and returns this party's
// result. It fails with a *RefusedError naming the first party that
// refused, ErrDeadline if not all accepted in time, the Judge's error if
// this party refuses, or the engine's error.
func (c *Coordinator) Initiate(ctx context.Context, p Proposal) (Result, error) {
	p.Parties = slices.Clone(p.Parties)
	if err := p.check(c.cfg.Self, c.cfg.Self, c.cfg.Now()); err != nil {
		return Result{}, err
	}
	if !c.remember(&p, c.cfg.Self) {
		return Result{}, fmt.Errorf("%w: session ID already used", ErrInvalid)
	}
	ctx, cancel := context.WithDeadline(ctx, p.Deadline)
	defer cancel()
	task, err := c.judge(ctx, c.cfg.Self, &p)
	if err != nil {
		return Result{}, err
	}
	others := c.others(&p)
	w, err := c.open(&p, others)
	if err != nil {
		task.done(Result{}, err)
		return Result{}, err
	}
	defer c.close(&p)
	if err := c.gather(ctx, &p, w, others); err != nil {
		c.sendAll(ctx, others, message{Type: msgCancel, Session: p.Session})
		task.done(Result{}, err)
		return Result{}, err
	}
	c.sendAll(ctx, others, message{Type: msgGo, Session: p.Session})
	res, err := c.run(ctx, &p, task)
	if err == nil && makesKey(p.Op) {
		err = c.awaitStored(ctx, w, others)
	}
	return res, err
}

// makesKey reports whether op leaves a key or epoch every party must have
// made durable before the initiator reports it done.
func makesKey(op Op) bool { return op == OpKeygen || op == OpFROSTKeygen || op == OpRefresh }

// awaitStored waits until every other party said its result is durable:
// the engine returned it, which it does only after Store.PutKey. A party
// that crashed before then never says so, and the initiator must not
// report a key that lacks one of its shares. It waits AcceptTimeout at
// most (each party stores within moments of the others).
func (c *Coordinator) awaitStored(ctx context.Context, w *waiter, others []mpc.PartyID) error {
	wait := time.NewTimer(c.cfg.AcceptTimeout)
	defer wait.Stop()
	stored := map[mpc.PartyID]bool{}
	for len(stored) < len(others) {
		select {
		case a := <-w.ch:
			if a.msg.Type == msgStored {
				stored[a.from] = true
			}
		case <-wait.C:
			return fmt.Errorf("%w: %v", ErrNotStored, missing(others, stored))
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrNotStored, missing(others, stored))
		}
	}
	return nil
}

// judge asks the Judge and checks that a sign's task has as many requests
// as the proposal has signatures.
func (c *Coordinator) judge(ctx context.Context, from mpc.PartyID, p *Proposal) (Task, error) {
	task, err := c.cfg.Judge.Judge(ctx, from, p)
	if err != nil {
		return Task{}, err
	}
	if p.Op == OpSign && len(task.Signs) != int(p.Signs) {
		err := fmt.Errorf("%w: this party computed %d digests, the proposal %d", ErrInvalid, len(task.Signs), p.Signs)
		task.done(Result{}, err)
		return Task{}, err
	}
	return task, nil
}

// gather sends the proposal and waits until every other party accepted.
func (c *Coordinator) gather(ctx context.Context, p *Proposal, w *waiter, others []mpc.PartyID) error {
	if err := c.sendAll(ctx, others, message{Type: msgPropose, Session: p.Session, Proposal: p}); err != nil {
		return err
	}
	wait := time.NewTimer(c.cfg.AcceptTimeout)
	defer wait.Stop()
	accepted := map[mpc.PartyID]bool{}
	for len(accepted) < len(others) {
		select {
		case a := <-w.ch:
			switch a.msg.Type {
			case msgAccept:
				accepted[a.from] = true
			case msgRefuse:
				return &RefusedError{Party: string(a.from), Code: a.msg.Code}
			}
		case <-wait.C:
			return &NoAnswerError{Missing: missing(others, accepted)}
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &NoAnswerError{Missing: missing(others, accepted)}
			}
			return ctx.Err()
		}
	}
	return nil
}

func missing(others []mpc.PartyID, accepted map[mpc.PartyID]bool) []mpc.PartyID {
	var out []mpc.PartyID
	for _, p := range others {
		if !accepted[p] {
			out = append(out, p)
		}
	}
	return out
}

// propose answers a proposal from another party: a malformed one is
// refused, a replayed one ignored, and a good one judged in the
// background.
func (c *Coordinator) propose(ctx context.Context, from mpc.PartyID, p *Proposal) {
	if err := p.check(c.cfg.Self, from, c.cfg.Now()); err != nil {
		c.refuse(ctx, from, p.Session, CodeInvalid, err)
		return
	}
	if !c.remember(p, from) {
		return
	}
	select {
	case c.slots <- struct{}{}:
	default:
		c.refuse(ctx, from, p.Session, CodeBusy, ErrBusy)
		return
	}
	c.bg.Add(1)
	go func() {
		defer func() { <-c.slots; c.bg.Done() }()
		c.join(ctx, from, p)
	}()
}

// join judges p, opens its session, accepts and runs it on "go".
func (c *Coordinator) join(ctx context.Context, from mpc.PartyID, p *Proposal) {
	ctx, cancel := context.WithDeadline(ctx, p.Deadline)
	defer cancel()
	task, err := c.judge(ctx, from, p)
	if err != nil {
		c.refuse(ctx, from, p.Session, codeOf(err), err)
		return
	}
	w, err := c.open(p, []mpc.PartyID{from})
	if err != nil {
		c.refuse(ctx, from, p.Session, CodeInternal, err)
		task.done(Result{}, err)
		return
	}
	defer c.close(p)
	if err := c.send(ctx, from, message{Type: msgAccept, Session: p.Session}); err != nil {
		task.done(Result{}, err)
		return
	}
	if err := c.awaitGo(ctx, p.Session, w); err != nil {
		task.done(Result{}, err)
		return
	}
	if _, err := c.run(ctx, p, task); err == nil && makesKey(p.Op) {
		_ = c.send(ctx, from, message{Type: msgStored, Session: p.Session})
	}
}

func (c *Coordinator) awaitGo(ctx context.Context, id mpc.SessionID, w *waiter) error {
	if c.wasCancelled(id) {
		return ErrCancelled
	}
	for {
		select {
		case a := <-w.ch:
			switch a.msg.Type {
			case msgGo:
				return nil
			case msgCancel:
				return ErrCancelled
			}
		case <-ctx.Done():
			return deadlineErr(ctx)
		}
	}
}

// run drives the engine for p.
func (c *Coordinator) run(ctx context.Context, p *Proposal, task Task) (Result, error) {
	spec := p.spec()
	var res Result
	var err error
	switch p.Op {
	case OpKeygen:
		res.Key, err = c.cfg.Engine.Keygen(ctx, spec, p.Threshold)
	case OpFROSTKeygen:
		res.Key, err = c.cfg.Engine.FROSTKeygen(ctx, spec, p.Threshold)
	case OpRefresh:
		res.Key, err = c.cfg.Engine.Refresh(ctx, spec, p.Key, p.Epoch)
	case OpSign:
		res.Signatures, err = c.signAll(ctx, p, task.Signs)
	case OpPresign:
		_, err = c.cfg.Engine.Presign(ctx, spec, p.Key, p.Epoch)
	}
	c.log.Debug("session ended", "op", p.Op.String(), "session", p.Session.String(), "ok", err == nil)
	task.done(res, err)
	return res, err
}

// signAll runs one sign session per request, all at once, and returns the
// signatures in order, or the first error.
func (c *Coordinator) signAll(ctx context.Context, p *Proposal, reqs []mpc.SignRequest) ([]mpc.Signature, error) {
	sigs := make([]mpc.Signature, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() {
			spec := p.spec()
			spec.ID = SubSession(p.Session, i)
			req.Key, req.Epoch, req.Presignature = p.Key, p.Epoch, p.Presignature
			sigs[i], errs[i] = c.cfg.Engine.Sign(ctx, spec, req)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return sigs, nil
}

func (c *Coordinator) others(p *Proposal) []mpc.PartyID {
	return slices.DeleteFunc(slices.Clone(p.Parties), func(id mpc.PartyID) bool { return id == c.cfg.Self })
}

// open opens p's session on the wire layer and registers a waiter for the
// answers of from.
func (c *Coordinator) open(p *Proposal, from []mpc.PartyID) (*waiter, error) {
	for i, id := range sessionsOf(p) {
		if err := c.cfg.Sessions.Open(id, p.Parties); err != nil {
			for _, opened := range sessionsOf(p)[:i] {
				c.cfg.Sessions.Close(opened)
			}
			return nil, fmt.Errorf("coord: opening session: %w", err)
		}
	}
	w := &waiter{from: map[mpc.PartyID]bool{}, ch: make(chan answer, 2*len(from))}
	for _, id := range from {
		w.from[id] = true
	}
	c.mu.Lock()
	c.waiters[p.Session] = w
	c.mu.Unlock()
	return w, nil
}

func (c *Coordinator) close(p *Proposal) {
	c.mu.Lock()
	delete(c.waiters, p.Session)
	c.mu.Unlock()
	for _, id := range sessionsOf(p) {
		c.cfg.Sessions.Close(id)
	}
}

// sessionsOf lists the engine sessions p runs: p.Session, or one per
// signature for a sign.
func sessionsOf(p *Proposal) []mpc.SessionID {
	if p.Op != OpSign {
		return []mpc.SessionID{p.Session}
	}
	ids := make([]mpc.SessionID, p.Signs)
	for i := range ids {
		ids[i] = SubSession(p.Session, i)
	}
	return ids
}

// remember records p's session ID until its deadline; false means it was
// seen already (or too many are remembered, which fails closed).
func (c *Coordinator) remember(p *Proposal, proposer mpc.PartyID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[p.Session]; ok {
		return false
	}
	if len(c.seen) >= maxRemembered {
		now := c.cfg.Now()
		maps.DeleteFunc(c.seen, func(_ mpc.SessionID, sp *seenProposal) bool { return !sp.deadline.After(now) })
		if len(c.seen) >= maxRemembered {
			return false
		}
	}
	c.seen[p.Session] = &seenProposal{deadline: p.Deadline, proposer: proposer}
	return true
}

// markCancelled notes a cancel that came before the session's waiter.
// Call with mu held.
func (c *Coordinator) markCancelled(id mpc.SessionID, from mpc.PartyID) {
	if sp := c.seen[id]; sp != nil && sp.proposer == from {
		sp.cancelled = true
	}
}

func (c *Coordinator) wasCancelled(id mpc.SessionID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	sp := c.seen[id]
	return sp != nil && sp.cancelled
}

func (c *Coordinator) refuse(ctx context.Context, to mpc.PartyID, session mpc.SessionID, code Code, err error) {
	c.log.Info("proposal refused", "from", string(to), "session", session.String(), "code", code.String(), "err", err)
	_ = c.send(ctx, to, message{Type: msgRefuse, Session: session, Code: code})
}

func (c *Coordinator) sendAll(ctx context.Context, to []mpc.PartyID, m message) error {
	var first error
	for _, id := range to {
		if err := c.send(ctx, id, m); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (c *Coordinator) send(ctx context.Context, to mpc.PartyID, m message) error {
	payload, err := encode(m)
	if err != nil {
		return fmt.Errorf("coord: encoding: %w", err)
	}
	env := mpc.Envelope{Session: ControlSession, From: c.cfg.Self, To: to, Protocol: Protocol, Round: 1, Payload: payload}
	if err := c.cfg.Mux.tr.Send(ctx, env); err != nil {
		return fmt.Errorf("coord: sending to %s: %w", to, err)
	}
	return nil
}

func deadlineErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrDeadline
	}
	return ctx.Err()
}
