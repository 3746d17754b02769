package procpath_test

import (
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	btcecdsa "github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker/natsdev"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	"github.com/nitro-cosigner/nitro-cosigner/test/goaws"
)

// Session deadlines. CMP runs only without the race detector.
const (
	frostDeadline = 60 * time.Second
	cmpDeadline   = 90 * time.Second
)

func TestNATS(t *testing.T) {
	srv, err := natsdev.NewEmbeddedNATS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	exercise(t, newCluster(t, []string{"--broker", "nats", "--nats-url", srv.URL(), "--broker-prefix", "procpath.inbox"}, nil))
}

func TestKafka(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	exercise(t, newCluster(t, []string{"--broker", "kafka", "--kafka-brokers", kc.ListenAddrs()[0], "--broker-prefix", "procpath-"}, nil))
}

func TestSQS(t *testing.T) {
	srv := goaws.Start(t)
	// goaws checks no signature; the parent's default credential chain
	// only needs something to sign with. The default queue prefix, which
	// the parent's health check must name the same way as the adapter.
	env := []string{"AWS_ACCESS_KEY_ID=procpath-test", "AWS_SECRET_ACCESS_KEY=procpath-test-secret"}
	exercise(t, newCluster(t, []string{"--broker", "sqs", "--sqs-endpoint", srv.Endpoint, "--sqs-region", goaws.Region}, env))
}

// exercise runs FROST keygen and sign, and the CMP sign when it is not
// too slow, then checks what the receivers dropped.
func exercise(t *testing.T, c *cluster) {
	frostKeygenAndSign(t, c)
	if raceEnabled {
		t.Log("CMP sign skipped under the race detector (minutes per session)")
	} else {
		cmpSign(t, c)
	}
	c.checkDrops()
}

// frostKeygenAndSign runs a FROST 2-of-3 keygen among all three and a
// Taproot sign by alice and carol, and verifies the BIP-340 signature
// with btcec.
func frostKeygenAndSign(t *testing.T, c *cluster) {
	t.Helper()
	keys := c.session(abc, frostDeadline, request{Op: opFROSTKeygen, Threshold: 2})
	key := same(t, "keygen key ID", keys, func(r response) []byte { return r.Key })
	pub := same(t, "keygen public key", keys, func(r response) []byte { return r.PublicKey })
	digest := randomDigest()
	sigs := c.session([]string{"alice", "carol"}, frostDeadline, request{Op: opSign, Key: key, Digest: digest})
	sig := same(t, "signature", sigs, func(r response) []byte { return append(r.R, r.S...) })
	pk, err := schnorr.ParsePubKey(pub)
	if err != nil {
		t.Fatalf("the group key is not a BIP-340 key: %v", err)
	}
	s, err := schnorr.ParseSignature(sig)
	if err != nil {
		t.Fatalf("not a BIP-340 signature: %v", err)
	}
	if !s.Verify(digest, pk) {
		t.Fatal("the BIP-340 signature does not verify")
	}
	if s.Verify(randomDigest(), pk) {
		t.Fatal("the BIP-340 signature verifies for another digest")
	}
}

// cmpSign runs a full CMP sign by bob and carol with the 2-of-3 test
// vector key and verifies the ECDSA signature with btcec.
func cmpSign(t *testing.T, c *cluster) {
	t.Helper()
	fx := c.each(abc, openTimeout, request{Op: opFixtureKey})
	key := same(t, "test-vector key ID", fx, func(r response) []byte { return r.Key })
	pub := same(t, "test-vector public key", fx, func(r response) []byte { return r.PublicKey })
	digest := randomDigest()
	sigs := c.session([]string{"bob", "carol"}, cmpDeadline, request{Op: opSign, Key: key, Digest: digest})
	r := same(t, "r", sigs, func(r response) []byte { return r.R })
	s := same(t, "s", sigs, func(r response) []byte { return r.S })
	pk, err := btcec.ParsePubKey(pub)
	if err != nil {
		t.Fatalf("the test-vector key is not a SEC1 key: %v", err)
	}
	var rs, ss btcec.ModNScalar
	if len(r) != 32 || len(s) != 32 || rs.SetByteSlice(r) || ss.SetByteSlice(s) {
		t.Fatal("r or s is not a scalar below the group order")
	}
	sig := btcecdsa.NewSignature(&rs, &ss)
	if !sig.Verify(digest, pk) {
		t.Fatal("the ECDSA signature does not verify")
	}
	if sig.Verify(randomDigest(), pk) {
		t.Fatal("the ECDSA signature verifies for another digest")
	}
}

func randomDigest() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	d := sha256.Sum256(b)
	return d[:]
}

// securityDrops are receiver drops that must never happen on an honest
// path: each would mean a forged, corrupted or misrouted frame.
var securityDrops = []wire.DropReason{
	wire.DropMalformed, wire.DropVersion, wire.DropOwnFrame, wire.DropUnknownSender, wire.DropWrongRecipient,
	wire.DropBadSignature, wire.DropStale, wire.DropAttestationMismatch, wire.DropAttestationInvalid,
	wire.DropAttestationExpired, wire.DropAttestationDebug, wire.DropAttestationPCR, wire.DropAttestationBinding,
	wire.DropDecrypt, wire.DropUnknownAttestation,
}

// checkDrops fails if a helper accepted no frame or dropped one for a
// security reason.
func (c *cluster) checkDrops() {
	c.t.Helper()
	for id, r := range c.each(abc, openTimeout, request{Op: opStats}) {
		c.t.Logf("%s: accepted %d frames, dropped %v", id, r.Accepted, r.Dropped)
		if r.Accepted == 0 {
			c.t.Errorf("%s accepted no frame", id)
		}
		for _, reason := range securityDrops {
			if n := r.Dropped[reason.String()]; n > 0 {
				c.t.Errorf("%s dropped %d frames as %s", id, n, reason)
			}
		}
	}
}
