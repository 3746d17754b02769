//go:build soak

package mpc_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
)

// Soak tests: live keygens of larger sets, and many heavy sessions at
// once on a faulty network. They take several minutes (tens under -race).

func TestSoakLiveKeygens(t *testing.T) {
	for _, tc := range []struct{ n, t int }{{5, 3}, {7, 4}} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.t, tc.n), func(t *testing.T) {
			leakCheck(t)
			parties := partiesN(tc.n)
			c := newCluster(t, parties, nil)
			spec := newSpec(t, parties, okDeadline)
			outs := onEach(c, parties, func(e *mpc.Engine) (mpc.KeyInfo, error) {
				return e.Keygen(context.Background(), spec, tc.t)
			})
			allOK(t, outs)
			if err := sameKeyInfo(outs); err != nil {
				t.Fatal(err)
			}
			info := outs[parties[0]].val
			signers := parties[tc.n-tc.t:]
			req := mpc.SignRequest{Key: info.Key, Digest: randomDigest(t)}
			if !ecdsaValid(t, info.PublicKey, req.Digest, signOn(t, c, signers, req)) {
				t.Fatal("full sign does not verify")
			}
			fx := &keyFixture{info: info}
			checkOnlineSign(t, c, fx, signers, presignOn(t, c, info.Key, 0, signers))
		})
	}
}

func TestSoakConcurrentCMPOnFaultyNetwork(t *testing.T) {
	leakCheck(t)
	fx := cmpKey(t, 3, 2)
	c := newCluster(t, fx.parties, fx.clonedStores())
	c.net.SetReorder(true)
	c.net.SetRule(duplicateEvery(3))
	sets := [][]mpc.PartyID{{"alice", "bob"}, {"bob", "carol"}, {"alice", "carol"}, {"alice", "bob", "carol"}}
	errs := make(chan error, 2*len(sets))
	for _, signers := range sets {
		go func() {
			req := mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t)}
			sig := signOn(t, c, signers, req)
			if !ecdsaValid(t, fx.info.PublicKey, req.Digest, sig) {
				errs <- fmt.Errorf("%v: full sign does not verify", signers)
				return
			}
			errs <- nil
		}()
		go func() {
			presignOn(t, c, fx.info.Key, 0, signers)
			errs <- nil
		}()
	}
	for range 2 * len(sets) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestSoakRefreshTwice(t *testing.T) {
	leakCheck(t)
	fx := cmpKey(t, 5, 3)
	c := newCluster(t, fx.parties, fx.clonedStores())
	for epoch := uint64(0); epoch < 2; epoch++ {
		spec := newSpec(t, c.parties, okDeadline)
		allOK(t, onEach(c, c.parties, func(e *mpc.Engine) (mpc.KeyInfo, error) {
			return e.Refresh(context.Background(), spec, fx.info.Key, epoch)
		}))
	}
	req := mpc.SignRequest{Key: fx.info.Key, Epoch: 2, Digest: randomDigest(t)}
	if !ecdsaValid(t, fx.info.PublicKey, req.Digest, signOn(t, c, []mpc.PartyID{"bob", "dave", "erin"}, req)) {
		t.Fatal("signature after two refreshes does not verify")
	}
}

// duplicateEvery duplicates every k-th envelope (rules run under the
// network's lock, so the counter needs no lock of its own).
func duplicateEvery(k int) mpctest.Rule {
	n := 0
	return func(*mpc.Envelope) mpctest.Action {
		n++
		if n%k == 0 {
			return mpctest.Duplicate
		}
		return mpctest.Deliver
	}
}
