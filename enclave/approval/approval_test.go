package approval

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mustRefuse checks that an Ask failed with want and returned the zero
// Decision, and that the handler was asked (so the refusal is about its
// answer).
func mustRefuse(t *testing.T, f *fixture, d Decision, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("Ask: got %v, %v; want %v", d, err, want)
	}
	if d != (Decision{}) {
		t.Fatalf("Ask returned %+v together with an error", d)
	}
	if len(f.h.asked()) == 0 {
		t.Fatal("the handler was never asked")
	}
}

// TestApprove: a well-formed APPROVE approves, and the question carries
// every claim of the wire format.
func TestApprove(t *testing.T) {
	f := setup(t, nil, func(c *Config) { c.Timeout = 7 * time.Second })
	d, err := f.c.Ask(t.Context(), testRequest("req-1"))
	if err != nil || d != (Decision{Verdict: Approve}) || !d.Approved() {
		t.Fatalf("Ask = %+v, %v; want APPROVE", d, err)
	}
	q := f.h.asked()[0]
	if q.RequestID != "req-1" || q.KeyID != "key-7" || q.Caller != "svc-payments" || q.Kind != "eip1559" {
		t.Errorf("question fields: %+v", q)
	}
	if got := q.ExpiresAt.Sub(q.IssuedAt.Time); got < 7*time.Second || got > 8*time.Second {
		t.Errorf("the question lives %v, want the timeout rounded up to a second", got)
	}
	const wantPayload = `{"nested":[1,2],"note":"\u003ca\u0026b\u003e","to":"0xabc","value":"1000"}`
	if string(q.Payload) != wantPayload {
		t.Errorf("payload %s, want %s", q.Payload, wantPayload)
	}
	header := decodeSegment(t, f.h.tokens[0], 0)
	if header["kid"] != "cosigner-key-1" || header["alg"] != "ES256" || header["typ"] != "JWT" {
		t.Errorf("question header %v", header)
	}
}

// decodeSegment decodes the i-th segment (0 header, 1 claims) of a JWT.
func decodeSegment(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRawPayload: a json.RawMessage payload is sent compacted, and the
// digest matches (the handler checks it).
func TestRawPayload(t *testing.T) {
	f := setup(t, nil, nil)
	r := testRequest("req-raw")
	r.Payload = json.RawMessage("{ \"a\" : [ 1, 2 ] }\n")
	if d, err := f.c.Ask(t.Context(), r); err != nil || !d.Approved() {
		t.Fatalf("Ask = %+v, %v", d, err)
	}
	if got := string(f.h.asked()[0].Payload); got != `{"a":[1,2]}` {
		t.Errorf("payload %s", got)
	}
}

// TestRejectAndRetry: REJECT and RETRY come back as decisions with their
// sanitized reasons, not errors, and never approve.
func TestRejectAndRetry(t *testing.T) {
	long := strings.Repeat("é", 200)
	tests := []struct {
		name   string
		answer answerFunc
		want   Decision
	}{
		{"reject", decide(decisionReject, "over the daily limit"),
			Decision{Verdict: Reject, Reason: "over the daily limit"}},
		{"retry", signed(func(c *responseClaims) {
			c.Decision, c.Reason, c.RetryAfter = decisionRetry, "waiting for a human", 42
		}), Decision{Verdict: Retry, Reason: "waiting for a human", RetryAfter: 42 * time.Second}},
		{"retry after is clamped", signed(func(c *responseClaims) {
			c.Decision, c.RetryAfter = decisionRetry, 1<<40
		}), Decision{Verdict: Retry, RetryAfter: MaxRetryAfter}},
		{"negative retry after", signed(func(c *responseClaims) {
			c.Decision, c.RetryAfter = decisionRetry, -5
		}), Decision{Verdict: Retry}},
		{"reason sanitized", decide(decisionReject, "bad\n\x1b[31mred\u202eevil\x00"),
			Decision{Verdict: Reject, Reason: "bad??[31mred?evil?"}},
		{"reason cut", decide(decisionReject, long),
			Decision{Verdict: Reject, Reason: strings.Repeat("é", MaxReasonBytes/2)}},
		{"retry after ignored on approve", signed(func(c *responseClaims) { c.RetryAfter = 9 }),
			Decision{Verdict: Approve}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, tt.answer, nil)
			d, err := f.c.Ask(t.Context(), testRequest("req-"+tt.name))
			if err != nil || d != tt.want {
				t.Fatalf("Ask = %+v, %v; want %+v", d, err, tt.want)
			}
		})
	}
}

// TestRSA: RS256 in both directions.
func TestRSA(t *testing.T) {
	ks := rsaKeys()
	f := setupKeys(t, ks[0], ks[1], nil, nil)
	if d, err := f.c.Ask(t.Context(), testRequest("req-rsa")); err != nil || !d.Approved() {
		t.Fatalf("Ask = %+v, %v", d, err)
	}
	if alg := decodeSegment(t, f.h.tokens[0], 0)["alg"]; alg != "RS256" {
		t.Errorf("question alg %v", alg)
	}
}

// TestOpaqueSigner: any crypto.Signer signs questions, in both key types.
func TestOpaqueSigner(t *testing.T) {
	for _, k := range []crypto.Signer{newP256(t), rsaKeys()[0]} {
		f := setupKeys(t, wrapSigner{k}, newP256(t), nil, nil)
		if d, err := f.c.Ask(t.Context(), testRequest("req-opaque")); err != nil || !d.Approved() {
			t.Fatalf("%T: Ask = %+v, %v", k, d, err)
		}
	}
}

// TestRefused: every answer that is not a valid, bound, signed decision
// fails closed, with the documented error.
func TestRefused(t *testing.T) {
	otherP256 := newP256(t)
	tests := []struct {
		name   string
		answer answerFunc
		want   error
	}{
		// Signature and algorithm.
		{"signed by another key", answerToken(func(h *handler, q *requestClaims) string {
			return signWith(t, jwt.SigningMethodES256, otherP256, claimsFor(q), nil)
		}), ErrBadSignature},
		{"RS256 by another key", answerToken(func(h *handler, q *requestClaims) string {
			return signWith(t, jwt.SigningMethodRS256, rsaKeys()[2], claimsFor(q), nil)
		}), ErrBadSignature},
		{"HS256 keyed with the PKIX public key", answerToken(func(h *handler, q *requestClaims) string {
			return signWith(t, jwt.SigningMethodHS256, pkix(t, h.key.Public()), claimsFor(q), nil)
		}), ErrBadSignature},
		{"HS256 keyed with the PEM public key", answerToken(func(h *handler, q *requestClaims) string {
			return signWith(t, jwt.SigningMethodHS256, pemKey(t, h.key.Public()), claimsFor(q), nil)
		}), ErrBadSignature},
		{"alg none", answerToken(func(h *handler, q *requestClaims) string {
			return signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsFor(q), nil)
		}), ErrBadSignature},
		{"alg none with a signature", answerToken(func(h *handler, q *requestClaims) string {
			tok := signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsFor(q), nil)
			return tok + lastSegment(h.sign(claimsFor(q)))
		}), ErrBadSignature},
		{"ES384", answerToken(func(h *handler, q *requestClaims) string {
			return withHeader(t, h.sign(claimsFor(q)), "alg", "ES384")
		}), ErrBadSignature},
		{"unknown alg", answerToken(func(h *handler, q *requestClaims) string {
			return withHeader(t, h.sign(claimsFor(q)), "alg", "XX999")
		}), ErrBadSignature},
		{"attacker key in the jwk header", answerToken(func(h *handler, q *requestClaims) string {
			jwk := map[string]any{"kty": "EC", "crv": "P-256",
				"x": b64(otherP256.X.FillBytes(make([]byte, 32))), "y": b64(otherP256.Y.FillBytes(make([]byte, 32)))}
			return signWith(t, jwt.SigningMethodES256, otherP256, claimsFor(q), map[string]any{"jwk": jwk})
		}), ErrBadSignature},
		{"tampered claims", answerToken(func(h *handler, q *requestClaims) string {
			c := claimsFor(q)
			c.Decision = decisionReject
			tok := h.sign(c)
			c.Decision = decisionApprove
			return replaceClaims(t, tok, c)
		}), ErrBadSignature},
		{"tampered signature", answerToken(func(h *handler, q *requestClaims) string {
			tok := h.sign(claimsFor(q))
			i := len(tok) - 20
			return tok[:i] + string(flip(tok[i])) + tok[i+1:]
		}), ErrBadSignature},
		{"crit header", answerToken(func(h *handler, q *requestClaims) string {
			return signWith(t, jwt.SigningMethodES256, h.key, claimsFor(q), map[string]any{"crit": []string{"x"}, "x": 1})
		}), ErrUnexpected},

		// Time.
		{"expired", signed(func(c *responseClaims) {
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-3 * time.Minute))
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-2 * time.Minute))
		}), ErrExpired},
		{"issued in the future", signed(func(c *responseClaims) {
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(10 * time.Minute))
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(11 * time.Minute))
		}), ErrExpired},
		{"not yet valid", signed(func(c *responseClaims) {
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(5 * time.Minute))
		}), ErrExpired},
		{"issued before the question", signed(func(c *responseClaims) {
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-2 * time.Minute))
		}), ErrExpired},
		{"no exp", signed(func(c *responseClaims) { c.ExpiresAt = nil }), ErrUnexpected},
		{"no iat", signed(func(c *responseClaims) { c.IssuedAt = nil }), ErrUnexpected},

		// Binding.
		{"another audience", signed(func(c *responseClaims) { c.Audience = jwt.ClaimStrings{"cosigner-2"} }), ErrMismatch},
		{"no audience", signed(func(c *responseClaims) { c.Audience = nil }), ErrUnexpected},
		{"another issuer", signed(func(c *responseClaims) { c.Issuer = "someone-else" }), ErrMismatch},
		{"another request ID", signed(func(c *responseClaims) { c.RequestID = "req-other" }), ErrMismatch},
		{"another request JTI", signed(func(c *responseClaims) { c.RequestJTI = "AAAAAAAAAAAAAAAAAAAAAAAAAA" }), ErrMismatch},
		{"no request JTI", signed(func(c *responseClaims) { c.RequestJTI = "" }), ErrMismatch},

		// Decision.
		{"lower-case approve", decide("approve", ""), ErrUnexpected},
		{"unknown decision", decide("MAYBE", ""), ErrUnexpected},
		{"no decision", decide("", ""), ErrUnexpected},
		{"decision not a string", answerToken(func(h *handler, q *requestClaims) string {
			return h.sign(jwt.MapClaims{"iss": testHandler, "aud": testCosigner, "iat": time.Now().Unix(),
				"exp": time.Now().Add(time.Minute).Unix(), "request_id": q.RequestID, "request_jti": q.ID, "decision": 1})
		}), ErrUnexpected},

		// HTTP.
		{"HTTP 500 with an approval", approveWith(http.StatusInternalServerError, MediaType), ErrUnexpected},
		{"HTTP 202 with an approval", approveWith(http.StatusAccepted, MediaType), ErrUnexpected},
		{"text/plain approval", approveWith(http.StatusOK, "text/plain"), ErrUnexpected},
		{"no content type", raw(http.StatusOK, "", "x.y.z"), ErrUnexpected},
		{"not a JWT", raw(http.StatusOK, MediaType, "APPROVE"), ErrUnexpected},
		{"empty body", raw(http.StatusOK, MediaType, ""), ErrUnexpected},
		{"four segments", answerToken(func(h *handler, q *requestClaims) string {
			return h.sign(claimsFor(q)) + ".e30"
		}), ErrUnexpected},
		{"two tokens", answerToken(func(h *handler, q *requestClaims) string {
			return h.sign(claimsFor(q)) + "\n" + h.sign(claimsFor(q))
		}), ErrUnexpected},
		{"padded base64", answerToken(func(h *handler, q *requestClaims) string {
			return h.sign(claimsFor(q)) + "=="
		}), ErrUnexpected},
		{"oversized", decide(decisionApprove, strings.Repeat("x", 2000)), ErrUnexpected},
		{"oversized stream", func(_ *handler, w http.ResponseWriter, _ *http.Request, _ *requestClaims) {
			w.Header().Set("Content-Type", MediaType)
			chunk := strings.Repeat("A", 64<<10)
			for range 160 {
				if _, err := fmt.Fprint(w, chunk); err != nil {
					return
				}
			}
		}, ErrUnexpected},
		{"redirect", func(_ *handler, w http.ResponseWriter, r *http.Request, _ *requestClaims) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, ErrUnexpected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, tt.answer, func(c *Config) { c.MaxResponseBytes = 1024 })
			d, err := f.c.Ask(t.Context(), testRequest("req-1"))
			mustRefuse(t, f, d, err, tt.want)
			if n := len(f.h.asked()); n != 1 {
				t.Errorf("the handler was asked %d times", n)
			}
		})
	}
}

// approveWith answers a signed APPROVE with a status and content type.
func approveWith(status int, contentType string) answerFunc {
	return func(h *handler, w http.ResponseWriter, _ *http.Request, q *requestClaims) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		fmt.Fprint(w, h.sign(claimsFor(q)))
	}
}

// TestTrailingNewline: whitespace around the token is ignored.
func TestTrailingNewline(t *testing.T) {
	f := setup(t, answerToken(func(h *handler, q *requestClaims) string {
		return "\r\n " + h.sign(claimsFor(q)) + "\r\n"
	}), nil)
	if d, err := f.c.Ask(t.Context(), testRequest("req-nl")); err != nil || !d.Approved() {
		t.Fatalf("Ask = %+v, %v", d, err)
	}
}

// TestReplay: an approval given to one question is refused as the answer
// to any other, including a new question for the same request ID.
func TestReplay(t *testing.T) {
	f := setup(t, nil, nil)
	first := f.h
	if d, err := f.c.Ask(t.Context(), testRequest("req-1")); err != nil || !d.Approved() {
		t.Fatalf("first Ask = %+v, %v", d, err)
	}
	var old string
	first.setAnswer(func(h *handler, w http.ResponseWriter, r *http.Request, q *requestClaims) {
		if old == "" {
			old = h.sign(claimsFor(h.asked()[0]))
		}
		writeJWT(w, old)
	})
	for _, id := range []string{"req-2", "req-1"} {
		d, err := f.c.Ask(t.Context(), testRequest(id))
		mustRefuse(t, f, d, err, ErrMismatch)
	}
	// The replayed token is valid for the question it was made for.
	if _, err := f.c.verify([]byte(old), binding{requestID: "req-1", jti: first.asked()[0].ID,
		issued: first.asked()[0].IssuedAt.Time}); err != nil {
		t.Fatalf("the replayed token is not valid for its own question: %v", err)
	}
}

// TestTimeout: a handler that does not answer within the timeout, or
// before the caller's deadline, gives ErrTimeout, promptly.
func TestTimeout(t *testing.T) {
	slowBody := func(h *handler, w http.ResponseWriter, r *http.Request, q *requestClaims) {
		w.Header().Set("Content-Type", MediaType)
		tok := h.sign(claimsFor(q))
		fmt.Fprint(w, tok[:10])
		w.(http.Flusher).Flush()
		hang(h, w, r, q)
	}
	tests := []struct {
		name    string
		answer  answerFunc
		timeout time.Duration
		ctx     time.Duration
	}{
		{"no header", hang, 500 * time.Millisecond, time.Minute},
		{"body stalls", slowBody, 500 * time.Millisecond, time.Minute},
		{"caller deadline", hang, time.Minute, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, nil, func(c *Config) { c.Timeout = tt.timeout })
			// A first question opens the connection, so that the timed one
			// reaches the handler well within its deadline.
			if d, err := f.c.Ask(t.Context(), testRequest("req-warm")); err != nil || !d.Approved() {
				t.Fatalf("warming up: %+v, %v", d, err)
			}
			f.h.setAnswer(tt.answer)
			ctx, cancel := context.WithTimeout(t.Context(), tt.ctx)
			defer cancel()
			start := time.Now()
			d, err := f.c.Ask(ctx, testRequest("req-slow"))
			mustRefuse(t, f, d, err, ErrTimeout)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not match context.DeadlineExceeded", err)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("Ask took %v", took)
			}
		})
	}
}

// TestCancel: cancelling the caller's context gives context.Canceled, not
// ErrTimeout.
func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	f := setup(t, func(h *handler, w http.ResponseWriter, r *http.Request, q *requestClaims) {
		cancel()
		hang(h, w, r, q)
	}, nil)
	d, err := f.c.Ask(ctx, testRequest("req-cancel"))
	mustRefuse(t, f, d, err, context.Canceled)
	if errors.Is(err, ErrTimeout) {
		t.Errorf("a cancellation reported as a timeout: %v", err)
	}
}

// TestConcurrent: concurrent questions each get their own answer (the
// handler also checks that no jti repeats).
func TestConcurrent(t *testing.T) {
	f := setup(t, nil, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			d, err := f.c.Ask(t.Context(), testRequest(fmt.Sprintf("req-%d", i)))
			if err != nil || !d.Approved() {
				t.Errorf("Ask %d = %+v, %v", i, d, err)
			}
		})
	}
	wg.Wait()
	if n := len(f.h.asked()); n != 8 {
		t.Errorf("the handler was asked %d times", n)
	}
}

// TestLogging: one line per question with the identifiers and the
// sanitized reason; no JWT, no payload.
func TestLogging(t *testing.T) {
	var buf testutil.Buffer
	f := setup(t, decide(decisionReject, "no\nway"), func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	})
	r := testRequest("req-log")
	r.Payload = map[string]string{"memo": "payload-marker"}
	if _, err := f.c.Ask(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	f.h.setAnswer(hang)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := f.c.Ask(ctx, r); !errors.Is(err, ErrTimeout) {
		t.Fatal(err)
	}
	logs := buf.String()
	for _, want := range []string{`"request_id":"req-log"`, `"verdict":"REJECT"`, `"reason":"no?way"`,
		`"level":"WARN"`, ErrTimeout.Error()} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	for _, bad := range []string{"eyJ", "payload-marker", f.h.asked()[0].ID} {
		if strings.Contains(logs, bad) {
			t.Errorf("logs contain %q:\n%s", bad, logs)
		}
	}
	if n := strings.Count(logs, "\n"); n != 2 {
		t.Errorf("%d log lines, want 2", n)
	}
}
