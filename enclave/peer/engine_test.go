package peer_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
)

// startEngines connects the nodes' fake links to each other's Deliver and
// runs an engine per node until the test ends.
func startEngines(t *testing.T, nodes map[mpc.PartyID]*node) map[mpc.PartyID]*mpc.Engine {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	engines := map[mpc.PartyID]*mpc.Engine{}
	for id, n := range nodes {
		n.link.deliver = func(to string, frame []byte) { nodes[mpc.PartyID(to)].peer.Deliver(ctx, frame) }
		e := must(mpc.New(mpc.Config{Self: id, Transport: n.peer, Store: mpctest.NewMemStore()}))
		engines[id] = e
		wg.Go(func() { _ = e.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return engines
}

// onAll opens a session on every party, runs op on each and closes it.
func onAll[T any](t *testing.T, nodes map[mpc.PartyID]*node, engines map[mpc.PartyID]*mpc.Engine,
	parties []mpc.PartyID, op func(*mpc.Engine, mpc.SessionSpec) (T, error)) map[mpc.PartyID]T {
	t.Helper()
	spec := mpc.SessionSpec{ID: newSessionID(t), Parties: parties, Deadline: time.Now().Add(30 * time.Second)}
	openAll(t, nodes, spec.ID, parties...)
	out := make(map[mpc.PartyID]T, len(parties))
	errs := make(map[mpc.PartyID]error, len(parties))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range parties {
		wg.Go(func() {
			v, err := op(engines[id], spec)
			nodes[id].peer.Close(spec.ID)
			mu.Lock()
			defer mu.Unlock()
			out[id], errs[id] = v, err
		})
	}
	wg.Wait()
	for id, err := range errs {
		if err != nil {
			for id, n := range nodes {
				t.Logf("%s: %+v", id, n.peer.Stats())
			}
			t.Fatalf("%s: %v", id, err)
		}
	}
	return out
}

func TestFROSTOverPeers(t *testing.T) {
	nodes := newNodes(t, 0, abc...)
	engines := startEngines(t, nodes)
	keys := onAll(t, nodes, engines, abc, func(e *mpc.Engine, s mpc.SessionSpec) (mpc.KeyInfo, error) {
		return e.FROSTKeygen(context.Background(), s, 2)
	})
	key := keys["alice"]
	digest := make([]byte, 32)
	rand.Read(digest)
	signers := []mpc.PartyID{"alice", "carol"}
	sigs := onAll(t, nodes, engines, signers, func(e *mpc.Engine, s mpc.SessionSpec) (mpc.Signature, error) {
		return e.Sign(context.Background(), s, mpc.SignRequest{Key: key.Key, Digest: digest})
	})
	pk := must(schnorr.ParsePubKey(key.PublicKey))
	sig := must(schnorr.ParseSignature(sigs["carol"].Bytes()))
	if !sig.Verify(digest, pk) {
		t.Fatal("BIP-340 signature does not verify")
	}
	for id, n := range nodes {
		st := n.peer.Stats()
		if st.Wire.Accepted == 0 || st.QueueFull != 0 || st.SendFailed != 0 {
			t.Errorf("%s: stats %+v", id, st)
		}
	}
}
