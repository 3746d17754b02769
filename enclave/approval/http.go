package approval

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"
)

// MediaType is the content type of questions and answers.
const MediaType = "application/jwt"

// DialFunc opens a connection to addr ("host:port") over network ("tcp");
// egress.Dialer.DialContext is one.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Settings of NewHTTPClient's transport; whole-exchange deadlines come
// from Config.Timeout and the caller's context.
const (
	tlsHandshakeTimeout    = 10 * time.Second
	idleConnTimeout        = 90 * time.Second
	maxResponseHeaderBytes = 16 << 10
)

// NewHTTPClient returns an HTTP client for Config.HTTPClient whose every
// connection is opened by dial, and by nothing else (HTTPS_PROXY and the
// like are ignored). In production dial is the egress dialer's
// DialContext: it reaches the handler through the parent's CONNECT proxy,
// which must allowlist the handler's host and port. TLS (1.2 or later)
// runs inside the enclave over that connection and verifies the handler's
// certificate against roots, or against the system roots when roots is
// nil (the enclave image must then carry a CA bundle). Dial errors are
// reported (their text names only the target and the proxy); nothing the
// other end sends is.
func NewHTTPClient(dial DialFunc, roots *x509.CertPool) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			if err != nil {
				return nil, &dialError{err: err}
			}
			return conn, nil
		},
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		IdleConnTimeout:        idleConnTimeout,
		MaxIdleConnsPerHost:    2,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}}
}

// noRedirects returns a copy of hc that refuses redirects (which could
// carry the question elsewhere) and keeps no cookies.
func noRedirects(hc *http.Client) *http.Client {
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return errRedirect }
	c.Jar = nil
	return &c
}

// post sends the question and returns the answer's body, once the status,
// content type and size are right.
func (c *Client) post(ctx context.Context, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(token))
	if err != nil {
		return nil, fmt.Errorf("%w: cannot build the HTTP request", ErrConfig)
	}
	req.Header.Set("Content-Type", MediaType)
	req.Header.Set("Accept", MediaType)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, exchangeError(ctx, err)
	}
	defer resp.Body.Close()
	if ctx.Err() != nil { // a response racing the deadline is no answer
		return nil, contextError(ctx)
	}
	if err := c.checkHeader(resp); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil || ctx.Err() != nil {
		return nil, exchangeError(ctx, err)
	}
	if int64(len(body)) > c.maxBody {
		return nil, fmt.Errorf("%w: the body is over %d bytes", ErrUnexpected, c.maxBody)
	}
	return body, nil
}

// checkHeader requires a 200 answer of MediaType, not announced as larger
// than the limit.
func (c *Client) checkHeader(resp *http.Response) error {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%w: HTTP status %d", ErrUnexpected, resp.StatusCode)
	case err != nil || mt != MediaType:
		return fmt.Errorf("%w: the content type is not %s", ErrUnexpected, MediaType)
	case resp.ContentLength > c.maxBody:
		return fmt.Errorf("%w: the body is over %d bytes", ErrUnexpected, c.maxBody)
	}
	return nil
}
