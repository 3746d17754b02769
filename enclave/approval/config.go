package approval

import (
	"crypto"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults and bounds of Config.
const (
	// DefaultTimeout bounds one question when Config.Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// MaxTimeout is the largest Config.Timeout.
	MaxTimeout = 5 * time.Minute
	// DefaultClockSkew is the leeway on iat, nbf and exp when
	// Config.ClockSkew is zero.
	DefaultClockSkew = 30 * time.Second
	// MaxClockSkew is the largest Config.ClockSkew.
	MaxClockSkew = 5 * time.Minute
	// DefaultMaxResponseBytes bounds the answer's body when
	// Config.MaxResponseBytes is zero.
	DefaultMaxResponseBytes = 16 << 10
	// MaxMaxResponseBytes is the largest Config.MaxResponseBytes.
	MaxMaxResponseBytes = 1 << 20
	// MaxIDBytes bounds the cosigner ID, the audience, the key ID and
	// every string field of a Request.
	MaxIDBytes = 256
)

// Config configures New.
type Config struct {
	// URL is the handler's endpoint: https://host[:port]/path, without
	// user information or fragment. Required.
	URL string
	// AllowInsecureHTTP accepts an http:// URL. For tests only: it sends
	// the question, and takes the answer, in the clear.
	AllowInsecureHTTP bool
	// Signer signs the questions: an ECDSA P-256 key (ES256) or an RSA key
	// of 2048 to 8192 bits (RS256), created in the enclave. Required.
	Signer crypto.Signer
	// KeyID is sent as the "kid" header of the questions, so the handler
	// can tell the cosigner's keys apart; optional.
	KeyID string
	// HandlerKey is the handler's pinned public key (*ecdsa.PublicKey on
	// P-256, or *rsa.PublicKey of 2048 to 8192 bits). Its type alone fixes
	// the algorithm answers must use. It must differ from Signer's key.
	// Required.
	HandlerKey crypto.PublicKey
	// HTTPClient carries the exchange; build it with NewHTTPClient on the
	// egress dialer. Its redirect policy and cookie jar are overridden.
	// Required.
	HTTPClient *http.Client
	// CosignerID is the iss of questions and the aud answers must carry.
	// Required.
	CosignerID string
	// Audience names the handler: the aud of questions and the iss
	// answers must carry. Required, and different from CosignerID.
	Audience string
	// Timeout bounds each question, from sending to the checked answer;
	// it is also the lifetime of the question's JWT. Zero means
	// DefaultTimeout; at most MaxTimeout.
	Timeout time.Duration
	// ClockSkew is the leeway on the answer's times. Zero means
	// DefaultClockSkew; at most MaxClockSkew.
	ClockSkew time.Duration
	// MaxResponseBytes bounds the answer's body. Zero means
	// DefaultMaxResponseBytes; at most MaxMaxResponseBytes.
	MaxResponseBytes int64
	// Logger receives one line per question; nil discards them.
	Logger *slog.Logger
}

// check validates cfg, returning an error wrapping ErrConfig.
func (cfg *Config) check() error {
	if err := checkURL(cfg.URL, cfg.AllowInsecureHTTP); err != nil {
		return err
	}
	checks := []struct {
		bad bool
		msg string
	}{
		{cfg.Signer == nil, "no signer"},
		{cfg.HandlerKey == nil, "no handler key"},
		{cfg.HTTPClient == nil, "no HTTP client"},
		{!validField(cfg.CosignerID, false), "the cosigner ID must be 1 to 256 printable bytes"},
		{!validField(cfg.Audience, false), "the audience must be 1 to 256 printable bytes"},
		{cfg.Audience == cfg.CosignerID, "the audience must differ from the cosigner ID"},
		{!validField(cfg.KeyID, true), "the key ID must be at most 256 printable bytes"},
		{cfg.Timeout < 0 || cfg.Timeout > MaxTimeout, "the timeout is out of range"},
		{cfg.ClockSkew < 0 || cfg.ClockSkew > MaxClockSkew, "the clock skew is out of range"},
		{cfg.MaxResponseBytes < 0 || cfg.MaxResponseBytes > MaxMaxResponseBytes,
			"the response size limit is out of range"},
	}
	for _, c := range checks {
		if c.bad {
			return fmt.Errorf("%w: %s", ErrConfig, c.msg)
		}
	}
	return nil
}

// checkURL accepts an absolute https (or, if insecure, http) URL with a
// host and no user information or fragment.
func checkURL(raw string, insecure bool) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%w: the URL must be absolute, with a host", ErrConfig)
	case u.Scheme != "https" && !(insecure && u.Scheme == "http"):
		return fmt.Errorf("%w: the URL must be https", ErrConfig)
	case u.User != nil || u.Fragment != "" || strings.HasSuffix(raw, "#"):
		return fmt.Errorf("%w: the URL must carry no user information or fragment", ErrConfig)
	}
	return nil
}

// validField reports whether s is at most MaxIDBytes of UTF-8 without
// control or other non-printable characters, and not empty unless
// emptyOK.
func validField(s string, emptyOK bool) bool {
	return (emptyOK || s != "") && len(s) <= MaxIDBytes && utf8.ValidString(s) &&
		!strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}

func orDefault[T time.Duration | int64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}
