package wire

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

func TestKeysRedact(t *testing.T) {
	ik, err := GenerateIdentityKey()
	if err != nil {
		t.Fatal(err)
	}
	ek, err := GenerateEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	secrets := [][]byte{ik.Seed().Reveal(), ik.priv, ek.Bytes().Reveal()}
	var logged bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logged, nil))
	logger.Info("keys", "identity", ik, "encryption", ek)
	for _, k := range []any{ik, ek, *ik, *ek} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			out := fmt.Sprintf(verb, k)
			checkRedacted(t, verb+" of "+fmt.Sprintf("%T", k), out, secrets)
		}
	}
	checkRedacted(t, "slog", logged.String(), secrets)
}

func TestSignerAndReceiverRedact(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	alice := c.p("alice")
	secrets := [][]byte{alice.identity.Seed().Reveal(), alice.enc.Bytes().Reveal()}
	for _, v := range []any{alice.signer, alice.recv} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d"} {
			out := fmt.Sprintf(verb, v)
			if !strings.Contains(out, "alice") {
				t.Errorf("%s of %T = %q", verb, v, out)
			}
			for _, s := range secrets {
				if strings.Contains(out, hex.EncodeToString(s[:8])) || strings.Contains(out, string(s[:8])) ||
					strings.Contains(out, strings.Trim(fmt.Sprint(s[:4]), "[]")) {
					t.Errorf("%s of %T shows key bytes", verb, v)
				}
			}
		}
	}
}

func checkRedacted(t *testing.T, what, out string, secrets [][]byte) {
	t.Helper()
	if !strings.Contains(out, redacted) {
		t.Errorf("%s: %q is not redacted", what, out)
	}
	for _, s := range secrets {
		if strings.Contains(strings.ToLower(out), hex.EncodeToString(s[:8])) || strings.Contains(out, string(s[:8])) {
			t.Errorf("%s: shows key bytes", what)
		}
	}
}

func TestKeysRoundTrip(t *testing.T) {
	ik, err := GenerateIdentityKey()
	if err != nil {
		t.Fatal(err)
	}
	ik2, err := IdentityKeyFromSeed(ik.Seed())
	if err != nil || !bytes.Equal(ik2.Public(), ik.Public()) {
		t.Fatalf("identity key from seed: %v", err)
	}
	ek, err := GenerateEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	ek2, err := EncryptionKeyFromBytes(ek.Bytes())
	if err != nil || !ek2.Public().Equal(ek.Public()) {
		t.Fatalf("encryption key from bytes: %v", err)
	}
	if _, err := IdentityKeyFromSeed(secret.New(make([]byte, 31))); err == nil {
		t.Error("IdentityKeyFromSeed accepted 31 bytes")
	}
	if _, err := EncryptionKeyFromBytes(secret.New(make([]byte, 33))); err == nil {
		t.Error("EncryptionKeyFromBytes accepted 33 bytes")
	}
}

func TestBindingUserData(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	enc := bytes.Repeat([]byte{9}, 32)
	a := BindingUserData("alice", key, enc)
	if len(a) != 32 || !bytes.Equal(a, BindingUserData("alice", key, enc)) {
		t.Fatal("not a deterministic SHA-256")
	}
	// Each input changes the binding, and moving bytes between inputs does
	// too (the length prefixes).
	for name, b := range map[string][]byte{
		"other ID":         BindingUserData("alicf", key, enc),
		"other key":        BindingUserData("alice", enc, enc),
		"no extra":         BindingUserData("alice", key),
		"bytes moved":      BindingUserData("alice\x07", key[1:], enc),
		"extra split":      BindingUserData("alice", key, enc[:16], enc[16:]),
		"extra into key":   BindingUserData("alice", append(bytes.Clone(key), enc...)),
		"ID and key swaps": BindingUserData(string(key), []byte("alice"), enc),
	} {
		if bytes.Equal(a, b) {
			t.Errorf("%s: same binding", name)
		}
	}
	// A vector computed outside Go (Python hashlib and struct.pack(">I")),
	// so that the format cannot change unnoticed.
	const want = "46c0f73675db6bc38f436eea8f3db149880bd37674bb18d577fee99a42993eeb"
	if got := hex.EncodeToString(a); got != want {
		t.Errorf("BindingUserData = %s, want %s", got, want)
	}
}
