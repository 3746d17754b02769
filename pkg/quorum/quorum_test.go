package quorum

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// The message is part of the approval format: it must never change for a
// given document.
func TestPolicyMessageIsStable(t *testing.T) {
	got := PolicyMessage([]byte(`{"version":1}`))
	want, _ := hex.DecodeString("6e6974726f2d636f7369676e65722f706f6c6963792d617070726f76616c2f763100")
	if !bytes.HasPrefix(got, want) || len(got) != len(want)+32 {
		t.Fatalf("message %x", got)
	}
	if bytes.Equal(PolicyMessage([]byte("a")), PolicyMessage([]byte("b"))) {
		t.Fatal("different documents, same message")
	}
}
