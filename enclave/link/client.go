package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	plink "github.com/nitro-cosigner/nitro-cosigner/pkg/link"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// Defaults for the zero values of Config.
const (
	DefaultWindow      = 32
	DefaultWindowBytes = 8 << 20
	DefaultMinBackoff  = 50 * time.Millisecond
	DefaultMaxBackoff  = 5 * time.Second
)

var (
	// ErrConfig is returned by New for an unusable configuration.
	ErrConfig = errors.New("enclave/link: bad configuration")
	// ErrClosed is returned by Send once Run has returned.
	ErrClosed = errors.New("enclave/link: client stopped")
	// ErrEmptyFrame is returned by Send for an empty frame.
	ErrEmptyFrame = errors.New("enclave/link: empty frame")
	// ErrFrameTooLarge (pkg/link's) is returned by Send for a frame above
	// the parent's announced limit.
	ErrFrameTooLarge = plink.ErrFrameTooLarge
	// ErrInvalidID (pkg/link's) is returned by Send for a bad recipient.
	ErrInvalidID = plink.ErrInvalidID
)

// Config configures a Client. Parent and Receive are required.
type Config struct {
	// Parent is the parent's link address (vsock://3:PORT in production).
	Parent transport.Addr
	// Receive takes each frame from the parent. It is called from one
	// goroutine, one frame at a time; frame is the callee's. It should
	// return promptly once ctx ends (the frame is then not ACKed).
	Receive func(ctx context.Context, frame []byte)
	// Link tunes the link. Link.MaxFrame is the largest frame the enclave
	// accepts from the parent. Link.HandshakeTimeout also bounds the dial.
	Link plink.Config
	// Window and WindowBytes bound the frames sent and not yet ACKed by
	// the parent; Send blocks while they are full (a frame larger than
	// WindowBytes is let in alone).
	Window, WindowBytes int
	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives link events, never a frame (default: discard).
	Logger *slog.Logger
}

// Stats are the Client's counters since New, and its state now.
type Stats struct {
	Sent      uint64 // OUT records written, first time or again
	Resent    uint64 // OUT records written again on a later link
	Acked     uint64 // OUT frames the parent ACKed
	Dropped   uint64 // OUT frames dropped: larger than the parent accepts
	Received  uint64 // IN frames taken by Receive and ACKed
	Connects  uint64 // links established
	Unacked   int    // OUT frames held for the parent's ACK
	Connected bool   // a link is up
}

// Client is the enclave's link to its parent.
type Client struct {
	cfg     Config
	log     *slog.Logger
	out     *outbox
	in      *inbox
	started atomic.Bool
	gen     uint64 // link generation, owned by Run's goroutine

	sent, resent, acked, dropped, received, connects atomic.Uint64
	connected                                        atomic.Bool
}

// New checks cfg and returns a Client; Run starts it. Send may be called
// before Run: frames wait for the first link.
func New(cfg Config) (*Client, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{
		cfg: cfg,
		log: cfg.Logger.With("parent", cfg.Parent.String()),
		out: newOutbox(cfg.Window, cfg.WindowBytes),
		in:  newInbox(),
	}, nil
}

func withDefaults(cfg Config) (Config, error) {
	switch {
	case cfg.Receive == nil:
		return cfg, fmt.Errorf("%w: Receive is required", ErrConfig)
	case cfg.Parent.Scheme == "":
		return cfg, fmt.Errorf("%w: Parent is required", ErrConfig)
	case cfg.Window < 0 || cfg.WindowBytes < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < 0:
		return cfg, fmt.Errorf("%w: negative limit", ErrConfig)
	}
	lc, err := cfg.Link.WithDefaults()
	if err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cfg.Link = lc
	cfg.Window = orDefault(cfg.Window, DefaultWindow)
	cfg.WindowBytes = orDefault(cfg.WindowBytes, DefaultWindowBytes)
	cfg.MinBackoff = orDefault(cfg.MinBackoff, DefaultMinBackoff)
	cfg.MaxBackoff = max(orDefault(cfg.MaxBackoff, DefaultMaxBackoff), cfg.MinBackoff)
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

// Send queues frame (copied) for the inbox of cosigner to, waiting while
// the window is full. It returns ctx's error if ctx ends first, ErrClosed
// once Run has returned, and ErrInvalidID, ErrEmptyFrame or
// ErrFrameTooLarge for a frame that can never go. Before the first link
// the parent's limit is unknown: a frame above it is dropped when the link
// comes up, and counted in Stats.Dropped.
func (c *Client) Send(ctx context.Context, to string, frame []byte) error {
	if err := plink.CheckID(to); err != nil {
		return err
	}
	if len(frame) == 0 {
		return ErrEmptyFrame
	}
	return c.out.add(ctx, to, frame)
}

// Run connects to the parent and serves the link, reconnecting with
// backoff, until ctx ends. It then closes the link, waits for a running
// Receive and returns nil; later Sends fail with ErrClosed. Run may be
// called once.
func (c *Client) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("enclave/link: Run called twice")
	}
	defer c.out.close()
	var wg sync.WaitGroup
	wg.Go(func() { c.dispatch(ctx) })
	c.connectLoop(ctx)
	wg.Wait()
	return nil
}

// Stats returns the counters and current state.
func (c *Client) Stats() Stats {
	return Stats{
		Sent: c.sent.Load(), Resent: c.resent.Load(), Acked: c.acked.Load(),
		Dropped: c.dropped.Load(), Received: c.received.Load(), Connects: c.connects.Load(),
		Unacked: c.out.len(), Connected: c.connected.Load(),
	}
}

// connectLoop connects and serves links until ctx ends.
func (c *Client) connectLoop(ctx context.Context) {
	b := &backoff{min: c.cfg.MinBackoff, max: c.cfg.MaxBackoff}
	for ctx.Err() == nil {
		conn, err := c.connect(ctx)
		if err != nil {
			c.log.Warn("connecting to the parent failed", "err", err)
		} else {
			b.reset()
			c.serve(ctx, conn)
		}
		if !b.wait(ctx) {
			return
		}
	}
}

// connect dials the parent and runs the handshake.
func (c *Client) connect(ctx context.Context) (*plink.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.Link.HandshakeTimeout)
	defer cancel()
	nc, err := transport.DialAddr(dctx, c.cfg.Parent)
	if err != nil {
		return nil, err
	}
	return plink.Open(dctx, nc, c.cfg.Link)
}

// backoff spaces out connection attempts: min doubling to max, jittered.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) reset() { b.cur = 0 }

// wait sleeps for the next interval. It reports false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	b.cur = min(max(2*b.cur, b.min), b.max)
	t := time.NewTimer(b.cur/2 + rand.N(b.cur/2+1))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
