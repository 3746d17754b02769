package kmsemu

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// rawRequest sends body to the emulator's handler directly and returns the
// status and the decoded error shape (zero for a success).
func rawRequest(t *testing.T, emu *Emulator, method, target, ctype string, body []byte) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, "/", bytes.NewReader(body))
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	emu.ServeHTTP(rec, req)
	if got := rec.Header().Get("Content-Type"); got != contentType {
		t.Errorf("response Content-Type = %q", got)
	}
	if rec.Code == http.StatusOK {
		return rec.Code, ""
	}
	var shape struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &shape); err != nil || shape.Type == "" || shape.Message == "" {
		t.Fatalf("error body %q is not the AWS error shape", rec.Body.String())
	}
	if rec.Header().Get("X-Amzn-ErrorType") != shape.Type {
		t.Errorf("X-Amzn-ErrorType %q differs from __type %q", rec.Header().Get("X-Amzn-ErrorType"), shape.Type)
	}
	return rec.Code, shape.Type
}

func TestProtocolErrors(t *testing.T) {
	t.Parallel()
	emu := New(Options{})
	const target = "TrentService.GenerateRandom"
	huge := []byte(`{"NumberOfBytes":1,"CustomKeyStoreId":"` + strings.Repeat("a", MaxBodySize) + `"}`)
	for _, tc := range []struct {
		name, method, target, ctype string
		body                        []byte
		status                      int
		code                        string
	}{
		{"ok", "POST", target, contentType, []byte(`{"NumberOfBytes":8}`), 200, ""},
		{"malformed JSON", "POST", target, contentType, []byte(`{"NumberOfBytes":`), 400, codeSerialization},
		{"not an object", "POST", target, contentType, []byte(`[1,2]`), 400, codeSerialization},
		{"wrong type", "POST", target, contentType, []byte(`{"NumberOfBytes":"8"}`), 400, codeSerialization},
		{"unknown field", "POST", target, contentType, []byte(`{"NumberOfBytes":8,"Bogus":1}`), 400, codeSerialization},
		{"trailing data", "POST", target, contentType, []byte(`{"NumberOfBytes":8} {}`), 400, codeSerialization},
		{"empty body", "POST", target, contentType, nil, 400, codeSerialization},
		{"bad base64", "POST", "TrentService.Decrypt", contentType, []byte(`{"CiphertextBlob":"!!"}`), 400, codeSerialization},
		{"unknown target", "POST", "TrentService.ScheduleKeyDeletion", contentType, []byte(`{}`), 400, codeUnknownOperation},
		{"foreign service", "POST", "DynamoDB_20120810.GetItem", contentType, []byte(`{}`), 400, codeUnknownOperation},
		{"no target", "POST", "", contentType, []byte(`{}`), 400, codeUnknownOperation},
		{"wrong content type", "POST", target, "application/json", []byte(`{"NumberOfBytes":8}`), 400, codeSerialization},
		{"GET", "GET", target, contentType, nil, 404, codeUnknownOperation},
		{"oversized body", "POST", target, contentType, huge, 413, codeTooLarge},
		{"missing NumberOfBytes", "POST", target, contentType, []byte(`{}`), 400, codeValidation},
		{"unknown key", "POST", "TrentService.Encrypt", contentType, []byte(`{"KeyId":"nope","Plaintext":"eA=="}`), 400, codeNotFound},
		{"blob of junk", "POST", "TrentService.Decrypt", contentType, []byte(`{"CiphertextBlob":"eA=="}`), 400, codeInvalidCiphertext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code := rawRequest(t, emu, tc.method, tc.target, tc.ctype, tc.body)
			if status != tc.status || code != tc.code {
				t.Fatalf("got %d %q, want %d %q", status, code, tc.status, tc.code)
			}
		})
	}
}

// TestSDKSeesTypedErrors: the SDK maps the emulator's error shape onto
// its modelled exception types.
func TestSDKSeesTypedErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.client.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: []byte("junk")})
	var invalid *types.InvalidCiphertextException
	if !errors.As(err, &invalid) {
		t.Fatalf("Decrypt error %v is not *types.InvalidCiphertextException", err)
	}
	_, err = e.client.Encrypt(bg, &kms.EncryptInput{KeyId: aws.String("nope"), Plaintext: []byte("x")})
	var nf *types.NotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("Encrypt error %v is not *types.NotFoundException", err)
	}
}

func TestStatePersistence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "kms-state.json")
	if _, err := Open("", Options{}); err == nil {
		t.Fatal("Open without a state file succeeded")
	}
	first, err := Open(path, Options{Now: e.clock.Now, Roots: e.ca.Roots()})
	if err != nil {
		t.Fatal(err)
	}
	e.serve(first)
	keyID := e.createKey(pcrPolicy("StringEqualsIgnoreCase", "kms:RecipientAttestation:ImageSha384", upperHex(pcrGood)))
	enc, err := e.client.Encrypt(bg, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("kept"),
		EncryptionContext: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	checkStateFile(t, path)

	second, err := Open(path, Options{Now: e.clock.Now, Roots: e.ca.Roots()})
	if err != nil {
		t.Fatal(err)
	}
	e.serve(second)
	if _, err := e.client.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob,
		EncryptionContext: map[string]string{"a": "b"}}); err == nil {
		t.Fatal("the reloaded policy no longer requires the attestation")
	}
	dec, err := e.client.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob,
		EncryptionContext: map[string]string{"a": "b"}, Recipient: recipientFor(e.attest(pcrGood))})
	if err != nil {
		t.Fatalf("Decrypt after reopening: %v", err)
	}
	if dec.CiphertextForRecipient == nil {
		t.Fatal("no CiphertextForRecipient after reopening")
	}
}

func checkStateFile(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("state directory holds %d entries, want only the state file", len(entries))
	}
}

func TestOpenRefusesBadState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not JSON":      `{`,
		"wrong version": `{"Version":9,"Keys":[]}`,
		"short key":     `{"Version":1,"Keys":[{"ID":"k","Policy":` + jsonString(defaultPolicy) + `,"Material":"` + base64.StdEncoding.EncodeToString(make([]byte, 16)) + `"}]}`,
		"bad policy":    `{"Version":1,"Keys":[{"ID":"k","Policy":"{}","Material":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}]}`,
		"bad key ID":    `{"Version":1,"Keys":[{"ID":"a/b","Policy":` + jsonString(defaultPolicy) + `,"Material":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}]}`,
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path, Options{}); err == nil {
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

func TestServeStopsWithContext(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(Options{}).Serve(ctx, l) }()
	client := kms.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: newClientCreds(),
		Retryer: func() aws.Retryer { return aws.NopRetryer{} }},
		func(o *kms.Options) { o.BaseEndpoint = aws.String("http://" + l.Addr().String()) })
	if _, err := client.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(4)}); err != nil {
		t.Fatalf("GenerateRandom over Serve: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
