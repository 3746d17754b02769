package approval

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxPayloadBytes bounds Request.Payload once encoded as JSON.
const MaxPayloadBytes = 64 << 10

// Request is one question to the handler.
type Request struct {
	// ID identifies the signing request (for instance its idempotency
	// key); it stays the same when a question is asked again. Required.
	ID string
	// KeyID names the key that would sign.
	KeyID string
	// Caller names the authenticated API caller.
	Caller string
	// Kind names the payload's type (for instance "eip1559").
	Kind string
	// Payload is the enclave's own parsed summary of what would be
	// signed: anything encoding/json can encode (a json.RawMessage is sent
	// compacted), at most MaxPayloadBytes once encoded.
	Payload any
}

// requestClaims are the claims of a question.
type requestClaims struct {
	jwt.RegisteredClaims
	RequestID     string          `json:"request_id"`
	KeyID         string          `json:"key_id,omitempty"`
	Caller        string          `json:"caller,omitempty"`
	Kind          string          `json:"kind,omitempty"`
	Payload       json.RawMessage `json:"payload"`
	PayloadSHA256 string          `json:"payload_sha256"`
}

// binding is what an answer must match: the question's request ID, JWT ID
// and issue time.
type binding struct {
	requestID string
	jti       string
	issued    time.Time
}

// check validates r's fields, returning an error wrapping ErrRequest.
func (r *Request) check() error {
	switch {
	case !validField(r.ID, false):
		return fmt.Errorf("%w: the request ID must be 1 to %d printable bytes", ErrRequest, MaxIDBytes)
	case !validField(r.KeyID, true), !validField(r.Caller, true), !validField(r.Kind, true):
		return fmt.Errorf("%w: key ID, caller and kind must be at most %d printable bytes",
			ErrRequest, MaxIDBytes)
	}
	return nil
}

// encodePayload returns the payload as compact JSON, exactly as the
// question's claims will carry it.
func encodePayload(p any) (json.RawMessage, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("%w: the payload cannot be encoded as JSON", ErrRequest)
	}
	if len(b) > MaxPayloadBytes {
		return nil, fmt.Errorf("%w: the payload is %d bytes of JSON, over %d", ErrRequest, len(b), MaxPayloadBytes)
	}
	return b, nil
}

// question returns the signed question for r and what its answer must
// match.
func (c *Client) question(r Request) (string, binding, error) {
	if err := r.check(); err != nil {
		return "", binding{}, err
	}
	payload, err := encodePayload(r.Payload)
	if err != nil {
		return "", binding{}, err
	}
	sum := sha256.Sum256(payload)
	now := c.now()
	claims := &requestClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    c.cosignerID,
			Audience:  jwt.ClaimStrings{c.audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(ceilSecond(now.Add(c.timeout))),
			ID:        rand.Text(),
		},
		RequestID: r.ID, KeyID: r.KeyID, Caller: r.Caller, Kind: r.Kind,
		Payload: payload, PayloadSHA256: hex.EncodeToString(sum[:]),
	}
	token := jwt.NewWithClaims(c.signMethod, claims)
	if c.keyID != "" {
		token.Header["kid"] = c.keyID
	}
	signed, err := token.SignedString(c.signer)
	if err != nil {
		return "", binding{}, fmt.Errorf("approval: signing the question: %w", err)
	}
	return signed, binding{requestID: r.ID, jti: claims.ID, issued: claims.IssuedAt.Time}, nil
}

// ceilSecond rounds t up to a whole second, the precision of JWT times, so
// that a question outlives the timeout.
func ceilSecond(t time.Time) time.Time {
	if s := t.Truncate(time.Second); s.Before(t) {
		return s.Add(time.Second)
	}
	return t
}
