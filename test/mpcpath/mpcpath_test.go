package mpcpath_test

import (
	"bytes"
	"errors"
	"flag"
	"slices"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	"github.com/nitro-cosigner/nitro-cosigner/test/internal/mpcharness"
)

var seed = flag.Uint64("mpcpath.seed", 1, "seed of the hostile brokers' choices")

// securityReasons are drops that must never happen on an honest network.
var securityReasons = []wire.DropReason{
	wire.DropMalformed, wire.DropVersion, wire.DropOwnFrame, wire.DropUnknownSender, wire.DropWrongRecipient,
	wire.DropBadSignature, wire.DropStale, wire.DropAttestationMismatch, wire.DropAttestationInvalid,
	wire.DropAttestationExpired, wire.DropAttestationDebug, wire.DropAttestationPCR, wire.DropAttestationBinding,
	wire.DropDecrypt, wire.DropUnknownAttestation, wire.DropReplayCapacity,
}

// tamperReasons are what a frame with changed bytes may be dropped for:
// the checks up to and including the signature's, in Receive's order.
var tamperReasons = []wire.DropReason{
	wire.DropMalformed, wire.DropVersion, wire.DropOwnFrame, wire.DropUnknownSender, wire.DropWrongRecipient,
	wire.DropNotInSession, wire.DropSessionEnded, wire.DropBadSignature,
}

// againReasons are what a frame accepted before may be dropped for when
// it comes again: in its session, a replay; after it, the session is gone.
var againReasons = []wire.DropReason{wire.DropReplay, wire.DropNotInSession, wire.DropSessionEnded}

// lateReasons are what a genuine frame may be dropped for the first time
// it arrives: only its session having ended (a held frame released late).
var lateReasons = []wire.DropReason{mpcharness.Accepted, wire.DropNotInSession, wire.DropSessionEnded}

func TestNATS(t *testing.T)  { suite(t, mpcharness.NATS) }
func TestKafka(t *testing.T) { suite(t, mpcharness.Kafka) }
func TestSQS(t *testing.T)   { suite(t, mpcharness.SQS) }

// suite is what every broker must carry: the same tests, one cluster and
// one broker server each.
func suite(t *testing.T, be mpcharness.Backend) {
	t.Run("Clean", func(t *testing.T) { testClean(t, be) })
	t.Run("Hostile", func(t *testing.T) { testHostile(t, be) })
	t.Run("Drops", func(t *testing.T) { testDrops(t, be) })
	t.Run("TamperedFrame", func(t *testing.T) { testTamperedFrame(t, be) })
	t.Run("Refusals", func(t *testing.T) { testRefusals(t, be) })
}

// keygenAndSign runs a FROST 2-of-3 keygen and a sign by alice and carol,
// checks the BIP-340 signature and returns the key.
func keygenAndSign(tb testing.TB, c *mpcharness.Cluster) mpc.KeyInfo {
	tb.Helper()
	begin := time.Now()
	_, rs := mpcharness.Run(c, mpcharness.ABC, mpcharness.Generous, mpcharness.FROSTKeygen)
	key := mpcharness.MustAll(tb, "keygen", rs)
	tb.Logf("FROST 2-of-3 keygen: %v", time.Since(begin))
	digest := mpcharness.RandomDigest()
	begin = time.Now()
	_, sigs := mpcharness.Run(c, []mpc.PartyID{"alice", "carol"}, mpcharness.Generous, mpcharness.Signer(key.Key, digest))
	sig := mpcharness.MustAll(tb, "sign", sigs)
	tb.Logf("FROST sign: %v", time.Since(begin))
	if !mpcharness.SchnorrValid(tb, key.PublicKey, digest, sig) {
		tb.Fatal("BIP-340 signature does not verify")
	}
	return key
}

// checkDrops fails if a party accepted nothing or dropped a frame for a
// security reason not in allowed.
func checkDrops(tb testing.TB, c *mpcharness.Cluster, allowed ...wire.DropReason) {
	tb.Helper()
	for _, id := range mpcharness.ABC {
		st := c.Cos[id].Peer.Stats()
		if st.Wire.Accepted == 0 {
			tb.Errorf("%s accepted no frame", id)
		}
		for _, r := range securityReasons {
			if n := st.Wire.Dropped[r]; n > 0 && !slices.Contains(allowed, r) {
				tb.Errorf("%s dropped %d frames as %v", id, n, r)
			}
		}
	}
}

// checkVerdicts fails if some receiver dropped a frame of a kind for a
// reason not listed for that kind, and returns the cluster's totals.
func checkVerdicts(tb testing.TB, c *mpcharness.Cluster) (forged, again map[wire.DropReason]int) {
	tb.Helper()
	forged, again = map[wire.DropReason]int{}, map[wire.DropReason]int{}
	for _, id := range mpcharness.ABC {
		t := c.Tally(id)
		for _, k := range []struct {
			what    string
			got     map[wire.DropReason]int
			allowed []wire.DropReason
		}{{"forged", t.Forged, tamperReasons}, {"already accepted", t.Again, againReasons}, {"new genuine", t.First, lateReasons}} {
			for r, n := range k.got {
				if !slices.Contains(k.allowed, r) {
					tb.Errorf("%s: %d %s frames got verdict %s", id, n, k.what, mpcharness.VerdictName(r))
				}
			}
		}
		if len(t.Foreign) > 0 {
			tb.Errorf("%s received foreign frames: %v", id, mpcharness.CountNames(t.Foreign))
		}
		for r, n := range t.Forged {
			forged[r] += n
		}
		for r, n := range t.Again {
			again[r] += n
		}
	}
	return forged, again
}

// An honest broker: keygen and sign succeed, nothing is dropped for a
// security reason.
func testClean(t *testing.T, be mpcharness.Backend) {
	c := mpcharness.NewCluster(t, be, mpcharness.Options{})
	keygenAndSign(t, c)
	checkDrops(t, c)
	checkVerdicts(t, c)
}

// hostileRates change no frame's fate for good: every frame is stored at
// least once, so every session must succeed.
var hostileRates = mpcharness.Rates{Duplicate: 0.2, Reorder: 0.2, Delay: 0.2, Replay: 0.2, Alter: 0.2}

// A broker that duplicates, reorders, delays, replays (across sessions)
// and alters frames, but loses none: sessions succeed, since the replay
// guard drops the copies and the signature the alterations. Every altered
// frame is dropped for a reason up to the signature check, every copy of
// an accepted frame as a replay or for its ended session, and nothing
// else is dropped.
func testHostile(t *testing.T, be mpcharness.Backend) {
	t.Logf("seed %d", *seed)
	c := mpcharness.NewCluster(t, be, mpcharness.Options{Rates: hostileRates, Seed: *seed})
	keygenAndSign(t, c)
	keygenAndSign(t, c)
	hs := c.HostileStats()
	t.Logf("hostile brokers: %+v", hs)
	if hs.Duplicated == 0 || hs.Reordered == 0 || hs.Delayed == 0 || hs.Replayed == 0 || hs.Altered == 0 || hs.Dropped != 0 {
		t.Errorf("the hostile brokers did not do what they were set to: %+v", hs)
	}
	checkDrops(t, c, tamperReasons...)
	forged, again := checkVerdicts(t, c)
	t.Logf("verdicts on altered frames %v, on frames already accepted %v", mpcharness.CountNames(forged), mpcharness.CountNames(again))
	if forged[wire.DropBadSignature] == 0 || again[wire.DropReplay] == 0 {
		t.Errorf("no altered frame counted as bad_signature (%v) or no copy as replay (%v)", mpcharness.CountNames(forged), mpcharness.CountNames(again))
	}
}

// dropRates lose frames: Publish returns nil for a frame never stored.
// lightDropRates lose few enough that a session may get through.
var (
	dropRates      = mpcharness.Rates{Drop: 0.2, Duplicate: 0.2, Reorder: 0.1, Delay: 0.1, Replay: 0.1, Alter: 0.1}
	lightDropRates = mpcharness.Rates{Drop: 0.05, Duplicate: 0.2, Reorder: 0.1, Delay: 0.1, Replay: 0.1, Alter: 0.1}
)

// dyingDeadline is the deadline of sessions that may lose frames.
const dyingDeadline = 4 * time.Second

// A broker that also loses frames: each session succeeds or every party
// ends with a named reason before its deadline plus slack; parties that
// succeed agree, and their signatures verify. Afterwards, on an honest
// broker, the same cosigners sign again.
func testDrops(t *testing.T, be mpcharness.Backend) {
	t.Logf("seed %d", *seed)
	c := mpcharness.NewCluster(t, be, mpcharness.Options{Seed: *seed})
	key := mpcharness.MustAll(t, "keygen", mpcharness.Second(mpcharness.Run(c, mpcharness.ABC, mpcharness.Generous, mpcharness.FROSTKeygen)))

	c.SetRates(dropRates)
	spec, keys := mpcharness.Run(c, mpcharness.ABC, dyingDeadline, mpcharness.FROSTKeygen)
	ok := mpcharness.CheckEnded(t, "keygen", spec, keys)
	for _, id := range ok {
		if !bytes.Equal(keys[id].V.PublicKey, keys[ok[0]].V.PublicKey) {
			t.Errorf("keygen: %s and %s got different public keys", id, ok[0])
		}
	}
	c.SetRates(lightDropRates)
	for _, signers := range [][]mpc.PartyID{{"alice", "carol"}, mpcharness.ABC, {"bob", "carol"}} {
		digest := mpcharness.RandomDigest()
		spec, sigs := mpcharness.Run(c, signers, dyingDeadline, mpcharness.Signer(key.Key, digest))
		for _, id := range mpcharness.CheckEnded(t, "sign", spec, sigs) {
			if !mpcharness.SchnorrValid(t, key.PublicKey, digest, sigs[id].V) {
				t.Errorf("sign: %s returned a signature that does not verify", id)
			}
		}
	}
	hs := c.HostileStats()
	t.Logf("hostile brokers: %+v", hs)
	if hs.Dropped == 0 {
		t.Errorf("the hostile brokers lost no frame: %+v", hs)
	}

	c.SetRates(mpcharness.Rates{})
	digest := mpcharness.RandomDigest()
	sig := mpcharness.MustAll(t, "sign after", mpcharness.Second(mpcharness.Run(c, mpcharness.ABC, mpcharness.Generous, mpcharness.Signer(key.Key, digest))))
	if !mpcharness.SchnorrValid(t, key.PublicKey, digest, sig) {
		t.Fatal("BIP-340 signature after the drops does not verify")
	}
	checkDrops(t, c, tamperReasons...)
	checkVerdicts(t, c)
}

// tamper flips the last byte of the Ed25519 signature.
func tamper(frame []byte) []byte {
	out := bytes.Clone(frame)
	out[len(out)-1] ^= 0x01
	return out
}

// A frame replaced by a tampered one is lost: the session ends at its
// deadline, every delivery of the tampered frame is refused as
// bad_signature, and a later session on the same stack succeeds.
func testTamperedFrame(t *testing.T, be mpcharness.Backend) {
	c := mpcharness.NewCluster(t, be, mpcharness.Options{})
	key := mpcharness.MustAll(t, "keygen", mpcharness.Second(mpcharness.Run(c, mpcharness.ABC, mpcharness.Generous, mpcharness.FROSTKeygen)))
	forgedc := make(chan []byte, 1)
	c.Cos["alice"].Broker.ReplaceNext("carol", func(frame []byte) []byte {
		forgedc <- tamper(frame)
		return tamper(frame)
	})
	digest := mpcharness.RandomDigest()
	spec, rs := mpcharness.Run(c, []mpc.PartyID{"alice", "carol"}, dyingDeadline, mpcharness.Signer(key.Key, digest))
	mpcharness.CheckEnded(t, "tampered sign", spec, rs)
	if err := rs["carol"].Err; !errors.Is(err, mpc.ErrDeadline) {
		t.Fatalf("carol: got %v, want ErrDeadline", err)
	}
	var forged []byte
	select {
	case forged = <-forgedc:
	default:
		t.Fatal("alice published no frame to carol")
	}
	carol := c.Cos["carol"].Watch
	carol.WaitDelivered(t, forged, 0, "the tampered frame")
	if v := carol.Verdicts(forged); v[0] != wire.DropBadSignature {
		t.Errorf("the tampered frame's verdicts at carol: %v, want bad_signature first", mpcharness.VerdictNames(v))
	}
	checkDrops(t, c, wire.DropBadSignature)
	sig := mpcharness.MustAll(t, "sign after", mpcharness.Second(mpcharness.Run(c, []mpc.PartyID{"alice", "carol"}, mpcharness.Generous, mpcharness.Signer(key.Key, digest))))
	if !mpcharness.SchnorrValid(t, key.PublicKey, digest, sig) {
		t.Fatal("BIP-340 signature does not verify")
	}
}
