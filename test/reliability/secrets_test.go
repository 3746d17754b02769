//go:build !release

package reliability_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/protocols/cmp"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/payload"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
	"github.com/nitro-cosigner/nitro-cosigner/test/internal/mpcharness"
)

// TestNoSecretEscapes runs keygen and signing (FROST; with CMP also keygen,
// full sign, presign and a presigned sign) on white-box stacks whose
// secrets the test can read, and scans everything that leaves an enclave
// for them: the share bytes (FROST private share; CMP ECDSA share, ElGamal
// secret, Paillier primes), and the database data key, raw, in hex and in
// base64, whole and by halves. Two stacks:
//
//   - enclave cores (node, coordinator, judge, policy, audit, engine) with
//     keystores replicated to an in-process S3: every S3 request body
//     (segments, snapshots, manifests), every envelope the engines hand the
//     transport (before sealing, so also direct payloads in the clear), and
//     every log line at DEBUG;
//   - the real frame path (engine, peer, link, relay, embedded NATS): every
//     frame published to the broker, every byte on the enclave-parent link
//     sockets, and every log line at DEBUG.
//
// Presignature values (k and chi shares) are internal to enclave/mpc; its
// TestNoPresignatureEscapes scans for them. The devnet's processes are not
// scanned: their secrets cannot be read from outside (docs/reliability.md).
func TestNoSecretEscapes(t *testing.T) {
	parallelInShort(t)
	began := time.Now()
	var found []string
	scanned, secrets, sessions, keyCount := 0, 0, 0, 0
	t.Run("cores", func(t *testing.T) {
		s := newStack(t, stackOptions{replicate: true, record: true, pools: mpc.PoolConfig{Target: 1, LowWater: 1}})
		keys := []api.Key{s.createKey(t, mpc.SchemeTaproot)}
		if cmpEnabled() {
			keys = append(keys, s.createKey(t, mpc.SchemeECDSA))
		}
		for _, k := range keys {
			s.signDigests(t, k, 3)
		}
		if cmpEnabled() {
			s.waitPresigned(t, keys[1])
		}
		sessions += s.calls
		keyCount += len(keys)
		var ss []secretValue
		for _, sn := range s.nodes {
			ss = append(ss, secretValue{string(sn.id) + " data key", sn.dataKey})
			for _, k := range keys {
				ss = append(ss, sharesOf(t, sn, k)...)
			}
		}
		hay := map[string][][]byte{"S3 request bodies": s.s3.written(), "transport envelopes": s.recorded(),
			"logs": {[]byte(s.logs.String())}}
		checkScan(t, ss, hay)
		found = append(found, scan(ss, hay)...)
		scanned += total(hay)
		secrets += len(ss)
		t.Logf("scanned %d S3 bodies, %d envelopes, %d bytes of logs for %d secrets", len(hay["S3 request bodies"]),
			len(hay["transport envelopes"]), len(hay["logs"][0]), len(ss))
	})
	t.Run("frame path", func(t *testing.T) {
		var logs, link testutil.Buffer
		c := mpcharness.NewCluster(t, mpcharness.NATS, mpcharness.Options{AllLogs: &logs, LinkBytes: &link})
		_, rs := mpcharness.Run(c, mpcharness.ABC, mpcharness.Generous, mpcharness.FROSTKeygen)
		key := mpcharness.MustAll(t, "keygen", rs)
		sessions++
		keyCount++
		for _, signers := range [][]mpc.PartyID{{"alice", "bob"}, {"bob", "carol"}, mpcharness.ABC} {
			digest := mpcharness.RandomDigest()
			_, sigs := mpcharness.Run(c, signers, mpcharness.Generous, mpcharness.Signer(key.Key, digest))
			if !mpcharness.SchnorrValid(t, key.PublicKey, digest, mpcharness.MustAll(t, "sign", sigs)) {
				t.Fatal("BIP-340 signature does not verify")
			}
			sessions++
		}
		var ss []secretValue
		for _, id := range mpcharness.ABC {
			rec, err := c.Cos[id].Store.GetKey(context.Background(), key.Key)
			if err != nil {
				t.Fatal(err)
			}
			ss = append(ss, shareSecrets(t, string(id), rec.Scheme, rec.Share)...)
		}
		var frames [][]byte
		for _, id := range mpcharness.ABC {
			frames = append(frames, c.Ledger.FramesTo(string(id))...)
		}
		hay := map[string][][]byte{"broker frames": frames, "link sockets": {link.Bytes()}, "logs": {[]byte(logs.String())}}
		checkScan(t, ss, hay)
		found = append(found, scan(ss, hay)...)
		scanned += total(hay)
		secrets += len(ss)
		t.Logf("scanned %d broker frames, %d bytes on link sockets, %d bytes of logs for %d secrets", len(frames),
			len(link.Bytes()), len(logs.String()), len(ss))
	})
	for _, f := range found {
		t.Errorf("SECRET ESCAPED: %s", f)
	}
	summary.add("no secret escapes", func(r *row) {
		r.sessions += sessions
		r.keys += keyCount
		r.duration += time.Since(began)
		r.note = fmt.Sprintf("%d secrets, %d KiB scanned, %d found", secrets, scanned>>10, len(found))
	})
}

// signDigests signs n random digests with k, from each party in turn.
func (s *stack) signDigests(t *testing.T, k api.Key, n int) {
	t.Helper()
	for i := range n {
		digest := sha256.Sum256([]byte(fmt.Sprint("no secret escapes ", i, time.Now())))
		from := mpcharness.ABC[i%len(mpcharness.ABC)]
		s.waitHolds(t, from, k)
		out, err := s.nodes[from].node.Sign(context.Background(), api.SignParams{Caller: testSigner, OperationID: fmt.Sprint("op-", i),
			Key: k.Info.Key, Payload: payload.Request{Kind: payload.RawDigest, Bytes: digest[:]}})
		if err != nil || out.State != api.StateSucceeded {
			t.Fatalf("sign from %s: %+v %v", from, out, err)
		}
		s.calls++
	}
}

// waitHolds waits until party id holds k (parties store a new key a moment
// after the initiator returns).
func (s *stack) waitHolds(t *testing.T, id mpc.PartyID, k api.Key) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := s.nodes[id].node.Key(context.Background(), k.Info.Key); err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s does not hold %s", id, k.Info.Key)
		}
	}
}

// waitPresigned waits for alice's pool with bob to hold a presignature,
// then signs from alice, which uses it.
func (s *stack) waitPresigned(t *testing.T, k api.Key) {
	t.Helper()
	for end := time.Now().Add(5 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		ready := false
		for _, p := range s.nodes["alice"].engine.Pools() {
			ready = ready || p.Key == k.Info.Key && p.Depth > 0 && fmt.Sprint(p.Signers) == "[alice bob]"
		}
		if ready {
			break
		}
		if time.Now().After(end) {
			t.Fatal("no presignature was made")
		}
	}
	s.signDigests(t, k, 1)
	if !strings.Contains(s.logs.String(), `msg="presignature consumed"`) {
		t.Error("the sign did not use a presignature")
	}
}

// secretValue is something that must never leave an enclave.
type secretValue struct {
	name  string
	value []byte
}

// sharesOf reads party sn's share of k from its keystore.
func sharesOf(t *testing.T, sn *stackNode, k api.Key) []secretValue {
	t.Helper()
	rec, err := sn.ks.GetKey(context.Background(), keystore.KeyID(k.Info.Key))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Share.Wipe()
	return shareSecrets(t, string(sn.id), mpc.Scheme(rec.Scheme), bytes.Clone(rec.Share.Reveal()))
}

// shareSecrets extracts the secret values of a stored share (the engine's
// encodings: its versioned CBOR form of a FROST Taproot config, or the
// library's marshalled CMP config).
func shareSecrets(t *testing.T, who string, scheme mpc.Scheme, share []byte) []secretValue {
	t.Helper()
	switch scheme {
	case mpc.SchemeTaproot:
		var ts struct{ PrivateShare []byte }
		if err := cbor.Unmarshal(share, &ts); err != nil || len(ts.PrivateShare) != 32 {
			t.Fatalf("%s: decoding a FROST share: %v", who, err)
		}
		return []secretValue{{who + " FROST private share", ts.PrivateShare}}
	case mpc.SchemeECDSA:
		cfg := cmp.EmptyConfig(curve.Secp256k1{})
		if err := cfg.UnmarshalBinary(share); err != nil {
			t.Fatalf("%s: decoding a CMP share: %v", who, err)
		}
		x := mpcharness.Must(cfg.ECDSA.MarshalBinary())
		y := mpcharness.Must(cfg.ElGamal.MarshalBinary())
		return []secretValue{{who + " CMP ECDSA share", x}, {who + " CMP ElGamal secret", y},
			{who + " Paillier p", cfg.Paillier.P().Bytes()}, {who + " Paillier q", cfg.Paillier.Q().Bytes()}}
	}
	t.Fatalf("%s: scheme %v", who, scheme)
	return nil
}

// checkScan fails the test unless every haystack holds something and the
// scanner finds every secret, in each of its encodings, when it is there:
// a scan that could find nothing proves nothing.
func checkScan(t *testing.T, secrets []secretValue, hay map[string][][]byte) {
	t.Helper()
	for where, items := range hay {
		if total(map[string][][]byte{where: items}) == 0 {
			t.Errorf("nothing recorded in %s: the scan would be vacuous", where)
		}
	}
	for _, s := range secrets {
		for enc, needle := range encodings(s.value) {
			planted := [][]byte{[]byte("level=DEBUG msg=x v=" + string(needle) + " end")}
			if len(scan([]secretValue{s}, map[string][][]byte{"control": planted})) == 0 {
				t.Errorf("the scanner does not find %s planted %s", s.name, enc)
			}
		}
	}
}

// scan looks for every secret, in every encoding, in every haystack, and
// describes what it found.
func scan(secrets []secretValue, hay map[string][][]byte) []string {
	var found []string
	for _, s := range secrets {
		for enc, needle := range encodings(s.value) {
			for where, items := range hay {
				for i, item := range items {
					if bytes.Contains(item, needle) {
						found = append(found, fmt.Sprintf("%s (%s) in %s #%d", s.name, enc, where, i))
					}
				}
			}
		}
	}
	return found
}

// encodings are the forms a leak could take.
func encodings(v []byte) map[string][]byte {
	if len(v) < 16 {
		panic(errors.New("secret too short to scan for"))
	}
	h := len(v) / 2
	return map[string][]byte{
		"raw": v, "raw first half": v[:h], "raw second half": v[h:],
		"hex": []byte(hex.EncodeToString(v)), "HEX": []byte(strings.ToUpper(hex.EncodeToString(v))),
		"base64":    []byte(strings.TrimRight(base64.StdEncoding.EncodeToString(v), "=")),
		"base64url": []byte(base64.RawURLEncoding.EncodeToString(v)),
	}
}

func total(hay map[string][][]byte) int {
	n := 0
	for _, items := range hay {
		for _, b := range items {
			n += len(b)
		}
	}
	return n
}
