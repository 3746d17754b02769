// Package creds gives the enclave AWS credentials fetched from its parent.
//
// The enclave signs its KMS and S3 requests with the parent host's role
// credentials, which the parent serves on its control listener
// (parent/creds): GET /v1/credentials over a pkg/transport connection
// (vsock in production) answers
//
//	{"access_key_id": "...", "secret_access_key": "...",
//	 "session_token": "...", "expires": "RFC 3339"}
//
// with session_token and expires optional. New returns an
// aws.CredentialsProvider for aws.Config.Credentials: a Provider wrapped in
// an aws.CredentialsCache that refreshes five minutes before the expiry
// the parent announced. If the parent keeps handing out the same
// soon-expiring credentials, the cache asks again at most once a minute
// until they really expire, instead of on every request.
//
// # Trust
//
// The parent is untrusted, and so is everything it serves. These
// credentials authorize API calls, not key use: the KMS key policy also
// demands this enclave's attestation (kms:RecipientAttestation
// conditions), and KMS encrypts what it returns to the enclave's attested
// key. The parent already holds the same credentials, so serving them
// through it reveals nothing; a hostile parent can serve wrong, expired
// or no credentials, and the worst that does is deny service, which the
// parent can do anyway.
//
// Retrieve therefore checks only shape: a 200 answer, a JSON body of
// bounded size with both keys present and an expiry, if any, in the
// future. Errors name the parent's address and the HTTP status, never
// the body.
//
// # Secrets
//
// The secret access key and session token are never logged. Note that
// aws.Credentials (the SDK's type) does not redact itself: never log or
// print one.
package creds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// Defaults.
const (
	// ExpiryWindow is how long before the announced expiry the cache
	// refreshes.
	ExpiryWindow = 5 * time.Minute
	// MinRefresh is the shortest time the cache keeps credentials before
	// asking again, unless they expire sooner.
	MinRefresh = time.Minute
	// DefaultTimeout bounds one fetch when Provider.Timeout is zero.
	DefaultTimeout = 10 * time.Second
)

// endpoint is the parent's endpoint; its host name is a placeholder (the
// connection goes to Provider.Parent whatever it says).
const endpoint = "http://parent/v1/credentials"

// maxBody bounds the parent's answer.
const maxBody = 16 << 10

// Source names these credentials in aws.Credentials.Source.
const Source = "NitroCosignerParent"

// ErrUnavailable is wrapped by every Retrieve error.
var ErrUnavailable = errors.New("credentials from the parent unavailable")

// New returns the enclave's credential provider: a Provider for the
// parent's control address, wrapped in a cache that refreshes ExpiryWindow
// early.
func New(parent transport.Addr) *aws.CredentialsCache {
	return aws.NewCredentialsCache(&Provider{Parent: parent}, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = ExpiryWindow
	})
}

// Provider fetches credentials from the parent on every Retrieve; wrap it
// in aws.NewCredentialsCache (New does). It implements
// aws.AdjustExpiresByCredentialsCacheStrategy to bound how often the
// cache asks again.
type Provider struct {
	// Parent is the parent's control address (vsock://3:PORT in
	// production).
	Parent transport.Addr
	// Timeout bounds one fetch; zero means DefaultTimeout.
	Timeout time.Duration

	minRefresh time.Duration // tests shorten MinRefresh
}

// Retrieve fetches the parent's current credentials. Every error wraps
// ErrUnavailable.
func (p *Provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := p.fetch(ctx)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("creds: fetching from the parent at %s: %w: %w", p.Parent, ErrUnavailable, err)
	}
	return c, nil
}

// AdjustExpiresBy moves the expiry the cache works with by dur (negative:
// refresh early), but to no less than MinRefresh from now, and never past
// the real expiry.
func (p *Provider) AdjustExpiresBy(c aws.Credentials, dur time.Duration) (aws.Credentials, error) {
	if c.CanExpire {
		c.Expires = refreshAt(time.Now(), c.Expires, dur, p.floor())
	}
	return c, nil
}

// refreshAt is exp+dur, raised to now+floor, capped at exp.
func refreshAt(now, exp time.Time, dur, floor time.Duration) time.Time {
	at := exp.Add(dur)
	if earliest := now.Add(floor); at.Before(earliest) {
		at = earliest
	}
	if at.After(exp) {
		at = exp
	}
	return at
}

func (p *Provider) floor() time.Duration {
	if p.minRefresh > 0 {
		return p.minRefresh
	}
	return MinRefresh
}

func (p *Provider) fetch(ctx context.Context) (aws.Credentials, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return aws.Credentials{}, err
	}
	resp, err := p.client().Do(req)
	if err != nil {
		return aws.Credentials{}, unwrapURLError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return aws.Credentials{}, fmt.Errorf("status %d", resp.StatusCode)
	}
	w, err := decode(resp.Body)
	if err != nil {
		return aws.Credentials{}, err
	}
	return w.credentials(time.Now())
}

func (p *Provider) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return DefaultTimeout
}

// client returns a one-shot HTTP client whose every connection goes to the
// parent. Keep-alives are off: a fetch happens every few hours at most,
// and no idle connection or goroutine outlives it.
func (p *Provider) client() *http.Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return transport.DialAddr(ctx, p.Parent)
	}
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, DialContext: dial, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("redirect refused")
		},
	}
}

// unwrapURLError drops net/http's *url.Error, whose text repeats the
// placeholder URL.
func unwrapURLError(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

// wire is the parent's JSON answer. It holds secrets and redacts itself.
type wire struct {
	AccessKeyID     string     `json:"access_key_id"`
	SecretAccessKey string     `json:"secret_access_key"`
	SessionToken    string     `json:"session_token"`
	Expires         *time.Time `json:"expires"`
}

// decode reads a bounded JSON body. Its errors never quote the body.
func decode(r io.Reader) (wire, error) {
	var w wire
	dec := json.NewDecoder(io.LimitReader(r, maxBody))
	if err := dec.Decode(&w); err != nil {
		return wire{}, errors.New("malformed response body")
	}
	return w, nil
}

// credentials checks w's shape and converts it.
func (w wire) credentials(now time.Time) (aws.Credentials, error) {
	if w.AccessKeyID == "" || w.SecretAccessKey == "" {
		return aws.Credentials{}, errors.New("response without keys")
	}
	c := aws.Credentials{
		AccessKeyID:     w.AccessKeyID,
		SecretAccessKey: w.SecretAccessKey,
		SessionToken:    w.SessionToken,
		Source:          Source,
	}
	if w.Expires != nil {
		if !w.Expires.After(now) {
			return aws.Credentials{}, errors.New("the parent served expired credentials")
		}
		c.CanExpire, c.Expires = true, *w.Expires
	}
	return c, nil
}

// String never shows the secrets.
func (w wire) String() string { return "creds.wire{redacted}" }

// GoString implements fmt.GoStringer (%#v) like String.
func (w wire) GoString() string { return w.String() }

// Format makes every fmt verb print String.
func (w wire) Format(f fmt.State, _ rune) { fmt.Fprint(f, w.String()) }

// LogValue implements slog.LogValuer.
func (w wire) LogValue() slog.Value { return slog.StringValue(w.String()) }
