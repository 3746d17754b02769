package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// mpcStore keeps the MPC engine's shares in the sealed keystore: PutKey
// returns only once the record is committed and replicated to S3, which is
// the durability the engine's Store contract asks for. Metadata the node
// wants stored with a new key (its display name) is handed over with
// expect before the keygen starts.
type mpcStore struct {
	ks *keystore.Store

	mu   sync.Mutex
	meta map[mpc.KeyID]json.RawMessage
}

var _ mpc.Store = (*mpcStore)(nil)

func newMPCStore(ks *keystore.Store) *mpcStore {
	return &mpcStore{ks: ks, meta: map[mpc.KeyID]json.RawMessage{}}
}

// expect records metadata for the key a keygen is about to create; forget
// drops it if the keygen never stores one.
func (s *mpcStore) expect(id mpc.KeyID, meta json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta[id] = meta
}

// expectOwner records the owner of a key a keygen this party accepted is
// about to create, unless metadata is already expected (the initiator's,
// which names the owner). It reports whether it recorded anything.
func (s *mpcStore) expectOwner(id mpc.KeyID, owner string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.meta[id]; ok || owner == "" {
		return false
	}
	meta, err := json.Marshal(keyMetadata{Owner: owner})
	if err != nil {
		return false
	}
	s.meta[id] = meta
	return true
}

func (s *mpcStore) forget(id mpc.KeyID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.meta, id)
}

func (s *mpcStore) metadata(rec mpc.KeyRecord) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec.Epoch == 0 {
		return s.meta[rec.Key]
	}
	return nil
}

// PutKey stores rec; the keystore refuses an epoch that is not newer. A
// refreshed record keeps the key's metadata.
func (s *mpcStore) PutKey(ctx context.Context, rec mpc.KeyRecord) error {
	parties := make([]string, len(rec.Parties))
	for i, p := range rec.Parties {
		parties[i] = string(p)
	}
	share := secret.New(rec.Share)
	defer share.Wipe()
	return s.ks.PutKey(ctx, keystore.KeyRecord{
		ID: keystore.KeyID(rec.Key), Scheme: uint8(rec.Scheme), Epoch: rec.Epoch,
		Threshold: rec.Threshold, Parties: parties, Self: string(rec.Self),
		PublicKey: rec.PublicKey, ChainCode: rec.ChainCode, Share: share, Metadata: s.keepMetadata(ctx, rec),
	})
}

func (s *mpcStore) keepMetadata(ctx context.Context, rec mpc.KeyRecord) json.RawMessage {
	if m := s.metadata(rec); m != nil {
		return m
	}
	if info, err := s.ks.GetKeyInfo(ctx, keystore.KeyID(rec.Key)); err == nil {
		return info.Metadata
	}
	return nil
}

// GetKey returns the key's newest record, or an error wrapping both
// mpc.ErrKeyNotFound and keystore.ErrKeyNotFound.
func (s *mpcStore) GetKey(ctx context.Context, id mpc.KeyID) (mpc.KeyRecord, error) {
	rec, err := s.ks.GetKey(ctx, keystore.KeyID(id))
	if errors.Is(err, keystore.ErrKeyNotFound) {
		return mpc.KeyRecord{}, fmt.Errorf("%w: %w", mpc.ErrKeyNotFound, err)
	}
	if err != nil {
		return mpc.KeyRecord{}, err
	}
	defer rec.Share.Wipe()
	parties := make([]mpc.PartyID, len(rec.Parties))
	for i, p := range rec.Parties {
		parties[i] = mpc.PartyID(p)
	}
	return mpc.KeyRecord{
		Key: mpc.KeyID(rec.ID), Scheme: mpc.Scheme(rec.Scheme), Epoch: rec.Epoch,
		Threshold: rec.Threshold, Parties: parties, Self: mpc.PartyID(rec.Self),
		PublicKey: rec.PublicKey, ChainCode: rec.ChainCode, Share: slices.Clone(mpc.Secret(rec.Share.Reveal())),
	}, nil
}
