// Package egress is the enclave's way out: it opens TCP connections to
// KMS, S3 and the approval callback host through the parent's HTTP CONNECT
// proxy (parent/egress), over vsock in production.
//
// Dialer.DialContext has the shape of net.Dialer.DialContext and plugs
// into kms.NewHTTPClient. It dials the proxy with pkg/transport, sends
// "CONNECT host:port HTTP/1.1", and on a 200 answer returns the
// connection, which from then on carries the caller's bytes unchanged;
// the caller runs TLS over it, so the parent sees only ciphertext and
// cannot impersonate the service (the caller verifies its certificate).
//
// The parent is untrusted. Its answer is read with a size limit, anything
// but a 200 is a refusal (ErrDenied for 403, ErrProxy otherwise), and
// nothing it sends is echoed in an error: errors name the target and the
// proxy's address and carry the status code, nothing else. Bytes the proxy
// sent after its response header are returned first by the connection's
// Read.
package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// DefaultTimeout bounds the dial to the proxy and the CONNECT exchange when
// Dialer.Timeout is zero; the caller's context may end it sooner.
const DefaultTimeout = 30 * time.Second

// maxResponseHeader bounds the proxy's response header.
const maxResponseHeader = 8 << 10

var (
	// ErrDenied: the proxy answered 403, the target is not on its
	// allowlist.
	ErrDenied = errors.New("target refused by the egress proxy")
	// ErrProxy: the proxy answered anything but 200 or 403, or something
	// that is not an HTTP response.
	ErrProxy = errors.New("egress proxy failure")
	// ErrTarget: the address given to DialContext is not a host:port
	// this package will send, or the network is not TCP.
	ErrTarget = errors.New("invalid egress target")
)

// Dialer opens connections through the parent's egress proxy. The zero
// Timeout means DefaultTimeout. A Dialer is safe for concurrent use.
type Dialer struct {
	Proxy   transport.Addr
	Timeout time.Duration
}

// DialContext connects to addr ("host:port") through the proxy. network
// must be "tcp", "tcp4" or "tcp6" (the proxy picks the address family).
// ctx bounds the connection setup only.
func (d Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := checkTarget(network, addr); err != nil {
		return nil, fmt.Errorf("egress: dialing %q: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	c, err := transport.DialAddr(ctx, d.Proxy)
	if err != nil {
		return nil, fmt.Errorf("egress: dialing %s through the proxy: %w", addr, err)
	}
	conn, err := handshake(ctx, c, addr)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("egress: CONNECT %s via %s: %w", addr, d.Proxy, err)
	}
	return conn, nil
}

func (d Dialer) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return DefaultTimeout
}

// checkTarget refuses a non-TCP network and an address that is not a
// host:port of printable ASCII (so it cannot smuggle a header line).
func checkTarget(network, addr string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("%w: network %q", ErrTarget, network)
	}
	for _, c := range []byte(addr) {
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: not printable ASCII", ErrTarget)
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("%w: not host:port", ErrTarget)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%w: bad port", ErrTarget)
	}
	return nil
}

// handshake runs the CONNECT exchange on c within ctx and returns the
// tunnel's connection.
func handshake(ctx context.Context, c net.Conn, addr string) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	conn, err := connect(c, addr)
	if !stop() {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return conn, nil
}

// connect sends the CONNECT request and reads the answer.
func connect(c net.Conn, addr string) (net.Conn, error) {
	req := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return nil, fmt.Errorf("sending the request: %w", err)
	}
	br := bufio.NewReader(&io.LimitedReader{R: c, N: maxResponseHeader})
	status, err := readStatus(br)
	if err != nil {
		return nil, err
	}
	if err := statusError(status); err != nil {
		return nil, err
	}
	return withPrefix(c, br), nil
}

// readStatus reads the proxy's response header and returns its status
// code. It never reads the body: after a 200 every byte is the tunnel's.
func readStatus(br *bufio.Reader) (int, error) {
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, fmt.Errorf("%w: no answer in time", ErrProxy)
		}
		return 0, fmt.Errorf("%w: malformed or missing response", ErrProxy)
	}
	if resp.ProtoMajor != 1 {
		return 0, fmt.Errorf("%w: not HTTP/1", ErrProxy)
	}
	return resp.StatusCode, nil
}

func statusError(status int) error {
	switch status {
	case http.StatusOK:
		return nil
	case http.StatusForbidden:
		return fmt.Errorf("%w (status 403)", ErrDenied)
	default:
		return fmt.Errorf("%w (status %d)", ErrProxy, status)
	}
}

// withPrefix returns c, preceded by whatever br read past the response
// header.
func withPrefix(c net.Conn, br *bufio.Reader) net.Conn {
	n := br.Buffered()
	if n == 0 {
		return c
	}
	early, _ := br.Peek(n)
	return &prefixConn{Conn: c, prefix: append([]byte(nil), early...)}
}

// prefixConn is a net.Conn whose first reads return prefix.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) == 0 {
		return c.Conn.Read(b)
	}
	n := copy(b, c.prefix)
	c.prefix = c.prefix[n:]
	return n, nil
}

// CloseWrite ends the sending half, if the underlying connection can.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("egress: %T cannot half-close", c.Conn)
}
