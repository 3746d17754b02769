package mpc_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// endLog records the sessions each engine reports ended.
type endLog struct {
	mu   sync.Mutex
	ends map[mpc.PartyID][]mpc.SessionEnd
}

func (l *endLog) opt(c *mpc.Config) {
	self := c.Self
	c.OnSessionEnd = func(e mpc.SessionEnd) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.ends[self] = append(l.ends[self], e)
	}
}

func (l *endLog) of(p mpc.PartyID) []mpc.SessionEnd {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]mpc.SessionEnd(nil), l.ends[p]...)
}

// TestOnSessionEnd: every party reports each session once when it ends,
// with its op, its ID and its error.
func TestOnSessionEnd(t *testing.T) {
	leakCheck(t)
	parties := partiesN(3)
	log := &endLog{ends: map[mpc.PartyID][]mpc.SessionEnd{}}
	c := newCluster(t, parties, nil, log.opt)

	spec := newSpec(t, parties, okDeadline)
	allOK(t, onEach(c, parties, func(e *mpc.Engine) (mpc.KeyInfo, error) {
		return e.FROSTKeygen(context.Background(), spec, 2)
	}))
	for _, p := range parties {
		ends := log.of(p)
		if len(ends) != 1 || ends[0].Op != mpc.OpFROSTKeygen || ends[0].Session != spec.ID || ends[0].Err != nil || ends[0].Took <= 0 {
			t.Fatalf("%s reported %+v, want one successful frost-keygen", p, ends)
		}
	}

	// Carol never joins: the others reach their deadline.
	late := newSpec(t, parties, 300*time.Millisecond)
	onEach(c, parties[:2], func(e *mpc.Engine) (mpc.KeyInfo, error) {
		return e.FROSTKeygen(context.Background(), late, 2)
	})
	for _, p := range parties[:2] {
		ends := log.of(p)
		if len(ends) != 2 || ends[1].Session != late.ID || !errors.Is(ends[1].Err, mpc.ErrDeadline) {
			t.Fatalf("%s reported %+v, want a deadline last", p, ends)
		}
	}
	if n := len(log.of(parties[2])); n != 1 {
		t.Fatalf("carol reported %d sessions, want 1", n)
	}
}
