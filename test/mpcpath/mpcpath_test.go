package mpcpath_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
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
var lateReasons = []wire.DropReason{accepted, wire.DropNotInSession, wire.DropSessionEnded}

func TestNATS(t *testing.T)  { suite(t, natsBackend) }
func TestKafka(t *testing.T) { suite(t, kafkaBackend) }
func TestSQS(t *testing.T)   { suite(t, sqsBackend) }

// suite is what every broker must carry: the same tests, one cluster and
// one broker server each.
func suite(t *testing.T, be backend) {
	t.Run("Clean", func(t *testing.T) { testClean(t, be) })
	t.Run("Hostile", func(t *testing.T) { testHostile(t, be) })
	t.Run("Drops", func(t *testing.T) { testDrops(t, be) })
	t.Run("TamperedFrame", func(t *testing.T) { testTamperedFrame(t, be) })
	t.Run("Refusals", func(t *testing.T) { testRefusals(t, be) })
}

func frostKeygen(e *mpc.Engine, s mpc.SessionSpec) (mpc.KeyInfo, error) {
	return e.FROSTKeygen(context.Background(), s, 2)
}

func signer(key mpc.KeyID, digest []byte) func(*mpc.Engine, mpc.SessionSpec) (mpc.Signature, error) {
	return func(e *mpc.Engine, s mpc.SessionSpec) (mpc.Signature, error) {
		return e.Sign(context.Background(), s, mpc.SignRequest{Key: key, Digest: digest})
	}
}

func randomDigest() []byte {
	d := make([]byte, 32)
	rand.Read(d)
	return d
}

// keygenAndSign runs a FROST 2-of-3 keygen and a sign by alice and carol,
// checks the BIP-340 signature and returns the key.
func keygenAndSign(tb testing.TB, c *cluster) mpc.KeyInfo {
	tb.Helper()
	begin := time.Now()
	_, rs := run(c, abc, generous, frostKeygen)
	key := mustAll(tb, "keygen", rs)
	tb.Logf("FROST 2-of-3 keygen: %v", time.Since(begin))
	digest := randomDigest()
	begin = time.Now()
	_, sigs := run(c, []mpc.PartyID{"alice", "carol"}, generous, signer(key.Key, digest))
	sig := mustAll(tb, "sign", sigs)
	tb.Logf("FROST sign: %v", time.Since(begin))
	if !schnorrValid(tb, key.PublicKey, digest, sig) {
		tb.Fatal("BIP-340 signature does not verify")
	}
	return key
}

func schnorrValid(tb testing.TB, xonly, digest []byte, sig mpc.Signature) bool {
	tb.Helper()
	pk, err := schnorr.ParsePubKey(xonly)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := schnorr.ParseSignature(sig.Bytes())
	return err == nil && s.Verify(digest, pk)
}

// checkDrops fails if a party accepted nothing or dropped a frame for a
// security reason not in allowed.
func (c *cluster) checkDrops(allowed ...wire.DropReason) {
	c.tb.Helper()
	for _, id := range abc {
		st := c.cos[id].peer.Stats()
		if st.Wire.Accepted == 0 {
			c.tb.Errorf("%s accepted no frame", id)
		}
		for _, r := range securityReasons {
			if n := st.Wire.Dropped[r]; n > 0 && !slices.Contains(allowed, r) {
				c.tb.Errorf("%s dropped %d frames as %v", id, n, r)
			}
		}
	}
}

// checkVerdicts fails if some receiver dropped a frame of a kind for a
// reason not listed for that kind, and returns the cluster's totals.
func (c *cluster) checkVerdicts() (forged, again map[wire.DropReason]int) {
	c.tb.Helper()
	forged, again = map[wire.DropReason]int{}, map[wire.DropReason]int{}
	for _, id := range abc {
		t := c.tally(id)
		for _, k := range []struct {
			what    string
			got     map[wire.DropReason]int
			allowed []wire.DropReason
		}{{"forged", t.forged, tamperReasons}, {"already accepted", t.again, againReasons}, {"new genuine", t.first, lateReasons}} {
			for r, n := range k.got {
				if !slices.Contains(k.allowed, r) {
					c.tb.Errorf("%s: %d %s frames got verdict %s", id, n, k.what, verdictName(r))
				}
			}
		}
		if len(t.foreign) > 0 {
			c.tb.Errorf("%s received foreign frames: %v", id, countNames(t.foreign))
		}
		for r, n := range t.forged {
			forged[r] += n
		}
		for r, n := range t.again {
			again[r] += n
		}
	}
	return forged, again
}

// An honest broker: keygen and sign succeed, nothing is dropped for a
// security reason.
func testClean(t *testing.T, be backend) {
	c := newCluster(t, be, options{})
	keygenAndSign(t, c)
	c.checkDrops()
	c.checkVerdicts()
}

// hostileRates change no frame's fate for good: every frame is stored at
// least once, so every session must succeed.
var hostileRates = Rates{Duplicate: 0.2, Reorder: 0.2, Delay: 0.2, Replay: 0.2, Alter: 0.2}

// A broker that duplicates, reorders, delays, replays (across sessions)
// and alters frames, but loses none: sessions succeed, since the replay
// guard drops the copies and the signature the alterations. Every altered
// frame is dropped for a reason up to the signature check, every copy of
// an accepted frame as a replay or for its ended session, and nothing
// else is dropped.
func testHostile(t *testing.T, be backend) {
	t.Logf("seed %d", *seed)
	c := newCluster(t, be, options{rates: hostileRates, seed: *seed})
	keygenAndSign(t, c)
	keygenAndSign(t, c)
	hs := c.hostileStats()
	t.Logf("hostile brokers: %+v", hs)
	if hs.Duplicated == 0 || hs.Reordered == 0 || hs.Delayed == 0 || hs.Replayed == 0 || hs.Altered == 0 || hs.Dropped != 0 {
		t.Errorf("the hostile brokers did not do what they were set to: %+v", hs)
	}
	c.checkDrops(tamperReasons...)
	forged, again := c.checkVerdicts()
	t.Logf("verdicts on altered frames %v, on frames already accepted %v", countNames(forged), countNames(again))
	if forged[wire.DropBadSignature] == 0 || again[wire.DropReplay] == 0 {
		t.Errorf("no altered frame counted as bad_signature (%v) or no copy as replay (%v)", countNames(forged), countNames(again))
	}
}

// dropRates lose frames: Publish returns nil for a frame never stored.
// lightDropRates lose few enough that a session may get through.
var (
	dropRates      = Rates{Drop: 0.2, Duplicate: 0.2, Reorder: 0.1, Delay: 0.1, Replay: 0.1, Alter: 0.1}
	lightDropRates = Rates{Drop: 0.05, Duplicate: 0.2, Reorder: 0.1, Delay: 0.1, Replay: 0.1, Alter: 0.1}
)

// dyingDeadline is the deadline of sessions that may lose frames.
const dyingDeadline = 4 * time.Second

// A broker that also loses frames: each session succeeds or every party
// ends with a named reason before its deadline plus slack; parties that
// succeed agree, and their signatures verify. Afterwards, on an honest
// broker, the same cosigners sign again.
func testDrops(t *testing.T, be backend) {
	t.Logf("seed %d", *seed)
	c := newCluster(t, be, options{seed: *seed})
	key := mustAll(t, "keygen", second(run(c, abc, generous, frostKeygen)))

	c.setRates(dropRates)
	spec, keys := run(c, abc, dyingDeadline, frostKeygen)
	ok := checkEnded(t, "keygen", spec, keys)
	for _, id := range ok {
		if !bytes.Equal(keys[id].v.PublicKey, keys[ok[0]].v.PublicKey) {
			t.Errorf("keygen: %s and %s got different public keys", id, ok[0])
		}
	}
	c.setRates(lightDropRates)
	for _, signers := range [][]mpc.PartyID{{"alice", "carol"}, abc, {"bob", "carol"}} {
		digest := randomDigest()
		spec, sigs := run(c, signers, dyingDeadline, signer(key.Key, digest))
		for _, id := range checkEnded(t, "sign", spec, sigs) {
			if !schnorrValid(t, key.PublicKey, digest, sigs[id].v) {
				t.Errorf("sign: %s returned a signature that does not verify", id)
			}
		}
	}
	hs := c.hostileStats()
	t.Logf("hostile brokers: %+v", hs)
	if hs.Dropped == 0 {
		t.Errorf("the hostile brokers lost no frame: %+v", hs)
	}

	c.setRates(Rates{})
	digest := randomDigest()
	sig := mustAll(t, "sign after", second(run(c, abc, generous, signer(key.Key, digest))))
	if !schnorrValid(t, key.PublicKey, digest, sig) {
		t.Fatal("BIP-340 signature after the drops does not verify")
	}
	c.checkDrops(tamperReasons...)
	c.checkVerdicts()
}

func second[A, B any](_ A, b B) B { return b }

// tamper flips the last byte of the Ed25519 signature.
func tamper(frame []byte) []byte {
	out := bytes.Clone(frame)
	out[len(out)-1] ^= 0x01
	return out
}

// A frame replaced by a tampered one is lost: the session ends at its
// deadline, every delivery of the tampered frame is refused as
// bad_signature, and a later session on the same stack succeeds.
func testTamperedFrame(t *testing.T, be backend) {
	c := newCluster(t, be, options{})
	key := mustAll(t, "keygen", second(run(c, abc, generous, frostKeygen)))
	forgedc := make(chan []byte, 1)
	c.cos["alice"].broker.ReplaceNext("carol", func(frame []byte) []byte {
		forgedc <- tamper(frame)
		return tamper(frame)
	})
	digest := randomDigest()
	spec, rs := run(c, []mpc.PartyID{"alice", "carol"}, dyingDeadline, signer(key.Key, digest))
	checkEnded(t, "tampered sign", spec, rs)
	if err := rs["carol"].err; !errors.Is(err, mpc.ErrDeadline) {
		t.Fatalf("carol: got %v, want ErrDeadline", err)
	}
	var forged []byte
	select {
	case forged = <-forgedc:
	default:
		t.Fatal("alice published no frame to carol")
	}
	carol := c.cos["carol"].watch
	carol.waitDelivered(t, forged, 0, "the tampered frame")
	if v := carol.verdicts(forged); v[0] != wire.DropBadSignature {
		t.Errorf("the tampered frame's verdicts at carol: %v, want bad_signature first", verdictNames(v))
	}
	c.checkDrops(wire.DropBadSignature)
	sig := mustAll(t, "sign after", second(run(c, []mpc.PartyID{"alice", "carol"}, generous, signer(key.Key, digest))))
	if !schnorrValid(t, key.PublicKey, digest, sig) {
		t.Fatal("BIP-340 signature does not verify")
	}
}
