package kmsemu

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
)

// fuzzTargets are the operations FuzzServeHTTP sends bodies to.
var fuzzTargets = []string{"CreateKey", "Decrypt", "Encrypt", "GenerateDataKey", "GenerateRandom", "Nope"}

// FuzzServeHTTP sends arbitrary bodies to every operation of an emulator
// that has a key and trusts a simulated CA. The handler must never panic
// (its recover would answer 500) and must always answer a success or the
// AWS error shape.
func FuzzServeHTTP(f *testing.F) {
	ca, err := attestsim.NewCA()
	if err != nil {
		f.Fatal(err)
	}
	emu := New(Options{Roots: ca.Roots(), Now: func() time.Time { return t0 }})
	resp, aerr := emu.createKey([]byte(`{}`))
	if aerr != nil {
		f.Fatal(aerr)
	}
	keyID := resp.(createKeyResponse).KeyMetadata.KeyID
	doc, err := ca.Attest(attestsim.Request{PCRs: map[int][]byte{0: pcrGood}, Time: t0,
		PublicKey: mustSPKI(f)})
	if err != nil {
		f.Fatal(err)
	}
	blob := encryptForFuzz(f, emu, keyID)
	rcp := `"Recipient":{"KeyEncryptionAlgorithm":"RSAES_OAEP_SHA_256","AttestationDocument":"` +
		base64.StdEncoding.EncodeToString(doc) + `"}`
	for i, body := range []string{
		`{"Policy":` + jsonString(defaultPolicy) + `}`,
		`{"CiphertextBlob":"` + blob + `",` + rcp + `}`,
		`{"KeyId":"` + keyID + `","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}`,
		`{"KeyId":"` + keyID + `","KeySpec":"AES_256",` + rcp + `}`,
		`{"NumberOfBytes":32,` + rcp + `}`,
		`{}`,
	} {
		f.Add(uint8(i), []byte(body))
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		req := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
		req.Header.Set("X-Amz-Target", targetPrefix+fuzzTargets[int(op)%len(fuzzTargets)])
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		emu.ServeHTTP(rec, req)
		if rec.Code == http.StatusInternalServerError {
			t.Fatalf("500 for body %q", body)
		}
		if rec.Code != http.StatusOK {
			var shape struct {
				Type string `json:"__type"`
			}
			if json.Unmarshal(rec.Body.Bytes(), &shape) != nil || shape.Type == "" {
				t.Fatalf("status %d without the AWS error shape", rec.Code)
			}
		}
	})
}

func mustSPKI(f *testing.F) []byte {
	b, err := x509.MarshalPKIXPublicKey(&enclaveKey().PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func encryptForFuzz(f *testing.F, emu *Emulator, keyID string) string {
	resp, aerr := emu.encrypt([]byte(`{"KeyId":"` + keyID + `","Plaintext":"aGVsbG8="}`))
	if aerr != nil {
		f.Fatal(aerr)
	}
	return base64.StdEncoding.EncodeToString(resp.(encryptResponse).CiphertextBlob)
}
