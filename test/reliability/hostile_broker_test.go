//go:build !release

package reliability_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/test/internal/mpcharness"
)

// brokerProfiles are the hostile brokers' rates, each at most 30 %, that
// the sessions cycle through: light, medium and heavy loss with every
// other fault, and every fault but loss at 30 % (sessions must succeed).
var brokerProfiles = []struct {
	name     string
	rates    mpcharness.Rates
	lossless bool
}{
	{"5%", mpcharness.Rates{Drop: 0.05, Duplicate: 0.05, Reorder: 0.05, Delay: 0.05, Replay: 0.05, Alter: 0.05}, false},
	{"15%", mpcharness.Rates{Drop: 0.15, Duplicate: 0.15, Reorder: 0.15, Delay: 0.15, Replay: 0.15, Alter: 0.15}, false},
	{"30%", mpcharness.Rates{Drop: 0.3, Duplicate: 0.3, Reorder: 0.3, Delay: 0.3, Replay: 0.3, Alter: 0.3}, false},
	{"30% lossless", mpcharness.Rates{Duplicate: 0.3, Reorder: 0.3, Delay: 0.3, Replay: 0.3, Alter: 0.3}, true},
}

// brokerDeadline is the deadline of each session that may lose frames:
// one that stalls ends at it. Lossless sessions, which must succeed, get
// mpcharness.Generous: their deadline is not what they test.
const brokerDeadline = 5 * time.Second

// TestHostileBrokerSessions runs many FROST sign sessions over the real
// frame path (engine, peer, link, relay, embedded NATS JetStream) while
// every relay publishes through a hostile broker that drops, duplicates,
// reorders, delays, replays and alters frames at rates up to 30 %. It
// proves: no receiver accepts a forged, replayed or foreign frame (the
// ledger knows every frame a relay really published); every party of
// every session succeeds or ends with a named error, and none outlives
// its deadline by more than the slack of a round in progress; every
// signature a party returns verifies (btcd); lossless profiles always
// succeed; with an honest broker afterwards, signing works again. It
// reports the success rate per profile.
func TestHostileBrokerSessions(t *testing.T) {
	parallelInShort(t)
	began := time.Now()
	sessions, concurrent := 32, 8
	if long {
		sessions, concurrent = 520, 16
	}
	if n, err := strconv.Atoi(os.Getenv("NITRO_BROKER_SESSIONS")); err == nil && n > 0 {
		sessions = n
	}
	s := seed(t)
	c := mpcharness.NewCluster(t, mpcharness.NATS, mpcharness.Options{Seed: s})
	_, rs := mpcharness.Run(c, mpcharness.ABC, mpcharness.Generous, mpcharness.FROSTKeygen)
	key := mpcharness.MustAll(t, "keygen", rs)

	rng := rand.New(rand.NewPCG(s, 1))
	stats := make([]profileStats, len(brokerProfiles))
	var maxLate time.Duration
	for batch := 0; batch*concurrent < sessions; batch++ {
		pi := batch % len(brokerProfiles)
		prof := brokerProfiles[pi]
		c.SetRates(prof.rates)
		n := min(concurrent, sessions-batch*concurrent)
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range n {
			signers := pairOf(rng)
			wg.Go(func() {
				ok, late := hostileSession(t, c, key, signers, prof.lossless)
				mu.Lock()
				defer mu.Unlock()
				stats[pi].add(ok)
				maxLate = max(maxLate, late)
			})
		}
		wg.Wait()
	}
	c.SetRates(mpcharness.Rates{})
	for range 3 {
		digest := mpcharness.RandomDigest()
		_, rs := mpcharness.Run(c, []mpc.PartyID{"alice", "carol"}, mpcharness.Generous, mpcharness.Signer(key.Key, digest))
		if sig := mpcharness.MustAll(t, "sign with an honest broker again", rs); !mpcharness.SchnorrValid(t, key.PublicKey, digest, sig) {
			t.Fatal("BIP-340 signature does not verify")
		}
	}
	forged := c.AcceptedForgeries()
	hs := c.HostileStats()
	if hs.Dropped == 0 || hs.Duplicated == 0 || hs.Reordered == 0 || hs.Delayed == 0 || hs.Replayed == 0 || hs.Altered == 0 {
		t.Errorf("the hostile brokers did not do everything they were set to: %+v", hs)
	}
	altered, copies := refusedCopies(c)
	if altered == 0 || copies == 0 {
		t.Errorf("the invariant was not exercised: %d altered and %d repeated frames reached a receiver", altered, copies)
	}
	var notes []string
	total := 0
	for i, st := range stats {
		total += st.runs
		notes = append(notes, fmt.Sprintf("%s %d/%d", brokerProfiles[i].name, st.ok, st.runs))
		t.Logf("profile %-13s sessions %3d, succeeded %3d (%.0f %%)", brokerProfiles[i].name, st.runs, st.ok, st.rate())
	}
	t.Logf("hostile brokers: %+v; latest end after a deadline: %v; altered frames delivered %d, repeated %d; forged frames accepted: %d",
		hs, maxLate.Round(time.Millisecond), altered, copies, forged)
	summary.add("hostile broker", func(r *row) {
		r.sessions += total
		r.faults += int(hs.Faults())
		r.forged += forged
		r.duration += time.Since(began)
		r.note = fmt.Sprintf("succeeded %v; %d altered and %d repeated frames delivered; latest end %v past deadline",
			notes, altered, copies, maxLate.Round(time.Millisecond))
	})
}

type profileStats struct{ runs, ok int }

func (p *profileStats) add(ok bool) {
	p.runs++
	if ok {
		p.ok++
	}
}

func (p profileStats) rate() float64 {
	if p.runs == 0 {
		return 0
	}
	return 100 * float64(p.ok) / float64(p.runs)
}

// pairOf draws two of the three parties.
func pairOf(rng *rand.Rand) []mpc.PartyID {
	skip := rng.IntN(len(mpcharness.ABC))
	var out []mpc.PartyID
	for i, id := range mpcharness.ABC {
		if i != skip {
			out = append(out, id)
		}
	}
	return out
}

// hostileSession runs one sign among signers and checks how it ended. It
// reports whether every party succeeded, and how long after the deadline
// the last party ended.
func hostileSession(t *testing.T, c *mpcharness.Cluster, key mpc.KeyInfo, signers []mpc.PartyID, lossless bool) (bool, time.Duration) {
	deadline := brokerDeadline
	if lossless {
		deadline = mpcharness.Generous
	}
	digest := mpcharness.RandomDigest()
	spec, rs := mpcharness.Run(c, signers, deadline, mpcharness.Signer(key.Key, digest))
	ok := mpcharness.CheckEnded(t, "hostile sign", spec, rs)
	var late time.Duration
	for _, id := range signers {
		late = max(late, rs[id].End.Sub(spec.Deadline))
	}
	for _, id := range ok {
		if !mpcharness.SchnorrValid(t, key.PublicKey, digest, rs[id].V) {
			t.Errorf("INVALID SIGNATURE: %s returned a signature that does not verify", id)
		}
	}
	if lossless && len(ok) != len(signers) {
		var errs []error
		for _, id := range signers {
			errs = append(errs, rs[id].Err)
		}
		t.Errorf("a session without loss failed: %v", errors.Join(errs...))
	}
	return len(ok) == len(signers), late
}

// refusedCopies counts the deliveries, to every receiver, of frames a
// hostile broker altered and of frames a receiver had accepted before
// (duplicates and replays): what the invariant is about.
func refusedCopies(c *mpcharness.Cluster) (altered, copies int) {
	for _, id := range mpcharness.ABC {
		t := c.Tally(id)
		for _, n := range t.Forged {
			altered += n
		}
		for _, n := range t.Again {
			copies += n
		}
	}
	return altered, copies
}
