package mpc

import (
	"slices"
	"strings"
	"time"

	"github.com/taurusgroup/multi-party-sig/pkg/ecdsa"
)

// PoolConfig tunes the presignature pools.
type PoolConfig struct {
	// Target is the depth a refill brings a pool back to; LowWater the
	// depth below which the proposer starts refilling. Defaults 8 and 4.
	Target, LowWater int
	// Timeout is the deadline of a background presign session. Default
	// 2 minutes.
	Timeout time.Duration
	// Concurrent is how many presign sessions one pool runs at a time.
	// Default 1: presign is CPU-bound and shares the enclave's cores with
	// signing.
	Concurrent int
	// ClaimTTL is how long a presignature claimed by the proposer waits for
	// its sign before it is discarded (never returned). Default 5 minutes.
	ClaimTTL time.Duration
}

func (c PoolConfig) withDefaults() PoolConfig {
	if c.Target <= 0 {
		c.Target = 8
	}
	if c.LowWater <= 0 || c.LowWater > c.Target {
		c.LowWater = min(4, c.Target)
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.Concurrent <= 0 {
		c.Concurrent = 1
	}
	if c.ClaimTTL <= 0 {
		c.ClaimTTL = 5 * time.Minute
	}
	return c
}

// capacity is the most presignatures a pool holds; past it the oldest is
// evicted. Non-proposers need slack: a presignature the proposer lost (its
// session failed only there) is never named and must age out.
func (c PoolConfig) capacity() int { return 2*c.Target + c.Concurrent }

// PoolStats is a snapshot of one pool.
type PoolStats struct {
	Key      KeyID
	Epoch    uint64
	Signers  []PartyID
	Proposer bool // this party proposes the pool's refills
	Refill   bool // background refill is enabled
	// Depth counts presignatures ready to use; Claimed those the proposer
	// has named for a sign that has not started; InFlight presign sessions
	// running for the pool.
	Depth, Claimed, InFlight int
	Target, LowWater         int
	// Made, Consumed, Failed and Evicted count since the pool was created.
	Made, Consumed, Failed, Evicted uint64
	// RefillPerMinute is the rate presignatures were added over the last
	// few additions; 0 until there are two.
	RefillPerMinute float64
}

// presig is one presignature in memory. It prints redacted.
type presig struct {
	redactor
	id    PresignatureID
	since time.Time // when it was made, or claimed
	ps    *ecdsa.PreSignature
}

// poolKey names a pool: one per key and signer set.
type poolKey struct {
	key     KeyID
	signers string // sorted IDs joined by a byte IDs cannot contain
}

func makePoolKey(key KeyID, signers []PartyID) poolKey {
	ss := make([]string, len(signers))
	for i, s := range signers {
		ss[i] = string(s)
	}
	return poolKey{key: key, signers: strings.Join(ss, "\x00")}
}

// presigPool holds the presignatures of one key and signer set. It has no
// lock of its own: every access is under Engine.poolsMu, which makes
// taking a presignature atomic across the engine.
type presigPool struct {
	key      KeyID
	signers  []PartyID
	epoch    uint64
	proposer bool
	refill   bool
	avail    []*presig // oldest first
	claimed  map[PresignatureID]*presig
	inFlight int
	filling  bool
	retryAt  time.Time
	backoff  time.Duration
	made     []time.Time // last few additions, for the rate
	stats    PoolStats
}

func newPresigPool(key KeyID, signers []PartyID, epoch uint64, self PartyID) *presigPool {
	return &presigPool{
		key: key, signers: signers, epoch: epoch, proposer: proposerOf(signers) == self,
		claimed: map[PresignatureID]*presig{},
	}
}

// proposerOf is the one party that proposes refills for a signer set: the
// lowest ID. Every party computes the same answer, so no two parties
// propose for the same pool and parties never race to make duplicates.
func proposerOf(signers []PartyID) PartyID { return slices.Min(signers) }

// reset drops every presignature (they belong to an older epoch).
func (p *presigPool) reset(epoch uint64) {
	p.epoch = epoch
	p.stats.Evicted += uint64(len(p.avail) + len(p.claimed))
	p.avail = nil
	clear(p.claimed)
}

// add stores a new presignature, evicting the oldest past capacity.
func (p *presigPool) add(ps *presig, capacity int) {
	p.avail = append(p.avail, ps)
	for len(p.avail) > capacity {
		p.avail = p.avail[1:]
		p.stats.Evicted++
	}
	p.stats.Made++
	p.made = append(p.made, ps.since)
	if len(p.made) > 16 {
		p.made = p.made[1:]
	}
}

// take removes and returns the presignature with that ID, ready or
// claimed. Once removed it is never back in any pool.
func (p *presigPool) take(id PresignatureID) *presig {
	if ps := p.claimed[id]; ps != nil {
		delete(p.claimed, id)
		p.stats.Consumed++
		return ps
	}
	i := slices.IndexFunc(p.avail, func(ps *presig) bool { return ps.id == id })
	if i < 0 {
		return nil
	}
	ps := p.avail[i]
	p.avail = slices.Delete(p.avail, i, i+1)
	p.stats.Consumed++
	return ps
}

// has reports whether the presignature with that ID is ready or claimed.
func (p *presigPool) has(id PresignatureID) bool {
	return p.claimed[id] != nil || slices.ContainsFunc(p.avail, func(ps *presig) bool { return ps.id == id })
}

// claim moves the oldest ready presignature to the claimed set.
func (p *presigPool) claim(now time.Time, ttl time.Duration) (PresignatureID, bool) {
	p.expireClaims(now, ttl)
	if len(p.avail) == 0 {
		return PresignatureID{}, false
	}
	ps := p.avail[0]
	p.avail = p.avail[1:]
	ps.since = now // the claim's age, for expiry
	p.claimed[ps.id] = ps
	return ps.id, true
}

func (p *presigPool) expireClaims(now time.Time, ttl time.Duration) {
	for id, ps := range p.claimed {
		if now.Sub(ps.since) > ttl {
			delete(p.claimed, id)
			p.stats.Evicted++
		}
	}
}

// wants reports how many refill sessions the proposer should start now:
// once the depth falls below the low-water mark it fills up to the target,
// at most cfg.Concurrent sessions at a time.
func (p *presigPool) wants(cfg PoolConfig, now time.Time) int {
	if !p.proposer || !p.refill || now.Before(p.retryAt) {
		return 0
	}
	if len(p.avail) < cfg.LowWater {
		p.filling = true
	}
	if !p.filling {
		return 0
	}
	n := min(cfg.Target-len(p.avail)-p.inFlight, cfg.Concurrent-p.inFlight)
	if len(p.avail)+p.inFlight+max(n, 0) >= cfg.Target {
		p.filling = false
	}
	return max(n, 0)
}

// failed records a failed refill and backs off exponentially.
func (p *presigPool) failed(now time.Time) {
	p.stats.Failed++
	p.backoff = min(max(2*p.backoff, time.Second), time.Minute)
	p.retryAt = now.Add(p.backoff)
}

func (p *presigPool) snapshot(cfg PoolConfig) PoolStats {
	s := p.stats
	s.Key, s.Epoch, s.Signers = p.key, p.epoch, slices.Clone(p.signers)
	s.Proposer, s.Refill = p.proposer, p.refill
	s.Depth, s.Claimed, s.InFlight = len(p.avail), len(p.claimed), p.inFlight
	s.Target, s.LowWater = cfg.Target, cfg.LowWater
	s.RefillPerMinute = rate(p.made)
	return s
}

func rate(times []time.Time) float64 {
	if len(times) < 2 {
		return 0
	}
	span := times[len(times)-1].Sub(times[0])
	if span <= 0 {
		return 0
	}
	return float64(len(times)-1) / span.Minutes()
}
