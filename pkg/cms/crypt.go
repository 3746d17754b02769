package cms

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// minRSABits is the smallest recipient key Encrypt wraps to.
const minRSABits = 2048

// Decrypt parses ber (see Parse) and decrypts it with key. Structural
// failures wrap ErrMalformed. Every other failure is ErrDecrypt: the rid is
// not the SHA-256 of key's SPKI (compared in constant time), RSA-OAEP
// SHA-256 fails, the unwrapped content key is not 32 bytes, or the PKCS #7
// padding is wrong (checked in constant time). Decrypt runs AES-CBC even
// when an earlier check failed (with an all-zero key), so the failures take
// the same path.
//
// EnvelopedData is not authenticated: a success proves that the content
// key was wrapped to key, not that the content is what KMS sent.
func Decrypt(ber []byte, key *rsa.PrivateKey) ([]byte, error) {
	if key == nil {
		return nil, errors.New("cms: nil private key")
	}
	ed, err := Parse(ber)
	if err != nil {
		return nil, err
	}
	ski, err := SubjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return ed.open(key, ski)
}

// open decrypts the parsed message; ski is the key's identifier.
func (e *EnvelopedData) open(key *rsa.PrivateKey, ski []byte) ([]byte, error) {
	skiOK := subtle.ConstantTimeCompare(e.RecipientSKI, ski)
	cek, keyOK := unwrapKey(key, e.EncryptedKey)
	defer clear(cek)
	pt, padOK := decryptCBC(cek, e.IV, e.EncryptedContent)
	if skiOK&keyOK&padOK != 1 {
		clear(pt)
		return nil, ErrDecrypt
	}
	return pt, nil
}

// unwrapKey returns the RSA-OAEP-unwrapped content key and 1, or an
// all-zero key and 0 on any failure.
func unwrapKey(key *rsa.PrivateKey, wrapped []byte) ([]byte, int) {
	cek := make([]byte, contentKeySize)
	k, err := rsa.DecryptOAEP(sha256.New(), nil, key, wrapped, nil)
	ok := 0
	if err == nil {
		ok = subtle.ConstantTimeEq(int32(len(k)), contentKeySize)
	}
	padded := make([]byte, contentKeySize) // ConstantTimeCopy needs equal lengths
	copy(padded, k)
	subtle.ConstantTimeCopy(ok, cek, padded)
	clear(k)
	clear(padded)
	return cek, ok
}

// decryptCBC decrypts ct (a positive multiple of the block size, as Parse
// guarantees) and removes its PKCS #7 padding. It returns the plaintext and
// 1, or the whole decrypted buffer and 0 when the padding is wrong, without
// branching on the padding bytes.
func decryptCBC(key, iv, ct []byte) ([]byte, int) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, 0 // unreachable: key is always 32 bytes
	}
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, ct)
	n, ok := paddingLen(out)
	return out[:len(out)-n], ok
}

// paddingLen checks the PKCS #7 padding at the end of b (len(b) >= 16) in
// constant time. It returns the padding length and 1, or 0 and 0.
func paddingLen(b []byte) (int, int) {
	last := b[len(b)-1]
	n := int(last)
	ok := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, blockSize)
	for i := 1; i <= blockSize; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i, n)
		same := subtle.ConstantTimeByteEq(b[len(b)-i], last)
		ok &= (inPad ^ 1) | same
	}
	return subtle.ConstantTimeSelect(ok, n, 0), ok
}

// Encrypt encrypts plaintext to recipient in the shape KMS emits (see
// Marshal): a fresh AES-256 content key and IV from rand (crypto/rand when
// nil), the key wrapped with RSA-OAEP SHA-256, the content AES-256-CBC with
// PKCS #7 padding. recipient must be an RSA key of at least 2048 bits and
// plaintext at most MaxPlaintextSize bytes.
func Encrypt(plaintext []byte, recipient *rsa.PublicKey, rand io.Reader) ([]byte, error) {
	if rand == nil {
		rand = cryptoRand
	}
	ski, err := checkRecipient(recipient)
	if err != nil {
		return nil, err
	}
	if len(plaintext) > MaxPlaintextSize {
		return nil, errors.New("cms: plaintext larger than MaxPlaintextSize")
	}
	cek := make([]byte, contentKeySize)
	defer clear(cek)
	iv := make([]byte, IVSize)
	if err := readRandom(rand, cek, iv); err != nil {
		return nil, err
	}
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand, recipient, cek, nil)
	if err != nil {
		return nil, fmt.Errorf("cms: wrapping content key: %w", err)
	}
	ed := &EnvelopedData{RecipientSKI: ski, EncryptedKey: wrapped, IV: iv,
		EncryptedContent: encryptCBC(cek, iv, plaintext)}
	return ed.Marshal()
}

var cryptoRand = rand.Reader

func checkRecipient(pub *rsa.PublicKey) ([]byte, error) {
	if pub == nil || pub.N == nil || pub.N.BitLen() < minRSABits {
		return nil, errors.New("cms: recipient must be an RSA key of at least 2048 bits")
	}
	return SubjectKeyID(pub)
}

func readRandom(rand io.Reader, bufs ...[]byte) error {
	for _, b := range bufs {
		if _, err := io.ReadFull(rand, b); err != nil {
			return fmt.Errorf("cms: reading randomness: %w", err)
		}
	}
	return nil
}

// encryptCBC pads plaintext with PKCS #7 and encrypts it with AES-256-CBC.
func encryptCBC(key, iv, plaintext []byte) []byte {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("cms: unreachable: content key is 32 bytes")
	}
	n := blockSize - len(plaintext)%blockSize
	buf := make([]byte, len(plaintext)+n)
	copy(buf, plaintext)
	for i := len(plaintext); i < len(buf); i++ {
		buf[i] = byte(n)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
	return buf
}
