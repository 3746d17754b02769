package kmsemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is the emulator's clock in tests, unless a test moves it.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// PCR0 values of the "good" and the "other" enclave image.
var (
	pcrGood  = bytes.Repeat([]byte{0xab}, 48)
	pcrOther = bytes.Repeat([]byte{0xcd}, 48)
)

// enclaveKey is the enclave's ephemeral RSA key, generated once.
var enclaveKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// clock is a settable time source for Options.Now.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

// env is an emulator behind an httptest server, an SDK client for it, and
// a simulated attestation CA it trusts.
type env struct {
	t      *testing.T
	emu    *Emulator
	srv    *httptest.Server
	client *kms.Client
	ca     *attestsim.CA
	clock  *clock
	logs   *testutil.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ca, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	c := newClock(t0)
	logs := &testutil.Buffer{}
	emu := New(Options{Roots: ca.Roots(), Now: c.Now,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	e := &env{t: t, emu: emu, ca: ca, clock: c, logs: logs}
	e.serve(emu)
	return e
}

// serve points e's server and client at emu.
func (e *env) serve(emu *Emulator) {
	if e.srv != nil {
		e.srv.Close()
	}
	e.emu = emu
	e.srv = httptest.NewServer(emu)
	e.t.Cleanup(e.srv.Close)
	e.client = newClient(e.srv)
}

func newClient(srv *httptest.Server) *kms.Client {
	return kms.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: newClientCreds(),
		HTTPClient:  srv.Client(),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *kms.Options) { o.BaseEndpoint = aws.String(srv.URL) })
}

func newClientCreds() credentials.StaticCredentialsProvider {
	return credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "test-secret", "")
}

// createKey creates a key with the given policy ("" for the default) and
// returns its ID.
func (e *env) createKey(policy string) string {
	e.t.Helper()
	in := &kms.CreateKeyInput{Description: aws.String("test key")}
	if policy != "" {
		in.Policy = aws.String(policy)
	}
	out, err := e.client.CreateKey(context.Background(), in)
	if err != nil {
		e.t.Fatalf("CreateKey: %v", err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

// attest mints a document at the emulator's current time for an enclave
// whose PCR0 is pcr0, carrying the enclave's RSA key.
func (e *env) attest(pcr0 []byte) []byte {
	e.t.Helper()
	return e.attestFrom(e.ca, pcr0)
}

func (e *env) attestFrom(ca *attestsim.CA, pcr0 []byte) []byte {
	e.t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(&enclaveKey().PublicKey)
	if err != nil {
		e.t.Fatal(err)
	}
	doc, err := ca.Attest(attestsim.Request{
		PCRs:      map[int][]byte{0: pcr0, 1: bytes.Repeat([]byte{1}, 48), 2: bytes.Repeat([]byte{2}, 48)},
		PublicKey: spki,
		Time:      e.clock.Now(),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return doc
}

func recipientFor(doc []byte) *types.RecipientInfo {
	return &types.RecipientInfo{AttestationDocument: doc, KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}
}

// wantCode checks that err is a KMS API error with the given code and
// returns its message.
func wantCode(t *testing.T, err error, code string) string {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("got error %v, want API error %s", err, code)
	}
	if apiErr.ErrorCode() != code {
		t.Fatalf("got %s (%s), want %s", apiErr.ErrorCode(), apiErr.ErrorMessage(), code)
	}
	return apiErr.ErrorMessage()
}

// pcrPolicy allows GenerateDataKey and Decrypt only with Recipient whose
// condition key (e.g. kms:RecipientAttestation:PCR0) equals value,
// compared with op.
func pcrPolicy(op, key, value string) string {
	return `{"Version":"2012-10-17","Statement":[
	  {"Sid":"admin","Effect":"Allow","Principal":{"AWS":"*"},"Action":["kms:Encrypt","kms:CreateKey"],"Resource":"*"},
	  {"Sid":"enclave","Effect":"Allow","Principal":{"AWS":"*"},"Action":["kms:GenerateDataKey","kms:Decrypt"],"Resource":"*",
	   "Condition":{"` + op + `":{"` + key + `":"` + value + `"}}}]}`
}

func upperHex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }
