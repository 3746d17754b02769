package approval

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"strings"
	"testing"
)

// wrapSigner hides the concrete key type behind crypto.Signer.
type wrapSigner struct{ s crypto.Signer }

func (w wrapSigner) Public() crypto.PublicKey { return w.s.Public() }

func (w wrapSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return w.s.Sign(r, digest, opts)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// pkix returns pub in PKIX DER, the bytes an alg-confusion attack uses as
// an HMAC key.
func pkix(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pemKey(t testing.TB, pub crypto.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix(t, pub)})
}

func lastSegment(tok string) string { return tok[strings.LastIndexByte(tok, '.')+1:] }

// withHeader returns tok with one header field changed and its claims and
// signature kept.
func withHeader(t testing.TB, tok, key string, value any) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(hb, &h); err != nil {
		t.Fatal(err)
	}
	h[key] = value
	parts[0] = b64(mustJSON(t, h))
	return strings.Join(parts, ".")
}

// replaceClaims returns tok with its claims replaced and its header and
// signature kept.
func replaceClaims(t testing.TB, tok string, claims any) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	parts[1] = b64(mustJSON(t, claims))
	return strings.Join(parts, ".")
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flip returns another base64url character.
func flip(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	return 'A'
}
