//go:build !release

package app

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/kmsemu"
)

const testRole = "arn:aws:iam::123456789012:role/cosigner-parent"

var (
	pcrRelease = bytes.Repeat([]byte{0xab}, 48)
	pcrOther   = bytes.Repeat([]byte{0xcd}, 48)
	pcrSigner  = bytes.Repeat([]byte{0x88}, 48)
)

// kmsPolicy runs kms-policy and returns the policy it prints.
func kmsPolicy(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runCtl(append([]string{"kms-policy"}, args...)...)
	if code != ExitOK {
		t.Fatalf("kms-policy exited %d: %s", code, errOut)
	}
	if !json.Valid([]byte(out)) {
		t.Fatalf("kms-policy printed no JSON:\n%s", out)
	}
	return out
}

// emu is a KMS emulator trusting a simulated attestation CA.
type emu struct {
	t   *testing.T
	ca  *attestsim.CA
	url string
}

func newEmu(t *testing.T) *emu {
	ca, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(kmsemu.New(kmsemu.Options{Roots: ca.Roots()}))
	t.Cleanup(srv.Close)
	return &emu{t: t, ca: ca, url: srv.URL}
}

func (e *emu) sdk() *awskms.Client {
	hc := kms.NewHTTPClient((&net.Dialer{}).DialContext)
	e.t.Cleanup(hc.CloseIdleConnections)
	return awskms.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "test-secret", ""),
		HTTPClient:  hc,
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *awskms.Options) { o.BaseEndpoint = aws.String(e.url) })
}

// createKey creates a key under policy; the emulator refuses a policy it
// cannot evaluate exactly.
func (e *emu) createKey(policy string) string {
	e.t.Helper()
	out, err := e.sdk().CreateKey(context.Background(), &awskms.CreateKeyInput{Policy: aws.String(policy)})
	if err != nil {
		e.t.Fatalf("the emulator refuses the policy: %v", err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

// enclave is the enclave/kms client of a simulated enclave with PCR0 and
// PCR8 (nil: none), for cosignerID.
func (e *emu) enclave(keyID, cosignerID string, pcr0, pcr8 []byte) *kms.Client {
	e.t.Helper()
	pcrs := map[int][]byte{0: pcr0, 1: bytes.Repeat([]byte{1}, 48), 2: bytes.Repeat([]byte{2}, 48)}
	if pcr8 != nil {
		pcrs[8] = pcr8
	}
	sim, err := nsm.NewSimulator(e.ca, attestsim.DefaultModuleID, pcrs)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := kms.New(kms.Config{KMS: e.sdk(), Attester: sim, KeyID: keyID, CosignerID: cosignerID})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// TestKMSPolicyInEmulator checks the printed policy in the KMS emulator's
// policy engine, through the enclave's own KMS client: the release image
// gets and unwraps its data key; another image, another cosigner's
// context and a request without attestation do not.
func TestKMSPolicyInEmulator(t *testing.T) {
	ctx := context.Background()
	e := newEmu(t)
	key := e.createKey(kmsPolicy(t, "--pcr0", hex.EncodeToString(pcrRelease), "--role-arn", testRole, "--cosigner-id", "alice"))

	good := e.enclave(key, "alice", pcrRelease, nil)
	dataKey, wrapped, err := good.GenerateDataKey(ctx)
	if err != nil {
		t.Fatalf("the release image cannot generate its data key: %v", err)
	}
	again, err := good.Decrypt(ctx, wrapped)
	if err != nil {
		t.Fatalf("the release image cannot unwrap its data key: %v", err)
	}
	if !dataKey.Equal(again) {
		t.Fatal("Decrypt returned another key")
	}

	for name, c := range map[string]*kms.Client{
		"another image":            e.enclave(key, "alice", pcrOther, nil),
		"another cosigner's image": e.enclave(key, "bob", pcrRelease, nil),
	} {
		if _, err := c.Decrypt(ctx, wrapped); !errors.Is(err, kms.ErrNotAllowed) {
			t.Errorf("%s: Decrypt error %v, want ErrNotAllowed", name, err)
		}
		if _, _, err := c.GenerateDataKey(ctx); !errors.Is(err, kms.ErrNotAllowed) {
			t.Errorf("%s: GenerateDataKey error %v, want ErrNotAllowed", name, err)
		}
	}
	if err := plainDecrypt(e, key, wrapped, "alice"); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("Decrypt without Recipient: %v, want AccessDeniedException", err)
	}
}

// TestKMSPolicyPCR8 checks the signer binding: with --pcr8 an image of the
// right PCR0 but another signer (or none) is refused.
func TestKMSPolicyPCR8(t *testing.T) {
	ctx := context.Background()
	e := newEmu(t)
	key := e.createKey(kmsPolicy(t, "--pcr0", hex.EncodeToString(pcrRelease),
		"--pcr8", strings.ToUpper(hex.EncodeToString(pcrSigner)), "--role-arn", testRole, "--cosigner-id", "alice"))
	if _, _, err := e.enclave(key, "alice", pcrRelease, pcrSigner).GenerateDataKey(ctx); err != nil {
		t.Fatalf("the signed release image: %v", err)
	}
	for name, pcr8 := range map[string][]byte{"another signer": pcrOther, "unsigned": nil} {
		if _, _, err := e.enclave(key, "alice", pcrRelease, pcr8).GenerateDataKey(ctx); !errors.Is(err, kms.ErrNotAllowed) {
			t.Errorf("%s: %v, want ErrNotAllowed", name, err)
		}
	}
}

// TestKMSPolicyUpgrade allows two images during an upgrade, and no third.
func TestKMSPolicyUpgrade(t *testing.T) {
	ctx := context.Background()
	e := newEmu(t)
	third := bytes.Repeat([]byte{0xef}, 48)
	key := e.createKey(kmsPolicy(t, "--pcr0", hex.EncodeToString(pcrRelease), "--pcr0", hex.EncodeToString(pcrOther),
		"--role-arn", testRole, "--cosigner-id", "alice"))
	for _, pcr0 := range [][]byte{pcrRelease, pcrOther} {
		if _, _, err := e.enclave(key, "alice", pcr0, nil).GenerateDataKey(ctx); err != nil {
			t.Errorf("PCR0 %x…: %v", pcr0[:2], err)
		}
	}
	if _, _, err := e.enclave(key, "alice", third, nil).GenerateDataKey(ctx); !errors.Is(err, kms.ErrNotAllowed) {
		t.Errorf("a third image: %v, want ErrNotAllowed", err)
	}
}

// TestKMSPolicyDenyHoldsAgainstExtraAllow adds the mistake the warning
// describes, a statement allowing kms:Decrypt to everyone, and checks that
// the Deny statements still refuse a Decrypt without attestation and one
// from another image.
func TestKMSPolicyDenyHoldsAgainstExtraAllow(t *testing.T) {
	ctx := context.Background()
	e := newEmu(t)
	var policy map[string]any
	if err := json.Unmarshal([]byte(kmsPolicy(t, "--pcr0", hex.EncodeToString(pcrRelease), "--role-arn", testRole, "--cosigner-id", "alice")), &policy); err != nil {
		t.Fatal(err)
	}
	policy["Statement"] = append(policy["Statement"].([]any), map[string]any{
		"Sid": "Mistake", "Effect": "Allow", "Principal": map[string]any{"AWS": "*"}, "Action": "kms:*", "Resource": "*"})
	b, _ := json.Marshal(policy)
	key := e.createKey(string(b))
	_, wrapped, err := e.enclave(key, "alice", pcrRelease, nil).GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := plainDecrypt(e, key, wrapped, "alice"); err == nil || !strings.Contains(err.Error(), "explicit deny") {
		t.Errorf("Decrypt without Recipient: %v, want an explicit deny", err)
	}
	if _, err := e.enclave(key, "alice", pcrOther, nil).Decrypt(ctx, wrapped); !errors.Is(err, kms.ErrNotAllowed) {
		t.Errorf("another image: %v, want ErrNotAllowed", err)
	}
}

// TestKMSPolicyAllowAloneBinds removes the Deny statements and checks that
// the Allow statement binds on its own: each layer holds by itself.
func TestKMSPolicyAllowAloneBinds(t *testing.T) {
	ctx := context.Background()
	e := newEmu(t)
	var policy map[string]any
	if err := json.Unmarshal([]byte(kmsPolicy(t, "--pcr0", hex.EncodeToString(pcrRelease), "--pcr8", hex.EncodeToString(pcrSigner),
		"--role-arn", testRole, "--cosigner-id", "alice")), &policy); err != nil {
		t.Fatal(err)
	}
	var allows []any
	for _, st := range policy["Statement"].([]any) {
		if st.(map[string]any)["Effect"] == "Allow" {
			allows = append(allows, st)
		}
	}
	policy["Statement"] = allows
	b, _ := json.Marshal(policy)
	key := e.createKey(string(b))
	_, wrapped, err := e.enclave(key, "alice", pcrRelease, pcrSigner).GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*kms.Client{
		"another image":    e.enclave(key, "alice", pcrOther, pcrSigner),
		"another signer":   e.enclave(key, "alice", pcrRelease, pcrOther),
		"another cosigner": e.enclave(key, "bob", pcrRelease, pcrSigner),
	} {
		if _, err := c.Decrypt(ctx, wrapped); !errors.Is(err, kms.ErrNotAllowed) {
			t.Errorf("%s: %v, want ErrNotAllowed", name, err)
		}
	}
	if err := plainDecrypt(e, key, wrapped, "alice"); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("Decrypt without Recipient: %v, want AccessDeniedException", err)
	}
}

// plainDecrypt is what the parent host could try with the role's
// credentials: Decrypt without a Recipient, which would return the data
// key in the clear.
func plainDecrypt(e *emu, keyID string, wrapped []byte, cosignerID string) error {
	_, err := e.sdk().Decrypt(context.Background(), &awskms.DecryptInput{
		KeyId: aws.String(keyID), CiphertextBlob: wrapped,
		EncryptionContext: map[string]string{kms.ContextKeyCosigner: cosignerID, kms.ContextKeyPurpose: kms.PurposeSealedState},
	})
	return err
}

// TestKMSPolicyUsage checks that bad input is a usage error (2) naming the
// problem, and prints no policy.
func TestKMSPolicyUsage(t *testing.T) {
	pcr := hex.EncodeToString(pcrRelease)
	zero := strings.Repeat("00", 48)
	ok := []string{"--pcr0", pcr, "--role-arn", testRole, "--cosigner-id", "alice"}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no pcr0":        {[]string{"--role-arn", testRole, "--cosigner-id", "alice"}, "--pcr0 is required"},
		"short pcr0":     {[]string{"--pcr0", pcr[:94], "--role-arn", testRole, "--cosigner-id", "alice"}, "96 hex digits"},
		"not hex":        {[]string{"--pcr0", strings.Repeat("zz", 48), "--role-arn", testRole, "--cosigner-id", "alice"}, "96 hex digits"},
		"zero pcr0":      {[]string{"--pcr0", zero, "--role-arn", testRole, "--cosigner-id", "alice"}, "debug-mode"},
		"zero pcr8":      {append([]string{"--pcr8", zero}, ok...), "debug-mode"},
		"no role":        {[]string{"--pcr0", pcr, "--cosigner-id", "alice"}, "not an IAM role ARN"},
		"user arn":       {[]string{"--pcr0", pcr, "--role-arn", "arn:aws:iam::123456789012:user/bob", "--cosigner-id", "alice"}, "not an IAM role ARN"},
		"short account":  {[]string{"--pcr0", pcr, "--role-arn", "arn:aws:iam::12345:role/x", "--cosigner-id", "alice"}, "not an IAM role ARN"},
		"wildcard role":  {[]string{"--pcr0", pcr, "--role-arn", "arn:aws:iam::123456789012:role/*", "--cosigner-id", "alice"}, "not an IAM role ARN"},
		"assumed role":   {[]string{"--pcr0", pcr, "--role-arn", "arn:aws:sts::123456789012:assumed-role/x/i-0abc", "--cosigner-id", "alice"}, "not an assumed-role session"},
		"no cosigner":    {[]string{"--pcr0", pcr, "--role-arn", testRole}, "--cosigner-id must be"},
		"bad cosigner":   {[]string{"--pcr0", pcr, "--role-arn", testRole, "--cosigner-id", "al ice"}, "--cosigner-id must be"},
		"stray argument": {append(ok, "extra"), "want 0 argument"},
		"five pcr0s":     {append([]string{"--pcr0", pcr, "--pcr0", pcr, "--pcr0", pcr, "--pcr0", pcr}, ok...), "at most 4"},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCtl(append([]string{"kms-policy"}, c.args...)...)
			if code != ExitUsage || out != "" || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and %q", code, out, errOut, c.want)
			}
		})
	}
}

// TestKMSPolicyPartitions derives the administration principal from the
// role's partition and account.
func TestKMSPolicyPartitions(t *testing.T) {
	out := kmsPolicy(t, "--pcr0", hex.EncodeToString(pcrRelease), "--role-arn", "arn:aws-cn:iam::210987654321:role/a/b/parent", "--cosigner-id", "c1")
	if !strings.Contains(out, `"AWS": "arn:aws-cn:iam::210987654321:root"`) {
		t.Fatalf("no aws-cn root principal in\n%s", out)
	}
}
