package mpcharness

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// Result is one party's outcome of a session.
type Result[T any] struct {
	V   T
	Err error
	End time.Time
}

// Open opens a session on every party (before any starts, see package
// enclave/peer).
func (c *Cluster) Open(parties []mpc.PartyID, deadline time.Duration) mpc.SessionSpec {
	c.tb.Helper()
	spec := mpc.SessionSpec{ID: Must(mpc.NewSessionID()), Parties: parties, Deadline: time.Now().Add(deadline)}
	for _, id := range parties {
		if err := c.Cos[id].Peer.Open(spec.ID, parties); err != nil {
			c.tb.Fatal(err)
		}
	}
	return spec
}

// Close closes a session on every party.
func (c *Cluster) Close(spec mpc.SessionSpec) {
	for _, id := range spec.Parties {
		c.Cos[id].Peer.Close(spec.ID)
	}
}

// Outcomes delivers every party's result of a session once all have one.
type Outcomes[T any] <-chan map[mpc.PartyID]Result[T]

// Start runs op on every party of an open session.
func Start[T any](c *Cluster, spec mpc.SessionSpec, op func(*mpc.Engine, mpc.SessionSpec) (T, error)) Outcomes[T] {
	done := make(chan map[mpc.PartyID]Result[T], 1)
	go func() {
		out := make(map[mpc.PartyID]Result[T], len(spec.Parties))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, id := range spec.Parties {
			wg.Go(func() {
				v, err := op(c.Cos[id].Engine, spec)
				mu.Lock()
				defer mu.Unlock()
				out[id] = Result[T]{v, err, time.Now()}
			})
		}
		wg.Wait()
		done <- out
	}()
	return done
}

// Await waits for the outcomes, failing the test if some party has none
// by the session's deadline plus Slack: a session must always end.
func Await[T any](c *Cluster, spec mpc.SessionSpec, o Outcomes[T]) map[mpc.PartyID]Result[T] {
	c.tb.Helper()
	select {
	case rs := <-o:
		return rs
	case <-time.After(time.Until(spec.Deadline) + Slack):
		c.tb.Fatalf("session %s did not end within %v of its deadline", spec.ID, Slack)
		return nil
	}
}

// Run opens a session, runs op on every party, closes the session and
// returns the outcomes.
func Run[T any](c *Cluster, parties []mpc.PartyID, deadline time.Duration,
	op func(*mpc.Engine, mpc.SessionSpec) (T, error)) (mpc.SessionSpec, map[mpc.PartyID]Result[T]) {
	c.tb.Helper()
	spec := c.Open(parties, deadline)
	rs := Await(c, spec, Start(c, spec, op))
	c.Close(spec)
	return spec, rs
}

// Second returns its second argument: Second(Run(...)) is the outcomes.
func Second[A, B any](_ A, b B) B { return b }

// MustAll fails the test unless every party succeeded, and returns one
// party's value.
func MustAll[T any](tb testing.TB, what string, rs map[mpc.PartyID]Result[T]) T {
	tb.Helper()
	var v T
	for id, r := range rs {
		if r.Err != nil {
			tb.Fatalf("%s: %s: %v", what, id, r.Err)
		}
		v = r.V
	}
	return v
}

// CheckEnded checks that every party either succeeded or ended with a
// named reason (the deadline, an abort naming culprits, a peer's abort),
// within Slack of the deadline. It returns the parties that succeeded.
func CheckEnded[T any](tb testing.TB, what string, spec mpc.SessionSpec, rs map[mpc.PartyID]Result[T]) []mpc.PartyID {
	tb.Helper()
	var ok []mpc.PartyID
	for _, id := range spec.Parties {
		r := rs[id]
		var abort *mpc.AbortError
		var peerAbort *mpc.PeerAbortError
		switch {
		case r.Err == nil:
			ok = append(ok, id)
		case errors.Is(r.Err, mpc.ErrDeadline), errors.As(r.Err, &abort), errors.As(r.Err, &peerAbort):
			tb.Logf("%s: %s ended: %v", what, id, r.Err)
		default:
			tb.Errorf("%s: %s ended with an unnamed error: %v", what, id, r.Err)
		}
		if late := r.End.Sub(spec.Deadline); late > Slack {
			tb.Errorf("%s: %s ended %v after the deadline", what, id, late)
		}
	}
	return ok
}

// FROSTKeygen runs a FROST Taproot 2-of-n keygen.
func FROSTKeygen(e *mpc.Engine, s mpc.SessionSpec) (mpc.KeyInfo, error) {
	return e.FROSTKeygen(context.Background(), s, 2)
}

// Signer signs digest with key.
func Signer(key mpc.KeyID, digest []byte) func(*mpc.Engine, mpc.SessionSpec) (mpc.Signature, error) {
	return func(e *mpc.Engine, s mpc.SessionSpec) (mpc.Signature, error) {
		return e.Sign(context.Background(), s, mpc.SignRequest{Key: key, Digest: digest})
	}
}

// RandomDigest returns 32 random bytes.
func RandomDigest() []byte {
	d := make([]byte, 32)
	rand.Read(d)
	return d
}

// SchnorrValid reports whether sig is a BIP-340 signature of digest by
// the x-only key, as btcd checks it.
func SchnorrValid(tb testing.TB, xonly, digest []byte, sig mpc.Signature) bool {
	tb.Helper()
	pk, err := schnorr.ParsePubKey(xonly)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := schnorr.ParseSignature(sig.Bytes())
	return err == nil && s.Verify(digest, pk)
}
