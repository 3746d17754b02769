package mpc_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/taurusgroup/multi-party-sig/pkg/protocol"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
)

// frostSignAll runs one FROST sign on signers with the given deadline and
// returns each party's outcome and how long the slowest took.
func frostSignAll(t *testing.T, c *cluster, fx *keyFixture, signers []mpc.PartyID, d time.Duration) (map[mpc.PartyID]outcome[mpc.Signature], time.Duration) {
	t.Helper()
	spec := newSpec(t, signers, d)
	req := mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t)}
	began := time.Now()
	outs := onEach(c, signers, func(e *mpc.Engine) (mpc.Signature, error) {
		return e.Sign(context.Background(), spec, req)
	})
	return outs, time.Since(began)
}

// endsAtDeadline checks every party ended with ErrDeadline, in time.
func endsAtDeadline[T any](t *testing.T, outs map[mpc.PartyID]outcome[T], took time.Duration) {
	t.Helper()
	for p, o := range outs {
		if !errors.Is(o.err, mpc.ErrDeadline) {
			t.Errorf("%s: got %v, want ErrDeadline", p, o.err)
		}
	}
	if took > failDeadline+10*time.Second {
		t.Errorf("sessions took %v to end, deadline was %v", took, failDeadline)
	}
}

// fromBob applies rule to bob's envelopes only.
func fromBob(rule func(env *mpc.Envelope) mpctest.Action) mpctest.Rule {
	return func(env *mpc.Envelope) mpctest.Action {
		if env.From != "bob" {
			return mpctest.Deliver
		}
		return rule(env)
	}
}

func TestNetworkDropEndsAtDeadline(t *testing.T) {
	leakCheck(t)
	fx := frostKey(t, 3, 2)
	c := newCluster(t, fx.parties, fx.clonedStores())
	c.net.SetRule(fromBob(func(*mpc.Envelope) mpctest.Action { return mpctest.Drop }))
	outs, took := frostSignAll(t, c, fx, []mpc.PartyID{"alice", "bob"}, failDeadline)
	endsAtDeadline(t, outs, took)
	if c.net.Stats().Dropped == 0 {
		t.Fatal("the rule dropped nothing")
	}
}

func TestNetworkDuplicatesAreIgnored(t *testing.T) {
	leakCheck(t)
	fx := frostKey(t, 3, 2)
	c := newCluster(t, fx.parties, fx.clonedStores())
	c.net.SetRule(func(*mpc.Envelope) mpctest.Action { return mpctest.Duplicate })
	req := mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t)}
	sig := signOn(t, c, c.parties, req)
	if !schnorrValid(t, fx.info.PublicKey, req.Digest, sig) {
		t.Fatal("signature does not verify")
	}
	if c.net.Stats().Duplicated == 0 {
		t.Fatal("nothing was duplicated")
	}
}

func TestNetworkReorderSucceeds(t *testing.T) {
	leakCheck(t)
	for _, scheme := range []string{"frost", "cmp"} {
		t.Run(scheme, func(t *testing.T) {
			fx := frostKey(t, 3, 2)
			if scheme == "cmp" {
				heavy(t)
				fx = cmpKey(t, 3, 2)
			}
			c := newCluster(t, fx.parties, fx.clonedStores())
			c.net.SetReorder(true)
			c.net.SetRule(func(*mpc.Envelope) mpctest.Action { return mpctest.Duplicate })
			req := mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t)}
			sig := signOn(t, c, c.parties, req)
			if scheme == "cmp" && !ecdsaValid(t, fx.info.PublicKey, req.Digest, sig) ||
				scheme == "frost" && !schnorrValid(t, fx.info.PublicKey, req.Digest, sig) {
				t.Fatal("signature does not verify")
			}
			if c.net.Stats().Reordered == 0 {
				t.Fatal("nothing was delivered out of order")
			}
		})
	}
}

// tamperData flips the last byte of a protocol message's content.
func tamperData(env *mpc.Envelope) bool {
	var m protocol.Message
	if env.Round == 0 || m.UnmarshalBinary(env.Payload) != nil || len(m.Data) == 0 {
		return false
	}
	m.Data = slices.Clone(m.Data)
	m.Data[len(m.Data)-1] ^= 0x01
	b, err := m.MarshalBinary()
	if err != nil {
		return false
	}
	env.Payload = b
	return true
}

// tamperOnce tampers with the first message of the given round from bob to
// alice.
func tamperOnce(round uint16, edit func(*mpc.Envelope) bool) mpctest.Rule {
	return tamperFirst("bob", "alice", round, edit)
}

// tamperFirst tampers with the first message of the given round from one
// party to another.
func tamperFirst(from, to mpc.PartyID, round uint16, edit func(*mpc.Envelope) bool) mpctest.Rule {
	var mu sync.Mutex
	done := false
	return func(env *mpc.Envelope) mpctest.Action {
		mu.Lock()
		defer mu.Unlock()
		if !done && env.From == from && env.To == to && env.Round == round {
			done = edit(env)
		}
		return mpctest.Deliver
	}
}

// blamesOnly checks alice named the culprit, and nobody named anyone else.
func blamesOnly[T any](t *testing.T, outs map[mpc.PartyID]outcome[T], culprit mpc.PartyID, reason string) {
	t.Helper()
	blames(t, outs, "alice", culprit, reason)
}

// blames checks accuser named the culprit, and nobody named anyone else.
func blames[T any](t *testing.T, outs map[mpc.PartyID]outcome[T], accuser, culprit mpc.PartyID, reason string) {
	t.Helper()
	var abort *mpc.AbortError
	if !errors.As(outs[accuser].err, &abort) || !slices.Equal(abort.Culprits, []mpc.PartyID{culprit}) {
		t.Fatalf("%s: got %v, want an abort naming %s", accuser, outs[accuser].err, culprit)
	}
	t.Logf("%s: %v", accuser, abort)
	if reason != "" && abort.Reason != reason {
		t.Errorf("alice: reason %q, want %q", abort.Reason, reason)
	}
	for p, o := range outs {
		if errors.As(o.err, &abort) && !slices.Equal(abort.Culprits, []mpc.PartyID{culprit}) {
			t.Errorf("%s blames %v", p, abort.Culprits)
		}
		if errors.Is(o.err, mpc.ErrDeadline) {
			t.Errorf("%s waited for the deadline instead of hearing the abort", p)
		}
	}
}

func TestNetworkTamperNamesCulprit(t *testing.T) {
	leakCheck(t)
	t.Run("frost", func(t *testing.T) {
		fx := frostKey(t, 3, 2)
		c := newCluster(t, fx.parties, fx.clonedStores())
		c.net.SetRule(tamperOnce(3, tamperData))
		outs, _ := frostSignAll(t, c, fx, c.parties, okDeadline)
		blamesOnly(t, outs, "bob", "")
	})
	t.Run("cmp-online", func(t *testing.T) {
		fx := cmpKey(t, 3, 2)
		c := newCluster(t, fx.parties, fx.clonedStores())
		signers := []mpc.PartyID{"bob", "carol"}
		ids := fx.loadPresigs(t, c, signers)
		c.net.SetRule(tamperFirst("carol", "bob", 8, tamperData))
		spec := newSpec(t, signers, okDeadline)
		req := mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t), Presignature: ids[0]}
		outs := onEach(c, signers, func(e *mpc.Engine) (mpc.Signature, error) {
			return e.Sign(context.Background(), spec, req)
		})
		blames(t, outs, "bob", "carol", "")
	})
	t.Run("cmp-full", func(t *testing.T) {
		heavy(t)
		fx := cmpKey(t, 3, 2)
		c := newCluster(t, fx.parties, fx.clonedStores())
		c.net.SetRule(tamperOnce(3, tamperData))
		spec := newSpec(t, c.parties, okDeadline)
		req := mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t)}
		outs := onEach(c, c.parties, func(e *mpc.Engine) (mpc.Signature, error) {
			return e.Sign(context.Background(), spec, req)
		})
		blamesOnly(t, outs, "bob", "")
	})
}

func TestNetworkMalformedNamesSender(t *testing.T) {
	leakCheck(t)
	for name, edit := range map[string]func(*mpc.Envelope) bool{
		"garbage payload": func(env *mpc.Envelope) bool { env.Payload = []byte{0xff, 0x00, 0x13}; return true },
		"speaks for carol": func(env *mpc.Envelope) bool {
			var m protocol.Message
			if m.UnmarshalBinary(env.Payload) != nil {
				return false
			}
			m.From = "carol"
			env.Payload, _ = m.MarshalBinary()
			return true
		},
		"round mismatch": func(env *mpc.Envelope) bool { env.Round++; return true },
	} {
		t.Run(name, func(t *testing.T) {
			fx := frostKey(t, 3, 2)
			c := newCluster(t, fx.parties, fx.clonedStores())
			c.net.SetRule(tamperOnce(2, edit))
			outs, _ := frostSignAll(t, c, fx, c.parties, okDeadline)
			blamesOnly(t, outs, "bob", "malformed message")
		})
	}
}

func TestNetworkWrongSessionIDEndsAtDeadline(t *testing.T) {
	leakCheck(t)
	fx := frostKey(t, 3, 2)
	t.Run("rewritten in transit", func(t *testing.T) {
		c := newCluster(t, fx.parties, fx.clonedStores())
		c.net.SetRule(fromBob(func(env *mpc.Envelope) mpctest.Action {
			env.Session[0] ^= 0xff
			return mpctest.Deliver
		}))
		outs, took := frostSignAll(t, c, fx, []mpc.PartyID{"alice", "bob"}, failDeadline)
		endsAtDeadline(t, outs, took)
	})
	t.Run("parties disagree", func(t *testing.T) {
		c := newCluster(t, fx.parties, fx.clonedStores())
		signers := []mpc.PartyID{"alice", "bob", "carol"}
		specs := map[mpc.PartyID]mpc.SessionSpec{}
		for _, p := range signers {
			specs[p] = newSpec(t, signers, failDeadline)
		}
		req := mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t)}
		began := time.Now()
		outs := onEach(c, signers, func(e *mpc.Engine) (mpc.Signature, error) {
			return e.Sign(context.Background(), specs[selfOf(c, e)], req)
		})
		endsAtDeadline(t, outs, time.Since(began))
	})
}

func selfOf(c *cluster, e *mpc.Engine) mpc.PartyID {
	for p, x := range c.engines {
		if x == e {
			return p
		}
	}
	return ""
}

func TestCancelEndsSession(t *testing.T) {
	leakCheck(t)
	fx := frostKey(t, 3, 2)
	c := newCluster(t, fx.parties, fx.clonedStores())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// bob never joins, so alice waits until her context ends.
	_, err := c.engines["alice"].Sign(ctx, newSpec(t, []mpc.PartyID{"alice", "bob"}, okDeadline),
		mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t)})
	if !errors.Is(err, mpc.ErrDeadline) {
		t.Fatalf("got %v, want ErrDeadline (the caller's deadline came first)", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = c.engines["alice"].Sign(ctx, newSpec(t, []mpc.PartyID{"alice", "bob"}, okDeadline),
		mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestSessionIDIsNeverReused(t *testing.T) {
	leakCheck(t)
	fx := frostKey(t, 3, 2)
	c := newCluster(t, fx.parties, fx.clonedStores())
	signers := []mpc.PartyID{"alice", "bob"}
	spec := newSpec(t, signers, okDeadline)
	req := mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t)}
	allOK(t, onEach(c, signers, func(e *mpc.Engine) (mpc.Signature, error) {
		return e.Sign(context.Background(), spec, req)
	}))
	if _, err := c.engines["alice"].Sign(context.Background(), spec, req); !errors.Is(err, mpc.ErrSessionIDReused) {
		t.Fatalf("got %v, want ErrSessionIDReused", err)
	}
}

// At least eight sessions at once, of different kinds, all succeed.
func TestConcurrentSessions(t *testing.T) {
	leakCheck(t)
	fx := frostKey(t, 3, 2)
	c := newCluster(t, fx.parties, fx.clonedStores())
	c.net.SetReorder(true)
	const signs, keygens = 10, 2
	errs := make(chan error, signs+keygens)
	for i := range signs {
		signers := [][]mpc.PartyID{{"alice", "bob"}, {"bob", "carol"}, c.parties}[i%3]
		go func() { errs <- concurrentSign(t, c, fx, signers) }()
	}
	for range keygens {
		go func() { errs <- concurrentKeygen(t, c) }()
	}
	for range signs + keygens {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func concurrentSign(t *testing.T, c *cluster, fx *keyFixture, signers []mpc.PartyID) error {
	outs, _ := frostSignAll(t, c, fx, signers, okDeadline)
	for p, o := range outs {
		if o.err != nil {
			return o.err
		}
		if len(o.val.PublicKey) != 32 {
			return errors.New(string(p) + ": bad signature")
		}
	}
	return nil
}

func concurrentKeygen(t *testing.T, c *cluster) error {
	spec := newSpec(t, c.parties, okDeadline)
	outs := onEach(c, c.parties, func(e *mpc.Engine) (mpc.KeyInfo, error) {
		return e.FROSTKeygen(context.Background(), spec, 2)
	})
	for _, o := range outs {
		if o.err != nil {
			return o.err
		}
	}
	return nil
}
