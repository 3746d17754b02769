package coord_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
)

// Regression test (test/reliability's crash suite found it: a cosigner
// killed while storing its share of a new key, and CreateKey still
// reported the key created). A keygen whose share one party fails to
// store is not reported done by the initiator, who stored its own; with
// every store working it is, as soon as all have stored.
func TestKeygenDoneOnlyWhenEveryShareStored(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	net := mpctest.NewNetwork(abc...)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); net.Close() })
	coords, stores := map[mpc.PartyID]*coord.Coordinator{}, map[mpc.PartyID]*mpctest.MemStore{}
	for _, id := range abc {
		mux := coord.NewMux(net.Transport(id))
		stores[id] = mpctest.NewMemStore()
		eng := must(mpc.New(mpc.Config{Self: id, Transport: mux.Engine(), Store: stores[id]}))
		coords[id] = must(coord.New(coord.Config{Self: id, Mux: mux, Sessions: &openLog{open: map[mpc.SessionID]bool{}},
			Engine: eng, Judge: &judge{}, AcceptTimeout: 2 * time.Second}))
		for _, run := range []func(context.Context) error{mux.Run, eng.Run, coords[id].Run} {
			wg.Go(func() { _ = run(ctx) })
		}
	}
	if _, err := coords["alice"].Initiate(ctx, proposal(t, coord.OpFROSTKeygen, abc, time.Minute)); err != nil {
		t.Fatalf("keygen with every store working: %v", err)
	}
	stores["carol"].SetFailure(mpctest.FailBefore) // carol "crashes" before her share is durable
	_, err := coords["alice"].Initiate(ctx, proposal(t, coord.OpFROSTKeygen, abc, time.Minute))
	if !errors.Is(err, coord.ErrNotStored) {
		t.Fatalf("keygen without carol's share stored: %v, want ErrNotStored", err)
	}
	if stores["alice"].Puts() != 2 || stores["carol"].Puts() != 1 {
		t.Fatalf("puts: alice %d, carol %d", stores["alice"].Puts(), stores["carol"].Puts())
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
