//go:build !release

package app

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/sealed"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/kmsemu"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
)

var pcrAllowed = bytes.Repeat([]byte{0xab}, 48)

// stateEnv is the world outside the enclave: a KMS emulator trusting a
// saved simulator CA, with a key whose policy allows pcrAllowed, and an
// in-process S3.
type stateEnv struct {
	ca                 []byte
	kmsURL, s3URL, key string
}

func newStateEnv(t *testing.T) stateEnv {
	ca, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	saved, err := ca.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	kmsSrv := httptest.NewServer(kmsemu.New(kmsemu.Options{Roots: ca.Roots()}))
	t.Cleanup(kmsSrv.Close)
	backend := s3mem.New()
	if err := backend.CreateBucket("state"); err != nil {
		t.Fatal(err)
	}
	s3Srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	t.Cleanup(s3Srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	return stateEnv{ca: saved, kmsURL: kmsSrv.URL, s3URL: s3Srv.URL, key: createKey(t, kmsSrv.URL)}
}

func createKey(t *testing.T, url string) string {
	policy, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"AWS": "*"}, "Resource": "*",
			"Action":    []string{"kms:GenerateDataKey", "kms:Decrypt"},
			"Condition": map[string]map[string]string{"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": hex.EncodeToString(pcrAllowed)}},
		}},
	})
	client := awskms.New(awskms.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	out, err := client.CreateKey(context.Background(), &awskms.CreateKeyInput{Policy: aws.String(string(policy))})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

func (e stateEnv) config(t *testing.T, pcr0 []byte, init bool) Config {
	return Config{
		NSM:       NSMSimulator,
		Simulator: nsm.SimulatorConfig{CA: e.ca, PCRs: map[int][]byte{0: pcr0}},
		State: StateConfig{
			CosignerID: "alice", Init: init, Dir: t.TempDir(), Region: "us-east-1",
			KMSEndpoint: e.kmsURL, S3Endpoint: e.s3URL, KMSKeyID: e.key, Bucket: "state", Prefix: "alice/",
		},
	}
}

// runUntilReady runs the enclave until it is ready, then stops it; it
// returns the logs, or Run's error if it never got ready.
func runUntilReady(t *testing.T, cfg Config) (string, error) {
	var logs testutil.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, testLogger(&logs)) }()
	deadline := time.After(60 * time.Second)
	for !strings.Contains(logs.String(), "enclave ready") {
		select {
		case err := <-done:
			return logs.String(), err
		case <-deadline:
			t.Fatalf("enclave never became ready:\n%s", logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	return logs.String(), <-done
}

func TestSealedStateLifecycle(t *testing.T) {
	env := newStateEnv(t)

	if _, err := runUntilReady(t, env.config(t, pcrAllowed, false)); !errors.Is(err, sealed.ErrNoState) {
		t.Fatalf("first boot without --init: err = %v, want ErrNoState", err)
	}
	logs, err := runUntilReady(t, env.config(t, pcrAllowed, true))
	if err != nil || !strings.Contains(logs, "sealed state open") {
		t.Fatalf("--init: %v\n%s", err, logs)
	}
	if _, err := runUntilReady(t, env.config(t, pcrAllowed, true)); !errors.Is(err, sealed.ErrExists) {
		t.Fatalf("second --init: err = %v, want ErrExists", err)
	}
	logs, err = runUntilReady(t, env.config(t, pcrAllowed, false))
	if err != nil || !strings.Contains(logs, "sealed state open") {
		t.Fatalf("reboot: %v\n%s", err, logs)
	}
	other := bytes.Repeat([]byte{0xcd}, 48)
	if _, err := runUntilReady(t, env.config(t, other, false)); !errors.Is(err, kms.ErrNotAllowed) {
		t.Fatalf("another image: err = %v, want ErrNotAllowed", err)
	}
}

func TestStateConfigIncomplete(t *testing.T) {
	cfg := Config{NSM: NSMSimulator, State: StateConfig{Bucket: "b"}}
	if _, err := runUntilReady(t, cfg); !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
}
