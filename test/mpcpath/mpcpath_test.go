package mpcpath_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker/natsdev"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// securityReasons are drops that must never happen on an honest network.
var securityReasons = []wire.DropReason{
	wire.DropMalformed, wire.DropVersion, wire.DropOwnFrame, wire.DropUnknownSender, wire.DropWrongRecipient,
	wire.DropBadSignature, wire.DropStale, wire.DropAttestationMismatch, wire.DropAttestationInvalid,
	wire.DropAttestationExpired, wire.DropAttestationDebug, wire.DropAttestationPCR, wire.DropAttestationBinding,
	wire.DropDecrypt, wire.DropUnknownAttestation,
}

// natsBrokers starts an embedded NATS server and returns a factory of
// broker clients for it, each wrapped by wrap if not nil.
func natsBrokers(t *testing.T, wrap func(broker.Broker) broker.Broker) func(*testing.T, string) broker.Broker {
	srv := must(natsdev.NewEmbeddedNATS(t.TempDir()))
	t.Cleanup(srv.Shutdown)
	return func(t *testing.T, id string) broker.Broker {
		b, err := broker.NewNATS(broker.NATSConfig{URL: srv.URL(), AckWait: 2 * time.Second,
			RetryDelay: 100 * time.Millisecond, Logger: logger(t, "nats "+id)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		if err := b.EnsureInbox(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if wrap != nil {
			return wrap(b)
		}
		return b
	}
}

// keygenAndSign runs a FROST 2-of-3 keygen and a sign by alice and carol,
// and checks the BIP-340 signature.
func keygenAndSign(t *testing.T, c *cluster) {
	t.Helper()
	start := time.Now()
	key := mustAll(t, "keygen", run(c, abc, 30*time.Second, func(e *mpc.Engine, s mpc.SessionSpec) (mpc.KeyInfo, error) {
		return e.FROSTKeygen(context.Background(), s, 2)
	}))
	t.Logf("FROST 2-of-3 keygen: %v", time.Since(start))
	digest := make([]byte, 32)
	rand.Read(digest)
	start = time.Now()
	sig := mustAll(t, "sign", run(c, []mpc.PartyID{"alice", "carol"}, 30*time.Second,
		func(e *mpc.Engine, s mpc.SessionSpec) (mpc.Signature, error) {
			return e.Sign(context.Background(), s, mpc.SignRequest{Key: key.Key, Digest: digest})
		}))
	t.Logf("FROST sign: %v", time.Since(start))
	if !schnorrValid(t, key.PublicKey, digest, sig) {
		t.Fatal("BIP-340 signature does not verify")
	}
}

func schnorrValid(t *testing.T, xonly, digest []byte, sig mpc.Signature) bool {
	t.Helper()
	pk, err := schnorr.ParsePubKey(xonly)
	if err != nil {
		t.Fatal(err)
	}
	s, err := schnorr.ParseSignature(sig.Bytes())
	return err == nil && s.Verify(digest, pk)
}

// checkDrops fails if a party accepted nothing or dropped a frame for a
// security reason not in allowed.
func (c *cluster) checkDrops(allowed ...wire.DropReason) {
	c.t.Helper()
	for _, id := range abc {
		st := c.cos[id].peer.Stats()
		if st.Wire.Accepted == 0 {
			c.t.Errorf("%s accepted no frame", id)
		}
		for _, r := range securityReasons {
			if n := st.Wire.Dropped[r]; n > 0 && !contains(allowed, r) {
				c.t.Errorf("%s dropped %d frames as %v", id, n, r)
			}
		}
	}
}

func (c *cluster) dropped(r wire.DropReason) uint64 {
	var n uint64
	for _, co := range c.cos {
		n += co.peer.Stats().Wire.Dropped[r]
	}
	return n
}

func contains(rs []wire.DropReason, r wire.DropReason) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

func TestFROSTOverNATS(t *testing.T) {
	c := newCluster(t, natsBrokers(t, nil))
	keygenAndSign(t, c)
	c.checkDrops()
}

// hostile wraps a broker client: it publishes what plan returns instead of
// the frame it was given.
type hostile struct {
	broker.Broker
	plan func(to string, frame []byte) [][]byte
}

func (h *hostile) Publish(ctx context.Context, to string, frame []byte) error {
	for _, f := range h.plan(to, frame) {
		if err := h.Broker.Publish(ctx, to, f); err != nil {
			return err
		}
	}
	return nil
}

// history remembers the last frame published to each inbox, across every
// cosigner's broker client.
type history struct {
	mu   sync.Mutex
	last map[string][]byte
}

func (h *history) swap(to string, frame []byte) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	prev := h.last[to]
	h.last[to] = bytes.Clone(frame)
	return prev
}

func tamper(frame []byte) []byte {
	out := bytes.Clone(frame)
	out[len(out)-1] ^= 0x01 // the last byte of the Ed25519 signature
	return out
}

// Every frame is published twice, the previous frame to the same inbox is
// replayed after it, and a tampered copy is published too: sessions
// succeed, and receivers count replays and bad signatures and accept no
// other forgery.
func TestFROSTOverHostileNATS(t *testing.T) {
	h := &history{last: map[string][]byte{}}
	plan := func(to string, frame []byte) [][]byte {
		out := [][]byte{frame, tamper(frame), frame}
		if prev := h.swap(to, frame); prev != nil {
			out = append(out, prev)
		}
		return out
	}
	c := newCluster(t, natsBrokers(t, func(b broker.Broker) broker.Broker { return &hostile{b, plan} }))
	keygenAndSign(t, c)
	c.checkDrops(wire.DropBadSignature)
	if c.dropped(wire.DropReplay) == 0 || c.dropped(wire.DropBadSignature) == 0 {
		t.Fatalf("replays %d, bad signatures %d: the hostile broker did nothing",
			c.dropped(wire.DropReplay), c.dropped(wire.DropBadSignature))
	}
}

// A frame replaced by a tampered one is lost: the session ends at its
// deadline, the tampered frame is refused as bad_signature, and a later
// session on the same stack succeeds.
func TestTamperedFrameEndsAtDeadline(t *testing.T) {
	var (
		mu      sync.Mutex
		armed   bool
		tampers int
	)
	plan := func(to string, frame []byte) [][]byte {
		mu.Lock()
		defer mu.Unlock()
		if armed && to == "carol" {
			armed = false
			tampers++
			return [][]byte{tamper(frame)}
		}
		return [][]byte{frame}
	}
	c := newCluster(t, natsBrokers(t, func(b broker.Broker) broker.Broker { return &hostile{b, plan} }))
	key := mustAll(t, "keygen", run(c, abc, 30*time.Second, func(e *mpc.Engine, s mpc.SessionSpec) (mpc.KeyInfo, error) {
		return e.FROSTKeygen(context.Background(), s, 2)
	}))
	mu.Lock()
	armed = true
	mu.Unlock()
	digest := make([]byte, 32)
	start := time.Now()
	rs := run(c, []mpc.PartyID{"alice", "carol"}, 3*time.Second, func(e *mpc.Engine, s mpc.SessionSpec) (mpc.Signature, error) {
		return e.Sign(context.Background(), s, mpc.SignRequest{Key: key.Key, Digest: digest})
	})
	t.Logf("tampered sign ended after %v", time.Since(start))
	if err := rs["carol"].err; !errors.Is(err, mpc.ErrDeadline) {
		t.Fatalf("carol: got %v, want ErrDeadline", err)
	}
	mu.Lock()
	n := tampers
	mu.Unlock()
	if n != 1 || c.cos["carol"].peer.Stats().Wire.Dropped[wire.DropBadSignature] != 1 {
		t.Fatalf("tampered %d, carol's bad_signature drops %d", n, c.cos["carol"].peer.Stats().Wire.Dropped[wire.DropBadSignature])
	}
	c.checkDrops(wire.DropBadSignature)
	mustAll(t, "sign after", run(c, []mpc.PartyID{"alice", "carol"}, 30*time.Second,
		func(e *mpc.Engine, s mpc.SessionSpec) (mpc.Signature, error) {
			return e.Sign(context.Background(), s, mpc.SignRequest{Key: key.Key, Digest: digest})
		}))
}
