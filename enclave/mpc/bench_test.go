package mpc_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/taurusgroup/multi-party-sig/pkg/ecdsa"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/pkg/party"
	"github.com/taurusgroup/multi-party-sig/pkg/protocol"
	"github.com/taurusgroup/multi-party-sig/protocols/cmp"
	"github.com/taurusgroup/multi-party-sig/protocols/frost"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// Every benchmark runs the engine and, in the same iteration, the bare
// library doing the same work (handlers driven directly over channels, no
// encoding, no pool), and reports both times and their ratio
// (overhead-ratio = engine / library). ns/op covers both. Keygen times vary
// a lot from run to run (safe-prime search), so their ratio is noisy at
// small b.N.

type benchConfig struct {
	name    string
	n, t    int
	signers []mpc.PartyID
}

var benchConfigs = []benchConfig{
	{"2-of-3", 3, 2, []mpc.PartyID{"alice", "bob"}},
	{"3-of-5", 5, 3, []mpc.PartyID{"alice", "bob", "carol"}},
}

// pair times the engine and the library, alternating which goes first.
type pair struct{ engine, lib time.Duration }

func (p *pair) run(i int, engine, lib func()) {
	first, second := engine, lib
	firstD, secondD := &p.engine, &p.lib
	if i%2 == 1 {
		first, second, firstD, secondD = lib, engine, secondD, firstD
	}
	began := time.Now()
	first()
	*firstD += time.Since(began)
	began = time.Now()
	second()
	*secondD += time.Since(began)
}

// cheapReps repeats the millisecond operations within each b.N iteration,
// so that even make bench's -benchtime 1x gives a stable ratio.
const cheapReps = 50

func (p *pair) report(b *testing.B) { p.reportN(b, b.N) }

func (p *pair) reportN(b *testing.B, ops int) {
	n := float64(ops)
	b.ReportMetric(p.engine.Seconds()*1e3/n, "engine-ms/op")
	b.ReportMetric(p.lib.Seconds()*1e3/n, "lib-ms/op")
	b.ReportMetric(p.engine.Seconds()/p.lib.Seconds(), "overhead-ratio")
}

// libRun drives bare library handlers to completion and returns results.
func libRun(b *testing.B, starts map[party.ID]protocol.StartFunc, sid []byte) map[party.ID]any {
	inbound := map[party.ID]chan *protocol.Message{}
	handlers := map[party.ID]*protocol.MultiHandler{}
	for id, start := range starts {
		h, err := protocol.NewMultiHandler(start, sid)
		if err != nil {
			b.Fatal(err)
		}
		handlers[id], inbound[id] = h, make(chan *protocol.Message, 4096)
	}
	var mu sync.Mutex
	results := map[party.ID]any{}
	var wg sync.WaitGroup
	for id, h := range handlers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := libParty(h, inbound, id)
			mu.Lock()
			results[id] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	for id, r := range results {
		if err, ok := r.(error); ok {
			b.Fatalf("library %s: %v", id, err)
		}
	}
	return results
}

// libParty runs one party: a goroutine forwards its messages, this one
// accepts incoming ones.
func libParty(h *protocol.MultiHandler, inbound map[party.ID]chan *protocol.Message, self party.ID) any {
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
			res, err := h.Result()
			if err != nil {
				return err
			}
			return res
		}
	}
}

func libIDs(ids []mpc.PartyID) []party.ID {
	out := make([]party.ID, len(ids))
	for i, id := range ids {
		out[i] = party.ID(id)
	}
	return out
}

// libConfigs decodes each party's stored CMP config for the library runs.
func libConfigs(b *testing.B, c *cluster, key mpc.KeyID) map[party.ID]*cmp.Config {
	out := map[party.ID]*cmp.Config{}
	for _, p := range c.parties {
		rec, err := c.stores[p].GetKey(context.Background(), key)
		if err != nil {
			b.Fatal(err)
		}
		cfg := cmp.EmptyConfig(curve.Secp256k1{})
		if err := cfg.UnmarshalBinary(rec.Share); err != nil {
			b.Fatal(err)
		}
		out[party.ID(p)] = cfg
	}
	return out
}

func startsFor(ids []mpc.PartyID, f func(id party.ID) protocol.StartFunc) map[party.ID]protocol.StartFunc {
	out := map[party.ID]protocol.StartFunc{}
	for _, id := range libIDs(ids) {
		out[id] = f(id)
	}
	return out
}

func BenchmarkCMPKeygen(b *testing.B) {
	for _, bc := range benchConfigs {
		b.Run(bc.name, func(b *testing.B) {
			parties := partiesN(bc.n)
			c := newCluster(b, parties, nil)
			var p pair
			for i := 0; i < b.N; i++ {
				p.run(i, func() {
					spec := newSpec(b, parties, okDeadline)
					allOK(b, onEach(c, parties, func(e *mpc.Engine) (mpc.KeyInfo, error) {
						return e.Keygen(context.Background(), spec, bc.t)
					}))
				}, func() {
					libRun(b, startsFor(parties, func(id party.ID) protocol.StartFunc {
						return cmp.Keygen(curve.Secp256k1{}, id, libIDs(parties), bc.t-1, nil)
					}), []byte(fmt.Sprint("kg", i)))
				})
			}
			p.report(b)
		})
	}
}

func BenchmarkCMPRefresh(b *testing.B) {
	for _, bc := range benchConfigs {
		b.Run(bc.name, func(b *testing.B) {
			fx := cmpKey(b, bc.n, bc.t)
			c := newCluster(b, fx.parties, fx.clonedStores())
			cfgs := libConfigs(b, c, fx.info.Key)
			var p pair
			for i := 0; i < b.N; i++ {
				p.run(i, func() {
					spec := newSpec(b, fx.parties, okDeadline)
					allOK(b, onEach(c, fx.parties, func(e *mpc.Engine) (mpc.KeyInfo, error) {
						return e.Refresh(context.Background(), spec, fx.info.Key, uint64(i))
					}))
				}, func() {
					libRun(b, startsFor(fx.parties, func(id party.ID) protocol.StartFunc {
						return cmp.Refresh(cfgs[id], nil)
					}), []byte(fmt.Sprint("rf", i)))
				})
			}
			p.report(b)
		})
	}
}

func BenchmarkCMPPresign(b *testing.B) {
	for _, bc := range benchConfigs {
		b.Run(bc.name, func(b *testing.B) {
			fx := cmpKey(b, bc.n, bc.t)
			c := newCluster(b, fx.parties, fx.clonedStores())
			cfgs := libConfigs(b, c, fx.info.Key)
			var p pair
			for i := 0; i < b.N; i++ {
				p.run(i, func() {
					presignOn(b, c, fx.info.Key, 0, bc.signers)
				}, func() {
					libRun(b, startsFor(bc.signers, func(id party.ID) protocol.StartFunc {
						return cmp.Presign(cfgs[id], libIDs(bc.signers), nil)
					}), []byte(fmt.Sprint("ps", i)))
				})
			}
			p.report(b)
		})
	}
}

func BenchmarkCMPSign(b *testing.B) {
	for _, bc := range benchConfigs {
		b.Run(bc.name, func(b *testing.B) {
			fx := cmpKey(b, bc.n, bc.t)
			c := newCluster(b, fx.parties, fx.clonedStores())
			cfgs := libConfigs(b, c, fx.info.Key)
			digest := randomDigest(b)
			var p pair
			for i := 0; i < b.N; i++ {
				p.run(i, func() {
					signOn(b, c, bc.signers, mpc.SignRequest{Key: fx.info.Key, Digest: digest})
				}, func() {
					libRun(b, startsFor(bc.signers, func(id party.ID) protocol.StartFunc {
						return cmp.Sign(cfgs[id], libIDs(bc.signers), digest, nil)
					}), []byte(fmt.Sprint("s", i)))
				})
			}
			p.report(b)
		})
	}
}

// BenchmarkCMPSignPresigned measures the online sign from a warm pool. To
// avoid a presign per iteration, one presignature is filed again under a
// fresh ID each time: that reuse would leak a real key and is done only
// here, through a test-only hook.
func BenchmarkCMPSignPresigned(b *testing.B) {
	for _, bc := range benchConfigs {
		b.Run(bc.name, func(b *testing.B) {
			fx := cmpKey(b, bc.n, bc.t)
			c := newCluster(b, fx.parties, fx.clonedStores())
			cfgs := libConfigs(b, c, fx.info.Key)
			id := presignOn(b, c, fx.info.Key, 0, bc.signers)
			presigs := map[party.ID]*ecdsa.PreSignature{}
			for _, s := range bc.signers {
				presigs[party.ID(s)] = c.engines[s].PresignatureForTest(fx.info.Key, bc.signers, id)
			}
			digest := randomDigest(b)
			var p pair
			b.ResetTimer()
			for i := 0; i < b.N*cheapReps; i++ {
				spec := newSpec(b, bc.signers, okDeadline)
				for _, s := range bc.signers {
					c.engines[s].AddPresignatureForTest(fx.info.Key, bc.signers, 0, mpc.PresignatureID(spec.ID), presigs[party.ID(s)])
				}
				req := mpc.SignRequest{Key: fx.info.Key, Digest: digest, Presignature: mpc.PresignatureID(spec.ID)}
				p.run(i, func() {
					allOK(b, onEach(c, bc.signers, func(e *mpc.Engine) (mpc.Signature, error) {
						return e.Sign(context.Background(), spec, req)
					}))
				}, func() {
					libRun(b, startsFor(bc.signers, func(id party.ID) protocol.StartFunc {
						return cmp.PresignOnline(cfgs[id], presigs[id], digest, nil)
					}), []byte(fmt.Sprint("po", i)))
				})
			}
			p.reportN(b, b.N*cheapReps)
		})
	}
}

func BenchmarkFROSTKeygen(b *testing.B) {
	parties := partiesN(3)
	c := newCluster(b, parties, nil)
	var p pair
	for i := 0; i < b.N*cheapReps; i++ {
		p.run(i, func() {
			spec := newSpec(b, parties, okDeadline)
			allOK(b, onEach(c, parties, func(e *mpc.Engine) (mpc.KeyInfo, error) {
				return e.FROSTKeygen(context.Background(), spec, 2)
			}))
		}, func() {
			libRun(b, startsFor(parties, func(id party.ID) protocol.StartFunc {
				return frost.KeygenTaproot(id, libIDs(parties), 1)
			}), []byte(fmt.Sprint("fk", i)))
		})
	}
	p.reportN(b, b.N*cheapReps)
}

func BenchmarkFROSTSign(b *testing.B) {
	fx := frostKey(b, 3, 2)
	c := newCluster(b, fx.parties, fx.clonedStores())
	signers := []mpc.PartyID{"alice", "bob"}
	cfgs := libTaprootConfigs(b, c, fx.info.Key, signers)
	digest := randomDigest(b)
	var p pair
	b.ResetTimer()
	for i := 0; i < b.N*cheapReps; i++ {
		p.run(i, func() {
			signOn(b, c, signers, mpc.SignRequest{Key: fx.info.Key, Digest: digest})
		}, func() {
			libRun(b, startsFor(signers, func(id party.ID) protocol.StartFunc {
				return frost.SignTaproot(cfgs[id], libIDs(signers), digest)
			}), []byte(fmt.Sprint("fs", i)))
		})
	}
	p.reportN(b, b.N*cheapReps)
}

// libTaprootConfigs gets the library configs by running a library keygen
// of its own (the engine's stored FROST form is private); the work per
// sign is the same.
func libTaprootConfigs(b *testing.B, c *cluster, key mpc.KeyID, signers []mpc.PartyID) map[party.ID]*frost.TaprootConfig {
	res := libRun(b, startsFor(c.parties, func(id party.ID) protocol.StartFunc {
		return frost.KeygenTaproot(id, libIDs(c.parties), 1)
	}), []byte("frost-lib-key"))
	out := map[party.ID]*frost.TaprootConfig{}
	for id, r := range res {
		out[id] = r.(*frost.TaprootConfig)
	}
	return out
}
