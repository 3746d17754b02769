//go:build !release

package devnet

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Approval server settings. The audience is the enclave's default
// --approval-audience.
const (
	approvalAudience = "approval-handler"
	approvalPath     = "/approve"
	approvalMedia    = "application/jwt"
	maxQuestion      = 1 << 20
	answerLifetime   = time.Minute
	// rejectWord in a sign request's note makes the server reject it.
	rejectWord = "reject"
	// ApprovalRule describes when the sample approval server rejects.
	ApprovalRule = `approve every question, except reject one whose note contains "reject" (any case)`
)

// approvalServer is the sample approval-callback handler of
// enclave/approval's protocol. It checks each question's ES256 signature
// against the asking cosigner's approval key from the roster, then
// approves it, unless the note of the sign request contains rejectWord.
type approvalServer struct {
	key *ecdsa.PrivateKey
	log *slog.Logger

	mu   sync.Mutex
	keys map[string]*ecdsa.PublicKey // cosigner ID -> its approval key
	seen map[string]time.Time        // question JWT IDs, until they expire
}

func newApprovalServer(key *ecdsa.PrivateKey, log *slog.Logger) *approvalServer {
	return &approvalServer{key: key, log: log, keys: map[string]*ecdsa.PublicKey{}, seen: map[string]time.Time{}}
}

// setKeys pins the cosigners' approval keys (roster approval_key, PKIX
// DER hex).
func (s *approvalServer) setKeys(members []memberEntry) error {
	keys := make(map[string]*ecdsa.PublicKey, len(members))
	for _, m := range members {
		der, err := hex.DecodeString(m.ApprovalKey)
		if err != nil {
			return errors.New("roster: approval_key is not hex")
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		ec, ok := pub.(*ecdsa.PublicKey)
		if err != nil || !ok {
			return errors.New("roster: approval_key is not an ECDSA key")
		}
		keys[m.ID] = ec
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
	return nil
}

// question is the part of a question's claims the server reads.
type question struct {
	jwt.RegisteredClaims
	RequestID     string          `json:"request_id"`
	KeyID         string          `json:"key_id"`
	Caller        string          `json:"caller"`
	Kind          string          `json:"kind"`
	Payload       json.RawMessage `json:"payload"`
	PayloadSHA256 string          `json:"payload_sha256"`
}

// answer is the claims of an answer.
type answer struct {
	jwt.RegisteredClaims
	RequestID  string `json:"request_id"`
	RequestJTI string `json:"request_jti"`
	Decision   string `json:"decision"`
	Reason     string `json:"reason,omitempty"`
}

func (s *approvalServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != approvalPath || r.Method != http.MethodPost || r.Header.Get("Content-Type") != approvalMedia {
		http.Error(w, "POST "+approvalMedia+" to "+approvalPath, http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxQuestion))
	if err != nil {
		return
	}
	q, err := s.check(string(body))
	if err != nil {
		s.log.Warn("approval: refused a question", "err", err)
		http.Error(w, "bad question", http.StatusBadRequest)
		return
	}
	decision, reason := decide(q)
	token, err := s.sign(q, decision, reason)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.log.Info("approval: answered", "cosigner", q.Issuer, "request_id", q.RequestID, "key_id", q.KeyID,
		"kind", q.Kind, "caller", q.Caller, "decision", decision)
	w.Header().Set("Content-Type", approvalMedia)
	_, _ = io.WriteString(w, token)
}

// check verifies a question: ES256 under the issuer's pinned key, our
// audience, times, the payload digest and a fresh JWT ID.
func (s *approvalServer) check(token string) (*question, error) {
	var q question
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}), jwt.WithStrictDecoding(),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithAudience(approvalAudience), jwt.WithLeeway(time.Minute),
	).ParseWithClaims(token, &q, s.keyFor)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(q.Payload)
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(q.PayloadSHA256)) != 1 {
		return nil, errors.New("payload_sha256 does not match the payload")
	}
	if q.ID == "" || q.RequestID == "" || !s.fresh(q.ID, q.ExpiresAt.Time) {
		return nil, errors.New("missing or replayed jti or request_id")
	}
	return &q, nil
}

// keyFor returns the pinned key of the question's issuer.
func (s *approvalServer) keyFor(t *jwt.Token) (any, error) {
	iss, err := t.Claims.GetIssuer()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[iss]
	if !ok {
		return nil, errors.New("unknown cosigner")
	}
	return k, nil
}

// fresh records jti and reports whether it was new; it forgets expired
// ones.
func (s *approvalServer) fresh(jti string, exp time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for id, until := range s.seen {
		if now.After(until.Add(time.Minute)) {
			delete(s.seen, id)
		}
	}
	if _, dup := s.seen[jti]; dup {
		return false
	}
	s.seen[jti] = exp
	return true
}

// decide is the sample rule: reject a note containing rejectWord.
func decide(q *question) (decision, reason string) {
	var p struct {
		Note string `json:"note"`
	}
	_ = json.Unmarshal(q.Payload, &p) // a payload without a note approves
	if strings.Contains(strings.ToLower(p.Note), rejectWord) {
		return "REJECT", "the devnet approval server rejects notes containing \"reject\""
	}
	return "APPROVE", "the devnet approval server approves"
}

func (s *approvalServer) sign(q *question, decision, reason string) (string, error) {
	now := time.Now()
	claims := answer{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: approvalAudience, Audience: jwt.ClaimStrings{q.Issuer}, ID: rand.Text(),
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(answerLifetime)),
		},
		RequestID: q.RequestID, RequestJTI: q.ID, Decision: decision, Reason: reason,
	}
	return jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(s.key)
}
