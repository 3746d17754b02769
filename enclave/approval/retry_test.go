package approval

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// sequence answers with the given answers in turn, then the last one.
func sequence(answers ...answerFunc) answerFunc {
	var n atomic.Int32
	return func(h *handler, w http.ResponseWriter, r *http.Request, q *requestClaims) {
		i := min(int(n.Add(1))-1, len(answers)-1)
		answers[i](h, w, r, q)
	}
}

func retryAfter(seconds int64) answerFunc {
	return signed(func(c *responseClaims) { c.Decision, c.Reason, c.RetryAfter = decisionRetry, "later", seconds })
}

func TestAskWithRetry(t *testing.T) {
	badSig := answerToken(func(h *handler, q *requestClaims) string {
		return signWith(t, jwt.SigningMethodES256, newP256(t), claimsFor(q), nil)
	})
	tests := []struct {
		name     string
		answer   answerFunc
		attempts int
		want     Decision
		wantErr  error
		asked    int
	}{
		{"retry then approve", sequence(retryAfter(0), retryAfter(0), decide(decisionApprove, "")), 5,
			Decision{Verdict: Approve}, nil, 3},
		{"attempts run out", retryAfter(0), 3, Decision{Verdict: Retry, Reason: "later"}, nil, 3},
		{"one attempt", retryAfter(0), 0, Decision{Verdict: Retry, Reason: "later"}, nil, 1},
		{"reject stops", sequence(retryAfter(0), decide(decisionReject, "no"), decide(decisionApprove, "")), 5,
			Decision{Verdict: Reject, Reason: "no"}, nil, 2},
		{"error stops", sequence(retryAfter(0), badSig, decide(decisionApprove, "")), 5,
			Decision{}, ErrBadSignature, 2},
		{"deadline before retry after", retryAfter(60), 5, Decision{Verdict: Retry, Reason: "later",
			RetryAfter: time.Minute}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, tt.answer, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			start := time.Now()
			d, err := f.c.AskWithRetry(ctx, testRequest("req-retry"), tt.attempts, 10*time.Millisecond)
			if d != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("AskWithRetry = %+v, %v; want %+v, %v", d, err, tt.want, tt.wantErr)
			}
			if took := time.Since(start); took > 4*time.Second {
				t.Errorf("took %v", took)
			}
			q := f.h.asked()
			if len(q) != tt.asked {
				t.Fatalf("the handler was asked %d times, want %d", len(q), tt.asked)
			}
			for _, c := range q {
				if c.RequestID != "req-retry" {
					t.Errorf("request ID %q", c.RequestID)
				}
			}
		})
	}
}

// TestAskWithRetryWaits: the wait is the longer of delay and retry_after,
// and cancelling the context during it ends the call.
func TestAskWithRetryWaits(t *testing.T) {
	f := setup(t, sequence(retryAfter(1), decide(decisionApprove, "")), nil)
	start := time.Now()
	d, err := f.c.AskWithRetry(t.Context(), testRequest("req-wait"), 2, 10*time.Millisecond)
	if err != nil || !d.Approved() {
		t.Fatalf("AskWithRetry = %+v, %v", d, err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("retry_after of 1s not honored: took %v", took)
	}

	ctx, cancel := context.WithCancel(t.Context())
	f = setup(t, func(h *handler, w http.ResponseWriter, r *http.Request, q *requestClaims) {
		retryAfter(0)(h, w, r, q)
		time.AfterFunc(50*time.Millisecond, cancel) // during the wait
	}, nil)
	d, err = f.c.AskWithRetry(ctx, testRequest("req-cancel"), 5, time.Minute)
	if !errors.Is(err, context.Canceled) || d != (Decision{}) {
		t.Fatalf("AskWithRetry = %+v, %v; want context.Canceled", d, err)
	}
	if n := len(f.h.asked()); n != 1 {
		t.Errorf("the handler was asked %d times", n)
	}
}
