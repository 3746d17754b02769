package kmsemu

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

const (
	materialSize = 32 // AES-256 key material per KMS key
	// blobKeyLabel is the HKDF info that derives the blob-sealing key from
	// a KMS key's material.
	blobKeyLabel = "nitro-cosigner kmsemu ciphertext blob v1"
)

// kmsKey is one symmetric KMS key. It is immutable once created.
type kmsKey struct {
	id, arn     string
	created     time.Time
	description string
	policyJSON  string
	policy      *policy
	material    secret.Bytes
	aead        cipher.AEAD // AES-256-GCM under HKDF(material, blobKeyLabel)
}

// String, GoString, Format and LogValue redact k: its AEAD holds the
// expanded key, which %+v would otherwise print.
func (k *kmsKey) String() string             { return "kmsKey(" + k.id + ")" }
func (k *kmsKey) GoString() string           { return k.String() }
func (k *kmsKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }
func (k *kmsKey) LogValue() slog.Value       { return slog.StringValue(k.String()) }

// newKMSKey creates a key with fresh material; policyJSON has been parsed
// into pol.
func newKMSKey(id string, created time.Time, description, policyJSON string, pol *policy) (*kmsKey, error) {
	material := make([]byte, materialSize)
	rand.Read(material)
	defer clear(material)
	return restoreKMSKey(id, created, description, policyJSON, pol, material)
}

// restoreKMSKey builds a key from existing material (copied).
func restoreKMSKey(id string, created time.Time, description, policyJSON string, pol *policy, material []byte) (*kmsKey, error) {
	if len(material) != materialSize {
		return nil, fmt.Errorf("key %s: material is not %d bytes", id, materialSize)
	}
	sealKey, err := hkdf.Key(sha256.New, material, nil, blobKeyLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving the blob key: %w", err)
	}
	defer clear(sealKey)
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &kmsKey{id: id, created: created.UTC(), description: description,
		policyJSON: policyJSON, policy: pol, material: secret.New(material), aead: aead}, nil
}

// lookupKey resolves a KeyId parameter (a key ID or a key ARN of this
// emulator) to a key.
func (e *Emulator) lookupKey(keyID string) (*kmsKey, *apiError) {
	if keyID == "" {
		return nil, validation("KeyId is required")
	}
	id := keyID
	if strings.HasPrefix(keyID, "arn:") {
		var ok bool
		if id, ok = strings.CutPrefix(keyID, e.arn("")); !ok {
			return nil, notFound("the key ARN is not in this emulator's region and account")
		}
	}
	if strings.HasPrefix(id, "alias/") {
		return nil, notFound("aliases are not supported by the emulator")
	}
	e.mu.RLock()
	k, ok := e.keys[id]
	e.mu.RUnlock()
	if !ok {
		return nil, notFound("key does not exist")
	}
	return k, nil
}

// keyMetadata is the KeyMetadata structure of CreateKey.
type keyMetadata struct {
	AWSAccountID          string   `json:"AWSAccountId"`
	KeyID                 string   `json:"KeyId"`
	Arn                   string   `json:"Arn"`
	CreationDate          float64  `json:"CreationDate"` // epoch seconds
	Enabled               bool     `json:"Enabled"`
	Description           string   `json:"Description"`
	KeyUsage              string   `json:"KeyUsage"`
	KeyState              string   `json:"KeyState"`
	Origin                string   `json:"Origin"`
	KeyManager            string   `json:"KeyManager"`
	CustomerMasterKeySpec string   `json:"CustomerMasterKeySpec"`
	KeySpec               string   `json:"KeySpec"`
	EncryptionAlgorithms  []string `json:"EncryptionAlgorithms"`
	MultiRegion           bool     `json:"MultiRegion"`
}

func (e *Emulator) metadata(k *kmsKey) keyMetadata {
	return keyMetadata{
		AWSAccountID: e.opts.AccountID, KeyID: k.id, Arn: k.arn,
		CreationDate: float64(k.created.UnixMilli()) / 1000,
		Enabled:      true, Description: k.description,
		KeyUsage: keyUsage, KeyState: "Enabled", Origin: "AWS_KMS", KeyManager: "CUSTOMER",
		CustomerMasterKeySpec: keySpec, KeySpec: keySpec,
		EncryptionAlgorithms: []string{encryptionAlgorithm},
	}
}

// newUUID returns a random (version 4) UUID, the form of KMS key IDs.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
