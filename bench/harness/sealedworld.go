//go:build !release

package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/sealed"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/kmsemu"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// sealedWorld is what surrounds a simulated enclave's sealed state: an S3
// (gofakes3, in memory) and the KMS emulator, both over loopback HTTP, and
// the attestation CA the emulator trusts. Enclave "processes" are
// sealed.Configs made by place; the bench's own ones send S3 through a
// counting transport.
type sealedWorld struct {
	spec    worldSpec
	ca      *attestsim.CA
	counter *putCounter
	servers []*httptest.Server
}

// worldSpec is what a process needs to reach the world; a child process
// (see hold) gets it as JSON.
type worldSpec struct {
	S3URL  string            `json:"s3_url"`
	KMSURL string            `json:"kms_url"`
	Bucket string            `json:"bucket"`
	CAPEM  []byte            `json:"ca_pem"`
	Keys   map[string]string `json:"kms_keys"` // cosigner ID to KMS key ID
}

const worldBucket = "bench-state"

// Simulated measurements; the KMS key policies allow exactly these.
var worldPCRs = map[int][]byte{0: bytes.Repeat([]byte{0xab}, 48), 1: bytes.Repeat([]byte{1}, 48), 2: bytes.Repeat([]byte{2}, 48)}

func newSealedWorld() (*sealedWorld, error) {
	ca, err := attestsim.NewCA()
	if err != nil {
		return nil, err
	}
	caPEM, err := ca.MarshalPEM()
	if err != nil {
		return nil, err
	}
	backend := s3mem.New()
	if err := backend.CreateBucket(worldBucket); err != nil {
		return nil, err
	}
	s3srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	kmssrv := httptest.NewServer(kmsemu.New(kmsemu.Options{Roots: ca.Roots()}))
	return &sealedWorld{
		spec:    worldSpec{S3URL: s3srv.URL, KMSURL: kmssrv.URL, Bucket: worldBucket, CAPEM: caPEM, Keys: map[string]string{}},
		ca:      ca,
		counter: &putCounter{base: http.DefaultTransport, by: map[string]int64{}},
		servers: []*httptest.Server{s3srv, kmssrv},
	}, nil
}

func (w *sealedWorld) close() {
	for _, s := range w.servers {
		s.Close()
	}
}

// addCosigner creates a KMS key for cosigner id whose policy allows the
// simulated measurements and id's encryption context only.
func (w *sealedWorld) addCosigner(ctx context.Context, id string) error {
	policy, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"AWS": "*"}, "Resource": "*",
			"Action": []string{"kms:GenerateDataKey", "kms:Decrypt"},
			"Condition": map[string]any{
				"StringEqualsIgnoreCase": pcrConditions(),
				"StringEquals":           map[string]string{"kms:EncryptionContext:" + kms.ContextKeyCosigner: id},
			},
		}},
	})
	if err != nil {
		return err
	}
	out, err := kmsClient(w.spec.KMSURL).CreateKey(ctx, &awskms.CreateKeyInput{Policy: aws.String(string(policy))})
	if err != nil {
		return fmt.Errorf("KMS CreateKey: %w", err)
	}
	w.spec.Keys[id] = aws.ToString(out.KeyMetadata.KeyId)
	return nil
}

func pcrConditions() map[string]string {
	out := map[string]string{}
	for i, v := range worldPCRs {
		out["kms:RecipientAttestation:PCR"+strconv.Itoa(i)] = hex.EncodeToString(v)
	}
	return out
}

// place is the sealed configuration of one enclave process of cosigner
// id, with its database in dir. S3 requests go through rt.
func (spec worldSpec) place(ca *attestsim.CA, id, dir string, rt http.RoundTripper) (sealed.Config, error) {
	sim, err := nsm.NewSimulator(ca, attestsim.DefaultModuleID, worldPCRs)
	if err != nil {
		return sealed.Config{}, err
	}
	return sealed.Config{
		CosignerID: id, KMS: kmsClient(spec.KMSURL), Attester: sim, KMSKeyID: spec.Keys[id],
		S3: s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(spec.S3URL), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider("bench", "bench", ""),
			HTTPClient:  &http.Client{Transport: rt}}),
		Bucket: spec.Bucket, Prefix: id + "/", Dir: dir,
	}, nil
}

// config is place for this process, counting what it sends to S3.
func (w *sealedWorld) config(id, dir string) (sealed.Config, error) {
	return w.spec.place(w.ca, id, dir, w.counter)
}

func kmsClient(url string) *awskms.Client {
	return awskms.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("bench", "bench", ""),
		HTTPClient:  kms.NewHTTPClient((&net.Dialer{}).DialContext),
	}, func(o *awskms.Options) { o.BaseEndpoint = aws.String(url) })
}

// putCounter counts the bytes of every PUT body sent to S3, by kind of
// object ("segments", "snapshots", "other").
type putCounter struct {
	base http.RoundTripper
	mu   sync.Mutex
	by   map[string]int64
}

func (c *putCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && req.Body != nil {
		req.Body = &countingBody{ReadCloser: req.Body, add: c.adder(objectKind(req.URL.Path))}
	}
	return c.base.RoundTrip(req)
}

func objectKind(path string) string {
	for _, k := range []string{"segments", "snapshots"} {
		if strings.Contains(path, "/"+k+"/") {
			return k
		}
	}
	return "other"
}

func (c *putCounter) adder(kind string) func(int) {
	return func(n int) {
		c.mu.Lock()
		c.by[kind] += int64(n)
		c.mu.Unlock()
	}
}

// total returns the bytes counted of the given kinds (all: none given).
func (c *putCounter) total(kinds ...string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for k, v := range c.by {
		if len(kinds) == 0 || slices.Contains(kinds, k) {
			n += v
		}
	}
	return n
}

type countingBody struct {
	io.ReadCloser
	add func(int)
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.add(n)
	return n, err
}

// syntheticKey is key i of a state: a CMP 2-of-3 record whose share is
// shareSize random bytes (the size of a real CMP share measured in the
// same run; random, as a share's big integers are, and as incompressible).
func syntheticKey(i, shareSize int) keystore.KeyRecord {
	share := make([]byte, shareSize)
	rand.Read(share)
	pub := make([]byte, 33)
	rand.Read(pub)
	pub[0] = 2
	chain := make([]byte, 32)
	rand.Read(chain)
	return keystore.KeyRecord{
		ID: sha256.Sum256(fmt.Appendf(nil, "bench-key-%d", i)), Scheme: 1, Threshold: 2,
		Parties: []string{"cosigner-1", "cosigner-2", "cosigner-3"}, Self: "cosigner-1",
		PublicKey: pub, ChainCode: chain, Share: secret.New(share),
		Metadata: json.RawMessage(`{"display_name":"bench"}`),
	}
}
