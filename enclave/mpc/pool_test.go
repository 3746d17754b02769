package mpc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
)

const proposalProtocol = "nitro-cosigner/presign-proposal/v1"

// poolOf returns party p's stats for the key and signer set.
func poolOf(c *cluster, p mpc.PartyID, key mpc.KeyID) (mpc.PoolStats, bool) {
	for _, s := range c.engines[p].Pools() {
		if s.Key == key {
			return s, true
		}
	}
	return mpc.PoolStats{}, false
}

func enablePool(t *testing.T, c *cluster, p mpc.PartyID, key mpc.KeyID, signers []mpc.PartyID) {
	t.Helper()
	if err := c.engines[p].EnablePool(context.Background(), key, signers); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test after okDeadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(okDeadline); time.Now().Before(deadline); {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// waitDepth waits until every listed party's pool holds depth presignatures.
func waitDepth(t *testing.T, c *cluster, key mpc.KeyID, parties []mpc.PartyID, depth int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("pools of depth %d", depth), func() bool {
		for _, p := range parties {
			if s, _ := poolOf(c, p, key); s.Depth < depth {
				return false
			}
		}
		return true
	})
}

// signResult is what one coordinated sign used and produced.
type signResult struct {
	presig mpc.PresignatureID // zero for a full sign
	sig    mpc.Signature
	digest []byte
}

// The background refill fills the pools of both signers from proposals of
// one party only, under IDs both agree on, with presignatures that sign.
func TestPresignaturePoolRefill(t *testing.T) {
	leakCheck(t)
	fx := cmpKey(t, 3, 2)
	target := 3
	if raceEnabled && !soakEnabled {
		target = 1 // one presign session takes about a minute under -race
	}
	c := newCluster(t, fx.parties, fx.clonedStores(),
		withPools(mpc.PoolConfig{Target: target, LowWater: 1, Timeout: okDeadline}))
	proposers := countProposers(c)
	signers := []mpc.PartyID{"bob", "carol"} // bob proposes: lowest ID of the set
	key := fx.info.Key
	// bob first: his proposals reach carol before she enables the pool,
	// she refuses them, and bob must back off and retry.
	enablePool(t, c, "bob", key, signers)
	waitFor(t, "carol to refuse a proposal", func() bool { s, _ := poolOf(c, "bob", key); return s.Failed > 0 })
	enablePool(t, c, "carol", key, signers)
	began := time.Now()
	waitDepth(t, c, key, signers, target)
	t.Logf("refill of %d presignatures took %v", target, time.Since(began))
	checkRefillStats(t, c, key, proposers, target)

	id, ok := c.engines["bob"].ClaimPresignature(key, 0, signers)
	if !ok {
		t.Fatal("no presignature to claim")
	}
	checkOnlineSign(t, c, fx, signers, id)
}

// Many concurrent signs against a small pool never share a presignature, a
// presignature named twice is consumed once, and signs beyond the pool
// fall back to full signs.
func TestPresignaturePoolConsumeOnce(t *testing.T) {
	leakCheck(t)
	fx := cmpKey(t, 3, 2)
	c := newCluster(t, fx.parties, fx.clonedStores())
	signers := []mpc.PartyID{"bob", "carol"}
	key := fx.info.Key
	pooled := len(fx.loadPresigs(t, c, signers))

	ids := claimConcurrently(t, c.engines["bob"], key, signers, 2*pooled)
	if len(ids) != pooled {
		t.Fatalf("%d claims succeeded from a pool of %d", len(ids), pooled)
	}
	doubleSpend, ids := ids[len(ids)-1], ids[:len(ids)-1]
	if !raceEnabled || soakEnabled {
		ids = append(ids, mpc.PresignatureID{}, mpc.PresignatureID{}) // fallbacks: full signs
	}
	results := coordinatedSigns(t, c, key, signers, ids)
	checkDistinctNonces(t, fx.info.PublicKey, results)
	checkConsumedOnce(t, c, key, signers, doubleSpend)
	for _, p := range signers {
		if s, _ := poolOf(c, p, key); s.Consumed != uint64(pooled) || s.Depth != 0 {
			t.Errorf("%s: consumed %d of %d, depth %d", p, s.Consumed, pooled, s.Depth)
		}
	}
}

// countProposers records which parties sent presign proposals.
func countProposers(c *cluster) *sync.Map {
	var m sync.Map
	c.net.SetRule(func(env *mpc.Envelope) mpctest.Action {
		if env.Protocol == proposalProtocol {
			m.Store(env.From, true)
		}
		return mpctest.Deliver
	})
	return &m
}

func checkRefillStats(t *testing.T, c *cluster, key mpc.KeyID, proposers *sync.Map, made int) {
	t.Helper()
	bob, _ := poolOf(c, "bob", key)
	carol, _ := poolOf(c, "carol", key)
	if !bob.Proposer || carol.Proposer || !bob.Refill || bob.Made < uint64(made) || carol.Made < uint64(made) ||
		made > 1 && bob.RefillPerMinute <= 0 || bob.Failed == 0 {
		t.Errorf("unexpected stats: bob %+v, carol %+v", bob, carol)
	}
	if _, ok := poolOf(c, "alice", key); ok {
		t.Error("alice, not a signer, has a pool")
	}
	proposers.Range(func(p, _ any) bool {
		if p != mpc.PartyID("bob") {
			t.Errorf("%v proposed a presign", p)
		}
		return true
	})
}

// claimConcurrently makes n claims at once and returns the IDs handed out.
func claimConcurrently(t *testing.T, e *mpc.Engine, key mpc.KeyID, signers []mpc.PartyID, n int) []mpc.PresignatureID {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var ids []mpc.PresignatureID
	seen := map[mpc.PresignatureID]bool{}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, ok := e.ClaimPresignature(key, 0, signers)
			mu.Lock()
			defer mu.Unlock()
			if ok && seen[id] {
				t.Errorf("presignature %s claimed twice", id)
			}
			if ok {
				seen[id] = true
				ids = append(ids, id)
			}
		}()
	}
	wg.Wait()
	return ids
}

// coordinatedSigns runs one sign per entry at once, as a coordinator
// would: with the named presignature, or in full for a zero ID (the
// fallback when the pool was empty).
func coordinatedSigns(t *testing.T, c *cluster, key mpc.KeyID, signers []mpc.PartyID, presigs []mpc.PresignatureID) []signResult {
	t.Helper()
	results := make([]signResult, len(presigs))
	var wg sync.WaitGroup
	for i, id := range presigs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := mpc.SignRequest{Key: key, Digest: randomDigest(t), Presignature: id}
			results[i] = signResult{presig: id, sig: signOn(t, c, signers, req), digest: req.Digest}
		}()
	}
	wg.Wait()
	return results
}

// checkDistinctNonces verifies every signature and checks no two share R
// (a shared R would mean a reused nonce, which reveals the key).
func checkDistinctNonces(t *testing.T, pub []byte, results []signResult) {
	t.Helper()
	rs := map[[32]byte]bool{}
	for _, r := range results {
		if !ecdsaValid(t, pub, r.digest, r.sig) {
			t.Errorf("signature with presignature %s does not verify", r.presig)
		}
		if rs[r.sig.R] {
			t.Fatal("two signatures share R")
		}
		rs[r.sig.R] = true
	}
}

// checkConsumedOnce names one presignature in four signs at once on carol,
// with bob joining the first: carol hands it to exactly one.
func checkConsumedOnce(t *testing.T, c *cluster, key mpc.KeyID, signers []mpc.PartyID, id mpc.PresignatureID) {
	t.Helper()
	const tries = 4
	if !c.engines["bob"].HasPresignature(key, 0, signers, id) || !c.engines["carol"].HasPresignature(key, 0, signers, id) {
		t.Fatal("HasPresignature: bob (who claimed it) or carol does not hold the presignature")
	}
	specs := make([]mpc.SessionSpec, tries)
	for i := range specs {
		specs[i] = newSpec(t, signers, failDeadline)
	}
	req := mpc.SignRequest{Key: key, Digest: randomDigest(t), Presignature: id}
	errs := make(chan error, tries+1)
	for i := range tries {
		go func() { _, err := c.engines["carol"].Sign(context.Background(), specs[i], req); errs <- err }()
	}
	go func() { _, err := c.engines["bob"].Sign(context.Background(), specs[0], req); errs <- err }()
	unavailable := 0
	for range tries + 1 {
		if err := <-errs; errors.Is(err, mpc.ErrPresignatureUnavailable) {
			unavailable++
		}
	}
	if unavailable != tries-1 {
		t.Fatalf("%d of %d signs naming one presignature were refused, want %d", unavailable, tries, tries-1)
	}
	if _, err := c.engines["bob"].Sign(context.Background(), newSpec(t, signers, failDeadline), req); !errors.Is(err, mpc.ErrPresignatureUnavailable) {
		t.Fatalf("bob reused a presignature: %v", err)
	}
	if c.engines["bob"].HasPresignature(key, 0, signers, id) || c.engines["carol"].HasPresignature(key, 0, signers, id) {
		t.Error("HasPresignature: a consumed presignature is still held")
	}
}
