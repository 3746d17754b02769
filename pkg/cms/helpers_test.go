package cms

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// testKeys holds RSA keys generated once per test binary: generating
// 2048-bit keys is slow and the tests only need a few.
var testKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// enclaverKey returns the published recipient key of the enclaver vector.
func enclaverKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode(readTestdata(t, "enclaver/recipient_rsa2048_pkcs8.pem"))
	if block == nil {
		t.Fatal("no PEM block in the enclaver key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

// builder assembles an EnvelopedData field by field so tests can swap any
// part for a wrong one. Its zero value plus valid() is the KMS shape.
type builder struct {
	outerOID, envVersion, ktriVersion, rid, algID, encKey []byte
	contentType, contentAlg, content                      []byte
	extraRecipients, extraEnvFields, trailing             []byte
}

func (b builder) valid(ed *EnvelopedData) builder {
	b.outerOID = tlv(idOID, oidEnvelopedData)
	b.envVersion = tlv(idInteger, []byte{2})
	b.ktriVersion = tlv(idInteger, []byte{2})
	b.rid = tlv(idContext0, ed.RecipientSKI)
	b.algID = oaepSHA256AlgID
	b.encKey = tlv(idOctetString, ed.EncryptedKey)
	b.contentType = tlv(idOID, oidData)
	b.contentAlg = tlv(idSequence, concat(tlv(idOID, oidAES256CBC), tlv(idOctetString, ed.IV)))
	b.content = indefinite(idContext0C, chunks(ed.EncryptedContent)...)
	return b
}

func (b builder) build() []byte {
	ktri := tlv(idSequence, concat(b.ktriVersion, b.rid, b.algID, b.encKey))
	eci := indefinite(idSequence, b.contentType, b.contentAlg, b.content)
	env := indefinite(idSequence, b.envVersion,
		tlv(idSet, concat(ktri, b.extraRecipients)), eci, b.extraEnvFields)
	return concat(indefinite(idSequence, b.outerOID, indefinite(idContext0C, env)), b.trailing)
}

func rsaEncrypt(pub *rsa.PublicKey, msg []byte) ([]byte, error) {
	return rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, msg, nil)
}

// rawCBC encrypts b (a multiple of 16 bytes) with AES-256-CBC and no
// padding, to build messages whose padding is wrong on purpose.
func rawCBC(key, iv, b []byte) []byte {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	out := make([]byte, len(b))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, b)
	return out
}
