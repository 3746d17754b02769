//go:build !release

package harness

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/pkg/party"
	"github.com/taurusgroup/multi-party-sig/pkg/protocol"
	"github.com/taurusgroup/multi-party-sig/protocols/cmp"
)

// The bare multi-party-sig library, every party in this process: handlers
// driven directly, messages passed as Go values over channels (no
// encoding, no transport, no storage, no presignature pool). This is a
// minimal driver of our own, the same scheme as the one in
// enclave/mpc/bench_test.go (which a _test file cannot share).

// libKeys are every party's CMP config of one key.
type libKeys map[party.ID]*cmp.Config

func libParties(n int) []party.ID {
	ids := make([]party.ID, n)
	for i := range ids {
		ids[i] = party.ID(fmt.Sprintf("cosigner-%d", i+1))
	}
	return ids
}

// libKeygen runs a CMP keygen of n parties with threshold t (t signers).
func libKeygen(n, t int) (libKeys, time.Duration, error) {
	ids := libParties(n)
	starts := map[party.ID]protocol.StartFunc{}
	for _, id := range ids {
		starts[id] = cmp.Keygen(curve.Secp256k1{}, id, ids, t-1, nil)
	}
	return libConfigs(starts)
}

// libRefresh refreshes every party's share of keys.
func libRefresh(keys libKeys) (libKeys, time.Duration, error) {
	starts := map[party.ID]protocol.StartFunc{}
	for id, cfg := range keys {
		starts[id] = cmp.Refresh(cfg, nil)
	}
	return libConfigs(starts)
}

// libSign runs a full CMP sign (presign and online rounds) of digest by
// the first t parties.
func libSign(keys libKeys, t int, digest []byte) (time.Duration, error) {
	signers := libParties(len(keys))[:t]
	starts := map[party.ID]protocol.StartFunc{}
	for _, id := range signers {
		starts[id] = cmp.Sign(keys[id], signers, digest, nil)
	}
	_, d, err := libRun(starts)
	return d, err
}

func libConfigs(starts map[party.ID]protocol.StartFunc) (libKeys, time.Duration, error) {
	res, d, err := libRun(starts)
	if err != nil {
		return nil, 0, err
	}
	keys := libKeys{}
	for id, r := range res {
		cfg, ok := r.(*cmp.Config)
		if !ok {
			return nil, 0, fmt.Errorf("library: %s returned %T", id, r)
		}
		keys[id] = cfg
	}
	return keys, d, nil
}

// libRun runs the handlers to completion and returns their results and
// the time from the first start to the last result.
func libRun(starts map[party.ID]protocol.StartFunc) (map[party.ID]any, time.Duration, error) {
	sid := make([]byte, 16)
	rand.Read(sid)
	begin := time.Now()
	inbound := map[party.ID]chan *protocol.Message{}
	handlers := map[party.ID]*protocol.MultiHandler{}
	for id, start := range starts {
		h, err := protocol.NewMultiHandler(start, sid)
		if err != nil {
			return nil, 0, err
		}
		handlers[id], inbound[id] = h, make(chan *protocol.Message, 4096)
	}
	var mu sync.Mutex
	results := map[party.ID]any{}
	var errs []error
	var wg sync.WaitGroup
	for id, h := range handlers {
		wg.Go(func() {
			res, err := libParty(h, inbound, id)
			mu.Lock()
			defer mu.Unlock()
			results[id] = res
			if err != nil {
				errs = append(errs, fmt.Errorf("library %s: %w", id, err))
			}
		})
	}
	wg.Wait()
	return results, time.Since(begin), errors.Join(errs...)
}

// libParty runs one party: a goroutine forwards its outgoing messages,
// this one feeds it incoming ones.
func libParty(h *protocol.MultiHandler, inbound map[party.ID]chan *protocol.Message, self party.ID) (any, error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range h.Listen() {
			for to, ch := range inbound {
				if to != self && m.IsFor(to) {
					ch <- m
				}
			}
		}
	}()
	for {
		select {
		case m := <-inbound[self]:
			h.Accept(m)
		case <-done:
			return h.Result()
		}
	}
}
