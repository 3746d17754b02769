// Package transport is the one listener/dialer abstraction between the
// enclave, the parent and the tools: AF_VSOCK in production
// (github.com/mdlayher/vsock), TCP or unix sockets in development and tests.
//
// # Addresses
//
// An address is one of
//
//	vsock://CID:PORT   CID and PORT decimal uint32 (4294967295 is "any")
//	tcp://HOST:PORT    HOST an IP literal ([::1] for IPv6) or a DNS name; PORT 0..65535
//	unix:///PATH       PATH absolute, at most 107 bytes
//
// [ParseAddr] is strict: lowercase scheme, no user info, query or
// fragment, decimal numbers without sign or leading zeros, no empty host.
// Port 0 (TCP) means an ephemeral port to [Listen] and is refused by
// [Dial]. Parsing errors wrap [ErrAddress] and name the part that is
// wrong, never repeating the input; Listen and Dial errors name the parsed
// address and wrap the system's error.
//
// A vsock listener binds the given CID: the enclave's own CID, or
// 4294967295 (VMADDR_CID_ANY). A unix listener fails if the path exists
// and removes the socket file when closed.
//
// # Lifetimes
//
// The ctx of Listen and Dial bounds only the setup, as with
// net.ListenConfig and net.Dialer; the returned listener or connection
// lives until closed. [Serve] runs an accept loop on a net.Listener and
// stops, closing the listener, when its context ends.
package transport

import (
	"errors"
	"net"
	"strconv"
	"strings"
)

// Schemes of the addresses this package understands.
const (
	SchemeVsock = "vsock"
	SchemeTCP   = "tcp"
	SchemeUnix  = "unix"
)

// maxUnixPath is the longest unix socket path: sun_path holds 108 bytes
// including the terminating NUL.
const maxUnixPath = 107

// ErrAddress is wrapped by every address parsing error.
var ErrAddress = errors.New("transport: invalid address")

// Addr is a parsed address.
type Addr struct {
	Scheme string // SchemeVsock, SchemeTCP or SchemeUnix
	CID    uint32 // vsock
	Host   string // tcp: IP literal (without brackets) or DNS name
	Port   uint32 // vsock and tcp
	Path   string // unix
}

// String returns the address in the form ParseAddr reads.
func (a Addr) String() string {
	switch a.Scheme {
	case SchemeVsock:
		return "vsock://" + strconv.FormatUint(uint64(a.CID), 10) + ":" + strconv.FormatUint(uint64(a.Port), 10)
	case SchemeTCP:
		return "tcp://" + a.hostPort()
	case SchemeUnix:
		return "unix://" + a.Path
	default:
		return "invalid address"
	}
}

func (a Addr) hostPort() string {
	return net.JoinHostPort(a.Host, strconv.FormatUint(uint64(a.Port), 10))
}

// ParseAddr parses an address strictly (see the package documentation).
func ParseAddr(s string) (Addr, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return Addr{}, addrErr("missing scheme (want vsock://, tcp:// or unix://)")
	}
	switch scheme {
	case SchemeVsock:
		return parseVsock(rest)
	case SchemeTCP:
		return parseTCP(rest)
	case SchemeUnix:
		return parseUnix(rest)
	default:
		return Addr{}, addrErr("unknown scheme (want vsock, tcp or unix)")
	}
}

// addressError makes errors.Is(err, ErrAddress) hold.
type addressError struct{ msg string }

func (e *addressError) Error() string        { return e.msg }
func (e *addressError) Is(target error) bool { return target == ErrAddress }

func parseVsock(rest string) (Addr, error) {
	cid, port, ok := strings.Cut(rest, ":")
	if !ok {
		return Addr{}, addrErr("vsock: want CID:PORT")
	}
	c, err := parseUint(cid, 32)
	if err != nil {
		return Addr{}, addrErr("vsock: CID is not a decimal uint32")
	}
	p, err := parseUint(port, 32)
	if err != nil {
		return Addr{}, addrErr("vsock: port is not a decimal uint32")
	}
	return Addr{Scheme: SchemeVsock, CID: uint32(c), Port: uint32(p)}, nil
}

func parseTCP(rest string) (Addr, error) {
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return Addr{}, addrErr("tcp: want HOST:PORT")
	}
	if !validHost(host, strings.HasPrefix(rest, "[")) {
		return Addr{}, addrErr("tcp: host is not an IP literal or a DNS name")
	}
	p, err := parseUint(port, 16)
	if err != nil {
		return Addr{}, addrErr("tcp: port is not a decimal 0..65535")
	}
	return Addr{Scheme: SchemeTCP, Host: host, Port: uint32(p)}, nil
}

// validHost accepts an IP literal (IPv6 only in brackets) or a DNS name of
// letters, digits, hyphens and dots.
func validHost(host string, bracketed bool) bool {
	if ip := net.ParseIP(host); ip != nil {
		return bracketed == strings.Contains(host, ":") && !strings.Contains(host, "%")
	}
	if bracketed || host == "" || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if !validLabel(label) {
			return false
		}
	}
	return true
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func parseUnix(rest string) (Addr, error) {
	switch {
	case !strings.HasPrefix(rest, "/"):
		return Addr{}, addrErr("unix: path is not absolute")
	case len(rest) > maxUnixPath:
		return Addr{}, addrErr("unix: path longer than 107 bytes")
	case strings.ContainsAny(rest, "\x00?#"):
		return Addr{}, addrErr("unix: path holds NUL, '?' or '#'")
	}
	return Addr{Scheme: SchemeUnix, Path: rest}, nil
}

// parseUint parses a decimal number without sign, spaces or leading zeros.
func parseUint(s string, bits int) (uint64, error) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, errors.New("not canonical")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not decimal")
		}
	}
	return strconv.ParseUint(s, 10, bits)
}

func addrErr(what string) error {
	return &addressError{msg: ErrAddress.Error() + ": " + what}
}
