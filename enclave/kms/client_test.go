//go:build !release

package kms

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/cms"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var bg = context.Background()

// TestRoundTrip is the boot flow: first boot generates a data key and a
// wrapped key; a later boot (another Client, a fresh attester) unwraps the
// same key. Nothing in any log (ours, the SDK's with body logging asked
// for, the emulator's) or in the wrapped key holds the data key.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey(attestationPolicy("kms:RecipientAttestation:PCR0", pcrGood, cosigner1))

	first := e.client(e.srv.URL, pcrGood, keyID, cosigner1)
	firstKeys := recordRecipients(first)
	key, wrapped, err := first.GenerateDataKey(bg)
	if err != nil {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	if key.Len() != DataKeySize {
		t.Fatalf("data key is %d bytes, want %d", key.Len(), DataKeySize)
	}
	reboot := e.client(e.srv.URL, pcrGood, keyID, cosigner1)
	rebootKeys := recordRecipients(reboot)
	again, err := reboot.Decrypt(bg, wrapped)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if !again.Equal(key) {
		t.Fatal("Decrypt returned another data key")
	}
	checkWiped(t, append(*firstKeys, *rebootKeys...))

	logs := e.logs.String()
	for _, want := range []string{"TrentService.GenerateDataKey", "TrentService.Decrypt", "kms data key generated", "kms data key unwrapped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs do not mention %q: the scan below would prove nothing", want)
		}
	}
	noLeak(t, "the logs", logs, key.Reveal())
	noLeak(t, "the wrapped key", string(wrapped), key.Reveal())
}

func TestGenerateDataKeysDiffer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(e.srv.URL, pcrGood, e.createKey(""), cosigner1)
	k1, _, err1 := c.GenerateDataKey(bg)
	k2, _, err2 := c.GenerateDataKey(bg)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if k1.Equal(k2) {
		t.Fatal("two GenerateDataKey calls returned the same key")
	}
}

// TestOtherMeasurementsNotAllowed: an enclave whose PCR0 is not the one the
// key policy names can neither generate nor unwrap, and the error says why.
func TestOtherMeasurementsNotAllowed(t *testing.T) {
	t.Parallel()
	for _, condKey := range []string{"kms:RecipientAttestation:PCR0", "kms:RecipientAttestation:ImageSha384"} {
		t.Run(condKey, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			keyID := e.createKey(attestationPolicy(condKey, pcrGood, ""))
			_, wrapped, err := e.client(e.srv.URL, pcrGood, keyID, cosigner1).GenerateDataKey(bg)
			if err != nil {
				t.Fatalf("the allowed enclave: %v", err)
			}
			other := e.client(e.srv.URL, pcrOther, keyID, cosigner1)
			_, _, errGen := other.GenerateDataKey(bg)
			_, errDec := other.Decrypt(bg, wrapped)
			for op, err := range map[string]error{"GenerateDataKey": errGen, "Decrypt": errDec} {
				checkNotAllowed(t, op, err, strings.ToLower(condKey))
			}
		})
	}
}

func checkNotAllowed(t *testing.T, op string, err error, condKey string) {
	t.Helper()
	if !errors.Is(err, ErrNotAllowed) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("%s: got %v, want ErrNotAllowed", op, err)
	}
	msg := err.Error()
	for _, want := range []string{"does not allow this enclave's measurements", "PCR0 " + hex.EncodeToString(pcrOther), op, condKey} {
		if !strings.Contains(msg, want) {
			t.Errorf("%s: error %q does not say %q", op, msg, want)
		}
	}
}

// TestWrongCosigner: a wrapped key is bound to its cosigner's encryption
// context and to its KMS key.
func TestWrongCosigner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	open := e.createKey(attestationPolicy("kms:RecipientAttestation:PCR0", pcrGood, ""))
	bound := e.createKey(attestationPolicy("kms:RecipientAttestation:PCR0", pcrGood, cosigner1))
	wrappedOpen := generate(t, e.client(e.srv.URL, pcrGood, open, cosigner1))
	wrappedBound := generate(t, e.client(e.srv.URL, pcrGood, bound, cosigner1))

	_, err := e.client(e.srv.URL, pcrGood, open, "cosigner-2").Decrypt(bg, wrappedOpen)
	if !errors.Is(err, ErrInvalidWrappedKey) {
		t.Errorf("another cosigner's context: got %v, want ErrInvalidWrappedKey", err)
	}
	_, err = e.client(e.srv.URL, pcrGood, open, cosigner1).Decrypt(bg, wrappedBound)
	if !errors.Is(err, ErrInvalidWrappedKey) {
		t.Errorf("another KMS key: got %v, want ErrInvalidWrappedKey", err)
	}
	_, err = e.client(e.srv.URL, pcrGood, bound, "cosigner-2").Decrypt(bg, wrappedBound)
	if !errors.Is(err, ErrNotAllowed) {
		t.Errorf("a policy naming the cosigner: got %v, want ErrNotAllowed", err)
	}
}

func generate(t *testing.T, c *Client) []byte {
	t.Helper()
	key, wrapped, err := c.GenerateDataKey(bg)
	if err != nil {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	key.Wipe()
	return wrapped
}

// TestPlaintextRefused: a KMS that returns the data key in Plaintext (next
// to a valid CiphertextForRecipient) is refused, and that key appears in
// no error and no log, although the SDK was asked to log bodies.
func TestPlaintextRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey("")
	wrapped := generate(t, e.client(e.srv.URL, pcrGood, keyID, cosigner1))
	leaked := bytes.Repeat([]byte{0x5a, 0xc3}, DataKeySize/2)
	fake := e.serve(rewriteResponse(e.emu, func(body map[string]any) { body["Plaintext"] = b64(leaked) }))
	c := e.client(fake.URL, pcrGood, keyID, cosigner1)
	keys := recordRecipients(c)

	_, _, errGen := c.GenerateDataKey(bg)
	_, errDec := c.Decrypt(bg, wrapped)
	for op, err := range map[string]error{"GenerateDataKey": errGen, "Decrypt": errDec} {
		if !errors.Is(err, ErrRecipientIgnored) {
			t.Fatalf("%s: got %v, want ErrRecipientIgnored", op, err)
		}
		noLeak(t, op+" error", err.Error(), leaked)
	}
	noLeak(t, "the logs", e.logs.String(), leaked)
	checkWiped(t, *keys)
}

// recordRecipients makes c record the recipient key of each call.
func recordRecipients(c *Client) *[]*rsa.PrivateKey {
	var keys []*rsa.PrivateKey
	c.newRecipient = func(att nsm.Attester) (*recipient, error) {
		r, err := newRecipient(att)
		if err == nil {
			keys = append(keys, r.key)
		}
		return r, err
	}
	return &keys
}

// checkWiped checks that every key's private exponent is zero, and that
// there was at least one key.
func checkWiped(t *testing.T, keys []*rsa.PrivateKey) {
	t.Helper()
	if len(keys) == 0 {
		t.Fatal("no recipient key was made")
	}
	for i, k := range keys {
		if k.D.Sign() != 0 || k.Primes[0].Sign() != 0 {
			t.Errorf("recipient key %d was not wiped", i)
		}
	}
}

// TestEmptyPlaintextAccepted: KMS documents Plaintext as "null or empty"
// when it returns CiphertextForRecipient.
func TestEmptyPlaintextAccepted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fake := e.serve(rewriteResponse(e.emu, func(body map[string]any) { body["Plaintext"] = "" }))
	if _, _, err := e.client(fake.URL, pcrGood, e.createKey(""), cosigner1).GenerateDataKey(bg); err != nil {
		t.Fatalf("GenerateDataKey with an empty Plaintext: %v", err)
	}
}

// TestBadCiphertextForRecipient: every way a response can fail to hold a
// data key for this enclave gives the same opaque error.
func TestBadCiphertextForRecipient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey("")
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	setCFR := func(f func(cfr []byte) []byte) http.Handler {
		return rewriteResponse(e.emu, func(body map[string]any) {
			cfr, _ := body["CiphertextForRecipient"].(string)
			body["CiphertextForRecipient"] = b64(f(mustUnb64(cfr)))
		})
	}
	for name, h := range map[string]http.Handler{
		"garbage":   setCFR(func([]byte) []byte { return []byte("not a CMS message at all") }),
		"truncated": setCFR(func(cfr []byte) []byte { return cfr[:len(cfr)/2] }),
		"flipped":   setCFR(func(cfr []byte) []byte { cfr[len(cfr)-20] ^= 1; return cfr }),
		"other recipient": setCFR(func([]byte) []byte {
			out, err := cms.Encrypt(make([]byte, DataKeySize), &otherKey.PublicKey, nil)
			if err != nil {
				panic(err)
			}
			return out
		}),
		"missing":  rewriteResponse(e.emu, func(body map[string]any) { delete(body, "CiphertextForRecipient") }),
		"16 bytes": rewriteRequest(e.emu, func(body map[string]any) { body["KeySpec"] = "AES_128" }),
		"no blob":  rewriteResponse(e.emu, func(body map[string]any) { delete(body, "CiphertextBlob") }),
	} {
		fake := e.serve(h)
		_, _, err := e.client(fake.URL, pcrGood, keyID, cosigner1).GenerateDataKey(bg)
		if !errors.Is(err, ErrBadResponse) {
			t.Errorf("%s: got %v, want ErrBadResponse", name, err)
			continue
		}
		if want := ErrBadResponse.Error() + " (GenerateDataKey on key " + keyID + ")"; err.Error() != want {
			t.Errorf("%s: error %q, want the opaque %q", name, err, want)
		}
	}
}

// TestUnavailable: failures a retry may not meet are ErrUnavailable;
// failures it will meet are not.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	down := closedAddr(t)
	for _, tc := range []struct {
		name    string
		url     string
		wantErr error
		wantMsg string
	}{
		{"network down", "http://" + down, ErrUnavailable, "connection refused"},
		{"internal error", e.serve(kmsError(500, "KMSInternalException", "try later")).URL, ErrUnavailable, "KMSInternalException"},
		{"throttled", e.serve(kmsError(400, "ThrottlingException", "slow down")).URL, ErrUnavailable, "ThrottlingException"},
		{"bad gateway", e.serve(http.HandlerFunc(badGateway)).URL, ErrUnavailable, "HTTP 502"},
		{"incorrect key", e.serve(kmsError(400, "IncorrectKeyException", "wrong key")).URL, ErrInvalidWrappedKey, "IncorrectKeyException"},
		{"not found", e.serve(kmsError(400, "NotFoundException", "no such key")).URL, nil, `NotFoundException: "no such key"`},
	} {
		_, err := e.client(tc.url, pcrGood, "key-1", cosigner1).Decrypt(bg, []byte("wrapped"))
		switch {
		case err == nil:
			t.Errorf("%s: no error", tc.name)
		case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.wantErr)
		case tc.wantErr == nil && (errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidWrappedKey) || errors.Is(err, ErrNotAllowed)):
			t.Errorf("%s: got %v, want no sentinel", tc.name, err)
		case !strings.Contains(err.Error(), tc.wantMsg):
			t.Errorf("%s: error %q does not say %q", tc.name, err, tc.wantMsg)
		}
	}
}

func badGateway(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusBadGateway)
	w.Write([]byte("<html>proxy error</html>"))
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestContextEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(e.srv.URL, pcrGood, e.createKey(""), cosigner1)

	cancelled, cancel := context.WithCancel(bg)
	cancel()
	_, _, err := c.GenerateDataKey(cancelled)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Errorf("cancelled: got %v, want context.Canceled only", err)
	}
	expired, cancel := context.WithDeadline(bg, time.Now().Add(-time.Second))
	defer cancel()
	_, err = c.Decrypt(expired, []byte("wrapped"))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("deadline: got %v, want context.DeadlineExceeded and ErrUnavailable", err)
	}
}

func TestDecryptRefusesBadSizes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(e.srv.URL, pcrGood, "key-1", cosigner1)
	for _, wrapped := range [][]byte{nil, make([]byte, MaxWrappedKeySize+1)} {
		if _, err := c.Decrypt(bg, wrapped); !errors.Is(err, ErrInvalidWrappedKey) {
			t.Errorf("%d bytes: got %v, want ErrInvalidWrappedKey", len(wrapped), err)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	good := e.client(e.srv.URL, pcrGood, "key-1", cosigner1)
	base := Config{KMS: good.kms, Attester: good.att, KeyID: "key-1", CosignerID: cosigner1}
	if _, err := New(base); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, edit := range map[string]func(*Config){
		"no KMS":            func(c *Config) { c.KMS = nil },
		"no attester":       func(c *Config) { c.Attester = nil },
		"no key":            func(c *Config) { c.KeyID = "" },
		"no cosigner":       func(c *Config) { c.CosignerID = "" },
		"control character": func(c *Config) { c.CosignerID = "c\n1" },
		"not UTF-8":         func(c *Config) { c.CosignerID = "c\xff" },
		"too long":          func(c *Config) { c.CosignerID = strings.Repeat("c", MaxCosignerIDSize+1) },
	} {
		cfg := base
		edit(&cfg)
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
}
