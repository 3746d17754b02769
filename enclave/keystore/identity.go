package keystore

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// Identity is the enclave's long-term Ed25519 identity. PrivateKey is an
// ed25519.PrivateKey (seed followed by public key) and prints redacted.
type Identity struct {
	PrivateKey secret.Bytes
	PublicKey  ed25519.PublicKey
	CreatedAt  time.Time
}

type putIdentityChange struct {
	_          struct{} `cbor:",toarray"`
	PrivateKey []byte
	PublicKey  []byte
	At         int64
}

// PutIdentity stores the identity once; a second call fails with ErrExists.
// CreatedAt is set by the store.
func (s *Store) PutIdentity(ctx context.Context, id Identity) error {
	priv := slices.Clone(id.PrivateKey.Reveal())
	defer clear(priv)
	m := &putIdentityChange{PrivateKey: priv, PublicKey: id.PublicKey, At: s.now().UnixNano()}
	if err := s.apply(ctx, m); err != nil {
		return fmt.Errorf("keystore: storing identity: %w", err)
	}
	return nil
}

func (*putIdentityChange) op() opCode { return opPutIdentity }

// wipe clears the decoded private key of a replayed record.
func (m *putIdentityChange) wipe() { clear(m.PrivateKey) }

// validate checks sizes and that the public key is the private key's.
func (m *putIdentityChange) validate() error {
	if len(m.PrivateKey) != ed25519.PrivateKeySize || len(m.PublicKey) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: identity must be an Ed25519 key pair", ErrInvalid)
	}
	if !bytes.Equal(m.PrivateKey[ed25519.SeedSize:], m.PublicKey) {
		return fmt.Errorf("%w: identity public key does not match its private key", ErrInvalid)
	}
	return nil
}

func (m *putIdentityChange) exec(ctx context.Context, tx *sql.Tx) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO identity (id, private_key, public_key, created_at)
		VALUES (1, ?, ?, ?) ON CONFLICT (id) DO NOTHING`, m.PrivateKey, m.PublicKey, m.At)
	if err != nil {
		return fmt.Errorf("keystore: writing identity: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%w: the identity is already set", ErrExists)
	}
	return nil
}

// GetIdentity returns the identity, or ErrNotFound before PutIdentity.
func (s *Store) GetIdentity(ctx context.Context) (Identity, error) {
	if err := s.readable(); err != nil {
		return Identity{}, err
	}
	var (
		priv, pub []byte
		at        int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT private_key, public_key, created_at FROM identity WHERE id = 1`).
		Scan(&priv, &pub, &at)
	defer func() { clear(priv) }()
	if errors.Is(err, sql.ErrNoRows) {
		return Identity{}, fmt.Errorf("%w: no identity", ErrNotFound)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("keystore: reading identity: %w", err)
	}
	return Identity{PrivateKey: secret.New(priv), PublicKey: pub, CreatedAt: time.Unix(0, at).UTC()}, nil
}
