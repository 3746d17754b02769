package mpc

import (
	"context"
	"fmt"
	"slices"
)

// proposalProtocol marks the engine's only control message: a pool's
// proposer asking the other signers to join a presign session whose ID is
// the envelope's session ID.
const proposalProtocol = "nitro-cosigner/presign-proposal/v1"

type proposal struct {
	Key     []byte
	Epoch   uint64
	Signers []string
}

func (e *Engine) sendProposal(ctx context.Context, id SessionID, job refillJob) error {
	prop := proposal{Key: job.key[:], Epoch: job.epoch, Signers: make([]string, len(job.signers))}
	for i, s := range job.signers {
		prop.Signers[i] = string(s)
	}
	payload, err := encMode.Marshal(&prop)
	if err != nil {
		return fmt.Errorf("marshalling proposal: %w", err)
	}
	env := Envelope{Session: id, From: e.self, Protocol: proposalProtocol, Payload: payload}
	for _, to := range job.signers {
		if to == e.self {
			continue
		}
		env.To = to
		if err := e.tr.Send(ctx, env); err != nil {
			return fmt.Errorf("proposing presign to %s: %w", to, err)
		}
	}
	return nil
}

// verdict is what this party does with a proposal.
type verdict int

const (
	ignore verdict = iota // not from the proposer, malformed, or seen before
	refuse                // well-formed but not acceptable now
	join
)

// handleProposal joins a proposed presign session if the proposal is one
// this party would make itself: from the set's proposer, for an enabled
// pool at the current epoch with room, under a session ID not seen before.
// A joiner allows twice the proposer's concurrency, since its copy of a
// failed session may outlive the proposer's by a little. A refused
// proposal (say, the pool is not enabled here yet) is answered with an
// abort notice, so the proposer backs off at once instead of waiting for
// its deadline. Anything else, including a duplicate or replayed proposal,
// is ignored without a word.
func (e *Engine) handleProposal(ctx context.Context, env Envelope) {
	job, v := e.judgeProposal(env)
	switch v {
	case refuse:
		e.refuseProposal(ctx, env)
	case join:
		spec := SessionSpec{ID: env.Session, Parties: job.signers, Deadline: e.now().Add(e.poolCfg.Timeout)}
		e.goBackground(func() {
			ps, err := e.joinPresign(ctx, spec, job)
			e.finishRefill(job, ps, err)
		})
	}
}

func (e *Engine) refuseProposal(ctx context.Context, env Envelope) {
	notice := Envelope{Session: env.Session, From: e.self, To: env.From, Protocol: abortProtocol}
	e.goBackground(func() {
		ctx, cancel := context.WithTimeout(ctx, noticeTimeout)
		defer cancel()
		_ = e.tr.Send(ctx, notice)
	})
}

func (e *Engine) joinPresign(ctx context.Context, spec SessionSpec, job refillJob) (*presig, error) {
	ks, parties, err := e.sessionKey(ctx, spec, job.key, job.epoch, SchemeECDSA)
	if err != nil {
		return nil, err
	}
	return e.presign(ctx, spec, parties, ks)
}

// judgeProposal parses and checks a proposal. A proposal it lets through
// is counted in flight, and its session ID is remembered so that a copy of
// the proposal is ignored.
func (e *Engine) judgeProposal(env Envelope) (refillJob, verdict) {
	job, ok := parseProposal(env.Payload)
	if !ok || proposerOf(job.signers) != env.From || !slices.Contains(job.signers, e.self) ||
		e.router.used(env.Session) {
		return refillJob{}, ignore
	}
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	if e.proposals.has(env.Session) {
		return refillJob{}, ignore
	}
	e.proposals.add(env.Session)
	p := e.pools[job.pk]
	if p == nil || !p.refill || p.epoch != job.epoch || p.inFlight >= 2*e.poolCfg.Concurrent ||
		len(p.avail)+p.inFlight >= e.poolCfg.capacity() {
		return refillJob{}, refuse
	}
	p.inFlight++
	return job, join
}

func parseProposal(payload []byte) (refillJob, bool) {
	var prop proposal
	if err := decMode.Unmarshal(payload, &prop); err != nil || len(prop.Key) != len(KeyID{}) {
		return refillJob{}, false
	}
	ids := make([]PartyID, len(prop.Signers))
	for i, s := range prop.Signers {
		ids[i] = PartyID(s)
	}
	signers, err := sortedParties(ids)
	if err != nil {
		return refillJob{}, false
	}
	job := refillJob{key: KeyID(prop.Key), signers: signers, epoch: prop.Epoch}
	job.pk = makePoolKey(job.key, signers)
	return job, true
}
