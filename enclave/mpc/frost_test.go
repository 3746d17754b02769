package mpc_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
)

func TestFROSTTaproot(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n, t    int
		signers []mpc.PartyID
	}{
		{"2-of-3", 3, 2, []mpc.PartyID{"alice", "carol"}},
		{"3-of-5", 5, 3, []mpc.PartyID{"bob", "carol", "erin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			fx := frostKey(t, tc.n, tc.t)
			c := newCluster(t, fx.parties, fx.clonedStores())
			if fx.info.Scheme != mpc.SchemeTaproot || len(fx.info.PublicKey) != 32 {
				t.Fatalf("not an x-only Taproot key: %+v", fx.info)
			}

			req := mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t)}
			sig := signOn(t, c, tc.signers, req)
			if sig.Scheme != mpc.SchemeTaproot || !schnorrValid(t, fx.info.PublicKey, req.Digest, sig) {
				t.Fatal("BIP-340 signature does not verify")
			}

			req.Path, req.Digest = []uint32{86, 0, 5}, randomDigest(t)
			derived := sameDerivedKey(t, c, fx.info.Key, req.Path)
			if want := ckdTaproot(t, fx.info.PublicKey, fx.info.ChainCode, req.Path); !bytes.Equal(derived.PublicKey, want) {
				t.Fatal("derived Taproot key differs from BIP-32 derivation of the even-Y key")
			}
			sig = signOn(t, c, tc.signers, req)
			if !schnorrValid(t, derived.PublicKey, req.Digest, sig) {
				t.Fatal("derived-key signature does not verify under the derived key")
			}
			if schnorrValid(t, fx.info.PublicKey, req.Digest, sig) {
				t.Fatal("derived-key signature verifies under the parent key")
			}
		})
	}
}

func TestFROSTRejectsPresignature(t *testing.T) {
	leakCheck(t)
	fx := frostKey(t, 3, 2)
	c := newCluster(t, fx.parties, fx.clonedStores())
	id, _ := mpc.NewSessionID()
	req := mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t), Presignature: mpc.PresignatureID(id)}
	_, err := c.engines["alice"].Sign(context.Background(), newSpec(t, []mpc.PartyID{"alice", "bob"}, okDeadline), req)
	if !errors.Is(err, mpc.ErrInvalidRequest) {
		t.Fatalf("got %v, want ErrInvalidRequest", err)
	}
	if err := c.engines["alice"].EnablePool(context.Background(), fx.info.Key, []mpc.PartyID{"alice", "bob"}); !errors.Is(err, mpc.ErrInvalidRequest) {
		t.Fatalf("EnablePool on a Taproot key: got %v, want ErrInvalidRequest", err)
	}
}

// A key is reported only once stored; if the store fails, the caller gets
// ErrStore and the engine does not use the shares.
func TestKeygenReportsOnlyStoredKeys(t *testing.T) {
	for _, f := range []mpctest.Failure{mpctest.FailBefore, mpctest.FailAfter} {
		t.Run(map[mpctest.Failure]string{mpctest.FailBefore: "before", mpctest.FailAfter: "after"}[f], func(t *testing.T) {
			leakCheck(t)
			parties := partiesN(3)
			c := newCluster(t, parties, nil)
			c.stores["carol"].SetFailure(f)
			spec := newSpec(t, parties, okDeadline)
			outs := onEach(c, parties, func(e *mpc.Engine) (mpc.KeyInfo, error) {
				return e.FROSTKeygen(context.Background(), spec, 2)
			})
			if err := outs["carol"].err; !errors.Is(err, mpc.ErrStore) {
				t.Fatalf("carol: got %v, want ErrStore", err)
			}
			if outs["alice"].err != nil || outs["bob"].err != nil {
				t.Fatalf("alice %v, bob %v", outs["alice"].err, outs["bob"].err)
			}
			c.stores["carol"].SetFailure(mpctest.NoFailure)
			_, err := c.engines["carol"].Key(context.Background(), mpc.KeyID(spec.ID))
			if f == mpctest.FailBefore && !errors.Is(err, mpc.ErrKeyNotFound) {
				t.Fatalf("carol knows a key her store refused: %v", err)
			}
		})
	}
}
