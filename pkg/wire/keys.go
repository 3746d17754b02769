package wire

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// BindingLabel is the protocol label that starts every identity binding.
const BindingLabel = "nitro-cosigner identity v1"

const redacted = "[REDACTED]"

// BindingUserData returns the value an enclave puts in its attestation
// document's user_data to bind its identity: the SHA-256 of BindingLabel, the
// cosigner ID, the Ed25519 identity public key and each extra value (the
// X25519 encryption public key, for [Member.Binding]), each length-prefixed
// with 4 big-endian bytes so that no two inputs share an encoding.
func BindingUserData(cosignerID string, identityPub ed25519.PublicKey, extra ...[]byte) []byte {
	h := sha256.New()
	writePrefixed(h, []byte(BindingLabel))
	writePrefixed(h, []byte(cosignerID))
	writePrefixed(h, identityPub)
	for _, e := range extra {
		writePrefixed(h, e)
	}
	return h.Sum(nil)
}

func writePrefixed(h interface{ Write([]byte) (int, error) }, b []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	h.Write(n[:])
	h.Write(b)
}

// IdentityKey is an enclave's long-term Ed25519 signing key. It redacts
// itself when printed or logged and cannot be compared with ==.
type IdentityKey struct {
	_    [0]func() // not comparable
	priv ed25519.PrivateKey
}

// GenerateIdentityKey returns a new random identity key.
func GenerateIdentityKey() (*IdentityKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("wire: generating identity key: %w", err)
	}
	return &IdentityKey{priv: priv}, nil
}

// IdentityKeyFromSeed returns the identity key of a 32-byte Ed25519 seed, as
// stored by [IdentityKey.Seed].
func IdentityKeyFromSeed(seed secret.Bytes) (*IdentityKey, error) {
	if seed.Len() != ed25519.SeedSize {
		return nil, errors.New("wire: identity key seed is not 32 bytes")
	}
	return &IdentityKey{priv: ed25519.NewKeyFromSeed(seed.Reveal())}, nil
}

// Public returns the Ed25519 public key.
func (k *IdentityKey) Public() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), k.priv.Public().(ed25519.PublicKey)...)
}

// Sign signs msg with pure Ed25519 (RFC 8032), for messages outside the
// frame format (a pairing request).
func (k *IdentityKey) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// Seed returns the 32-byte seed to store in the keystore.
func (k *IdentityKey) Seed() secret.Bytes {
	seed := k.priv.Seed()
	defer clear(seed)
	return secret.New(seed)
}

// String implements fmt.Stringer and never shows the key.
func (k IdentityKey) String() string { return "wire.IdentityKey" + redacted }

// GoString implements fmt.GoStringer and never shows the key.
func (k IdentityKey) GoString() string { return k.String() }

// Format implements fmt.Formatter so that no verb reaches the key.
func (k IdentityKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue implements slog.LogValuer.
func (k IdentityKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// EncryptionKey is an enclave's long-term X25519 key, to which peers seal
// direct (point-to-point) payloads with HPKE. It redacts itself when printed
// or logged and cannot be compared with ==.
type EncryptionKey struct {
	_    [0]func() // not comparable
	priv *ecdh.PrivateKey
}

// GenerateEncryptionKey returns a new random X25519 key.
func GenerateEncryptionKey() (*EncryptionKey, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("wire: generating encryption key: %w", err)
	}
	return &EncryptionKey{priv: priv}, nil
}

// EncryptionKeyFromBytes returns the X25519 key of 32 private key bytes, as
// stored by [EncryptionKey.Bytes].
func EncryptionKeyFromBytes(b secret.Bytes) (*EncryptionKey, error) {
	priv, err := ecdh.X25519().NewPrivateKey(b.Reveal())
	if err != nil {
		return nil, errors.New("wire: encryption key is not 32 bytes")
	}
	return &EncryptionKey{priv: priv}, nil
}

// Public returns the X25519 public key.
func (k *EncryptionKey) Public() *ecdh.PublicKey { return k.priv.PublicKey() }

// Bytes returns the 32 private key bytes to store in the keystore.
func (k *EncryptionKey) Bytes() secret.Bytes {
	b := k.priv.Bytes()
	defer clear(b)
	return secret.New(b)
}

// String implements fmt.Stringer and never shows the key.
func (k EncryptionKey) String() string { return "wire.EncryptionKey" + redacted }

// GoString implements fmt.GoStringer and never shows the key.
func (k EncryptionKey) GoString() string { return k.String() }

// Format implements fmt.Formatter so that no verb reaches the key.
func (k EncryptionKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue implements slog.LogValuer.
func (k EncryptionKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// String implements fmt.Stringer: a Signer holds the identity key and
// prints only its ID.
func (s *Signer) String() string { return "wire.Signer{" + s.id + "}" }

// GoString implements fmt.GoStringer like String.
func (s *Signer) GoString() string { return s.String() }

// Format implements fmt.Formatter so that no verb reaches the key.
func (s *Signer) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue implements slog.LogValuer.
func (s *Signer) LogValue() slog.Value { return slog.StringValue(s.String()) }

// String implements fmt.Stringer: a Receiver holds the encryption key and
// prints only its ID.
func (r *Receiver) String() string { return "wire.Receiver{" + r.self + "}" }

// GoString implements fmt.GoStringer like String.
func (r *Receiver) GoString() string { return r.String() }

// Format implements fmt.Formatter so that no verb reaches the key.
func (r *Receiver) Format(f fmt.State, _ rune) { fmt.Fprint(f, r.String()) }

// LogValue implements slog.LogValuer.
func (r *Receiver) LogValue() slog.Value { return slog.StringValue(r.String()) }
