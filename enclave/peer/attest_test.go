package peer_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
)

// KeepAttested swaps in fresh documents, and peers accept frames stamped
// with them; a failing attester leaves the current document in place.
func TestKeepAttested(t *testing.T) {
	nodes := newNodes(t, 0, abc...)
	alice := nodes["alice"]
	var calls atomic.Int32
	attest := func(context.Context) ([]byte, error) {
		if calls.Add(1) == 1 {
			return nil, errors.New("NSM busy")
		}
		return testCA().Attest(attestsim.Request{PCRs: pcrs(), UserData: alice.member().Binding(), Time: time.Now()})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- alice.peer.KeepAttested(ctx, attest, 10*time.Millisecond) }()
	for end := time.Now().Add(10 * time.Second); alice.peer.Stats().Refreshed < 2; {
		if time.Now().After(end) {
			t.Fatalf("refreshed %d times in 10s", alice.peer.Stats().Refreshed)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("KeepAttested = %v", err)
	}
	if calls.Load() < 3 {
		t.Errorf("attester called %d times; the failure was not retried", calls.Load())
	}
	sid := newSessionID(t)
	openAll(t, nodes, sid, abc...)
	s := sendOne(t, alice, mpc.Envelope{Session: sid, From: "alice", To: "bob", Protocol: "p", Round: 1, Payload: []byte("x")})
	nodes["bob"].peer.Deliver(context.Background(), s.frame)
	receiveNow(t, nodes["bob"].peer)
}
