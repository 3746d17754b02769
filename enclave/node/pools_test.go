package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/node"
)

func TestPoolSets(t *testing.T) {
	info := mpc.KeyInfo{Threshold: 2, Parties: []mpc.PartyID{"alice", "bob", "carol"}}
	got := fmt.Sprint(node.PoolSets(info))
	if got != "[[alice bob] [alice carol]]" {
		t.Fatalf("2-of-3 pool sets %s", got)
	}
	info = mpc.KeyInfo{Threshold: 3, Parties: []mpc.PartyID{"a", "b", "c", "d", "e"}}
	if got := fmt.Sprint(node.PoolSets(info)); got != "[[a b c] [a b d] [a b e]]" {
		t.Fatalf("3-of-5 pool sets %s", got)
	}
}

// After a CMP keygen every party enables its pools; the proposer of each
// set refills it through the coordinator (sessions opened on every
// signer first), and a sign then uses a presignature from the pool. CMP
// presign takes minutes under the race detector: this runs in the
// non-race pass of make test.
func TestPresignaturePoolsThroughCoordinator(t *testing.T) {
	if raceEnabled {
		t.Skip("CMP keygen and presign take minutes under -race; make test runs this without it")
	}
	c := newCluster(t, fmt.Sprintf(blindPolicy, 1, true))
	key, err := c.nodes["alice"].CreateKey(context.Background(), api.CreateKeyParams{Caller: signer, Scheme: mpc.SchemeECDSA,
		Threshold: 2, Parties: abc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	depth := func() int {
		for _, p := range c.engines["alice"].Pools() {
			if p.Key == key.Info.Key && fmt.Sprint(p.Signers) == "[alice bob]" {
				return p.Depth
			}
		}
		return 0
	}
	for end := time.Now().Add(2 * time.Minute); depth() < 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("alice's pool with bob never filled: %+v", c.engines["alice"].Pools())
		}
	}
	before := depth()
	digest := sha256.Sum256([]byte("online sign"))
	out := c.signDigest(t, "alice", key, digest[:])
	if out.State != api.StateSucceeded {
		t.Fatalf("outcome %+v", out)
	}
	var consumed uint64
	for _, p := range c.engines["bob"].Pools() {
		consumed += p.Consumed
	}
	if consumed != 1 {
		t.Errorf("bob consumed %d presignatures (alice's pool went from %d to %d), want the sign to use one", consumed, before, depth())
	}
	pub, err := btcec.ParsePubKey(key.Info.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var r, s btcec.ModNScalar
	r.SetByteSlice(out.Raw[:32])
	s.SetByteSlice(out.Raw[32:64])
	if !ecdsa.NewSignature(&r, &s).Verify(digest[:], pub) {
		t.Fatal("btcec does not verify the presigned signature")
	}

	// Refresh through the coordinator: every party moves to epoch 1 with
	// new shares of the same key, and the key still signs.
	refreshed, err := c.nodes["bob"].RefreshKey(context.Background(), signer, key.Info.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if refreshed.Info.Epoch != 1 || !bytes.Equal(refreshed.Info.PublicKey, key.Info.PublicKey) {
		t.Fatalf("refreshed key %+v", refreshed.Info)
	}
	digest = sha256.Sum256([]byte("after the refresh"))
	out = c.signDigest(t, "carol", key, digest[:])
	if out.State != api.StateSucceeded {
		t.Fatalf("sign after the refresh: %+v", out)
	}
	r.SetByteSlice(out.Raw[:32])
	s.SetByteSlice(out.Raw[32:64])
	if !ecdsa.NewSignature(&r, &s).Verify(digest[:], pub) {
		t.Fatal("btcec does not verify the signature made with refreshed shares")
	}
}
