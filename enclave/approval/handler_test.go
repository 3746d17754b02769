package approval

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Names used by the tests.
const (
	testCosigner = "cosigner-1"
	testHandler  = "approvals.example"
)

// answerFunc writes the test handler's answer to the checked question q.
type answerFunc func(h *handler, w http.ResponseWriter, r *http.Request, q *requestClaims)

// handler is a test approval handler: a real HTTPS server that checks every
// question with the cosigner's public key (algorithm, signature, iss, aud,
// exp, iat, payload digest, unique jti) and answers with answer, by default
// an APPROVE signed by its own key.
type handler struct {
	t        *testing.T
	srv      *httptest.Server
	key      crypto.Signer // signs answers: *ecdsa.PrivateKey or *rsa.PrivateKey
	cosigner crypto.PublicKey

	mu        sync.Mutex
	answer    answerFunc
	questions []*requestClaims
	tokens    []string // the questions' JWTs
	jtis      map[string]bool
}

// newHandler starts a TLS handler answering with answer (nil: approve),
// signing with key, and stops it when the test ends.
func newHandler(t *testing.T, key, cosignerKey crypto.Signer, answer answerFunc) *handler {
	t.Helper()
	if answer == nil {
		answer = signed(nil)
	}
	h := &handler{t: t, key: key, cosigner: cosignerKey.Public(), answer: answer, jtis: map[string]bool{}}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(h.serve))
	h.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // clients that give up are expected
	h.srv.StartTLS()
	t.Cleanup(h.srv.Close)
	return h
}

func (h *handler) setAnswer(a answerFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answer = a
}

// asked returns the checked questions received so far.
func (h *handler) asked() []*requestClaims {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*requestClaims(nil), h.questions...)
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) {
	q, token, ok := h.check(r)
	if !ok {
		http.Error(w, "bad question", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.questions = append(h.questions, q)
	h.tokens = append(h.tokens, token)
	answer := h.answer
	h.mu.Unlock()
	answer(h, w, r, q)
}

// check verifies the question like a real handler would.
func (h *handler) check(r *http.Request) (*requestClaims, string, bool) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != MediaType ||
		r.Header.Get("Accept") != MediaType {
		h.t.Errorf("handler: got %s with Content-Type %q, Accept %q", r.Method,
			r.Header.Get("Content-Type"), r.Header.Get("Accept"))
		return nil, "", false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, "", false
	}
	method, err := methodFor(h.cosigner)
	if err != nil {
		h.t.Errorf("handler: %v", err)
		return nil, "", false
	}
	var q requestClaims
	_, err = jwt.NewParser(jwt.WithValidMethods([]string{method.Alg()}), jwt.WithStrictDecoding(),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithIssuer(testCosigner),
		jwt.WithAudience(testHandler)).ParseWithClaims(string(body), &q,
		func(*jwt.Token) (any, error) { return h.cosigner, nil })
	if err != nil {
		h.t.Errorf("handler: the question does not verify: %v", err)
		return nil, "", false
	}
	sum := sha256.Sum256(q.Payload)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case hex.EncodeToString(sum[:]) != q.PayloadSHA256:
		h.t.Errorf("handler: payload_sha256 does not match the payload")
	case len(q.ID) < 22 || h.jtis[q.ID]:
		h.t.Errorf("handler: jti %q is short or reused", q.ID)
	default:
		h.jtis[q.ID] = true
		return &q, string(body), true
	}
	return nil, "", false
}

// claimsFor returns the claims of a well-formed APPROVE to q.
func claimsFor(q *requestClaims) *responseClaims {
	now := time.Now()
	return &responseClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    testHandler,
			Audience:  jwt.ClaimStrings{testCosigner},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
			ID:        rand.Text(),
		},
		RequestID:  q.RequestID,
		RequestJTI: q.ID,
		Decision:   decisionApprove,
	}
}

// signWith signs claims with key under method, adding header fields.
func signWith(t testing.TB, method jwt.SigningMethod, key any, claims jwt.Claims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing a test token: %v", err)
	}
	return s
}

// sign signs claims with the handler's key.
func (h *handler) sign(claims jwt.Claims) string {
	m, err := methodFor(h.key.Public())
	if err != nil {
		h.t.Fatal(err)
	}
	return signWith(h.t, m, h.key, claims, nil)
}

func writeJWT(w http.ResponseWriter, token string) {
	w.Header().Set("Content-Type", MediaType)
	io.WriteString(w, token)
}

// signed answers with claimsFor(q), changed by mutate, signed by the
// handler's key.
func signed(mutate func(*responseClaims)) answerFunc {
	return func(h *handler, w http.ResponseWriter, _ *http.Request, q *requestClaims) {
		c := claimsFor(q)
		if mutate != nil {
			mutate(c)
		}
		writeJWT(w, h.sign(c))
	}
}

// decide answers with a signed decision and reason.
func decide(decision, reason string) answerFunc {
	return signed(func(c *responseClaims) { c.Decision, c.Reason = decision, reason })
}

// answerToken answers with the token mk returns, as application/jwt.
func answerToken(mk func(h *handler, q *requestClaims) string) answerFunc {
	return func(h *handler, w http.ResponseWriter, _ *http.Request, q *requestClaims) {
		writeJWT(w, mk(h, q))
	}
}

// raw answers with a fixed status, content type and body.
func raw(status int, contentType, body string) answerFunc {
	return func(_ *handler, w http.ResponseWriter, _ *http.Request, _ *requestClaims) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// hang answers nothing until the client gives up.
func hang(h *handler, w http.ResponseWriter, r *http.Request, q *requestClaims) {
	select {
	case <-r.Context().Done():
	case <-time.After(30 * time.Second):
		h.t.Error("handler: the client never gave up")
	}
}

// Keys. P-256 keys are cheap; RSA keys are made once.
func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var rsaKeys = sync.OnceValue(func() [3]*rsa.PrivateKey {
	var ks [3]*rsa.PrivateKey
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ks[i] = k
	}
	return ks
})

// fixture is a handler and a client configured for it.
type fixture struct {
	h        *handler
	c        *Client
	cfg      Config
	cosigner crypto.Signer
}

// setup starts a handler answering with answer and returns a client for
// it, with cfg changed by mutate. Both keys are P-256.
func setup(t *testing.T, answer answerFunc, mutate func(*Config)) *fixture {
	t.Helper()
	return setupKeys(t, newP256(t), newP256(t), answer, mutate)
}

func setupKeys(t *testing.T, cosigner, handlerKey crypto.Signer, answer answerFunc, mutate func(*Config)) *fixture {
	t.Helper()
	h := newHandler(t, handlerKey, cosigner, answer)
	cfg := Config{
		URL:        h.srv.URL + "/approve",
		Signer:     cosigner,
		KeyID:      "cosigner-key-1",
		HandlerKey: handlerKey.Public(),
		HTTPClient: clientFor(t, h.srv, directDial),
		CosignerID: testCosigner,
		Audience:   testHandler,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &fixture{h: h, c: c, cfg: cfg, cosigner: cosigner}
}

func directDial(ctx context.Context, network, addr string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

// clientFor returns an HTTP client trusting srv's certificate, whose idle
// connections are closed when the test ends.
func clientFor(t *testing.T, srv *httptest.Server, dial DialFunc) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	hc := NewHTTPClient(dial, roots)
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

// testRequest is a request with a payload that needs HTML escaping and
// compaction, to check the payload digest end to end.
func testRequest(id string) Request {
	return Request{
		ID: id, KeyID: "key-7", Caller: "svc-payments", Kind: "eip1559",
		Payload: map[string]any{"to": "0xabc", "value": "1000", "note": "<a&b>", "nested": []int{1, 2}},
	}
}
