package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxTunnels    = 64
	DefaultDialTimeout   = 10 * time.Second
	DefaultHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout   = 5 * time.Minute
)

// maxHeaderBytes bounds the CONNECT request header.
const maxHeaderBytes = 8 << 10

// ErrConfig is returned by New for an unusable configuration.
var ErrConfig = errors.New("egress: bad configuration")

// DialFunc opens a TCP connection to a canonical allowlisted "host:port".
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Config configures a Proxy.
type Config struct {
	// Allow lists the exact "host:port" targets the enclave may reach, for
	// instance "kms.eu-west-1.amazonaws.com:443". IP literals are written
	// "192.0.2.1:443" or "[2001:db8::1]:443". Host names are compared
	// case-insensitively; nothing else is normalized.
	Allow []string
	// MaxTunnels bounds the tunnels open (or being dialed) at once.
	MaxTunnels int
	// DialTimeout bounds the dial to a target and the wait for a free slot.
	DialTimeout time.Duration
	// HeaderTimeout bounds the wait for the CONNECT request header.
	HeaderTimeout time.Duration
	// IdleTimeout closes a tunnel on which no byte moved for this long.
	IdleTimeout time.Duration
	// Dial opens connections to targets; nil means a net.Dialer. It is
	// given the canonical allowlist entry, never the client's spelling.
	Dial DialFunc
	// Log receives one record per request; nil discards them.
	Log *slog.Logger
}

// Stats are the Proxy's counters since it was created.
type Stats struct {
	Allowed   uint64 // tunnels established
	Denied    uint64 // requests refused by policy (400, 403, 405)
	Failed    uint64 // allowed requests that failed (502, 503)
	Active    int64  // tunnels open or being dialed now
	BytesUp   uint64 // enclave to targets
	BytesDown uint64 // targets to enclave
}

// Proxy is the allowlisted CONNECT proxy. It is safe for concurrent use.
type Proxy struct {
	cfg   Config
	allow map[string]bool
	log   *slog.Logger
	slots chan struct{}

	allowed, denied, failed atomic.Uint64
	bytesUp, bytesDown      atomic.Uint64
	active                  atomic.Int64
}

// New returns a Proxy for cfg, with defaults for zero fields. It refuses
// a malformed allowlist entry.
func New(cfg Config) (*Proxy, error) {
	allow, err := parseAllowlist(cfg.Allow)
	if err != nil {
		return nil, err
	}
	if cfg.MaxTunnels < 0 || cfg.DialTimeout < 0 || cfg.HeaderTimeout < 0 || cfg.IdleTimeout < 0 {
		return nil, fmt.Errorf("%w: negative limit", ErrConfig)
	}
	cfg = withDefaults(cfg)
	return &Proxy{cfg: cfg, allow: allow, log: cfg.Log, slots: make(chan struct{}, cfg.MaxTunnels)}, nil
}

func parseAllowlist(entries []string) (map[string]bool, error) {
	allow := make(map[string]bool, len(entries))
	for i, e := range entries {
		t, err := parseTarget(e)
		if err != nil {
			return nil, fmt.Errorf("%w: allowlist entry %d %q: %w", ErrConfig, i, e, err)
		}
		allow[t.hostPort] = true
	}
	return allow, nil
}

func withDefaults(cfg Config) Config {
	cfg.MaxTunnels = orDefault(cfg.MaxTunnels, DefaultMaxTunnels)
	cfg.DialTimeout = orDefault(cfg.DialTimeout, DefaultDialTimeout)
	cfg.HeaderTimeout = orDefault(cfg.HeaderTimeout, DefaultHeaderTimeout)
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, DefaultIdleTimeout)
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{}).DialContext
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return cfg
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Serve runs the proxy on l until ctx ends or l fails. When it returns, l
// and every tunnel are closed and none of its goroutines is left: nil if
// ctx ended, the Accept error otherwise.
func (p *Proxy) Serve(ctx context.Context, l net.Listener) error {
	return transport.Serve(ctx, l, p.handle)
}

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Allowed:   p.allowed.Load(),
		Denied:    p.denied.Load(),
		Failed:    p.failed.Load(),
		Active:    p.active.Load(),
		BytesUp:   p.bytesUp.Load(),
		BytesDown: p.bytesDown.Load(),
	}
}

// handle serves one client connection; transport.Serve closes c.
func (p *Proxy) handle(ctx context.Context, c net.Conn) {
	req, br, err := p.readRequest(c)
	if err != nil {
		p.refuseUnread(ctx, c, err)
		return
	}
	t, status, reason := p.authorize(req)
	if status != http.StatusOK {
		p.deny(c, status, t.hostPort, reason)
		return
	}
	p.tunnel(ctx, c, br, t.hostPort)
}

// readRequest reads the request header within HeaderTimeout and
// maxHeaderBytes. The returned reader holds any bytes sent after it.
func (p *Proxy) readRequest(c net.Conn) (*http.Request, *bufio.Reader, error) {
	c.SetDeadline(time.Now().Add(p.cfg.HeaderTimeout))
	defer c.SetDeadline(time.Time{})
	br := bufio.NewReader(&io.LimitedReader{R: c, N: maxHeaderBytes})
	req, err := http.ReadRequest(br)
	return req, br, err
}

// refuseUnread answers a request that could not be read, unless the proxy
// is stopping or the client left without sending a byte.
func (p *Proxy) refuseUnread(ctx context.Context, c net.Conn, err error) {
	switch {
	case ctx.Err() != nil || errors.Is(err, io.EOF):
	case isTimeout(err):
		p.deny(c, http.StatusRequestTimeout, "", "request header timeout")
	default:
		p.deny(c, http.StatusBadRequest, "", "malformed request")
	}
}

// authorize applies the policy to a request. It returns http.StatusOK or
// the refusal's status and reason.
func (p *Proxy) authorize(req *http.Request) (target, int, string) {
	if req.Method != http.MethodConnect {
		return target{}, http.StatusMethodNotAllowed, "method not allowed (only CONNECT)"
	}
	if req.ProtoMajor != 1 {
		return target{}, http.StatusBadRequest, "unsupported HTTP version"
	}
	if req.ContentLength != 0 || len(req.TransferEncoding) > 0 {
		return target{}, http.StatusBadRequest, "request body not allowed"
	}
	t, err := parseTarget(req.RequestURI)
	switch {
	case err != nil:
		return target{}, http.StatusBadRequest, "malformed target"
	case p.allow[t.hostPort]:
		return t, http.StatusOK, ""
	case t.ip:
		return t, http.StatusForbidden, "IP literal not allowlisted"
	default:
		return t, http.StatusForbidden, "not allowlisted"
	}
}

// deny answers a refused request and logs it.
func (p *Proxy) deny(c net.Conn, status int, hostPort, reason string) {
	p.denied.Add(1)
	p.log.Warn("egress: request denied", "target", hostPort, "reason", reason, "status", status)
	p.respond(c, status)
}

// respond writes a bodiless response that closes the connection.
func (p *Proxy) respond(c net.Conn, status int) {
	extra := ""
	if status == http.StatusMethodNotAllowed {
		extra = "Allow: CONNECT\r\n"
	}
	c.SetWriteDeadline(time.Now().Add(p.cfg.HeaderTimeout))
	io.WriteString(c, "HTTP/1.1 "+strconv.Itoa(status)+" "+http.StatusText(status)+"\r\n"+
		extra+"Content-Length: 0\r\nConnection: close\r\n\r\n")
}

// tunnel dials an allowed target, answers 200 and pipes until either side
// is done.
func (p *Proxy) tunnel(ctx context.Context, c net.Conn, br *bufio.Reader, hostPort string) {
	if !p.acquire(ctx) {
		p.fail(c, http.StatusServiceUnavailable, hostPort, errors.New("no free tunnel slot"))
		return
	}
	defer p.release()
	up, err := p.dial(ctx, hostPort)
	if err != nil {
		p.fail(c, http.StatusBadGateway, hostPort, err)
		return
	}
	early, err := established(c, br, up, p.cfg.HeaderTimeout)
	p.bytesUp.Add(uint64(early))
	if err != nil {
		up.Close()
		p.failed.Add(1)
		p.log.Warn("egress: tunnel setup failed", "target", hostPort, "err", err)
		return
	}
	p.allowed.Add(1)
	p.log.Info("egress: tunnel open", "target", hostPort)
	p.pipe(ctx, c, up, hostPort)
}

// fail answers an allowed request that could not be served.
func (p *Proxy) fail(c net.Conn, status int, hostPort string, err error) {
	p.failed.Add(1)
	p.log.Warn("egress: tunnel failed", "target", hostPort, "status", status, "err", err)
	p.respond(c, status)
}

// acquire waits up to DialTimeout for a tunnel slot.
func (p *Proxy) acquire(ctx context.Context) bool {
	t := time.NewTimer(p.cfg.DialTimeout)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		p.active.Add(1)
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (p *Proxy) release() {
	p.active.Add(-1)
	<-p.slots
}

func (p *Proxy) dial(ctx context.Context, hostPort string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	up, err := p.cfg.Dial(ctx, "tcp", hostPort)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", hostPort, err)
	}
	return up, nil
}

// established answers 200 on c and forwards to up whatever the client sent
// after its request header (returning how many bytes), each write bounded
// by timeout.
func established(c net.Conn, br *bufio.Reader, up net.Conn, timeout time.Duration) (int, error) {
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return 0, fmt.Errorf("answering the client: %w", err)
	}
	early, _ := br.Peek(br.Buffered())
	if len(early) == 0 {
		return 0, nil
	}
	up.SetWriteDeadline(time.Now().Add(timeout))
	n, err := up.Write(early)
	if err != nil {
		return n, fmt.Errorf("forwarding early bytes: %w", err)
	}
	return n, nil
}

func (p *Proxy) pipe(ctx context.Context, c, up net.Conn, hostPort string) {
	opts := transport.PipeOptions{Idle: p.cfg.IdleTimeout, AToB: &p.bytesUp, BToA: &p.bytesDown}
	res, err := transport.Pipe(ctx, c, up, opts)
	p.log.Debug("egress: tunnel closed", "target", hostPort,
		"bytes_up", res.AToB, "bytes_down", res.BToA, "err", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
