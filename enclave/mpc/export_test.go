package mpc

import "github.com/taurusgroup/multi-party-sig/pkg/ecdsa"

// Test-only hooks. They let tests and benchmarks file presignatures made
// elsewhere (test vectors, or one presignature again and again), which
// breaks the consume-once rule on purpose: never with a real key.

// PresignatureForTest returns the library form of a pooled presignature,
// leaving it in the pool.
func (e *Engine) PresignatureForTest(key KeyID, signers []PartyID, id PresignatureID) *ecdsa.PreSignature {
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	p := e.pools[makePoolKey(key, signers)]
	if p == nil {
		return nil
	}
	for _, ps := range p.avail {
		if ps.id == id {
			return ps.ps
		}
	}
	return nil
}

// AddPresignatureForTest files ps under id.
func (e *Engine) AddPresignatureForTest(key KeyID, signers []PartyID, epoch uint64, id PresignatureID, ps *ecdsa.PreSignature) {
	e.addPresig(makePoolKey(key, signers), signers, epoch, &presig{id: id, since: e.now(), ps: ps})
}
