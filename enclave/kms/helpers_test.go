//go:build !release

package kms

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/logging"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/kmsemu"
)

// PCR0 of the release image the key policy names, and of another image.
var (
	pcrGood  = bytes.Repeat([]byte{0xab}, 48)
	pcrOther = bytes.Repeat([]byte{0xcd}, 48)
)

const cosigner1 = "cosigner-1"

// env is a KMS emulator trusting a simulated attestation CA, and
// everything's logs (ours, the SDK's with bodies switched on, the
// emulator's) in one buffer.
type env struct {
	t    *testing.T
	ca   *attestsim.CA
	emu  *kmsemu.Emulator
	srv  *httptest.Server // the emulator itself
	logs *testutil.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ca, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ca: ca, logs: &testutil.Buffer{}}
	e.emu = kmsemu.New(kmsemu.Options{Roots: ca.Roots(), Logger: e.logger()})
	e.srv = e.serve(e.emu)
	return e
}

func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// serve serves h on loopback until the test ends.
func (e *env) serve(h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	e.t.Cleanup(srv.Close)
	return srv
}

// sdkClient is the real SDK client for the KMS at url, dialling directly
// through NewHTTPClient, logging everything it can (bodies included) to
// e.logs, and not retrying.
func (e *env) sdkClient(url string) *awskms.Client {
	hc := NewHTTPClient((&net.Dialer{}).DialContext)
	e.t.Cleanup(hc.CloseIdleConnections)
	sdkLog := logging.LoggerFunc(func(_ logging.Classification, format string, v ...any) {
		fmt.Fprintf(e.logs, format+"\n", v...)
	})
	return awskms.NewFromConfig(aws.Config{
		Region:        "us-east-1",
		Credentials:   credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "test-secret", ""),
		HTTPClient:    hc,
		Retryer:       func() aws.Retryer { return aws.NopRetryer{} },
		Logger:        sdkLog,
		ClientLogMode: aws.LogRequestWithBody | aws.LogResponseWithBody | aws.LogRetries | aws.LogSigning,
	}, func(o *awskms.Options) { o.BaseEndpoint = aws.String(url) })
}

// createKey creates a key in the emulator with policy ("" for the
// default, which allows everything) and returns its ID.
func (e *env) createKey(policy string) string {
	e.t.Helper()
	in := &awskms.CreateKeyInput{}
	if policy != "" {
		in.Policy = aws.String(policy)
	}
	out, err := e.sdkClient(e.srv.URL).CreateKey(context.Background(), in)
	if err != nil {
		e.t.Fatalf("CreateKey: %v", err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

// client returns a Client for the KMS at url, in an enclave whose PCR0 is
// pcr0 (simulated, signed by e's CA).
func (e *env) client(url string, pcr0 []byte, keyID, cosignerID string) *Client {
	e.t.Helper()
	pcrs := map[int][]byte{0: pcr0, 1: bytes.Repeat([]byte{1}, 48), 2: bytes.Repeat([]byte{2}, 48)}
	sim, err := nsm.NewSimulator(e.ca, attestsim.DefaultModuleID, pcrs)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := New(Config{KMS: e.sdkClient(url), Attester: sim, KeyID: keyID, CosignerID: cosignerID, Logger: e.logger()})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// attestationPolicy allows GenerateDataKey and Decrypt only to an enclave
// whose condKey (kms:RecipientAttestation:PCR0 or :ImageSha384) is pcr0,
// and, if cosignerID is not empty, only in that cosigner's context.
func attestationPolicy(condKey string, pcr0 []byte, cosignerID string) string {
	cond := map[string]map[string]string{
		"StringEqualsIgnoreCase": {condKey: hex.EncodeToString(pcr0)},
	}
	if cosignerID != "" {
		cond["StringEquals"] = map[string]string{"kms:EncryptionContext:" + ContextKeyCosigner: cosignerID}
	}
	policy := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid": "enclave-only", "Effect": "Allow", "Principal": map[string]any{"AWS": "*"},
			"Action": []string{"kms:GenerateDataKey", "kms:Decrypt"}, "Resource": "*", "Condition": cond,
		}},
	}
	b, err := json.Marshal(policy)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// rewriteResponse serves h and lets edit change the JSON body of its
// successful responses (blobs are base64 strings).
func rewriteResponse(h http.Handler, edit func(body map[string]any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				panic(err)
			}
			edit(m)
			body, _ = json.Marshal(m)
		}
		w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
}

// rewriteRequest lets edit change the JSON body of requests before h
// serves them.
func rewriteRequest(h http.Handler, edit func(body map[string]any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			panic(err)
		}
		edit(m)
		b, _ := json.Marshal(m)
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		h.ServeHTTP(w, r)
	})
}

// kmsError is a KMS that answers every request with one error.
func kmsError(status int, code, msg string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
	})
}

// encodings are the forms in which key bytes could show up in text.
func encodings(key []byte) map[string]string {
	return map[string]string{
		"raw":          string(key),
		"hex":          hex.EncodeToString(key),
		"HEX":          strings.ToUpper(hex.EncodeToString(key)),
		"base64":       base64.StdEncoding.EncodeToString(key),
		"base64 (raw)": base64.RawStdEncoding.EncodeToString(key),
		"decimal":      fmt.Sprint(key),
	}
}

// noLeak fails the test if text holds key in any of its encodings.
func noLeak(t *testing.T, what, text string, key []byte) {
	t.Helper()
	for name, enc := range encodings(key) {
		if strings.Contains(text, enc) {
			t.Errorf("%s holds the key (%s)", what, name)
		}
	}
}

// b64 is how a blob travels in the KMS JSON protocol.
func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func mustUnb64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
