package app

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// mpcStore keeps the MPC engine's shares in the sealed keystore: PutKey
// returns only once the record is committed and replicated to S3, which is
// the durability the engine's Store contract asks for.
type mpcStore struct{ ks *keystore.Store }

var _ mpc.Store = mpcStore{}

// PutKey stores rec; the keystore refuses an epoch that is not newer.
func (s mpcStore) PutKey(ctx context.Context, rec mpc.KeyRecord) error {
	parties := make([]string, len(rec.Parties))
	for i, p := range rec.Parties {
		parties[i] = string(p)
	}
	share := secret.New(rec.Share)
	defer share.Wipe()
	return s.ks.PutKey(ctx, keystore.KeyRecord{
		ID: keystore.KeyID(rec.Key), Scheme: uint8(rec.Scheme), Epoch: rec.Epoch,
		Threshold: rec.Threshold, Parties: parties, Self: string(rec.Self),
		PublicKey: rec.PublicKey, ChainCode: rec.ChainCode, Share: share,
	})
}

// GetKey returns the key's newest record, or an error wrapping both
// mpc.ErrKeyNotFound and keystore.ErrKeyNotFound.
func (s mpcStore) GetKey(ctx context.Context, id mpc.KeyID) (mpc.KeyRecord, error) {
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
