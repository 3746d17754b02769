// Package ingress forwards the cosigner's public gRPC port to the enclave at
// layer 4.
//
// The parent is untrusted and never sees the API in plaintext: gRPC's TLS
// (mutual TLS for callers) terminates inside the enclave. The Forwarder
// accepts a connection on the public listener (TCP), dials the enclave's
// API address (vsock in production, TCP or unix in development), and pipes
// bytes both ways, unchanged and uninspected, with half-close passed on.
//
// Limits: at most MaxConns connections are forwarded at once; one more is
// closed as soon as it is accepted (there is no way to tell a layer-4
// client why; it sees a reset or an EOF and retries). A connection whose
// enclave dial fails — the enclave is down or restarting — is closed at
// once, so clients fail fast instead of hanging. A connection on which no
// byte moves for IdleTimeout is closed; gRPC keepalive pings from the
// enclave's server (or the clients) should be more frequent than that.
//
// The enclave sees the parent, not the client, as the peer address;
// callers are identified by their TLS client certificates, never by
// address.
package ingress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxConns    = 256
	DefaultDialTimeout = 5 * time.Second
	DefaultIdleTimeout = 15 * time.Minute
)

// ErrConfig is returned by New for an unusable configuration.
var ErrConfig = errors.New("ingress: bad configuration")

// Config configures a Forwarder.
type Config struct {
	// Enclave is the enclave's API address (vsock://CID:PORT in
	// production). Required.
	Enclave transport.Addr
	// MaxConns bounds the connections forwarded at once.
	MaxConns int
	// DialTimeout bounds each dial to the enclave.
	DialTimeout time.Duration
	// IdleTimeout closes a connection on which no byte moved for this long.
	IdleTimeout time.Duration
	// Log receives connection events; nil discards them.
	Log *slog.Logger
}

// Stats are the Forwarder's counters since it was created.
type Stats struct {
	Forwarded  uint64 // connections piped to the enclave
	Rejected   uint64 // closed at once: MaxConns reached
	DialFailed uint64 // closed at once: the enclave could not be dialed
	Active     int64  // connections being piped now
	BytesIn    uint64 // client to enclave
	BytesOut   uint64 // enclave to client
}

// Forwarder forwards connections to the enclave. It is safe for concurrent
// use; one Forwarder may serve several listeners.
type Forwarder struct {
	cfg   Config
	log   *slog.Logger
	slots chan struct{}

	forwarded, rejected, dialFailed atomic.Uint64
	bytesIn, bytesOut               atomic.Uint64
	active                          atomic.Int64
}

// New returns a Forwarder for cfg, with defaults for zero fields.
func New(cfg Config) (*Forwarder, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	cfg.MaxConns = orDefault(cfg.MaxConns, DefaultMaxConns)
	cfg.DialTimeout = orDefault(cfg.DialTimeout, DefaultDialTimeout)
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, DefaultIdleTimeout)
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Forwarder{cfg: cfg, log: log, slots: make(chan struct{}, cfg.MaxConns)}, nil
}

func checkConfig(cfg Config) error {
	if _, err := transport.ParseAddr(cfg.Enclave.String()); err != nil {
		return fmt.Errorf("%w: enclave address: %w", ErrConfig, err)
	}
	if cfg.MaxConns < 0 || cfg.DialTimeout < 0 || cfg.IdleTimeout < 0 {
		return fmt.Errorf("%w: negative limit", ErrConfig)
	}
	return nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Serve forwards the connections accepted on l until ctx ends or l fails.
// When it returns, l and every forwarded connection are closed and no
// goroutine of it is left: nil if ctx ended, the Accept error otherwise.
func (f *Forwarder) Serve(ctx context.Context, l net.Listener) error {
	return transport.Serve(ctx, l, f.handle)
}

// Stats returns a snapshot of the counters.
func (f *Forwarder) Stats() Stats {
	return Stats{
		Forwarded:  f.forwarded.Load(),
		Rejected:   f.rejected.Load(),
		DialFailed: f.dialFailed.Load(),
		Active:     f.active.Load(),
		BytesIn:    f.bytesIn.Load(),
		BytesOut:   f.bytesOut.Load(),
	}
}

// handle forwards one client connection; transport.Serve closes c.
func (f *Forwarder) handle(ctx context.Context, c net.Conn) {
	if !f.acquire() {
		f.rejected.Add(1)
		f.log.Warn("ingress: connection refused: too many connections", "max", f.cfg.MaxConns)
		return
	}
	defer f.release()
	enclave, err := f.dial(ctx)
	if err != nil {
		f.dialFailed.Add(1)
		f.log.Warn("ingress: enclave unreachable; client connection closed", "err", err)
		return
	}
	f.forwarded.Add(1)
	f.pipe(ctx, c, enclave)
}

func (f *Forwarder) acquire() bool {
	select {
	case f.slots <- struct{}{}:
		f.active.Add(1)
		return true
	default:
		return false
	}
}

func (f *Forwarder) release() {
	f.active.Add(-1)
	<-f.slots
}

func (f *Forwarder) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.DialTimeout)
	defer cancel()
	return transport.DialAddr(ctx, f.cfg.Enclave)
}

func (f *Forwarder) pipe(ctx context.Context, client, enclave net.Conn) {
	opts := transport.PipeOptions{Idle: f.cfg.IdleTimeout, AToB: &f.bytesIn, BToA: &f.bytesOut}
	res, err := transport.Pipe(ctx, client, enclave, opts)
	f.log.Debug("ingress: connection closed", "remote", client.RemoteAddr().String(),
		"bytes_in", res.AToB, "bytes_out", res.BToA, "err", err)
}
