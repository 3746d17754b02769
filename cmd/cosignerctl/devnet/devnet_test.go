//go:build !release

package devnet

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/approval"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/kmsemu"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The default policy is a document the enclave's policy engine accepts.
func TestDefaultPolicyParses(t *testing.T) {
	doc, err := policy.Parse([]byte(defaultPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Version() != 1 {
		t.Errorf("version %d, want 1", doc.Version())
	}
}

func TestConfigChecks(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no directory"},
		{Config{Dir: "d", Parties: 1}, "parties"},
		{Config{Dir: "d", Parties: MaxParties + 1}, "parties"},
		{Config{Dir: "d", Broker: "amqp"}, "unknown broker"},
		{Config{Dir: "d", S3: "s3.example"}, "--s3"},
		{Config{Dir: "/" + strings.Repeat("x", 90)}, "too long"},
	} {
		if _, err := c.cfg.withDefaults(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want ErrConfig with %q", c.cfg, err, c.want)
		}
	}
	cfg, err := Config{Dir: "d", S3: "http://127.0.0.1:9000"}.withDefaults()
	if err != nil || cfg.Parties != DefaultParties || cfg.Broker != BrokerNATS || !filepath.IsAbs(cfg.Dir) || cfg.embeddedS3() {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
}

// loadPKI creates the key material once and reads the same back.
func TestPKIPersists(t *testing.T) {
	dir := t.TempDir()
	a, err := loadPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !a.handlerKey.Equal(b.handlerKey) || !a.simCA.Root().Equal(b.simCA.Root()) || len(b.admins) != numAdmins {
		t.Fatal("a second load made new keys")
	}
	for _, k := range append(pkiPaths{dir}.adminKeys(), pkiPaths{dir}.simCA(), pkiPaths{dir}.clientCA().Key) {
		if st, err := os.Stat(k); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", k, err, st.Mode().Perm())
		}
	}
}

// The sample approval server, asked by enclave/approval's own client,
// approves, rejects a note containing "reject", and refuses questions
// from a cosigner whose key it has not pinned.
func TestApprovalServer(t *testing.T) {
	dir := t.TempDir()
	k, err := loadPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := newApprovalServer(k.handlerKey, slog.New(slog.DiscardHandler))
	cosigner, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&cosigner.PublicKey)
	if err := srv.setKeys([]memberEntry{{ID: "cosigner-1", ApprovalKey: hex.EncodeToString(der)}}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	if hs.TLS, err = k.approvalTLS.config(); err != nil {
		t.Fatal(err)
	}
	hs.StartTLS()
	defer hs.Close()

	ask := func(id, note string) (approval.Decision, error) {
		client := askClient(t, hs.URL, dir, id, cosigner, k)
		return client.Ask(t.Context(), approval.Request{ID: "req-1", Kind: "taproot-psbt",
			Payload: map[string]any{"note": note, "digests": []string{"00"}}})
	}
	if d, err := ask("cosigner-1", "pay the rent"); err != nil || d.Verdict != approval.Approve {
		t.Errorf("plain note: %v, %v; want APPROVE", d, err)
	}
	if d, err := ask("cosigner-1", "please Reject"); err != nil || d.Verdict != approval.Reject {
		t.Errorf("rejecting note: %v, %v; want REJECT", d, err)
	}
	if d, err := ask("cosigner-2", "pay the rent"); err == nil {
		t.Errorf("an unpinned cosigner got %v", d)
	}
}

func askClient(t *testing.T, url, dir, id string, key *ecdsa.PrivateKey, k *pki) *approval.Client {
	t.Helper()
	caPEM, err := os.ReadFile(pkiPaths{dir}.approvalCA())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	var d net.Dialer
	c, err := approval.New(approval.Config{URL: url + approvalPath, Signer: key, HandlerKey: &k.handlerKey.PublicKey,
		HTTPClient: approval.NewHTTPClient(d.DialContext, roots), CosignerID: id, Audience: approvalAudience})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A devnet KMS key releases a data key only to an enclave document
// showing the devnet's PCRs, for its own cosigner's encryption context.
func TestKeyPolicy(t *testing.T) {
	ca, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(kmsemu.New(kmsemu.Options{Roots: ca.Roots()}))
	defer srv.Close()
	ctx := t.Context()
	keyID, err := createKey(ctx, srv.URL, "cosigner-1", simPCRs())
	if err != nil {
		t.Fatal(err)
	}
	client := awskms.New(awskms.Options{Region: DefaultRegion, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})
	other := simPCRs()
	other[2] = make([]byte, 48)
	for _, c := range []struct {
		name     string
		pcrs     map[int][]byte
		cosigner string
		recipient,
		ok bool
	}{
		{"the devnet enclave", simPCRs(), "cosigner-1", true, true},
		{"another image", other, "cosigner-1", true, false},
		{"another cosigner's context", simPCRs(), "cosigner-2", true, false},
		{"no Recipient", simPCRs(), "cosigner-1", false, false},
	} {
		_, err := client.GenerateDataKey(ctx, dataKeyInput(t, ca, keyID, c.pcrs, c.cosigner, c.recipient))
		var apiErr smithy.APIError
		denied := errors.As(err, &apiErr) && apiErr.ErrorCode() == "AccessDeniedException"
		if c.ok && err != nil || !c.ok && !denied {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func dataKeyInput(t *testing.T, ca *attestsim.CA, keyID string, pcrs map[int][]byte, cosigner string, recipient bool) *awskms.GenerateDataKeyInput {
	t.Helper()
	in := &awskms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: kmstypes.DataKeySpecAes256,
		EncryptionContext: map[string]string{contextKeyCosigner: cosigner}}
	if !recipient {
		return in
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	doc, err := ca.Attest(attestsim.Request{PCRs: pcrs, PublicKey: pub, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	in.Recipient = &kmstypes.RecipientInfo{AttestationDocument: doc, KeyEncryptionAlgorithm: kmstypes.KeyEncryptionMechanismRsaesOaepSha256}
	return in
}

// The S3 store keeps objects across a close and a reopen, and honours
// If-None-Match.
func TestEmbeddedS3Persists(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	open := func() (*s3.Client, func()) {
		store, h, err := openEmbeddedS3(dir, "b")
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		return s3Client(srv.URL, DefaultRegion, awsCreds{accessKey: "a", secretKey: "b"}), func() {
			srv.Close()
			store.close()
		}
	}
	put := func(c *s3.Client) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("alice/" + wrappedKeyObject),
			Body: strings.NewReader("wrapped"), IfNoneMatch: aws.String("*")})
		return err
	}
	c, done := open()
	if ok, err := stateExists(ctx, c, "b", "alice/"); ok || err != nil {
		t.Fatalf("stateExists before any write: %v, %v", ok, err)
	}
	if err := put(c); err != nil {
		t.Fatal(err)
	}
	if err := put(c); err == nil {
		t.Error("If-None-Match: * overwrote an object")
	}
	done()
	c, done = open()
	defer done()
	if ok, err := stateExists(ctx, c, "b", "alice/"); !ok || err != nil {
		t.Fatalf("stateExists after a reopen: %v, %v", ok, err)
	}
}

// fakeRoster writes a roster of n well-formed entries to dir.
func fakeRoster(t *testing.T, dir string, n int) {
	t.Helper()
	var r rosterFile
	for _, id := range cosignerIDs(n) {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		enc, _ := ecdh.X25519().GenerateKey(rand.Reader)
		r.Members = append(r.Members, memberEntry{ID: id, Identity: hex.EncodeToString(pub),
			Encryption: hex.EncodeToString(enc.PublicKey().Bytes()), PCRs: hexPCRs(simPCRs())})
	}
	if err := r.write(dir); err != nil {
		t.Fatal(err)
	}
}

// A directory holding a devnet of 3 cosigners runs with 3 (the default
// when Parties is 0) and refuses any other number.
func TestPrepareKeepsTheRoster(t *testing.T) {
	dir := t.TempDir()
	fakeRoster(t, dir, 3)
	if _, err := prepare(Config{Dir: dir, Parties: 2}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "holds a devnet") {
		t.Errorf("2 parties on a devnet of 3: %v", err)
	}
	// With no binaries to find, prepare gets as far as looking for them.
	_, err := prepare(Config{Dir: dir, BinDir: t.TempDir()})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "cosigner-parent") {
		t.Errorf("default parties on a devnet of 3: %v", err)
	}
}

func TestContextKey(t *testing.T) {
	if contextKeyCosigner != kms.ContextKeyCosigner {
		t.Fatalf("contextKeyCosigner = %q, enclave/kms uses %q", contextKeyCosigner, kms.ContextKeyCosigner)
	}
}
