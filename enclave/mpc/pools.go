package mpc

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// refillTick is how often the refill loop looks at the pools even when
// nothing kicked it (to resume after a back-off).
const refillTick = 250 * time.Millisecond

// EnablePool turns on background refill for the pool of an ECDSA key and a
// signer set. Every signer of the set must enable it: the set's proposer
// (its lowest party ID) proposes presign sessions, and the others join
// only proposals for pools they enabled.
func (e *Engine) EnablePool(ctx context.Context, key KeyID, signers []PartyID) error {
	parties, err := sortedParties(signers)
	if err != nil {
		return err
	}
	ks, err := e.loadKey(ctx, key)
	if err != nil {
		return err
	}
	if err := checkKeyUse(ks, parties, ks.meta.Epoch, SchemeECDSA); err != nil {
		return err
	}
	if !slices.Contains(parties, e.self) {
		return fmt.Errorf("%w: this party is not a signer", ErrInvalidRequest)
	}
	e.poolsMu.Lock()
	e.pool(key, parties, ks.meta.Epoch).refill = true
	e.poolsMu.Unlock()
	e.kickRefill()
	return nil
}

// pool returns the pool of key and signers, creating it. Callers hold
// poolsMu.
func (e *Engine) pool(key KeyID, signers []PartyID, epoch uint64) *presigPool {
	pk := makePoolKey(key, signers)
	p := e.pools[pk]
	if p == nil {
		p = newPresigPool(key, signers, epoch, e.self)
		e.pools[pk] = p
	}
	return p
}

// ClaimPresignature is for the coordinator of a sign: it removes the oldest
// ready presignature of the key, epoch and signer set from this party's
// pool and returns its ID, to be named in the sign proposal and passed to
// Sign (here and on every signer). A claimed presignature is never handed
// out again; if its sign never starts it is discarded after ClaimTTL.
// ok is false when the pool is empty: the coordinator then proposes a full
// sign (a zero SignRequest.Presignature). Two coordinators of the same set
// may claim the same ID from their own pools at once; each party still
// uses it at most once, and the later of the two signs fails with
// ErrPresignatureUnavailable somewhere, unless the coordination layer
// keeps one sign per presignature (enclave/judge does, with
// HasPresignature).
func (e *Engine) ClaimPresignature(key KeyID, epoch uint64, signers []PartyID) (id PresignatureID, ok bool) {
	parties, err := sortedParties(signers)
	if err != nil {
		return PresignatureID{}, false
	}
	e.poolsMu.Lock()
	defer e.kickRefill()
	defer e.poolsMu.Unlock()
	p := e.pools[makePoolKey(key, parties)]
	if p == nil || p.epoch != epoch {
		return PresignatureID{}, false
	}
	return p.claim(e.now(), e.poolCfg.ClaimTTL)
}

// HasPresignature reports whether this party holds presignature id in the
// pool of key and signers at epoch, ready or claimed: whether a sign
// naming it could take it here now. It changes nothing; a coordination
// layer asks before it agrees to such a sign.
func (e *Engine) HasPresignature(key KeyID, epoch uint64, signers []PartyID, id PresignatureID) bool {
	parties, err := sortedParties(signers)
	if err != nil {
		return false
	}
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	p := e.pools[makePoolKey(key, parties)]
	return p != nil && p.epoch == epoch && p.has(id)
}

// takePresig removes a presignature for a sign. This is the consume-once
// point: under poolsMu, so two signs can never both get it.
func (e *Engine) takePresig(key KeyID, signers []PartyID, epoch uint64, id PresignatureID) (*presig, error) {
	e.poolsMu.Lock()
	defer e.kickRefill()
	defer e.poolsMu.Unlock()
	p := e.pools[makePoolKey(key, signers)]
	if p == nil || p.epoch != epoch {
		return nil, ErrPresignatureUnavailable
	}
	ps := p.take(id)
	if ps == nil {
		return nil, ErrPresignatureUnavailable
	}
	return ps, nil
}

// addPresig files a new presignature, unless the key moved to another
// epoch meanwhile.
func (e *Engine) addPresig(pk poolKey, signers []PartyID, epoch uint64, ps *presig) {
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	p := e.pool(pk.key, signers, epoch)
	if p.epoch == epoch {
		p.add(ps, e.poolCfg.capacity())
	}
}

// resetPools drops the key's presignatures after a refresh.
func (e *Engine) resetPools(key KeyID, epoch uint64) {
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	for _, p := range e.pools {
		if p.key == key && p.epoch < epoch {
			p.reset(epoch)
		}
	}
}

// Pools returns a snapshot of every pool, for metrics.
func (e *Engine) Pools() []PoolStats {
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	out := make([]PoolStats, 0, len(e.pools))
	for _, p := range e.pools {
		out = append(out, p.snapshot(e.poolCfg))
	}
	return out
}

func (e *Engine) kickRefill() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func (e *Engine) refillLoop(ctx context.Context) {
	t := time.NewTicker(refillTick)
	defer t.Stop()
	for {
		e.startRefills(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.kick:
		}
	}
}

// refillJob is one presign session a proposer starts.
type refillJob struct {
	pk      poolKey
	key     KeyID
	signers []PartyID
	epoch   uint64
}

func (e *Engine) startRefills(ctx context.Context) {
	for _, job := range e.dueRefills() {
		e.goBackground(func() { e.refill(ctx, job) })
	}
}

// dueRefills counts the sessions to start as in flight and returns them.
func (e *Engine) dueRefills() []refillJob {
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	var jobs []refillJob
	now := e.now()
	for pk, p := range e.pools {
		n := p.wants(e.poolCfg, now)
		p.inFlight += n
		for range n {
			jobs = append(jobs, refillJob{pk: pk, key: p.key, signers: p.signers, epoch: p.epoch})
		}
	}
	return jobs
}

// refill proposes one presign session to the other signers and runs it.
func (e *Engine) refill(ctx context.Context, job refillJob) {
	ps, err := e.proposeAndPresign(ctx, job)
	e.finishRefill(job, ps, err)
}

func (e *Engine) proposeAndPresign(ctx context.Context, job refillJob) (*presig, error) {
	id, err := NewSessionID()
	if err != nil {
		return nil, err
	}
	spec := SessionSpec{ID: id, Parties: job.signers, Deadline: e.now().Add(e.poolCfg.Timeout)}
	ks, parties, err := e.sessionKey(ctx, spec, job.key, job.epoch, SchemeECDSA)
	if err != nil {
		return nil, err
	}
	if e.proposePresign != nil {
		// The session files its presignature through Presign.
		return nil, e.proposePresign(ctx, spec, job.key, job.epoch)
	}
	if err := e.sendProposal(ctx, id, job); err != nil {
		return nil, err
	}
	return e.presign(ctx, spec, parties, ks)
}

// finishRefill files the result of a refill session, proposed or joined.
func (e *Engine) finishRefill(job refillJob, ps *presig, err error) {
	e.poolsMu.Lock()
	defer e.kickRefill()
	defer e.poolsMu.Unlock()
	p := e.pools[job.pk]
	if p == nil {
		return
	}
	p.inFlight--
	switch {
	case err != nil:
		p.failed(e.now())
		e.log.Debug("mpc presign refill failed", "key", job.key.String(), "error", err.Error())
	case ps == nil: // filed by Presign (Config.ProposePresign)
		p.backoff = 0
	case p.epoch == job.epoch:
		p.backoff = 0
		p.add(ps, e.poolCfg.capacity())
	}
}

// PoolEnabled reports whether this party refills the pool of key and
// signers: a coordination layer joins presign proposals only for those.
func (e *Engine) PoolEnabled(key KeyID, signers []PartyID) bool {
	parties, err := sortedParties(signers)
	if err != nil {
		return false
	}
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	p := e.pools[makePoolKey(key, parties)]
	return p != nil && p.refill
}
