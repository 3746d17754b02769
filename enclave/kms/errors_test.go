package kms

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
)

func TestKMSMessage(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	realMsg := "User: arn:aws:sts::111122223333:assumed-role/nitro-cosigner-enclave/i-0123456789abcdef0 " +
		"is not authorized to perform: kms:Decrypt on resource: " +
		"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab " +
		"because no resource-based policy allows the kms:Decrypt action"
	for _, tc := range []struct {
		name, msg, want string
	}{
		{"real KMS text", realMsg, `"` + realMsg + `"`},
		{"empty", "", "nothing"},
		{"control characters", "a\nb\x1b[31mc\u00e9", `"a?b?[31mc??"`},
		{"too long", strings.Repeat("word ", 200), `"` + strings.Repeat("word ", 200)[:maxMessageSize] + `..."`},
		{"base64 key", "your key is " + base64.StdEncoding.EncodeToString(key), "(message withheld: it holds what looks like encoded data)"},
		{"hex key", "key=" + hex.EncodeToString(key) + ".", "(message withheld: it holds what looks like encoded data)"},
	} {
		err := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: tc.msg}
		if got := kmsMessage(err); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
	if got := kmsMessage(errors.New("not from KMS: " + realMsg)); got != "nothing" {
		t.Errorf("a local error: got %s, want nothing", got)
	}
}
