package transport

import (
	"context"
	"fmt"
	"net"

	"github.com/mdlayher/vsock"
)

// Listen parses addr and listens on it. ctx bounds the setup only.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	a, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	return ListenAddr(ctx, a)
}

// ListenAddr listens on a parsed address.
func ListenAddr(ctx context.Context, a Addr) (net.Listener, error) {
	var (
		l   net.Listener
		err error
	)
	switch a.Scheme {
	case SchemeVsock:
		l, err = vsock.ListenContextID(a.CID, a.Port, nil)
	case SchemeTCP:
		l, err = new(net.ListenConfig).Listen(ctx, "tcp", a.hostPort())
	case SchemeUnix:
		l, err = new(net.ListenConfig).Listen(ctx, "unix", a.Path)
	default:
		return nil, addrErr("unknown scheme")
	}
	if err != nil {
		return nil, fmt.Errorf("transport: listening on %s: %w", a, err)
	}
	return l, nil
}

// Dial parses addr and connects to it. ctx bounds the connection setup.
func Dial(ctx context.Context, addr string) (net.Conn, error) {
	a, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	return DialAddr(ctx, a)
}

// DialAddr connects to a parsed address. A TCP port 0 is refused.
func DialAddr(ctx context.Context, a Addr) (net.Conn, error) {
	var (
		c   net.Conn
		err error
	)
	switch a.Scheme {
	case SchemeVsock:
		c, err = vsock.DialContext(ctx, a.CID, a.Port, nil)
	case SchemeTCP:
		if a.Port == 0 {
			return nil, addrErr("tcp: cannot dial port 0")
		}
		c, err = new(net.Dialer).DialContext(ctx, "tcp", a.hostPort())
	case SchemeUnix:
		c, err = new(net.Dialer).DialContext(ctx, "unix", a.Path)
	default:
		return nil, addrErr("unknown scheme")
	}
	if err != nil {
		return nil, fmt.Errorf("transport: dialing %s: %w", a, err)
	}
	return c, nil
}
