package kmsemu

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
)

func TestWildcardMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"kms:*", "kms:decrypt", true},
		{"*", "kms:decrypt", true},
		{"kms:decrypt", "kms:decrypt", true},
		{"kms:decrypt", "kms:decrypts", false},
		{"kms:generatedatakey*", "kms:generatedatakey", true},
		{"kms:generatedatakey*", "kms:generatedatakeypair", true},
		{"kms:generatedatakey*", "kms:decrypt", false},
		{"kms:?ecrypt", "kms:decrypt", true},
		{"kms:?ecrypt", "kms:encrypt", false},
		{"kms:*crypt", "kms:decrypt", true},
		{"kms:*crypt", "kms:decryptx", false},
		{"*:*", "kms:decrypt", true},
		{"", "kms:decrypt", false},
		{"s3:*", "kms:decrypt", false},
	} {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
}

// TestConditionSemantics checks IAM's rules for absent keys and negated
// operators.
func TestConditionSemantics(t *testing.T) {
	t.Parallel()
	rc := requestContext{"kms:recipientattestation:pcr0": "abcd", "kms:encryptioncontext:Name": "v"}
	for _, tc := range []struct {
		op, key string
		values  []string
		want    bool
	}{
		{"StringEquals", "kms:RecipientAttestation:PCR0", []string{"abcd"}, true},
		{"StringEquals", "kms:RecipientAttestation:PCR0", []string{"ABCD"}, false},
		{"StringEquals", "kms:RecipientAttestation:PCR0", []string{"x", "abcd"}, true},
		{"StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR0", []string{"ABCD"}, true},
		{"StringNotEquals", "kms:RecipientAttestation:PCR0", []string{"abcd"}, false},
		{"StringNotEquals", "kms:RecipientAttestation:PCR0", []string{"x"}, true},
		{"StringNotEqualsIgnoreCase", "kms:RecipientAttestation:PCR0", []string{"ABCD"}, false},
		{"StringEquals", "kms:RecipientAttestation:PCR1", []string{"abcd"}, false}, // absent
		{"StringNotEquals", "kms:RecipientAttestation:PCR1", []string{"abcd"}, true},
		{"StringEquals", "KMS:ENCRYPTIONCONTEXT:Name", []string{"v"}, true},
		{"StringEquals", "kms:EncryptionContext:name", []string{"v"}, false}, // context key is case-sensitive
	} {
		c := condition{op: operators[tc.op], key: canonicalKey(tc.key), values: tc.values}
		if got := c.holds(rc); got != tc.want {
			t.Errorf("%s %s %v: holds = %v", tc.op, tc.key, tc.values, got)
		}
	}
}

func TestPolicyStatementForms(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		`{"Statement":{"Effect":"Allow","Action":"kms:Decrypt"}}`,
		`{"Version":"2012-10-17","Id":"p","Statement":[{"Sid":"a","Effect":"Allow","Action":["kms:Decrypt"],"Principal":"*","Resource":"*"}]}`,
	} {
		p, aerr := parsePolicy(doc)
		if aerr != nil {
			t.Fatalf("%s: %v", doc, aerr)
		}
		if err := p.authorize("kms:Decrypt", requestContext{}); err != nil {
			t.Errorf("%s: Decrypt denied: %v", doc, err)
		}
		if err := p.authorize("kms:Encrypt", requestContext{}); err == nil {
			t.Errorf("%s: Encrypt allowed", doc)
		}
	}
}

// FuzzPolicy checks that parsing and evaluating any policy never panics.
func FuzzPolicy(f *testing.F) {
	f.Add(defaultPolicy)
	f.Add(pcrPolicy("StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR0", "ab"))
	f.Add(`{"Statement":{"Effect":"Deny","Action":"kms:*","Condition":{"StringNotEquals":{"kms:EncryptionContext:a":["b","c"]}}}}`)
	rc := requestContext{"kms:recipientattestation:pcr0": "ab", "kms:encryptioncontext:a": "b"}
	f.Fuzz(func(t *testing.T, doc string) {
		p, aerr := parsePolicy(doc)
		if aerr != nil {
			if aerr.code != codeMalformedPolicy {
				t.Fatalf("parse error code %s", aerr.code)
			}
			return
		}
		_ = p.authorize("kms:Decrypt", rc)
	})
}

func TestKeyRedactsItself(t *testing.T) {
	t.Parallel()
	k, err := newKMSKey("id-1", t0, "", defaultPolicy, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("key", "k", k)
	material := hex.EncodeToString(k.material.Reveal())
	for _, s := range []string{fmt.Sprintf("%v", k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), fmt.Sprintf("%x", k), logs.String()} {
		if !strings.Contains(s, "kmsKey(id-1)") || strings.Contains(s, material) || strings.Contains(s, "aead") {
			t.Errorf("key prints as %q", s)
		}
	}
}
