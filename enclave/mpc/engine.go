package mpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Config configures an Engine.
type Config struct {
	// Self is this party's ID in every key it holds.
	Self PartyID
	// Transport carries this party's messages; Store keeps its shares.
	Transport Transport
	Store     Store
	// Pools tunes the presignature pools; zero values take defaults.
	Pools PoolConfig
	// ProposePresign, if set, replaces the engine's own presign proposal
	// (a message to the other signers, then the session) for pool
	// refills: it must run the presign session spec on every signer, this
	// engine included, through Presign, which files the result in each
	// party's pool. A coordination layer that must open sessions on the
	// wire before any frame flows (enclave/coord) sets it.
	ProposePresign func(ctx context.Context, spec SessionSpec, key KeyID, epoch uint64) error
	// OnSessionEnd, if set, is called once for every session this engine
	// ran, when it ends, on the session's goroutine (for metrics). It must
	// not block.
	OnSessionEnd func(SessionEnd)
	// Logger receives debug lines about sessions and refills and one info
	// line per presignature consumed (its public ID), never a secret. Nil
	// discards them.
	Logger *slog.Logger
}

// Engine runs this party's side of every MPC session. Its methods are safe
// for concurrent use. Run must be running for sessions to receive messages.
type Engine struct {
	self    PartyID
	tr      Transport
	store   Store
	poolCfg PoolConfig
	// proposePresign is Config.ProposePresign.
	proposePresign func(ctx context.Context, spec SessionSpec, key KeyID, epoch uint64) error
	log            *slog.Logger
	router         *router
	now            func() time.Time

	onEnd func(SessionEnd) // Config.OnSessionEnd

	keysMu sync.Mutex
	keys   map[KeyID]*keyState

	poolsMu   sync.Mutex
	pools     map[poolKey]*presigPool
	proposals recentIDs // session IDs of proposals judged, under poolsMu

	runMu   sync.Mutex
	running bool
	bg      sync.WaitGroup
	kick    chan struct{}
}

// New returns an engine. It starts nothing: call Run.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Self.validate(); err != nil {
		return nil, err
	}
	if cfg.Transport == nil || cfg.Store == nil {
		return nil, fmt.Errorf("%w: transport and store are required", ErrInvalidRequest)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		self: cfg.Self, tr: cfg.Transport, store: cfg.Store, proposePresign: cfg.ProposePresign,
		onEnd:   cfg.OnSessionEnd,
		poolCfg: cfg.Pools.withDefaults(), log: log.With("party", string(cfg.Self)),
		router: newRouter(time.Now), now: time.Now,
		keys: map[KeyID]*keyState{}, pools: map[poolKey]*presigPool{},
		proposals: recentIDs{seen: map[SessionID]bool{}},
		kick:      make(chan struct{}, 1),
	}, nil
}

var errRunning = errors.New("mpc: engine already running")

// Run receives messages and refills presignature pools until ctx ends or
// the transport fails. It returns only after every background session it
// started has ended (they are cancelled with it). It returns nil when ctx
// ended. Run may be called again after it returned, never twice at once.
func (e *Engine) Run(ctx context.Context) error {
	if !e.startRunning() {
		return errRunning
	}
	defer e.stopRunning()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		e.refillLoop(ctx)
	}()
	err := e.receiveLoop(ctx)
	cancel()
	e.bg.Wait()
	return err
}

func (e *Engine) startRunning() bool {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	if e.running {
		return false
	}
	e.running = true
	return true
}

func (e *Engine) isRunning() bool {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	return e.running
}

func (e *Engine) stopRunning() {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	e.running = false
}

func (e *Engine) receiveLoop(ctx context.Context) error {
	for {
		env, err := e.tr.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("mpc: receiving: %w", err)
		}
		e.dispatch(ctx, env)
	}
}

// dispatch drops envelopes that cannot be for us, answers proposals and
// routes the rest to their session.
func (e *Engine) dispatch(ctx context.Context, env Envelope) {
	if env.To != e.self || env.From == e.self || env.From.validate() != nil ||
		env.Session.IsZero() || len(env.Payload) > MaxPayload {
		return
	}
	if env.Protocol == proposalProtocol {
		e.handleProposal(ctx, env)
		return
	}
	e.router.deliver(env)
}

// goBackground runs f as a background task that Run waits for.
func (e *Engine) goBackground(f func()) {
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		f()
	}()
}
