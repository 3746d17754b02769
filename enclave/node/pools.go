package node

import (
	"context"
	"slices"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// PoolSets are the signer sets whose presignature pools a CMP key keeps:
// the set each party would choose as initiator (itself and the next
// threshold-1 parties in the key's order, see Sign), each once. Sets
// holding a party that is down are not pooled beyond what was made while
// it was up.
func PoolSets(info mpc.KeyInfo) [][]mpc.PartyID {
	var sets [][]mpc.PartyID
	for _, p := range info.Parties {
		set := []mpc.PartyID{p}
		for _, q := range info.Parties {
			if len(set) == info.Threshold {
				break
			}
			if q != p {
				set = append(set, q)
			}
		}
		slices.Sort(set)
		if !slices.ContainsFunc(sets, func(s []mpc.PartyID) bool { return slices.Equal(s, set) }) {
			sets = append(sets, set)
		}
	}
	return sets
}

// EnablePools turns on the presignature pools of a CMP key for the
// PoolSets this cosigner belongs to. Every party does the same, so each
// set's proposer refills it and the others join.
func (n *Node) EnablePools(ctx context.Context, info mpc.KeyInfo) {
	if info.Scheme != mpc.SchemeECDSA {
		return
	}
	for _, set := range PoolSets(info) {
		if !slices.Contains(set, n.Self()) {
			continue
		}
		if err := n.cfg.Engine.EnablePool(ctx, info.Key, set); err != nil {
			n.log.Warn("presignature pool not enabled", "key", info.Key.String(), "signers", set, "err", err)
		}
	}
}

// EnableAllPools enables the pools of every stored CMP key, at boot.
func (n *Node) EnableAllPools(ctx context.Context) error {
	cur := keystore.Cursor{}
	for {
		page, err := n.cfg.Keystore.ListKeys(ctx, cur, 1000)
		if err != nil {
			return err
		}
		for _, k := range page.Keys {
			n.EnablePools(ctx, apiKey(k).Info)
		}
		if !page.More {
			return nil
		}
		cur = page.Next
	}
}
