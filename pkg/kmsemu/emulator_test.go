package kmsemu

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/cms"
)

var bg = context.Background()

// TestDataKeyForRecipient is the enclave's boot path: GenerateDataKey with
// Recipient returns CMS that the enclave key opens, and a later Decrypt
// with Recipient of the stored blob yields the same data key.
func TestDataKeyForRecipient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey(pcrPolicy("StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR0", upperHex(pcrGood)))
	ctx := map[string]string{"cosigner": "c1"}

	gen, err := e.client.GenerateDataKey(bg, &kms.GenerateDataKeyInput{
		KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256,
		EncryptionContext: ctx, Recipient: recipientFor(e.attest(pcrGood)),
	})
	if err != nil {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	if gen.Plaintext != nil {
		t.Fatal("GenerateDataKey with Recipient returned Plaintext")
	}
	if !strings.HasSuffix(aws.ToString(gen.KeyId), ":key/"+keyID) {
		t.Fatalf("KeyId = %q, want the key's ARN", aws.ToString(gen.KeyId))
	}
	dataKey, err := cms.Decrypt(gen.CiphertextForRecipient, enclaveKey())
	if err != nil {
		t.Fatalf("cms.Decrypt of GenerateDataKey output: %v", err)
	}
	if len(dataKey) != 32 {
		t.Fatalf("data key is %d bytes, want 32", len(dataKey))
	}

	dec, err := e.client.Decrypt(bg, &kms.DecryptInput{
		CiphertextBlob: gen.CiphertextBlob, EncryptionContext: ctx,
		Recipient: recipientFor(e.attest(pcrGood)),
	})
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if dec.Plaintext != nil {
		t.Fatal("Decrypt with Recipient returned Plaintext")
	}
	again, err := cms.Decrypt(dec.CiphertextForRecipient, enclaveKey())
	if err != nil {
		t.Fatalf("cms.Decrypt of Decrypt output: %v", err)
	}
	if !bytes.Equal(again, dataKey) {
		t.Fatal("Decrypt with Recipient yielded another data key")
	}
}

func TestPCRPolicyDeniesOtherImage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey(pcrPolicy("StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR0", upperHex(pcrGood)))
	_, err := e.client.GenerateDataKey(bg, &kms.GenerateDataKeyInput{
		KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256,
		Recipient: recipientFor(e.attest(pcrOther)),
	})
	msg := wantCode(t, err, codeAccessDenied)
	for _, want := range []string{"kms:GenerateDataKey", "enclave", "kms:recipientattestation:pcr0"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not mention %q", msg, want)
		}
	}
}

func TestImageSha384Condition(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey(pcrPolicy("StringEqualsIgnoreCase", "kms:RecipientAttestation:ImageSha384", upperHex(pcrGood)))
	in := func(pcr0 []byte) *kms.GenerateDataKeyInput {
		return &kms.GenerateDataKeyInput{KeyId: aws.String(keyID), NumberOfBytes: aws.Int32(32),
			Recipient: recipientFor(e.attest(pcr0))}
	}
	if _, err := e.client.GenerateDataKey(bg, in(pcrGood)); err != nil {
		t.Fatalf("matching ImageSha384: %v", err)
	}
	_, err := e.client.GenerateDataKey(bg, in(pcrOther))
	wantCode(t, err, codeAccessDenied)
}

// TestStringEqualsIsCaseSensitive: the same upper-case hex under
// StringEquals does not match the lower-case PCR value.
func TestStringEqualsIsCaseSensitive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	upper := e.createKey(pcrPolicy("StringEquals", "kms:RecipientAttestation:PCR0", upperHex(pcrGood)))
	lower := e.createKey(pcrPolicy("StringEquals", "kms:recipientattestation:pcr0", hex.EncodeToString(pcrGood)))
	in := func(key string) *kms.GenerateDataKeyInput {
		return &kms.GenerateDataKeyInput{KeyId: aws.String(key), KeySpec: types.DataKeySpecAes128,
			Recipient: recipientFor(e.attest(pcrGood))}
	}
	_, err := e.client.GenerateDataKey(bg, in(upper))
	wantCode(t, err, codeAccessDenied)
	if _, err := e.client.GenerateDataKey(bg, in(lower)); err != nil {
		t.Fatalf("lower-case StringEquals: %v", err)
	}
}

func TestAttestationConditionNeedsRecipient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey(pcrPolicy("StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR0", upperHex(pcrGood)))
	_, err := e.client.GenerateDataKey(bg, &kms.GenerateDataKeyInput{
		KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256,
	})
	wantCode(t, err, codeAccessDenied)
	enc, err := e.client.Encrypt(bg, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("x")})
	if err != nil {
		t.Fatalf("Encrypt allowed by the admin statement: %v", err)
	}
	_, err = e.client.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	wantCode(t, err, codeAccessDenied)
}

func TestExplicitDenyWins(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey(`{"Statement":[
	  {"Effect":"Allow","Action":"kms:*","Resource":"*"},
	  {"Sid":"no-other-image","Effect":"Deny","Action":"kms:GenerateDataKey*","Resource":"*",
	   "Condition":{"StringEqualsIgnoreCase":{"kms:RecipientAttestation:ImageSha384":"` + hex.EncodeToString(pcrOther) + `"}}}]}`)
	in := func(pcr0 []byte) *kms.GenerateDataKeyInput {
		return &kms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256,
			Recipient: recipientFor(e.attest(pcr0))}
	}
	_, err := e.client.GenerateDataKey(bg, in(pcrOther))
	if msg := wantCode(t, err, codeAccessDenied); !strings.Contains(msg, "explicit deny") || !strings.Contains(msg, "no-other-image") {
		t.Errorf("message %q does not name the explicit deny", msg)
	}
	if _, err := e.client.GenerateDataKey(bg, in(pcrGood)); err != nil {
		t.Fatalf("other image: %v", err)
	}
}

func TestEncryptionContextCondition(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey(`{"Statement":{"Effect":"Allow","Action":["kms:GenerateDataKey","kms:Decrypt"],"Resource":"*",
	  "Condition":{"StringEquals":{"KMS:EncryptionContext:cosigner":"c1"}}}}`)
	gen := func(ctx map[string]string) error {
		_, err := e.client.GenerateDataKey(bg, &kms.GenerateDataKeyInput{
			KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256, EncryptionContext: ctx})
		return err
	}
	if err := gen(map[string]string{"cosigner": "c1", "other": "x"}); err != nil {
		t.Fatalf("matching context: %v", err)
	}
	for _, ctx := range []map[string]string{nil, {"cosigner": "c2"}, {"Cosigner": "c1"}, {"cosigner": "C1"}} {
		wantCode(t, gen(ctx), codeAccessDenied)
	}
}

func TestEncryptionContextBindsCiphertext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey("")
	ctx := map[string]string{"cosigner": "c1", "purpose": "db"}
	gen, err := e.client.GenerateDataKey(bg, &kms.GenerateDataKeyInput{
		KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256, EncryptionContext: ctx})
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []map[string]string{
		nil, {"cosigner": "c1"}, {"cosigner": "c2", "purpose": "db"},
		{"cosigner": "c1", "purpose": "db", "extra": ""}, {"cosigner": "c1purpose", "": "db"},
	} {
		_, err := e.client.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob, EncryptionContext: other})
		wantCode(t, err, codeInvalidCiphertext)
	}
	dec, err := e.client.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob, EncryptionContext: ctx})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dec.Plaintext, gen.Plaintext) {
		t.Fatal("Decrypt returned another data key")
	}
}

func TestUntrustedRootRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey("")
	other, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.client.GenerateDataKey(bg, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID),
		KeySpec: types.DataKeySpecAes256, Recipient: recipientFor(e.attestFrom(other, pcrGood))})
	if msg := wantCode(t, err, codeValidation); !strings.Contains(msg, "attestation") {
		t.Errorf("message %q does not mention the attestation document", msg)
	}
	// The default roots (AWS's) refuse simulated documents too.
	def := New(Options{Now: e.clock.Now})
	e.serve(def)
	keyID = e.createKey("")
	_, err = e.client.GenerateDataKey(bg, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID),
		KeySpec: types.DataKeySpecAes256, Recipient: recipientFor(e.attest(pcrGood))})
	wantCode(t, err, codeValidation)
}

func TestExpiredDocumentRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey("")
	doc := e.attest(pcrGood)
	gen := func() error {
		_, err := e.client.GenerateDataKey(bg, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID),
			KeySpec: types.DataKeySpecAes256, Recipient: recipientFor(doc)})
		return err
	}
	e.clock.add(2 * time.Hour)
	if err := gen(); err != nil {
		t.Fatalf("document within its leaf's life: %v", err)
	}
	e.clock.add(attestsim.LeafLifetime)
	wantCode(t, gen(), codeValidation)
	e.clock.set(t0.Add(-time.Hour)) // before the leaf is valid
	wantCode(t, gen(), codeValidation)
}

func TestMaxAttestationAge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.serve(New(Options{Roots: e.ca.Roots(), Now: e.clock.Now, MaxAttestationAge: 5 * time.Minute}))
	keyID := e.createKey("")
	doc := e.attest(pcrGood)
	e.clock.add(6 * time.Minute)
	_, err := e.client.GenerateDataKey(bg, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID),
		KeySpec: types.DataKeySpecAes256, Recipient: recipientFor(doc)})
	wantCode(t, err, codeValidation)
}

func TestRecipientRequirements(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey("")
	noKey, err := e.ca.Attest(attestsim.Request{PCRs: map[int][]byte{0: pcrGood}, Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := e.ca.Attest(attestsim.Request{PCRs: map[int][]byte{0: pcrGood}, Time: t0,
		PublicKey: bytes.Repeat([]byte{4}, 65)})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*types.RecipientInfo{
		"no public key":      recipientFor(noKey),
		"not an RSA SPKI":    recipientFor(ecKey),
		"no document":        {KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256},
		"other algorithm":    {KeyEncryptionAlgorithm: "RSAES_OAEP_SHA_1", AttestationDocument: e.attest(pcrGood)},
		"garbage document":   recipientFor([]byte("not a COSE_Sign1 document")),
		"no algorithm given": {AttestationDocument: e.attest(pcrGood)},
	} {
		_, err := e.client.GenerateDataKey(bg, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID),
			KeySpec: types.DataKeySpecAes256, Recipient: r})
		t.Run(name, func(t *testing.T) { wantCode(t, err, codeValidation) })
	}
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey("")
	other := e.createKey("")
	pt := []byte("database key wrapped under a KMS key")
	enc, err := e.client.Encrypt(bg, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: pt})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc.CiphertextBlob, pt) {
		t.Fatal("the ciphertext blob contains the plaintext")
	}
	dec, err := e.client.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: enc.KeyId})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dec.Plaintext, pt) || dec.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
		t.Fatalf("Decrypt = %q, %q", dec.Plaintext, dec.EncryptionAlgorithm)
	}
	_, err = e.client.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: aws.String(other)})
	wantCode(t, err, codeIncorrectKey)
	for i := range enc.CiphertextBlob {
		tampered := bytes.Clone(enc.CiphertextBlob)
		tampered[i] ^= 1
		if _, err := e.client.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: tampered}); err == nil {
			t.Fatalf("Decrypt accepted a blob altered at byte %d", i)
		}
	}
}

func TestGenerateRandom(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	plain, err := e.client.GenerateRandom(bg, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(48)})
	if err != nil || len(plain.Plaintext) != 48 || plain.CiphertextForRecipient != nil {
		t.Fatalf("GenerateRandom: %d bytes, %v", len(plain.Plaintext), err)
	}
	sealed, err := e.client.GenerateRandom(bg, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(32),
		Recipient: recipientFor(e.attest(pcrGood))})
	if err != nil || sealed.Plaintext != nil {
		t.Fatalf("GenerateRandom with Recipient: %v (plaintext %d bytes)", err, len(sealed.Plaintext))
	}
	got, err := cms.Decrypt(sealed.CiphertextForRecipient, enclaveKey())
	if err != nil || len(got) != 32 {
		t.Fatalf("cms.Decrypt: %d bytes, %v", len(got), err)
	}
	_, err = e.client.GenerateRandom(bg, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(1025)})
	wantCode(t, err, codeValidation)
}

func TestDataKeySizes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := aws.String(e.createKey(""))
	for _, tc := range []struct {
		in   kms.GenerateDataKeyInput
		size int
	}{
		{kms.GenerateDataKeyInput{KeyId: keyID, KeySpec: types.DataKeySpecAes256}, 32},
		{kms.GenerateDataKeyInput{KeyId: keyID, KeySpec: types.DataKeySpecAes128}, 16},
		{kms.GenerateDataKeyInput{KeyId: keyID, NumberOfBytes: aws.Int32(64)}, 64},
		{kms.GenerateDataKeyInput{KeyId: keyID}, 0},
		{kms.GenerateDataKeyInput{KeyId: keyID, KeySpec: types.DataKeySpecAes256, NumberOfBytes: aws.Int32(32)}, 0},
		{kms.GenerateDataKeyInput{KeyId: keyID, NumberOfBytes: aws.Int32(0)}, 0},
		{kms.GenerateDataKeyInput{KeyId: keyID, NumberOfBytes: aws.Int32(1025)}, 0},
		{kms.GenerateDataKeyInput{KeyId: keyID, KeySpec: "AES_512"}, 0},
	} {
		out, err := e.client.GenerateDataKey(bg, &tc.in)
		if tc.size == 0 {
			wantCode(t, err, codeValidation)
			continue
		}
		if err != nil || len(out.Plaintext) != tc.size {
			t.Fatalf("%+v: %v", tc.in, err)
		}
	}
}

func TestKeyLookup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey("")
	for _, id := range []string{keyID, e.emu.arn(keyID)} {
		if _, err := e.client.Encrypt(bg, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")}); err != nil {
			t.Fatalf("Encrypt with %q: %v", id, err)
		}
	}
	for _, id := range []string{"alias/cosigner", "00000000-0000-4000-8000-000000000000",
		"arn:aws:kms:eu-west-1:111122223333:key/" + keyID} {
		_, err := e.client.Encrypt(bg, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
		wantCode(t, err, codeNotFound)
	}
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey("")
	_, err := e.client.GenerateDataKey(bg, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID),
		KeySpec: types.DataKeySpecAes256, DryRun: aws.Bool(true)})
	wantCode(t, err, codeDryRun)
}

func TestCreateKeyRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for name, policy := range map[string]string{
		"not JSON":         `{"Statement":`,
		"no statement":     `{"Version":"2012-10-17"}`,
		"empty statements": `{"Statement":[]}`,
		"NotAction":        `{"Statement":[{"Effect":"Allow","NotAction":"kms:Decrypt","Resource":"*"}]}`,
		"bad effect":       `{"Statement":[{"Effect":"Maybe","Action":"kms:*"}]}`,
		"no action":        `{"Statement":[{"Effect":"Allow","Resource":"*"}]}`,
		"unknown operator": `{"Statement":[{"Effect":"Allow","Action":"kms:*","Condition":{"StringLike":{"kms:EncryptionContext:a":"b*"}}}]}`,
		"unknown field":    `{"Statement":[{"Effect":"Allow","Action":"kms:*","Actions":"kms:Decrypt"}]}`,
		"number value":     `{"Statement":[{"Effect":"Allow","Action":"kms:*","Condition":{"StringEquals":{"kms:EncryptionContext:a":1}}}]}`,
		"too large":        `{"Statement":[{"Effect":"Allow","Action":"kms:*","Sid":"` + strings.Repeat("x", maxPolicySize) + `"}]}`,
	} {
		_, err := e.client.CreateKey(bg, &kms.CreateKeyInput{Policy: aws.String(policy)})
		t.Run(name, func(t *testing.T) { wantCode(t, err, codeMalformedPolicy) })
	}
	_, err := e.client.CreateKey(bg, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048})
	wantCode(t, err, codeUnsupported)
	_, err = e.client.CreateKey(bg, &kms.CreateKeyInput{KeyUsage: types.KeyUsageTypeSignVerify})
	wantCode(t, err, codeUnsupported)
}

func TestCreateKeyMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out, err := e.client.CreateKey(bg, &kms.CreateKeyInput{Description: aws.String("db key")})
	if err != nil {
		t.Fatal(err)
	}
	m := out.KeyMetadata
	if aws.ToString(m.Arn) != e.emu.arn(aws.ToString(m.KeyId)) || !m.Enabled ||
		m.KeyState != types.KeyStateEnabled || m.KeySpec != types.KeySpecSymmetricDefault ||
		aws.ToString(m.Description) != "db key" || !aws.ToTime(m.CreationDate).Equal(t0) {
		t.Fatalf("unexpected metadata %+v", m)
	}
}

// TestNoSecretsInLogsOrErrors: the log never holds a data key, in base64
// or hex, nor the plaintext of an Encrypt.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keyID := e.createKey("")
	gen, err := e.client.GenerateDataKey(bg, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256})
	if err != nil {
		t.Fatal(err)
	}
	secretText := "very secret plaintext"
	if _, err := e.client.Encrypt(bg, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte(secretText)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob,
		EncryptionContext: map[string]string{"wrong": "context"}})
	msg := wantCode(t, err, codeInvalidCiphertext)
	logs := e.logs.String()
	if !strings.Contains(logs, "GenerateDataKey") {
		t.Fatal("no log records: the check below would be vacuous")
	}
	for _, s := range []string{base64.StdEncoding.EncodeToString(gen.Plaintext), hex.EncodeToString(gen.Plaintext), secretText} {
		if strings.Contains(logs, s) || strings.Contains(msg, s) {
			t.Fatalf("a secret appears in the logs or an error")
		}
	}
}
