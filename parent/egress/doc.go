// Package egress is the parent's allowlisted egress proxy: the enclave's
// only way to reach KMS, S3 and the approval callback host.
//
// The enclave has no network. It opens a vsock connection to this proxy
// and sends an HTTP CONNECT request naming "host:port"; if that exact
// host:port is on the allowlist, the proxy dials it, answers 200, and from
// then on pipes bytes both ways without reading them. TLS runs end to end
// between the enclave and the service: the proxy never terminates it,
// never sees plaintext, and cannot forge a server the enclave will accept
// (the enclave verifies the certificate for the host name it asked for).
//
// # Policy
//
//   - Deny by default. A request is allowed only if its target, in
//     canonical form (host lowercased; IP literals in netip form), equals an
//     allowlist entry exactly: no wildcards, no suffix match, no default
//     port. Every refusal is logged with the reason and, when the target was
//     well formed, its host:port.
//   - Only CONNECT. Every other method, including plain-HTTP forwarding
//     (GET http://...), gets 405: nothing leaves the host unencrypted
//     through this proxy.
//   - IP literals are refused unless that literal is itself an allowlist
//     entry. Host names that look numeric but are not canonical IP
//     literals ("127.1", "0x7f.0.0.1", "2130706433", which some resolvers
//     read as addresses) are malformed and refused outright.
//   - No request body, no pipelined second request: after the 200 every
//     byte belongs to the tunnel (bytes the client sent early, right after
//     the CONNECT header, are forwarded first).
//
// Status codes: 400 malformed request or target, 403 not allowlisted, 405
// not CONNECT, 502 the allowlisted target could not be dialed, 503 no free
// tunnel slot.
//
// # DNS and rebinding
//
// The allowlist is by name, and the proxy resolves and dials the
// allowlisted name itself, with the host's resolver, at dial time; there
// is no resolve-then-check step, because the check is on the name, not on
// the address. Whoever controls the answers for an allowlisted name — its
// DNS zone, or the host's resolver, and the host is untrusted anyway —
// decides which address the proxy connects to, and may point it at an
// internal address (rebinding). That cannot break the enclave's security:
// TLS is end to end and the enclave accepts only a server holding a
// certificate for the name it asked for, so a redirected connection fails
// its handshake. It can deny service, as the host can in any case. The
// proxy only serves the local enclave over vsock, so rebinding cannot turn
// it into an open pivot for anyone else. Allowlist only names whose DNS
// you trust to the same degree as the service behind them.
//
// # Limits and lifetime
//
// At most MaxTunnels tunnels (counting those being dialed) run at once; a
// CONNECT that finds no free slot within DialTimeout gets 503. The request
// header must arrive within HeaderTimeout and fit in 8 KiB. A tunnel on
// which no byte moves for IdleTimeout is closed; half-close is passed on.
// Serve stops when its context ends, closing every tunnel, and returns
// only when none of its goroutines is left.
package egress
