package mpc

import (
	"context"
	"slices"
)

// Store persists this party's key shares. The sealed keystore implements it;
// the engine is its only caller.
//
// Durability: PutKey returns nil only once rec is durable (in production:
// committed to the sealed database and replicated). The engine reports a
// keygen or refresh done only after PutKey returned nil; on any error it
// discards the new shares, reports the operation failed (wrapping ErrStore)
// and does not retry. Whoever retries does so by running a new session.
//
// Epochs: keygen stores epoch 0 and each refresh stores the previous epoch
// plus one under the same KeyID. A store must refuse to replace a record by
// one with an equal or lower epoch, and must keep the old record if the new
// one cannot be made durable.
type Store interface {
	// PutKey durably stores rec, replacing the key's previous epoch.
	PutKey(ctx context.Context, rec KeyRecord) error
	// GetKey returns the key's newest record, or an error wrapping
	// ErrKeyNotFound.
	GetKey(ctx context.Context, key KeyID) (KeyRecord, error)
}

// KeyRecord is what the store keeps for one key at one epoch. Only Share is
// secret; it prints redacted.
type KeyRecord struct {
	Key    KeyID
	Scheme Scheme
	Epoch  uint64
	// Threshold is the number of parties needed to sign (t of t-of-n).
	Threshold int
	// Parties are all holders of the key, sorted; Self is this party.
	Parties []PartyID
	Self    PartyID
	// PublicKey is the SEC1 compressed key (ECDSA) or the 32-byte x-only
	// key (Taproot). ChainCode is the BIP-32 chain code (32 bytes).
	PublicKey []byte
	ChainCode []byte
	// Share is the marshalled library config holding this party's share.
	Share Secret
}

// Clone returns a deep copy of r.
func (r KeyRecord) Clone() KeyRecord {
	r.Parties = slices.Clone(r.Parties)
	r.PublicKey = slices.Clone(r.PublicKey)
	r.ChainCode = slices.Clone(r.ChainCode)
	r.Share = slices.Clone(r.Share)
	return r
}

// KeyInfo is the public description of a key.
type KeyInfo struct {
	Key       KeyID
	Scheme    Scheme
	Epoch     uint64
	Threshold int
	Parties   []PartyID
	PublicKey []byte
	ChainCode []byte
}

func (r KeyRecord) info() KeyInfo {
	return KeyInfo{
		Key: r.Key, Scheme: r.Scheme, Epoch: r.Epoch, Threshold: r.Threshold,
		Parties:   slices.Clone(r.Parties),
		PublicKey: slices.Clone(r.PublicKey),
		ChainCode: slices.Clone(r.ChainCode),
	}
}
