package kmsemu

import (
	"crypto/rand"
	"encoding/binary"
	"maps"
	"slices"
)

// Ciphertext blob layout (not real KMS's):
//
//	"KEMU" | version 0x01 | len(key ID) (1 byte) | key ID | nonce (12) | AES-GCM ciphertext || tag
//
// The additional data is the header (everything before the nonce) followed
// by the canonical encoding of the encryption context, so the key ID and
// the context are bound to the ciphertext.
const (
	blobMagic   = "KEMU"
	blobVersion = 1
	// maxBlobSize is KMS's limit on CiphertextBlob.
	maxBlobSize = 6144
)

func blobHeader(keyID string) []byte {
	h := append([]byte(blobMagic), blobVersion, byte(len(keyID)))
	return append(h, keyID...)
}

// seal encrypts plaintext under k bound to ctx.
func (k *kmsKey) seal(plaintext []byte, ctx map[string]string) []byte {
	header := blobHeader(k.id)
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	out := append(header, nonce...)
	return k.aead.Seal(out, nonce, plaintext, additionalData(header, ctx))
}

// blobKeyID returns the key ID a blob names, or false if the blob is not
// one of ours.
func blobKeyID(blob []byte) (string, bool) {
	n := len(blobMagic) + 2
	if len(blob) < n || len(blob) > maxBlobSize || string(blob[:len(blobMagic)]) != blobMagic ||
		blob[len(blobMagic)] != blobVersion {
		return "", false
	}
	idLen := int(blob[n-1])
	if len(blob) < n+idLen {
		return "", false
	}
	return string(blob[n : n+idLen]), true
}

// open decrypts a blob sealed by k under ctx. It reports false for any
// failure: another key, another context, or an altered blob.
func (k *kmsKey) open(blob []byte, ctx map[string]string) ([]byte, bool) {
	header := blobHeader(k.id)
	ns := k.aead.NonceSize()
	if len(blob) < len(header)+ns+k.aead.Overhead() || string(blob[:len(header)]) != string(header) {
		return nil, false
	}
	nonce, ct := blob[len(header):len(header)+ns], blob[len(header)+ns:]
	pt, err := k.aead.Open(nil, nonce, ct, additionalData(header, ctx))
	return pt, err == nil
}

// additionalData is header || encoding of ctx: its pairs sorted by key,
// each key and value prefixed with its length (4 bytes, big-endian), so
// that distinct contexts never encode alike.
func additionalData(header []byte, ctx map[string]string) []byte {
	ad := append([]byte(nil), header...)
	for _, key := range slices.Sorted(maps.Keys(ctx)) {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(key)))
		ad = append(ad, key...)
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(ctx[key])))
		ad = append(ad, ctx[key]...)
	}
	return ad
}
