package approval

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// goodConfig is a valid Config; no server is behind it.
func goodConfig(t *testing.T) Config {
	return Config{
		URL: "https://approvals.example/approve", Signer: newP256(t), HandlerKey: newP256(t).Public(),
		HTTPClient: http.DefaultClient, CosignerID: testCosigner, Audience: testHandler,
	}
}

func TestConfig(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"no URL", func(c *Config) { c.URL = "" }},
		{"relative URL", func(c *Config) { c.URL = "/approve" }},
		{"http", func(c *Config) { c.URL = "http://approvals.example/approve" }},
		{"ftp even if insecure", func(c *Config) { c.URL, c.AllowInsecureHTTP = "ftp://approvals.example/", true }},
		{"user info", func(c *Config) { c.URL = "https://user:pw@approvals.example/approve" }},
		{"fragment", func(c *Config) { c.URL = "https://approvals.example/approve#x" }},
		{"empty fragment", func(c *Config) { c.URL = "https://approvals.example/approve#" }},
		{"no signer", func(c *Config) { c.Signer = nil }},
		{"P-384 signer", func(c *Config) { c.Signer = p384 }},
		{"RSA-1024 signer", func(c *Config) { c.Signer = rsa1024 }},
		{"Ed25519 signer", func(c *Config) { c.Signer = wrapSigner{ed25519.NewKeyFromSeed(make([]byte, 32))} }},
		{"no handler key", func(c *Config) { c.HandlerKey = nil }},
		{"P-384 handler key", func(c *Config) { c.HandlerKey = p384.Public() }},
		{"RSA-1024 handler key", func(c *Config) { c.HandlerKey = rsa1024.Public() }},
		{"Ed25519 handler key", func(c *Config) { c.HandlerKey = edPub }},
		{"HMAC secret as handler key", func(c *Config) { c.HandlerKey = []byte("secret") }},
		{"handler key is the signer's", func(c *Config) { c.HandlerKey = c.Signer.Public() }},
		{"no HTTP client", func(c *Config) { c.HTTPClient = nil }},
		{"no cosigner ID", func(c *Config) { c.CosignerID = "" }},
		{"control in cosigner ID", func(c *Config) { c.CosignerID = "a\nb" }},
		{"long cosigner ID", func(c *Config) { c.CosignerID = strings.Repeat("a", MaxIDBytes+1) }},
		{"no audience", func(c *Config) { c.Audience = "" }},
		{"audience is the cosigner", func(c *Config) { c.Audience = c.CosignerID }},
		{"bad key ID", func(c *Config) { c.KeyID = "k\x00" }},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }},
		{"huge timeout", func(c *Config) { c.Timeout = MaxTimeout + 1 }},
		{"negative skew", func(c *Config) { c.ClockSkew = -1 }},
		{"huge skew", func(c *Config) { c.ClockSkew = time.Hour }},
		{"negative size", func(c *Config) { c.MaxResponseBytes = -1 }},
		{"huge size", func(c *Config) { c.MaxResponseBytes = MaxMaxResponseBytes + 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := goodConfig(t)
			tt.mutate(&cfg)
			if _, err := New(cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("New: got %v, want ErrConfig", err)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		for _, mutate := range []func(*Config){
			func(*Config) {},
			func(c *Config) { c.URL, c.AllowInsecureHTTP = "http://127.0.0.1:8080/approve", true },
			func(c *Config) { c.Signer, c.HandlerKey = rsaKeys()[0], rsaKeys()[1].Public() },
			func(c *Config) {
				c.Timeout, c.ClockSkew, c.MaxResponseBytes = MaxTimeout, MaxClockSkew, MaxMaxResponseBytes
			},
		} {
			cfg := goodConfig(t)
			mutate(&cfg)
			if _, err := New(cfg); err != nil {
				t.Errorf("New: %v", err)
			}
		}
	})
}

// TestNoRedirectsCopy: New does not change the caller's HTTP client.
func TestNoRedirectsCopy(t *testing.T) {
	hc := &http.Client{}
	cfg := goodConfig(t)
	cfg.HTTPClient = hc
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	if hc.CheckRedirect != nil {
		t.Error("New changed the caller's client")
	}
}

// TestBadRequest: a request that cannot be sent is refused before
// anything is sent.
func TestBadRequest(t *testing.T) {
	f := setup(t, nil, nil)
	tests := []struct {
		name string
		r    Request
	}{
		{"no ID", Request{Payload: 1}},
		{"control in ID", Request{ID: "a\tb"}},
		{"bidi override in caller", Request{ID: "a", Caller: "x\u202e"}},
		{"long kind", Request{ID: "a", Kind: strings.Repeat("k", MaxIDBytes+1)}},
		{"invalid UTF-8 key ID", Request{ID: "a", KeyID: "\xff"}},
		{"payload not JSON", Request{ID: "a", Payload: func() {}}},
		{"raw payload not JSON", Request{ID: "a", Payload: json.RawMessage("{")}},
		{"payload too large", Request{ID: "a", Payload: strings.Repeat("x", MaxPayloadBytes)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := f.c.Ask(t.Context(), tt.r)
			if !errors.Is(err, ErrRequest) || d != (Decision{}) {
				t.Fatalf("Ask = %+v, %v; want ErrRequest", d, err)
			}
		})
	}
	if n := len(f.h.asked()); n != 0 {
		t.Errorf("the handler was asked %d times", n)
	}
}

// badSigner signs wrongly in a chosen way.
type badSigner struct {
	crypto.Signer
	sig []byte
	err error
}

func (s badSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return s.sig, s.err }

// pssSigner signs RSA-PSS where PKCS #1 v1.5 is wanted.
type pssSigner struct{ *rsa.PrivateKey }

func (s pssSigner) Sign(r io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	return s.PrivateKey.Sign(r, digest, &rsa.PSSOptions{Hash: crypto.SHA256})
}

// TestFaultySigner: a signer that fails or signs wrongly sends nothing.
func TestFaultySigner(t *testing.T) {
	k := newP256(t)
	other := newP256(t)
	otherSig, err := other.Sign(rand.Reader, make([]byte, 32), crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]crypto.Signer{
		"error":           badSigner{Signer: k, err: errors.New("hsm down")},
		"garbage":         badSigner{Signer: k, sig: []byte("garbage")},
		"trailing data":   badSigner{Signer: k, sig: append(append([]byte(nil), otherSig...), 0)},
		"another key":     badSigner{Signer: k, sig: otherSig},
		"PSS, not v1.5":   pssSigner{rsaKeys()[0]},
		"raw r||s ECDSA?": badSigner{Signer: k, sig: make([]byte, 64)},
	} {
		t.Run(name, func(t *testing.T) {
			f := setupKeys(t, s, newP256(t), nil, nil)
			d, err := f.c.Ask(t.Context(), testRequest("req-1"))
			if err == nil || d != (Decision{}) || !strings.Contains(err.Error(), "signing the question") {
				t.Fatalf("Ask = %+v, %v", d, err)
			}
			if n := len(f.h.asked()); n != 0 {
				t.Errorf("the handler was asked %d times", n)
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain reason: over limit (5 ETH)", "plain reason: over limit (5 ETH)"},
		{"tab\there", "tab?here"},
		{"nl\r\n", "nl??"},
		{"esc\x1b[0m", "esc?[0m"},
		{"bidi\u202eevil\u2066", "bidi?evil?"},
		{"zero\u200bwidth", "zero?width"},
		{"nbsp\u00a0", "nbsp?"},
		{"bad utf8 \xff\xfe", "bad utf8 ??"},
		{"ünïcödé 日本 ✓", "ünïcödé 日本 ✓"},
		{strings.Repeat("a", 300), strings.Repeat("a", MaxReasonBytes)},
		{strings.Repeat("a", 255) + "é", strings.Repeat("a", 255)},
	}
	for _, tt := range tests {
		if got := sanitize(tt.in); got != tt.want {
			t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{NoVerdict: "NONE", Approve: "APPROVE", Reject: "REJECT",
		Retry: "RETRY", Verdict(200): "NONE"} {
		if v.String() != want {
			t.Errorf("%d: %q", v, v.String())
		}
	}
	if (Decision{}).Approved() || (Decision{Verdict: Reject}).Approved() || !(Decision{Verdict: Approve}).Approved() {
		t.Error("Approved is wrong")
	}
}
