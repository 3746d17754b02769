package approval

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify: the answer parser never panics, returns nothing with an
// error, and accepts only what an independent check confirms is an ES256
// answer signed by the handler key and bound to the question.
func FuzzVerify(f *testing.F) {
	handlerKey, other := newP256(f), newP256(f)
	now := time.Unix(1_800_000_000, 0)
	b := binding{requestID: "req-fuzz", jti: "JTI-fuzz", issued: now}
	cfg := Config{URL: "https://approvals.example/", Signer: newP256(f), HandlerKey: handlerKey.Public(),
		HTTPClient: http.DefaultClient, CosignerID: testCosigner, Audience: testHandler}
	c, err := newClient(cfg, func() time.Time { return now })
	if err != nil {
		f.Fatal(err)
	}
	claims := func(decision string) *responseClaims {
		rc := claimsFor(&requestClaims{RequestID: b.requestID,
			RegisteredClaims: jwt.RegisteredClaims{ID: b.jti}})
		rc.IssuedAt, rc.ExpiresAt = jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(time.Minute))
		rc.Decision = decision
		return rc
	}
	valid := signWith(f, jwt.SigningMethodES256, handlerKey, claims(decisionApprove), nil)
	for _, seed := range []string{
		valid,
		signWith(f, jwt.SigningMethodES256, handlerKey, claims(decisionReject), nil),
		signWith(f, jwt.SigningMethodES256, handlerKey, claims(decisionRetry), nil),
		signWith(f, jwt.SigningMethodES256, other, claims(decisionApprove), nil),
		signWith(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(decisionApprove), nil),
		signWith(f, jwt.SigningMethodHS256, pkix(f, handlerKey.Public()), claims(decisionApprove), nil),
		"", ".", "..", "a.b.c", "e30.e30.", "APPROVE",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := c.verify(body, b)
		if err != nil {
			if d != (Decision{}) {
				t.Fatalf("verify returned %+v with %v", d, err)
			}
			if string(body) == valid {
				t.Fatalf("the valid answer was refused: %v", err)
			}
			return
		}
		checkIndependently(t, body, handlerKey, b, d)
	})
}

// checkIndependently re-verifies an accepted answer without the JWT
// library: ES256 header, signature by key, binding, decision.
func checkIndependently(t *testing.T, body []byte, key *ecdsa.PrivateKey, b binding, d Decision) {
	t.Helper()
	parts := strings.Split(strings.Trim(string(body), " \t\r\n"), ".")
	if len(parts) != 3 {
		t.Fatalf("accepted %d segments", len(parts))
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var claims responseClaims
	decodeJSON(t, parts[0], &header)
	decodeJSON(t, parts[1], &claims)
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil || len(sig) != 64 || header.Alg != "ES256" {
		t.Fatalf("accepted alg %q with a %d-byte signature (%v)", header.Alg, len(sig), err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(&key.PublicKey, digest[:], r, s) {
		t.Fatal("accepted a signature that does not verify")
	}
	if claims.RequestID != b.requestID || claims.RequestJTI != b.jti ||
		!slices.Contains(claims.Audience, testCosigner) || claims.Issuer != testHandler {
		t.Fatalf("accepted claims for another question: %+v", claims)
	}
	if claims.Decision != d.Verdict.String() {
		t.Fatalf("decision claim %q gave %v", claims.Decision, d.Verdict)
	}
}

func decodeJSON(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("accepted a segment that is not base64url: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("accepted a segment that is not JSON: %v", err)
	}
}
