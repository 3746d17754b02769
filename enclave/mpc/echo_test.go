package mpc_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// frostKeygenLastBroadcast is FROST keygen's last broadcast round, the one
// multi-party-sig does not echo (the package doc tells how it was found).
const frostKeygenLastBroadcast = 3

func frostKeygenAll(t *testing.T, c *cluster) map[mpc.PartyID]outcome[mpc.KeyInfo] {
	t.Helper()
	spec := newSpec(t, c.parties, failDeadline)
	return onEach(c, c.parties, func(e *mpc.Engine) (mpc.KeyInfo, error) {
		return e.FROSTKeygen(context.Background(), spec, 2)
	})
}

// Without the final echo, a party whose last-round broadcast reaches one
// peer altered leaves the others holding a key that peer refused. With it,
// nobody stores the key. Carol's abort notice is lost, as it may be on a
// real network, so that alice and bob finish the protocol and reach the
// echo rather than hearing the abort first.
func TestEchoKeepsKeygenAllOrNothing(t *testing.T) {
	leakCheck(t)
	c := newCluster(t, partiesN(3), nil)
	var echoes sync.Map
	tamper := tamperFirst("bob", "carol", frostKeygenLastBroadcast, func(env *mpc.Envelope) bool {
		return env.Broadcast && env.Protocol != wire.EchoProtocol && tamperData(env)
	})
	c.net.SetRule(func(env *mpc.Envelope) mpctest.Action {
		if env.Protocol == wire.EchoProtocol {
			echoes.Store(env.From, true)
		}
		if env.From == "carol" && strings.HasPrefix(env.Protocol, "nitro-cosigner/abort") {
			return mpctest.Drop
		}
		return tamper(env)
	})
	outs := frostKeygenAll(t, c)
	for p, o := range outs {
		if o.err == nil {
			t.Errorf("%s stored a key that carol refused", p)
		}
		t.Logf("%s: %v", p, o.err)
	}
	if _, ok := echoes.Load(mpc.PartyID("alice")); !ok {
		t.Error("alice never reached the echo: the test did not exercise it")
	}
	for _, p := range c.parties {
		if n := c.stores[p].Puts(); n != 0 {
			t.Errorf("%s holds %d keys", p, n)
		}
	}
}

// An echo that disagrees makes its receivers abort before storing, with a
// reason that names the final echo and no culprit (the receiver cannot
// tell whether the echoer or a broadcaster lied). The first to notice
// tells the others, so a receiver may instead end on that notice.
func TestEchoMismatchAborts(t *testing.T) {
	leakCheck(t)
	c := newCluster(t, partiesN(3), nil)
	c.net.SetRule(fromBob(func(env *mpc.Envelope) mpctest.Action {
		if env.Protocol == wire.EchoProtocol {
			env.Payload[0] ^= 1
		}
		return mpctest.Deliver
	}))
	outs := frostKeygenAll(t, c)
	noticed := 0
	for _, p := range []mpc.PartyID{"alice", "carol"} {
		var abort *mpc.AbortError
		var peer *mpc.PeerAbortError
		switch {
		case errors.As(outs[p].err, &abort) && strings.Contains(abort.Reason, "final echo: bob") && len(abort.Culprits) == 0:
			noticed++
		case errors.As(outs[p].err, &peer):
		default:
			t.Errorf("%s: got %v, want an abort on bob's echo naming no culprit, or a peer's notice", p, outs[p].err)
		}
		if c.stores[p].Puts() != 0 {
			t.Errorf("%s stored the key", p)
		}
	}
	if noticed == 0 {
		t.Error("neither alice nor carol noticed bob's echo")
	}
}

// A withheld echo costs liveness, not consistency: the party that misses
// it ends at its deadline without the key, while the others, who saw the
// same broadcasts, keep it.
func TestWithheldEchoEndsAtDeadline(t *testing.T) {
	leakCheck(t)
	c := newCluster(t, partiesN(3), nil)
	c.net.SetRule(fromBob(func(env *mpc.Envelope) mpctest.Action {
		if env.Protocol == wire.EchoProtocol && env.To == "carol" {
			return mpctest.Drop
		}
		return mpctest.Deliver
	}))
	outs := frostKeygenAll(t, c)
	if !errors.Is(outs["carol"].err, mpc.ErrDeadline) {
		t.Errorf("carol: got %v, want ErrDeadline", outs["carol"].err)
	}
	if c.stores["carol"].Puts() != 0 {
		t.Error("carol stored the key without bob's echo")
	}
	for _, p := range []mpc.PartyID{"alice", "bob"} {
		if outs[p].err != nil {
			t.Errorf("%s: %v", p, outs[p].err)
		}
	}
}
