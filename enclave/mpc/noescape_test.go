package mpc_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/protocols/cmp"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
)

// TestNoPresignatureEscapes is the presignature part of
// test/reliability's no-secret-escapes suite, here because presignatures
// never leave the engine: it runs a real CMP presign and a sign from it
// (and a full sign), records every envelope the engines hand the
// transport (before sealing: direct payloads in the clear) and every log
// line at DEBUG, and scans them for each signer's presignature secrets
// (k and chi shares) and key share (ECDSA share, ElGamal secret, Paillier
// primes): raw, hex and base64, whole and by halves. A presign takes about
// a minute under -race: make test runs this in its pass without it.
func TestNoPresignatureEscapes(t *testing.T) {
	if raceEnabled && !soakEnabled {
		t.Skip("CMP presign takes minutes under -race; make test runs this without it")
	}
	leakCheck(t)
	fx := cmpKey(t, 3, 2)
	var logs testutil.Buffer
	c := newCluster(t, fx.parties, fx.clonedStores(), func(cfg *mpc.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	var mu sync.Mutex
	var sent [][]byte
	c.net.SetRule(func(env *mpc.Envelope) mpctest.Action {
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, bytes.Clone(env.Payload))
		return mpctest.Deliver
	})
	signers := []mpc.PartyID{"bob", "carol"}
	key := fx.info.Key
	spec := newSpec(t, signers, okDeadline)
	ids := allOK(t, onEach(c, signers, func(e *mpc.Engine) (mpc.PresignatureID, error) {
		return e.Presign(context.Background(), spec, key, 0)
	}))
	id := ids["bob"]
	var secrets []namedSecret
	for _, p := range signers {
		ps := c.engines[p].PresignatureForTest(key, signers, id)
		if ps == nil {
			t.Fatalf("%s has no presignature %s", p, id)
		}
		secrets = append(secrets, namedSecret{string(p) + " presignature k share", must(ps.KShare.MarshalBinary())},
			namedSecret{string(p) + " presignature chi share", must(ps.ChiShare.MarshalBinary())})
		secrets = append(secrets, cmpSecrets(t, c, p, key)...)
	}
	presigned := mpc.SignRequest{Key: key, Digest: randomDigest(t), Presignature: id}
	if !ecdsaValid(t, fx.info.PublicKey, presigned.Digest, signOn(t, c, signers, presigned)) {
		t.Fatal("the presigned signature does not verify")
	}
	full := mpc.SignRequest{Key: key, Digest: randomDigest(t)}
	if !ecdsaValid(t, fx.info.PublicKey, full.Digest, signOn(t, c, signers, full)) {
		t.Fatal("the full signature does not verify")
	}
	mu.Lock()
	hay := append(sent, []byte(logs.String()))
	mu.Unlock()
	for _, s := range secrets {
		for enc, needle := range secretForms(s.value) {
			for i, h := range hay {
				if bytes.Contains(h, needle) {
					t.Errorf("SECRET ESCAPED: %s (%s) in item %d of %d (the last is the log)", s.name, enc, i, len(hay))
				}
			}
		}
	}
	if !strings.Contains(logs.String(), `msg="presignature consumed"`) {
		t.Error("the presigned sign logged no consumption")
	}
	t.Logf("scanned %d envelopes and %d bytes of logs for %d secrets", len(sent), len(logs.String()), len(secrets))
}

type namedSecret struct {
	name  string
	value []byte
}

// cmpSecrets reads party p's CMP share of key from its store.
func cmpSecrets(t *testing.T, c *cluster, p mpc.PartyID, key mpc.KeyID) []namedSecret {
	t.Helper()
	rec, err := c.stores[p].GetKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := cmp.EmptyConfig(curve.Secp256k1{})
	if err := cfg.UnmarshalBinary(rec.Share); err != nil {
		t.Fatal(err)
	}
	return []namedSecret{
		{string(p) + " ECDSA share", must(cfg.ECDSA.MarshalBinary())},
		{string(p) + " ElGamal secret", must(cfg.ElGamal.MarshalBinary())},
		{string(p) + " Paillier p", cfg.Paillier.P().Bytes()},
		{string(p) + " Paillier q", cfg.Paillier.Q().Bytes()},
	}
}

// secretForms are the forms a leak could take.
func secretForms(v []byte) map[string][]byte {
	h := len(v) / 2
	return map[string][]byte{
		"raw": v, "raw first half": v[:h], "raw second half": v[h:],
		"hex": []byte(hex.EncodeToString(v)), "HEX": []byte(strings.ToUpper(hex.EncodeToString(v))),
		"base64": []byte(strings.TrimRight(base64.StdEncoding.EncodeToString(v), "=")),
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
