package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/link"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// Defaults for the zero values of Config.
const (
	DefaultQueueLen       = 64
	DefaultQueueBytes     = 8 << 20
	DefaultPublishers     = 4
	DefaultPublishTimeout = 30 * time.Second
	DefaultAttemptTimeout = 5 * time.Second
	DefaultLinkWait       = 5 * time.Second
	DefaultAckTimeout     = 10 * time.Second
)

// ErrConfig is returned by New for an unusable configuration.
var ErrConfig = errors.New("relay: bad configuration")

// Config configures a Relay. Broker, Self and Listener are required.
type Config struct {
	// Broker carries the frames. The relay does not close it.
	Broker broker.Broker
	// Self is this cosigner's ID: the inbox the relay consumes.
	Self string
	// Listener accepts the enclave's link connections; Run closes it.
	Listener net.Listener
	// Link tunes the link. Link.MaxFrame, the largest OUT frame the relay
	// accepts, defaults to and is capped at Broker.MaxFrameSize().
	Link link.Config
	// QueueLen and QueueBytes bound the OUT frames waiting to be
	// published (a frame larger than QueueBytes is let in alone).
	QueueLen, QueueBytes int
	// Publishers is how many frames are published at once.
	Publishers int
	// PublishTimeout bounds the retries of one frame's Publish.
	PublishTimeout time.Duration
	// AttemptTimeout bounds one Publish call: an adapter may wait for an
	// acknowledgement lost in a reconnect until its context ends (NATS
	// does across a server restart), so each attempt gets its own
	// deadline and the next attempt starts fresh.
	AttemptTimeout time.Duration
	// LinkWait bounds how long the inbox handler waits for an enclave
	// link before it has the broker deliver the frame again later.
	LinkWait time.Duration
	// AckTimeout bounds how long the inbox handler waits for the
	// enclave's ACK of an IN record.
	AckTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between Publish retries and
	// Subscribe restarts (defaults 100ms and 5s).
	RetryMin, RetryMax time.Duration
	// Logger receives link events and retried failures, never a frame
	// (default: discard).
	Logger *slog.Logger
}

// Stats are the relay's counters since New, and its state now.
type Stats struct {
	FramesOut       uint64 // OUT frames the broker stored
	FramesIn        uint64 // IN frames the enclave ACKed
	PublishFailures uint64 // failed Publish attempts
	PublishDropped  uint64 // OUT frames given up (permanent error or PublishTimeout)
	InRetried       uint64 // inbox frames handed back to the broker for redelivery
	InDropped       uint64 // inbox frames above the enclave's limit, dropped
	Links           uint64 // enclave links that completed the handshake
	QueueDepth      int    // OUT frames waiting for a publisher
	QueueBytes      int    // their bytes
	Publishing      int    // OUT frames being published
	InFlight        int    // IN records sent and not yet ACKed
	LinkUp          bool   // an enclave link is up
}

// Relay moves frames between one enclave link and the broker.
type Relay struct {
	cfg     Config
	log     *slog.Logger
	queue   *queue
	active  *activeLink
	started atomic.Bool

	framesOut, framesIn, publishFailures, publishDropped atomic.Uint64
	inRetried, inDropped, links                          atomic.Uint64
	publishing                                           atomic.Int64
}

// New checks cfg and returns a Relay; Run starts it.
func New(cfg Config) (*Relay, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	return &Relay{
		cfg:    cfg,
		log:    cfg.Logger.With("cosigner_id", cfg.Self),
		queue:  newQueue(cfg.QueueLen, cfg.QueueBytes),
		active: newActiveLink(),
	}, nil
}

func withDefaults(cfg Config) (Config, error) {
	switch {
	case cfg.Broker == nil || cfg.Listener == nil:
		return cfg, fmt.Errorf("%w: Broker and Listener are required", ErrConfig)
	case broker.CheckID(cfg.Self) != nil:
		return cfg, fmt.Errorf("%w: Self: %w", ErrConfig, broker.CheckID(cfg.Self))
	case cfg.QueueLen < 0 || cfg.QueueBytes < 0 || cfg.Publishers < 0 || cfg.PublishTimeout < 0 || cfg.AttemptTimeout < 0 ||
		cfg.LinkWait < 0 || cfg.AckTimeout < 0 || cfg.RetryMin < 0 || cfg.RetryMax < 0:
		return cfg, fmt.Errorf("%w: negative limit", ErrConfig)
	}
	limit := cfg.Broker.MaxFrameSize()
	cfg.Link.MaxFrame = min(orDefault(cfg.Link.MaxFrame, limit), limit, link.MaxFrameLimit)
	lc, err := cfg.Link.WithDefaults()
	if err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cfg.Link = lc
	cfg.QueueLen = orDefault(cfg.QueueLen, DefaultQueueLen)
	cfg.QueueBytes = orDefault(cfg.QueueBytes, DefaultQueueBytes)
	cfg.Publishers = orDefault(cfg.Publishers, DefaultPublishers)
	cfg.PublishTimeout = orDefault(cfg.PublishTimeout, DefaultPublishTimeout)
	cfg.AttemptTimeout = min(orDefault(cfg.AttemptTimeout, DefaultAttemptTimeout), cfg.PublishTimeout)
	cfg.LinkWait = orDefault(cfg.LinkWait, DefaultLinkWait)
	cfg.AckTimeout = orDefault(cfg.AckTimeout, DefaultAckTimeout)
	cfg.RetryMin = orDefault(cfg.RetryMin, 100*time.Millisecond)
	cfg.RetryMax = max(orDefault(cfg.RetryMax, 5*time.Second), cfg.RetryMin)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

func orDefault[T int | time.Duration](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}

// Run serves enclave links on Listener, publishes their frames and feeds
// the enclave from the inbox, until ctx ends (it returns nil), the
// Listener fails or the Broker is closed (it returns the error). It
// closes Listener and every link, and returns once every goroutine it
// started has. Frames still queued are dropped unACKed: the enclave
// sends them again to the next relay. Run may be called once.
func (r *Relay) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("relay: Run called twice")
	}
	r.log.Info("relay starting", "listen", r.cfg.Listener.Addr().String())
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range r.cfg.Publishers {
		wg.Go(func() { r.publishLoop(runCtx) })
	}
	wg.Go(func() {
		if err := r.subscribeLoop(runCtx); err != nil {
			cancel(err)
		}
	})
	err := transport.Serve(runCtx, r.cfg.Listener, r.serveLink)
	cancel(err)
	wg.Wait()
	r.log.Info("relay stopped")
	if ctx.Err() != nil {
		return nil
	}
	return context.Cause(runCtx)
}

// Stats returns the counters and current state.
func (r *Relay) Stats() Stats {
	depth, bytes := r.queue.depth()
	l := r.active.current()
	s := Stats{
		FramesOut: r.framesOut.Load(), FramesIn: r.framesIn.Load(),
		PublishFailures: r.publishFailures.Load(), PublishDropped: r.publishDropped.Load(),
		InRetried: r.inRetried.Load(), InDropped: r.inDropped.Load(), Links: r.links.Load(),
		QueueDepth: depth, QueueBytes: bytes, Publishing: int(r.publishing.Load()),
		LinkUp: l != nil,
	}
	if l != nil {
		s.InFlight = l.inFlight()
	}
	return s
}
