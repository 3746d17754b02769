//go:build !release

package hostpath_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/app"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/parent/creds"
	"github.com/nitro-cosigner/nitro-cosigner/parent/egress"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/kmsemu"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
)

// TestSealedStateThroughParent boots the enclave's sealed state the way it
// runs in production: KMS and S3 reached only through the parent's egress
// proxy, AWS credentials only from the parent. A proxy that does not allow
// KMS makes the boot fail.
func TestSealedStateThroughParent(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ca, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	saved, _ := ca.MarshalPEM()
	pcr0 := bytes.Repeat([]byte{0xab}, 48)
	kmsURL, s3URL := startKMS(t, ca), startS3(t)
	keyID := createKey(t, kmsURL, pcr0)
	t.Setenv("AWS_ACCESS_KEY_ID", "parent-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "parent-secret")
	credsAddr := serveCreds(ctx, t)

	cfg := app.Config{
		NSM:       app.NSMSimulator,
		Simulator: nsm.SimulatorConfig{CA: saved, PCRs: map[int][]byte{0: pcr0}},
		State: app.StateConfig{
			CosignerID: "alice", Init: true, Dir: t.TempDir(), Region: "us-east-1",
			KMSEndpoint: kmsURL, S3Endpoint: s3URL, KMSKeyID: keyID, Bucket: "state", Prefix: "alice/",
			EgressProxy:     serveEgress(ctx, t, hostPort(t, kmsURL), hostPort(t, s3URL)),
			CredentialsFrom: credsAddr,
		},
	}
	// The enclave process has no AWS credentials of its own.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	if logs, err := runUntilReady(t, cfg); err != nil || !strings.Contains(logs, "sealed state open") {
		t.Fatalf("boot through the parent: %v\n%s", err, logs)
	}

	// A proxy that does not allow KMS: the enclave cannot unwrap its data
	// key, and says why while it retries.
	cfg.State.Init, cfg.State.Dir = false, t.TempDir()
	cfg.State.EgressProxy = serveEgress(ctx, t, hostPort(t, s3URL))
	var logs testutil.Buffer
	short, stop := context.WithTimeout(ctx, 5*time.Second)
	defer stop()
	if err := app.Run(short, cfg, slog.New(slog.NewTextHandler(&logs, nil))); err == nil {
		t.Fatal("the enclave reached KMS through a proxy that does not allow it")
	}
	if out := logs.String(); strings.Contains(out, "enclave ready") || !strings.Contains(out, "refused by the egress proxy") {
		t.Fatalf("logs do not show the refusal:\n%s", out)
	}
}

func runUntilReady(t *testing.T, cfg app.Config) (string, error) {
	var logs testutil.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil))) }()
	deadline := time.After(2 * time.Minute)
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

func startKMS(t *testing.T, ca *attestsim.CA) string {
	srv := httptest.NewServer(kmsemu.New(kmsemu.Options{Roots: ca.Roots()}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func startS3(t *testing.T) string {
	backend := s3mem.New()
	if err := backend.CreateBucket("state"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	t.Cleanup(srv.Close)
	return srv.URL
}

func createKey(t *testing.T, kmsURL string, pcr0 []byte) string {
	policy, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"AWS": "*"}, "Resource": "*",
			"Action":    []string{"kms:GenerateDataKey", "kms:Decrypt"},
			"Condition": map[string]map[string]string{"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": hex.EncodeToString(pcr0)}},
		}},
	})
	client := awskms.New(awskms.Options{Region: "us-east-1", BaseEndpoint: aws.String(kmsURL),
		Credentials: credentials.NewStaticCredentialsProvider("admin", "admin", "")})
	out, err := client.CreateKey(t.Context(), &awskms.CreateKeyInput{Policy: aws.String(string(policy))})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

func hostPort(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func listen(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// serveEgress runs a parent egress proxy allowing exactly allow and returns
// its address as the enclave names it.
func serveEgress(ctx context.Context, t *testing.T, allow ...string) string {
	p, err := egress.New(egress.Config{Allow: allow})
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t)
	done := make(chan struct{})
	go func() { defer close(done); p.Serve(ctx, l) }()
	t.Cleanup(func() { l.Close(); <-done })
	return "tcp://" + l.Addr().String()
}

// serveCreds serves the parent's environment credentials.
func serveCreds(ctx context.Context, t *testing.T) string {
	provider, err := creds.LoadDefault(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t)
	done := make(chan struct{})
	go func() { defer close(done); creds.NewServer(provider, slog.New(slog.DiscardHandler)).Serve(ctx, l) }()
	t.Cleanup(func() { l.Close(); <-done })
	return "tcp://" + l.Addr().String()
}
