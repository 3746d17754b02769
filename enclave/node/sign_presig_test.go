package node_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/approval"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/payload"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
)

// Alice and bob both initiate signs over the same signer set, [alice bob],
// and both claim the oldest presignature of their own copy of its pool:
// the same one. Before the judges promised presignatures, both proposals
// were accepted, each party used the presignature for whichever session
// reached it first, and a sign failed (INTERNAL, after the session's
// deadline). Now the lower initiator's proposal gets it on both parties,
// bob's is refused with coord.CodePresignature, and bob proposes again
// with the next presignature. Both signs succeed, with distinct nonces,
// and each party consumed each presignature once.
//
// Not a timing test: an approval callback holds both initiators' own
// judges (which run after the promise is taken, before the proposal goes
// out) until both have claimed, so the collision happens every run.
func TestTwoInitiatorsClaimTheSamePresignature(t *testing.T) {
	if raceEnabled {
		t.Skip("CMP presign takes minutes under -race; make test runs this without it")
	}
	barrier := &ownJudgesBarrier{open: make(chan struct{})}
	c := newClusterWith(t, fmt.Sprintf(blindPolicy, 1, true), barrier)
	info := c.loadFixtureKey(t)
	set := []mpc.PartyID{"alice", "bob"}
	c.waitPoolDepth(t, info.Key, set, 2) // Target 2 (newCluster)

	digests := map[mpc.PartyID][32]byte{"alice": sha256.Sum256([]byte("alice's")), "bob": sha256.Sum256([]byte("bob's"))}
	outs := map[mpc.PartyID]api.SignOutcome{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range set {
		wg.Go(func() {
			d := digests[id]
			out, err := c.nodes[id].Sign(context.Background(), api.SignParams{Caller: signer, OperationID: "op-" + string(id),
				Key: info.Key, Payload: payload.Request{Kind: payload.RawDigest, Bytes: d[:]}})
			if err != nil {
				t.Errorf("%s: %v", id, err)
			}
			mu.Lock()
			outs[id] = out
			mu.Unlock()
		})
	}
	wg.Wait()

	pub := must(btcec.ParsePubKey(info.PublicKey))
	var rs []string
	for _, id := range set {
		out, d := outs[id], digests[id]
		if out.State != api.StateSucceeded || len(out.Raw) < 64 {
			t.Fatalf("%s's sign: %+v", id, out)
		}
		var r, s btcec.ModNScalar
		r.SetByteSlice(out.Raw[:32])
		s.SetByteSlice(out.Raw[32:64])
		if !ecdsa.NewSignature(&r, &s).Verify(d[:], pub) {
			t.Fatalf("%s's signature does not verify", id)
		}
		rs = append(rs, fmt.Sprintf("%x", out.Raw[:32]))
	}
	if rs[0] == rs[1] {
		t.Fatal("both signatures have the same R: one presignature signed twice")
	}
	for _, id := range set {
		if got := c.consumed(id, info.Key, set); got != 2 {
			t.Errorf("%s consumed %d presignatures of [alice bob], want 2 (one per sign)", id, got)
		}
	}
	// The collision did happen: bob's first proposal was refused.
	if !c.audited(t, "bob", auditfmt.SignFailed, "refused by alice (presignature_unavailable)") {
		t.Error("bob's audit log has no sign refused for its presignature: the two signs did not collide")
	}
}

// ownJudgesBarrier is an approval callback that approves everything, but
// holds the first two judges of a cosigner's own proposal (the caller is
// not relayed "via" a peer) until both have come.
type ownJudgesBarrier struct {
	mu    sync.Mutex
	count int
	open  chan struct{}
}

func (b *ownJudgesBarrier) Ask(ctx context.Context, r approval.Request) (approval.Decision, error) {
	if !strings.Contains(r.Caller, " via ") {
		b.mu.Lock()
		if b.count++; b.count == 2 {
			close(b.open)
		}
		b.mu.Unlock()
		select {
		case <-b.open:
		case <-ctx.Done():
			return approval.Decision{}, ctx.Err()
		case <-time.After(2 * time.Minute):
			return approval.Decision{}, errors.New("test: the other initiator's judge never came")
		}
	}
	return approval.Decision{Verdict: approval.Approve}, nil
}

// fixtureFile is the part of enclave/mpc's CMP test vectors read here.
type fixtureFile struct {
	Records []struct {
		Key                  []byte
		Scheme               uint8
		Epoch                uint64
		Threshold            int
		Parties              []string
		Self                 string
		PublicKey, ChainCode []byte
		Share                []byte
	}
}

// loadFixtureKey stores enclave/mpc's 2-of-3 CMP test-vector key (alice,
// bob, carol: no keygen, which takes long) on every cosigner and enables
// its pools. Test vectors only: the shares are public.
func (c *cluster) loadFixtureKey(t *testing.T) mpc.KeyInfo {
	t.Helper()
	var ff fixtureFile
	if err := cbor.Unmarshal(must(os.ReadFile("../mpc/testdata/cmp-2-of-3.cbor")), &ff); err != nil {
		t.Fatal(err)
	}
	var info mpc.KeyInfo
	for _, r := range ff.Records {
		rec := mpc.KeyRecord{Key: mpc.KeyID(r.Key), Scheme: mpc.Scheme(r.Scheme), Epoch: r.Epoch, Threshold: r.Threshold,
			Self: mpc.PartyID(r.Self), PublicKey: r.PublicKey, ChainCode: r.ChainCode, Share: r.Share}
		for _, p := range r.Parties {
			rec.Parties = append(rec.Parties, mpc.PartyID(p))
		}
		if err := c.stores[rec.Self].PutKey(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		info = mpc.KeyInfo{Key: rec.Key, Scheme: rec.Scheme, Epoch: rec.Epoch, Threshold: rec.Threshold,
			Parties: rec.Parties, PublicKey: rec.PublicKey, ChainCode: rec.ChainCode}
	}
	if len(ff.Records) != len(abc) || info.Scheme != mpc.SchemeECDSA {
		t.Fatalf("the fixture holds %d records of scheme %v", len(ff.Records), info.Scheme)
	}
	for _, id := range abc {
		c.nodes[id].EnablePools(context.Background(), info)
	}
	return info
}

// pool returns party's stats of the pool of key and signers.
func (c *cluster) pool(party mpc.PartyID, key mpc.KeyID, signers []mpc.PartyID) mpc.PoolStats {
	for _, p := range c.engines[party].Pools() {
		if p.Key == key && fmt.Sprint(p.Signers) == fmt.Sprint(signers) {
			return p
		}
	}
	return mpc.PoolStats{}
}

func (c *cluster) consumed(party mpc.PartyID, key mpc.KeyID, signers []mpc.PartyID) uint64 {
	return c.pool(party, key, signers).Consumed
}

// waitPoolDepth waits until every signer's copy of the pool holds depth
// presignatures and no refill runs.
func (c *cluster) waitPoolDepth(t *testing.T, key mpc.KeyID, signers []mpc.PartyID, depth int) {
	t.Helper()
	for end := time.Now().Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		full := true
		for _, id := range signers {
			p := c.pool(id, key, signers)
			full = full && p.Depth == depth && p.InFlight == 0
		}
		if full {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("the pool of %v never held %d presignatures on every signer", signers, depth)
		}
	}
}

// audited reports whether party's audit log has an entry of type typ
// whose reason contains reason. Outcome entries are written as sessions
// end, so it waits a little for one.
func (c *cluster) audited(t *testing.T, party mpc.PartyID, typ auditfmt.Type, reason string) bool {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, r := range must(c.audits[party].Read(context.Background(), 1, 100)) {
			if r.Entry.Type == typ && strings.Contains(r.Entry.Reason, reason) {
				return true
			}
		}
	}
	return false
}
