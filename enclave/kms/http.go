package kms

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"time"
)

// DialFunc opens a connection to addr ("host:port") over network ("tcp").
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Timeouts of the HTTP client. Whole-call deadlines come from the
// caller's context.
const (
	tlsHandshakeTimeout   = 10 * time.Second
	responseHeaderTimeout = 30 * time.Second
	idleConnTimeout       = 90 * time.Second
)

// errRedirect refuses redirects: KMS never sends one.
var errRedirect = errors.New("kms: refusing an HTTP redirect from the KMS endpoint")

// NewHTTPClient returns the HTTP client for the KMS SDK client
// (aws.Config.HTTPClient). Every connection is opened by dial, and by
// nothing else: environment proxy settings (HTTPS_PROXY and the like) are
// ignored.
//
// The contract of dial: given "tcp" and the endpoint's "host:port" (for
// instance "kms.eu-west-1.amazonaws.com:443"), return a connection that
// carries bytes unchanged to and from that host and port, and give up when
// ctx ends. In production it is a vsock connection to the parent's egress
// proxy, which forwards it to addr if addr is on its allowlist; in
// development it is a direct dial ((&net.Dialer{}).DialContext). It must
// not terminate TLS: for an https endpoint, TLS (1.2 or later) runs from
// inside the enclave to KMS over the connection, and the server certificate
// is verified against the system roots for the endpoint's host name, so the
// proxy and the host see only ciphertext. The enclave image must therefore
// carry a CA bundle (or the binary must embed roots).
func NewHTTPClient(dial DialFunc) *http.Client {
	return newHTTPClient(dial, nil)
}

// newHTTPClient is NewHTTPClient with roots (nil: the system roots).
func newHTTPClient(dial DialFunc, roots *x509.CertPool) *http.Client {
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		IdleConnTimeout:       idleConnTimeout,
		MaxIdleConnsPerHost:   2,
	}
	return &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return errRedirect },
	}
}
