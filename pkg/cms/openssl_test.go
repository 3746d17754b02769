package cms

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// These tests check interoperability with OpenSSL's CMS implementation in
// both directions. They skip only when the openssl binary is missing.

// opensslRecipient writes key and a self-signed certificate for it whose
// SubjectKeyIdentifier extension is SHA-256(SPKI), the rid KMS uses, so that
// openssl selects (and addresses) the recipient by that identifier.
func opensslRecipient(t *testing.T, key *rsa.PrivateKey) (keyPath, certPath string) {
	t.Helper()
	ski, err := SubjectKeyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cms test recipient"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		SubjectKeyId: ski,
		KeyUsage:     x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyPath, certPath = filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	writeFile(t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	writeFile(t, certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return keyPath, certPath
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func openssl(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
}

// TestOpenSSLDecryptsEncrypt: what Encrypt (and so the KMS emulator)
// produces, openssl cms -decrypt opens, selecting the recipient by SKI.
func TestOpenSSLDecryptsEncrypt(t *testing.T) {
	t.Parallel()
	key := testKeys()[0]
	keyPath, certPath := opensslRecipient(t, key)
	dir := t.TempDir()
	want := make([]byte, 32)
	rand.Read(want)
	ber, err := Encrypt(want, &key.PublicKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(dir, "out.der"), filepath.Join(dir, "plain.bin")
	writeFile(t, in, ber)
	openssl(t, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", in,
		"-inkey", keyPath, "-recip", certPath, "-out", out)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("openssl decrypted %x, want %x", got, want)
	}
}

// TestDecryptsOpenSSLEncrypt: openssl cms -encrypt with RSA-OAEP SHA-256
// and the certificate's SKI as rid, in DER and streamed BER, opens with
// Decrypt. OpenSSL writes the sha256 parameters absent, KMS writes NULL.
func TestDecryptsOpenSSLEncrypt(t *testing.T) {
	t.Parallel()
	key := testKeys()[1]
	_, certPath := opensslRecipient(t, key)
	dir := t.TempDir()
	want := bytes.Repeat([]byte("nitro-cosigner "), 200) // several chunks
	plain := filepath.Join(dir, "plain.bin")
	writeFile(t, plain, want)
	for _, mode := range []string{"-noindef", "-stream"} {
		out := filepath.Join(dir, "ct"+mode+".der")
		openssl(t, "cms", "-encrypt", mode, "-binary", "-aes-256-cbc", "-keyid",
			"-recip", certPath, "-keyopt", "rsa_padding_mode:oaep",
			"-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha256",
			"-outform", "DER", "-in", plain, "-out", out)
		ber, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decrypt(ber, key)
		if err != nil {
			t.Fatalf("%s: Decrypt: %v", mode, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: Decrypt returned different bytes", mode)
		}
	}
}
