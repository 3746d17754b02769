package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"reflect"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

func openTestKeystore(t *testing.T) *keystore.Store {
	key := make([]byte, keystore.KeySize)
	rand.Read(key)
	ks, err := keystore.Create(context.Background(), t.TempDir(), secret.New(key), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks
}

func TestMPCStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newMPCStore(openTestKeystore(t))
	rec := mpc.KeyRecord{
		Key: mpc.KeyID{1, 2, 3}, Scheme: mpc.SchemeECDSA, Epoch: 0, Threshold: 2,
		Parties: []mpc.PartyID{"alice", "bob", "carol"}, Self: "bob",
		PublicKey: bytes.Repeat([]byte{2}, 33), ChainCode: bytes.Repeat([]byte{7}, 32),
		Share: mpc.Secret("share-bytes"),
	}
	if err := s.PutKey(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetKey(ctx, rec.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rec) {
		t.Fatalf("GetKey = %+v, want %+v", got, rec)
	}
	if err := s.PutKey(ctx, rec); !errors.Is(err, keystore.ErrStaleEpoch) {
		t.Fatalf("same epoch again: err = %v, want ErrStaleEpoch", err)
	}
	rec.Epoch, rec.Share = 1, mpc.Secret("refreshed")
	if err := s.PutKey(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetKey(ctx, rec.Key); got.Epoch != 1 || string(got.Share) != "refreshed" {
		t.Fatalf("after refresh: epoch %d", got.Epoch)
	}
}

func TestMPCStoreNotFound(t *testing.T) {
	s := newMPCStore(openTestKeystore(t))
	_, err := s.GetKey(context.Background(), mpc.KeyID{9})
	if !errors.Is(err, mpc.ErrKeyNotFound) || !errors.Is(err, keystore.ErrKeyNotFound) {
		t.Fatalf("err = %v, want both not-found errors", err)
	}
}
