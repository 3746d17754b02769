//go:build !release

package sealed

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/kmsemu"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

const (
	testBucket   = "cosigner-state"
	testPrefix   = "cosigners/alice/"
	testCosigner = "alice"
	shareMarker  = "SHARE-PLAINTEXT-MARKER"
)

// PCR0 of the image the key policy allows, and of another image.
var (
	pcrGood  = bytes.Repeat([]byte{0xab}, 48)
	pcrOther = bytes.Repeat([]byte{0xcd}, 48)
)

// env is the world outside the enclave: a KMS emulator trusting a
// simulated attestation CA, with a key whose policy allows pcrGood only,
// and an S3 server. Enclave processes (proc) come and go; env stays.
type env struct {
	t      testing.TB
	ca     *attestsim.CA
	kmsURL string
	keyID  string
	// kmsFailures is the number of KMS requests still to fail with a
	// transient error (negative: all of them); kmsCalls counts requests.
	kmsFailures atomic.Int64
	kmsCalls    atomic.Int64

	bucket string
	s3opts s3.Options       // how to reach S3 (endpoint, credentials)
	s3     *faultyTransport // shared by every process's S3 client
	mem    *s3mem.Backend   // the in-process S3's storage (nil for a real server)
	logs   *testutil.Buffer // everyone's logs
}

// newEnv uses the in-process S3 (gofakes3 with the s3mem backend, which
// checks If-None-Match and If-Match atomically).
func newEnv(t testing.TB) *env {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	t.Cleanup(srv.Close)
	e := newEnvWithS3(t, testBucket, s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	e.mem = backend
	return e
}

// newEnvWithS3 uses bucket in the S3 server that opts reaches.
func newEnvWithS3(t testing.TB, bucket string, opts s3.Options) *env {
	t.Helper()
	ca, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ca: ca, bucket: bucket, s3opts: opts, logs: &testutil.Buffer{}}
	e.s3 = &faultyTransport{base: http.DefaultTransport}
	emu := kmsemu.New(kmsemu.Options{Roots: ca.Roots(), Logger: e.logger()})
	srv := httptest.NewServer(e.kmsFaults(emu))
	t.Cleanup(srv.Close)
	e.kmsURL = srv.URL
	e.keyID = e.createKey(attestationPolicy(pcrGood, testCosigner))
	return e
}

func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// kmsFaults counts KMS requests and fails them while kmsFailures says so,
// with an error KMS documents as transient.
func (e *env) kmsFaults(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.kmsCalls.Add(1)
		if n := e.kmsFailures.Load(); n != 0 {
			if n > 0 {
				e.kmsFailures.Add(-1)
			}
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusInternalServerError)
			json.NewEncoder(w).Encode(map[string]string{"__type": "KMSInternalException", "message": "injected"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// kmsClient is the real SDK client, over kms.NewHTTPClient dialling
// directly, without SDK retries (Open retries).
func (e *env) kmsClient() *awskms.Client {
	hc := kms.NewHTTPClient((&net.Dialer{}).DialContext)
	e.t.Cleanup(hc.CloseIdleConnections)
	return awskms.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "test-secret", ""),
		HTTPClient:  hc,
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *awskms.Options) { o.BaseEndpoint = aws.String(e.kmsURL) })
}

func (e *env) createKey(policy string) string {
	e.t.Helper()
	out, err := e.kmsClient().CreateKey(context.Background(), &awskms.CreateKeyInput{Policy: aws.String(policy)})
	if err != nil {
		e.t.Fatalf("CreateKey: %v", err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

// attestationPolicy allows GenerateDataKey and Decrypt only to an enclave
// whose PCR0 is pcr0, in cosigner's encryption context.
func attestationPolicy(pcr0 []byte, cosigner string) string {
	b, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"AWS": "*"}, "Resource": "*",
			"Action": []string{"kms:GenerateDataKey", "kms:Decrypt"},
			"Condition": map[string]map[string]string{
				"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": hex.EncodeToString(pcr0)},
				"StringEquals":           {"kms:EncryptionContext:" + kms.ContextKeyCosigner: cosigner},
			},
		}},
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// s3Client is a real SDK client through rt, with attempts tries per call
// and no backoff.
func (e *env) s3Client(rt http.RoundTripper, attempts int) *s3.Client {
	opts := e.s3opts.Copy()
	opts.HTTPClient = &http.Client{Transport: rt}
	opts.Retryer = retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		o.RateLimiter = ratelimit.None
	})
	return s3.New(opts)
}

// proc is one run of the enclave process: its own tmpfs directory, its
// own NSM (a simulator with the given PCR0), its own S3 and KMS clients.
// crash kills it: from then on its S3 requests fail, as if the process
// were gone, and the test drops its State without closing it.
type proc struct {
	e    *env
	cfg  Config
	dead atomic.Bool
}

func (e *env) newProc(pcr0 []byte) *proc {
	e.t.Helper()
	pcrs := map[int][]byte{0: pcr0, 1: bytes.Repeat([]byte{1}, 48), 2: bytes.Repeat([]byte{2}, 48)}
	sim, err := nsm.NewSimulator(e.ca, attestsim.DefaultModuleID, pcrs)
	if err != nil {
		e.t.Fatal(err)
	}
	p := &proc{e: e}
	p.cfg = Config{
		CosignerID: testCosigner,
		KMS:        e.kmsClient(), Attester: sim, KMSKeyID: e.keyID,
		S3:     e.s3Client(&procTransport{base: e.s3, dead: &p.dead}, 3),
		Bucket: e.bucket, Prefix: testPrefix,
		Dir:    e.t.TempDir(),
		Retry:  Retry{Initial: time.Millisecond, Max: 10 * time.Millisecond, Budget: 300 * time.Millisecond},
		Logger: e.logger(),
	}
	return p
}

func (p *proc) crash() { p.dead.Store(true) }

func (p *proc) init() *State {
	p.e.t.Helper()
	st, err := Init(context.Background(), p.cfg)
	if err != nil {
		p.e.t.Fatalf("Init: %v", err)
	}
	p.e.t.Cleanup(func() { st.Close() })
	return st
}

func (p *proc) open() *State {
	p.e.t.Helper()
	st, err := Open(context.Background(), p.cfg)
	if err != nil {
		p.e.t.Fatalf("Open: %v", err)
	}
	p.e.t.Cleanup(func() { st.Close() })
	return st
}

// procTransport carries one process's S3 requests while it lives.
type procTransport struct {
	base http.RoundTripper
	dead *atomic.Bool
}

var errProcessGone = errors.New("injected: the process crashed")

func (t *procTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.dead.Load() {
		return nil, errProcessGone
	}
	return t.base.RoundTrip(req)
}

// fault is what the shared S3 transport does to one request.
type fault int

const (
	pass        fault = iota
	failBefore        // the request never reaches S3
	failAfter         // S3 processes it, the answer is lost
	serverError       // S3 answers 503 without processing it
	hang              // the request waits until its context ends, unprocessed
)

// faultyTransport applies a rule to every S3 request and records every
// request body that reaches S3.
type faultyTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	rule func(*http.Request) fault
	puts []recordedPut
}

type recordedPut struct {
	path string
	body []byte
}

func (f *faultyTransport) setRule(rule func(*http.Request) fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rule = rule
}

func (f *faultyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	rule := f.rule
	f.mu.Unlock()
	action := pass
	if rule != nil {
		action = rule(req)
	}
	switch action {
	case failBefore:
		return nil, errors.New("injected: connection refused")
	case serverError:
		return &http.Response{StatusCode: 503, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: req}, nil
	case hang:
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	if err := f.record(req); err != nil {
		return nil, err
	}
	resp, err := f.base.RoundTrip(req)
	if action == failAfter && err == nil {
		resp.Body.Close()
		return nil, errors.New("injected: connection reset after the request was processed")
	}
	return resp, err
}

func (f *faultyTransport) record(req *http.Request) error {
	if req.Body == nil || (req.Method != http.MethodPut && req.Method != http.MethodPost) {
		return nil
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return err
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	f.mu.Lock()
	f.puts = append(f.puts, recordedPut{path: req.URL.Path, body: b})
	f.mu.Unlock()
	return nil
}

func (f *faultyTransport) recorded() []recordedPut {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedPut(nil), f.puts...)
}

// putBytes sums the recorded request bodies to paths containing substr.
func (f *faultyTransport) putBytes(substr string) int {
	n := 0
	for _, p := range f.recorded() {
		if strings.Contains(p.path, substr) {
			n += len(p.body)
		}
	}
	return n
}

// segmentPuts applies f to segment uploads only.
func segmentPuts(f fault) func(*http.Request) fault {
	return func(req *http.Request) fault {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/segments/") {
			return f
		}
		return pass
	}
}

// allRequests applies f to every request.
func allRequests(f fault) func(*http.Request) fault {
	return func(*http.Request) fault { return f }
}

// direct is an S3 client outside any process, for inspecting and tampering.
func (e *env) direct() *s3.Client { return e.s3Client(http.DefaultTransport, 1) }

// objects returns every object in the bucket, by key.
func (e *env) objects() map[string][]byte {
	e.t.Helper()
	ctx := context.Background()
	c := e.direct()
	out := map[string][]byte{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(e.bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = e.getObject(aws.ToString(o.Key))
		}
	}
	return out
}

func (e *env) getObject(key string) []byte {
	e.t.Helper()
	obj, err := e.direct().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
	if err != nil {
		e.t.Fatal(err)
	}
	defer obj.Body.Close()
	b, err := io.ReadAll(obj.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) putObject(key string, body []byte) {
	e.t.Helper()
	_, err := e.direct().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(e.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) deleteObject(key string) {
	e.t.Helper()
	_, err := e.direct().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
	if err != nil {
		e.t.Fatal(err)
	}
}

// dataKey unwraps the stored data key as an allowed enclave would, so
// that tests can look for it.
func (e *env) dataKey() secret.Bytes {
	e.t.Helper()
	w, err := decodeWrapped(e.getObject(testPrefix + wrappedKeyName))
	if err != nil {
		e.t.Fatal(err)
	}
	p := e.newProc(pcrGood)
	c, err := kms.New(kms.Config{KMS: p.cfg.KMS, Attester: p.cfg.Attester, KeyID: e.keyID, CosignerID: testCosigner})
	if err != nil {
		e.t.Fatal(err)
	}
	key, err := c.Decrypt(context.Background(), w.Blob)
	if err != nil {
		e.t.Fatal(err)
	}
	return key
}

func keyID(i int) keystore.KeyID {
	var id keystore.KeyID
	copy(id[:], fmt.Sprintf("key-%08d", i))
	return id
}

// share is key i's share at epoch: recognisable, so that a scan can find it.
func share(i int, epoch uint64) []byte {
	return []byte(fmt.Sprintf("%s-%d-%d", shareMarker, i, epoch))
}

func testRecord(i int, epoch uint64) keystore.KeyRecord {
	return keystore.KeyRecord{
		ID: keyID(i), Scheme: 1, Epoch: epoch, Threshold: 2,
		Parties: []string{"alice", "bob", "carol"}, Self: "alice",
		PublicKey: bytes.Repeat([]byte{byte(i)}, 33), ChainCode: bytes.Repeat([]byte{7}, 32),
		Share: secret.New(share(i, epoch)),
	}
}

func putKeys(t testing.TB, s *keystore.Store, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.PutKey(context.Background(), testRecord(i, 0)); err != nil {
			t.Fatalf("PutKey %d: %v", i, err)
		}
	}
}

// state renders everything a store holds that the tests write: keys with
// shares, identity, latest policy, audit chain, and the change sequence.
func state(t testing.TB, s *keystore.Store) string {
	t.Helper()
	var b strings.Builder
	writeKeys(t, &b, s)
	ctx := context.Background()
	if id, err := s.GetIdentity(ctx); err == nil {
		fmt.Fprintf(&b, "identity %x %x\n", id.PublicKey, id.PrivateKey.Reveal())
	}
	if p, err := s.LatestPolicy(ctx); err == nil {
		fmt.Fprintf(&b, "policy %d %q\n", p.Version, p.Document)
	}
	entries, err := s.ReadAudit(ctx, 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range entries {
		fmt.Fprintf(&b, "audit %d %x %q %x\n", a.Seq, a.PrevHash, a.Entry, a.Hash)
	}
	seq, err := s.Seq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "seq %d\n", seq)
	return b.String()
}

func writeKeys(t testing.TB, b *strings.Builder, s *keystore.Store) {
	t.Helper()
	ctx := context.Background()
	for cur := (keystore.Cursor{}); ; {
		page, err := s.ListKeys(ctx, cur, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			full, err := s.GetKey(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(b, "key %s e%d share=%q\n", k.ID, k.Epoch, full.Share.Reveal())
		}
		if !page.More {
			return
		}
		cur = page.Next
	}
}

// needles are the forms in which secret bytes could appear in an object.
func needles(secrets ...[]byte) [][]byte {
	var out [][]byte
	for _, s := range secrets {
		out = append(out, s, []byte(hex.EncodeToString(s)), []byte(strings.ToUpper(hex.EncodeToString(s))),
			[]byte(base64.StdEncoding.EncodeToString(s)), []byte(base64.RawStdEncoding.EncodeToString(s)))
	}
	return out
}

func scan(t testing.TB, name string, b []byte, needles [][]byte) {
	t.Helper()
	for _, n := range needles {
		if bytes.Contains(b, n) {
			t.Errorf("%s contains a secret (%d bytes)", name, len(n))
		}
	}
}
