package approval

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Client asks one approval handler. It holds no mutable state and is safe
// for concurrent use.
type Client struct {
	url          string
	signer       crypto.Signer
	signMethod   signerMethod
	keyID        string
	handlerKey   crypto.PublicKey
	verifyMethod jwt.SigningMethod
	parser       *jwt.Parser
	http         *http.Client
	cosignerID   string
	audience     string
	timeout      time.Duration
	skew         time.Duration
	maxBody      int64
	log          *slog.Logger
	now          func() time.Time
}

// New returns a Client for cfg, or an error wrapping ErrConfig.
func New(cfg Config) (*Client, error) {
	return newClient(cfg, time.Now)
}

// newClient is New with a clock (a test seam).
func newClient(cfg Config, now func() time.Time) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	signMethod, err := methodFor(cfg.Signer.Public())
	if err != nil {
		return nil, fmt.Errorf("%w: signer: %v", ErrConfig, err)
	}
	verifyMethod, err := methodFor(cfg.HandlerKey)
	if err != nil {
		return nil, fmt.Errorf("%w: handler key: %v", ErrConfig, err)
	}
	if samePublicKey(cfg.HandlerKey, cfg.Signer.Public()) {
		return nil, fmt.Errorf("%w: the handler key is the signer's own key", ErrConfig)
	}
	c := &Client{
		url: cfg.URL, signer: cfg.Signer, keyID: cfg.KeyID,
		signMethod: signerMethod{verify: signMethod, pub: cfg.Signer.Public()},
		handlerKey: cfg.HandlerKey, verifyMethod: verifyMethod,
		http: noRedirects(cfg.HTTPClient), cosignerID: cfg.CosignerID, audience: cfg.Audience,
		timeout: orDefault(cfg.Timeout, DefaultTimeout), skew: orDefault(cfg.ClockSkew, DefaultClockSkew),
		maxBody: orDefault(cfg.MaxResponseBytes, DefaultMaxResponseBytes),
		log:     cfg.Logger, now: now,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.parser = newParser(verifyMethod, c.cosignerID, c.audience, c.skew, now)
	return c, nil
}

// Ask asks the handler about r and returns its checked decision, or the
// zero Decision and an error; see the package documentation. It returns
// within Config.Timeout, or sooner if ctx ends.
func (c *Client) Ask(ctx context.Context, r Request) (Decision, error) {
	start := time.Now()
	d, err := c.ask(ctx, r)
	c.logResult(ctx, r, d, err, time.Since(start))
	return d, err
}

func (c *Client) ask(ctx context.Context, r Request) (Decision, error) {
	token, b, err := c.question(r)
	if err != nil {
		return Decision{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body, err := c.post(ctx, token)
	if err != nil {
		return Decision{}, err
	}
	return c.verify(body, b)
}

// AskWithRetry asks like Ask, and asks again (a new question with the same
// request ID) while the handler answers RETRY, up to attempts questions in
// all, waiting between them for the longer of delay and the handler's
// RetryAfter. It returns the first answer that is not RETRY, the first
// error, or the last RETRY when the attempts run out or ctx's deadline
// would pass during the wait. attempts below 1 count as 1.
func (c *Client) AskWithRetry(ctx context.Context, r Request, attempts int, delay time.Duration) (Decision, error) {
	for i := 1; ; i++ {
		d, err := c.Ask(ctx, r)
		if err != nil || d.Verdict != Retry || i >= attempts {
			return d, err
		}
		wait := max(delay, d.RetryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return d, nil
		}
		if err := sleep(ctx, wait); err != nil {
			return Decision{}, err
		}
	}
}

// sleep waits for d, or returns the error for ctx's end.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return contextError(ctx)
	}
}

// logResult logs one question's outcome: identifiers, verdict, sanitized
// reason, error; never the JWTs or the payload.
func (c *Client) logResult(ctx context.Context, r Request, d Decision, err error, took time.Duration) {
	attrs := []slog.Attr{
		slog.String("request_id", r.ID), slog.String("key_id", r.KeyID),
		slog.String("caller", r.Caller), slog.String("kind", r.Kind),
		slog.Duration("took", took),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
		c.log.LogAttrs(ctx, slog.LevelWarn, "approval failed", attrs...)
		return
	}
	attrs = append(attrs, slog.String("verdict", d.Verdict.String()), slog.String("reason", d.Reason))
	c.log.LogAttrs(ctx, slog.LevelInfo, "approval answered", attrs...)
}
