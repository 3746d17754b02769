package egress

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Limits on a host:port target.
const (
	maxHostLen  = 253
	maxLabelLen = 63
)

// errTarget is returned for a target that is not a well-formed host:port.
var errTarget = errors.New("malformed target")

// target is a canonical host:port.
type target struct {
	hostPort string // canonical "host:port" or "[v6]:port"
	ip       bool   // the host is an IP literal
}

// parseTarget checks s is an authority-form "host:port" (RFC 9110 CONNECT)
// and returns its canonical form: host names lowercased; IPv4 literals bare
// and IPv6 literals bracketed, without zone, as netip prints them; the port
// decimal in 1..65535 without leading zeros. It refuses host names that a
// resolver might read as a numeric address.
func parseTarget(s string) (target, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil || !validPort(port) {
		return target{}, errTarget
	}
	bracketed := strings.HasPrefix(s, "[")
	if ip, err := netip.ParseAddr(host); err == nil {
		return ipTarget(ip, port, bracketed)
	}
	host = strings.ToLower(host)
	if bracketed || !validHostName(host) {
		return target{}, errTarget
	}
	return target{hostPort: net.JoinHostPort(host, port)}, nil
}

func ipTarget(ip netip.Addr, port string, bracketed bool) (target, error) {
	if ip.Zone() != "" || bracketed != ip.Is6() {
		return target{}, errTarget
	}
	return target{hostPort: net.JoinHostPort(ip.String(), port), ip: true}, nil
}

// validPort accepts a decimal port in 1..65535 without sign or leading zero.
func validPort(p string) bool {
	if p == "" || p[0] == '0' || len(p) > 5 || !allDigits(p) {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n <= 65535
}

// validHostName accepts a lowercase LDH DNS name without a trailing dot
// whose last label is not numeric (so it cannot be read as an address).
func validHostName(h string) bool {
	if h == "" || len(h) > maxHostLen {
		return false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if !validLabel(l) {
			return false
		}
	}
	last := labels[len(labels)-1]
	return !allDigits(last) && !strings.HasPrefix(last, "0x")
}

func validLabel(l string) bool {
	if l == "" || len(l) > maxLabelLen || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, c := range []byte(l) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
