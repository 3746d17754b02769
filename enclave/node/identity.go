package node

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// encryptionLabel is the HKDF purpose of the X25519 key derived from the
// identity seed.
const encryptionLabel = "nitro-cosigner x25519 frame encryption v1"

// Identity is the enclave's long-term identity: the Ed25519 key that signs
// frames and audit entries, and the X25519 key peers seal direct frames
// to, derived from the Ed25519 seed (HKDF-SHA256 with a purpose label) so
// that the keystore holds one secret. Both print redacted.
type Identity struct {
	ID         mpc.PartyID
	Key        *wire.IdentityKey
	Encryption *wire.EncryptionKey
}

// LoadIdentity reads the identity from the keystore, creating it on first
// boot. The created key is durable (replicated) before it is returned.
func LoadIdentity(ctx context.Context, ks *keystore.Store, id mpc.PartyID) (*Identity, error) {
	stored, err := ks.GetIdentity(ctx)
	if errors.Is(err, keystore.ErrNotFound) {
		return createIdentity(ctx, ks, id)
	}
	if err != nil {
		return nil, fmt.Errorf("node: reading the identity: %w", err)
	}
	defer stored.PrivateKey.Wipe()
	return identityFromSeed(id, secret.New(stored.PrivateKey.Reveal()[:ed25519.SeedSize]))
}

func createIdentity(ctx context.Context, ks *keystore.Store, id mpc.PartyID) (*Identity, error) {
	key, err := wire.GenerateIdentityKey()
	if err != nil {
		return nil, err
	}
	seed := key.Seed()
	defer seed.Wipe()
	priv := secret.New(ed25519.NewKeyFromSeed(seed.Reveal()))
	defer priv.Wipe()
	if err := ks.PutIdentity(ctx, keystore.Identity{PrivateKey: priv, PublicKey: key.Public()}); err != nil {
		return nil, fmt.Errorf("node: storing the new identity: %w", err)
	}
	return identityFromSeed(id, seed)
}

func identityFromSeed(id mpc.PartyID, seed secret.Bytes) (*Identity, error) {
	key, err := wire.IdentityKeyFromSeed(seed)
	if err != nil {
		return nil, err
	}
	encSeed, err := hkdf.Key(sha256.New, seed.Reveal(), nil, encryptionLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("node: deriving the encryption key: %w", err)
	}
	enc, err := wire.EncryptionKeyFromBytes(secret.New(encSeed))
	clear(encSeed)
	if err != nil {
		return nil, err
	}
	return &Identity{ID: id, Key: key, Encryption: enc}, nil
}

// FrameBinding is the user_data of the documents stamped on frames.
func (id *Identity) FrameBinding() []byte { return id.Member().Binding() }

// APIBinding is the user_data of the documents the API hands callers: the
// frame binding's fields and the TLS certificate's fingerprint.
func (id *Identity) APIBinding(tlsCert [sha256.Size]byte) []byte {
	enc := id.Encryption.Public().Bytes()
	return wire.BindingUserData(string(id.ID), id.Key.Public(), enc, tlsCert[:])
}
