package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// Defaults and fixed limits of a Server.
const (
	DefaultMaxRecvMsgSize   = 1 << 20
	DefaultMaxOperations    = 10_000
	DefaultMaxInFlight      = 256
	DefaultOperationTimeout = 10 * time.Minute
	DefaultShutdownTimeout  = 10 * time.Second
	// OperationRetention is how long a finished sign operation stays in
	// the table (unless the table's bound evicts it sooner).
	OperationRetention = 24 * time.Hour

	maxConcurrentStreams = 256      // per connection
	maxHeaderListSize    = 64 << 10 // bytes
	handshakeTimeout     = 10 * time.Second
	// cancelGrace is how long shutdown waits for background operations
	// after canceling them.
	cancelGrace = 5 * time.Second
)

// Config configures a Server.
type Config struct {
	// Node serves the calls. Required.
	Node Node
	// ServerCert is the TLS identity made inside the enclave. Required.
	ServerCert *ServerCert
	// ClientCAs verifies client certificates: every caller presents a
	// certificate issued by one of them, whose role URIs are its roles
	// (CallerFromCert). Required unless Users is set.
	ClientCAs *x509.CertPool
	// Users, if set, names the callers instead: every caller presents a
	// certificate whose public key is an API user's (the workspace's),
	// and has that user's roles; ClientCAs, if also set, must issue it.
	Users UserDirectory
	// Workspace serves WorkspaceService; nil answers FAILED_PRECONDITION.
	Workspace Workspace
	// Idempotency keeps the responses of mutating calls (CreateKey,
	// RefreshKey, Sign, SetPolicy) for IdempotencyTTL. Required;
	// *keystore.Store is one.
	Idempotency IdempotencyStore
	// RateLimit bounds each caller's call rate; zero fields take defaults.
	RateLimit RateLimit
	// MaxRecvMsgSize is the largest request message in bytes; a larger one
	// fails with RESOURCE_EXHAUSTED. 0 means DefaultMaxRecvMsgSize.
	MaxRecvMsgSize int
	// MaxOperations bounds the sign operations kept in memory; 0 means
	// DefaultMaxOperations.
	MaxOperations int
	// MaxInFlight bounds the mutating operations running at once (key
	// generations, refreshes, signs, policy changes); more fail with
	// RESOURCE_EXHAUSTED. 0 means DefaultMaxInFlight.
	MaxInFlight int
	// OperationTimeout bounds each such operation, which runs detached
	// from the call that started it. 0 means DefaultOperationTimeout.
	OperationTimeout time.Duration
	// ShutdownTimeout bounds Serve's graceful shutdown. 0 means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Now is the clock for timestamps, rate limits, retention and
	// certificate validity; nil means time.Now.
	Now func() time.Time
	// Logger receives operational messages, never a request's content;
	// nil discards them.
	Logger *slog.Logger
}

func (c Config) check() error {
	switch {
	case c.Node == nil:
		return errors.New("api: Config.Node is required")
	case c.ServerCert == nil:
		return errors.New("api: Config.ServerCert is required")
	case c.ClientCAs == nil && c.Users == nil:
		return errors.New("api: Config.ClientCAs or Config.Users is required")
	case c.Idempotency == nil:
		return errors.New("api: Config.Idempotency is required")
	case c.MaxRecvMsgSize < 0 || c.MaxOperations < 0 || c.MaxInFlight < 0 ||
		c.OperationTimeout < 0 || c.ShutdownTimeout < 0:
		return errors.New("api: negative limit in Config")
	case c.RateLimit.PerSecond < 0 || math.IsNaN(c.RateLimit.PerSecond) || math.IsInf(c.RateLimit.PerSecond, 0) ||
		c.RateLimit.Burst < 0 || c.RateLimit.MaxCallers < 0:
		return errors.New("api: invalid Config.RateLimit")
	}
	return nil
}

func (c Config) withDefaults() Config {
	c.RateLimit = c.RateLimit.withDefaults()
	setDefault(&c.MaxRecvMsgSize, DefaultMaxRecvMsgSize)
	setDefault(&c.MaxOperations, DefaultMaxOperations)
	setDefault(&c.MaxInFlight, DefaultMaxInFlight)
	setDefault(&c.OperationTimeout, DefaultOperationTimeout)
	setDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Server is the cosigner's gRPC API over a Node. See the package comment
// for its contract.
type Server struct {
	node            Node
	users           UserDirectory
	workspace       Workspace
	cert            *ServerCert
	log             *slog.Logger
	now             func() time.Time
	opTimeout       time.Duration
	shutdownTimeout time.Duration

	grpc   *grpc.Server
	health *health.Server
	codec  *requestCodec
	limits *limiter
	idem   *idempotency
	ops    *operations
	slots  chan struct{} // one per running mutating operation

	// closing ends when shutdown starts: calls that wait (Sign, a key
	// operation's stream, SetPolicy, StreamAudit) return.
	closing    context.Context
	beginClose context.CancelFunc
	// bg is the parent of background operations; it ends after the
	// shutdown deadline.
	bg     context.Context
	stopBg context.CancelFunc

	workMu     sync.Mutex
	workClosed bool
	work       sync.WaitGroup

	served atomic.Bool
}

// New makes a Server; Serve runs it.
func New(cfg Config) (*Server, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{
		node:            cfg.Node,
		users:           cfg.Users,
		workspace:       cfg.Workspace,
		cert:            cfg.ServerCert,
		log:             cfg.Logger,
		now:             cfg.Now,
		opTimeout:       cfg.OperationTimeout,
		shutdownTimeout: cfg.ShutdownTimeout,
		codec:           newRequestCodec(),
		limits:          newLimiter(cfg.RateLimit, cfg.Now),
		idem:            &idempotency{store: cfg.Idempotency, now: cfg.Now, log: cfg.Logger, flights: map[string]*flight{}},
		ops:             newOperations(cfg.MaxOperations, OperationRetention, cfg.Now),
		slots:           make(chan struct{}, cfg.MaxInFlight),
	}
	s.closing, s.beginClose = context.WithCancel(context.Background())
	s.bg, s.stopBg = context.WithCancel(context.Background())
	s.grpc = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsConfig(cfg))),
		grpc.ForceServerCodecV2(s.codec),
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		grpc.MaxConcurrentStreams(maxConcurrentStreams),
		grpc.MaxHeaderListSize(maxHeaderListSize),
		grpc.ConnectionTimeout(handshakeTimeout),
		grpc.WaitForHandlers(true),
		grpc.UnaryInterceptor(s.unary),
		grpc.StreamInterceptor(s.stream),
	)
	s.register()
	return s, nil
}

// tlsConfig is TLS 1.3 only, with a client certificate required: verified
// against the client CAs when set; with only Users, any certificate whose
// key is a user's (checked per call, so that a revocation applies at once).
func tlsConfig(cfg Config) *tls.Config {
	auth := tls.RequireAndVerifyClientCert
	if cfg.ClientCAs == nil {
		auth = tls.RequireAnyClientCert
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cfg.ServerCert.TLS},
		ClientAuth:   auth,
		ClientCAs:    cfg.ClientCAs,
		Time:         cfg.Now,
	}
}

func (s *Server) register() {
	pb.RegisterKeyServiceServer(s.grpc, &keyService{s: s})
	pb.RegisterSigningServiceServer(s.grpc, &signingService{s: s})
	pb.RegisterPolicyServiceServer(s.grpc, &policyService{s: s})
	pb.RegisterAuditServiceServer(s.grpc, &auditService{s: s})
	pb.RegisterAttestationServiceServer(s.grpc, &attestationService{s: s})
	pb.RegisterWorkspaceServiceServer(s.grpc, &workspaceService{s: s})
	s.health = health.NewServer()
	for name := range s.grpc.GetServiceInfo() {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
}

// Serve serves the API on lis until ctx ends, then shuts down: health
// turns NOT_SERVING, calls that wait return, running calls get until
// ShutdownTimeout to finish and are then cut, background operations get
// what is left of the deadline and are then canceled. It returns nil after
// a shutdown, or the listener's error. A Server serves once.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	if !s.served.CompareAndSwap(false, true) {
		return errors.New("api: Serve called twice")
	}
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	select {
	case err := <-errc:
		s.shutdown()
		return fmt.Errorf("api: serving: %w", err)
	case <-ctx.Done():
	}
	s.shutdown()
	<-errc
	return nil
}

func (s *Server) shutdown() {
	deadline := time.Now().Add(s.shutdownTimeout)
	s.health.Shutdown()
	s.beginClose()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	if !waitFor(stopped, deadline) {
		s.log.Warn("api: calls still running at the shutdown deadline; cutting them")
		s.grpc.Stop()
		<-stopped
	}
	s.workMu.Lock()
	s.workClosed = true
	s.workMu.Unlock()
	idle := make(chan struct{})
	go func() {
		s.work.Wait()
		close(idle)
	}()
	if waitFor(idle, deadline) {
		s.stopBg()
		return
	}
	s.log.Warn("api: operations still running at the shutdown deadline; canceling them")
	s.stopBg()
	if !waitFor(idle, time.Now().Add(cancelGrace)) {
		s.log.Error("api: operations ignore cancellation; leaving them behind")
	}
}

// waitFor reports whether ch closed before deadline.
func waitFor(ch <-chan struct{}, deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// msgShuttingDown is sent to calls cut short by shutdown.
const msgShuttingDown = "the server is shutting down; retry"

// acquire takes a slot for a mutating operation, or fails with
// RESOURCE_EXHAUSTED when MaxInFlight run.
func (s *Server) acquire() error {
	select {
	case s.slots <- struct{}{}:
		return nil
	default:
		return failure(codes.ResourceExhausted, msgBusy)
	}
}

func (s *Server) release() { <-s.slots }

// spawn runs fn in the background, detached from any call, under
// OperationTimeout; shutdown waits for it. It fails once shutdown has
// begun.
func (s *Server) spawn(fn func(ctx context.Context)) error {
	s.workMu.Lock()
	defer s.workMu.Unlock()
	if s.workClosed {
		return failure(codes.Unavailable, msgShuttingDown)
	}
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		ctx, cancel := context.WithTimeout(s.bg, s.opTimeout)
		defer cancel()
		fn(ctx)
	}()
	return nil
}

// errPanicked stands for a Node call that panicked: INTERNAL.
var errPanicked = errors.New("api: a node call panicked")

// protect calls fn and turns a panic into errPanicked, logged with its
// stack, so that a background operation ends instead of the process.
func protect[T any](s *Server, what string, fn func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("api: operation panicked", "operation", what, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			var zero T
			v, err = zero, errPanicked
		}
	}()
	return fn()
}

// untilClosing is ctx, also canceled when shutdown begins.
func (s *Server) untilClosing(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.closing, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}
