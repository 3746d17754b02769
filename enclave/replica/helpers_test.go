package replica

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

const (
	testBucket   = "cosigner-state"
	testPrefix   = "cosigners/alice/"
	testCosigner = "alice"
	shareMarker  = "SHARE-PLAINTEXT-MARKER"
)

// fault is what the transport does to one request.
type fault int

const (
	pass        fault = iota
	failBefore        // the request never reaches S3
	failAfter         // S3 processes it, the answer is lost
	serverError       // S3 answers 503 without processing it
)

// faultyTransport sits between the SDK and the in-process S3 (gofakes3,
// whose s3mem backend checks If-None-Match and If-Match atomically, so no
// conditional-write wrapper is needed). It records every request body it
// lets through, and applies the fault its rule picks.
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

// record keeps a copy of a PUT or POST body.
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

// putBytes sums the bodies of recorded PUTs whose path contains substr.
func (f *faultyTransport) putBytes(substr string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, p := range f.puts {
		if strings.Contains(p.path, substr) {
			n += len(p.body)
		}
	}
	return n
}

// env is one in-process S3 with a bucket.
type env struct {
	t       *testing.T
	url     string
	dataKey secret.Bytes
	tr      *faultyTransport
	client  *s3.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	t.Cleanup(srv.Close)
	e := &env{t: t, url: srv.URL, dataKey: randomKey(t)}
	e.tr = &faultyTransport{base: http.DefaultTransport}
	e.client = e.newClient(3)
	return e
}

// newClient builds a real SDK client against the fake, with attempts tries
// per call and no backoff.
func (e *env) newClient(attempts int) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.url),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:   &http.Client{Transport: e.tr},
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			o.RateLimiter = ratelimit.None
		}),
	})
}

func randomKey(t testing.TB) secret.Bytes {
	b := make([]byte, keystore.KeySize)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return secret.New(b)
}

func (e *env) config() Config {
	return Config{Client: e.client, Bucket: testBucket, Prefix: testPrefix, CosignerID: testCosigner, DataKey: e.dataKey}
}

func (e *env) init(cfg Config) (*keystore.Store, *Replica) {
	e.t.Helper()
	s, r, err := Init(context.Background(), cfg, e.t.TempDir(), keystore.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s, r
}

func (e *env) restore(cfg Config) (*keystore.Store, *Replica) {
	e.t.Helper()
	s, r, err := Restore(context.Background(), cfg, e.t.TempDir(), keystore.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s, r
}

// objects returns every object in the bucket, by key.
func (e *env) objects() map[string][]byte {
	e.t.Helper()
	ctx := context.Background()
	c := e.newClient(1)
	out := map[string][]byte{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, o := range page.Contents {
			obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: o.Key})
			if err != nil {
				e.t.Fatal(err)
			}
			b, _ := io.ReadAll(obj.Body)
			obj.Body.Close()
			out[aws.ToString(o.Key)] = b
		}
	}
	return out
}

func (e *env) putObject(name string, body []byte) {
	e.t.Helper()
	_, err := e.newClient(1).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(testBucket), Key: aws.String(testPrefix + name), Body: bytes.NewReader(body),
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) deleteObject(name string) {
	e.t.Helper()
	_, err := e.newClient(1).DeleteObject(context.Background(), &s3.DeleteObjectInput{
		Bucket: aws.String(testBucket), Key: aws.String(testPrefix + name),
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func keyID(i int) keystore.KeyID {
	var id keystore.KeyID
	copy(id[:], fmt.Sprintf("key-%08d", i))
	return id
}

func testRecord(i int, epoch uint64) keystore.KeyRecord {
	return keystore.KeyRecord{
		ID: keyID(i), Scheme: 1, Epoch: epoch, Threshold: 2,
		Parties: []string{"alice", "bob", "carol"}, Self: "alice",
		PublicKey: bytes.Repeat([]byte{byte(i)}, 33), ChainCode: bytes.Repeat([]byte{7}, 32),
		Share: secret.New([]byte(fmt.Sprintf("%s-%d-%d", shareMarker, i, epoch))),
	}
}

func putKeys(t *testing.T, s *keystore.Store, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.PutKey(context.Background(), testRecord(i, 0)); err != nil {
			t.Fatalf("PutKey %d: %v", i, err)
		}
	}
}

// state renders a store's keys (shares included, via Equal) for comparison.
func state(t *testing.T, s *keystore.Store) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	cur := keystore.Cursor{}
	for {
		page, err := s.ListKeys(ctx, cur, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			full, err := s.GetKey(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s e%d share=%x\n", k.ID, k.Epoch, full.Share.Reveal())
		}
		if !page.More {
			break
		}
		cur = page.Next
	}
	seq, err := s.Seq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "seq %d\n", seq)
	return b.String()
}
