package mpc_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// signOn runs Sign with the same spec and request on every signer and
// returns the signature after checking they all agree.
func signOn(t testing.TB, c *cluster, signers []mpc.PartyID, req mpc.SignRequest) mpc.Signature {
	t.Helper()
	spec := newSpec(t, signers, okDeadline)
	sigs := allOK(t, onEach(c, signers, func(e *mpc.Engine) (mpc.Signature, error) {
		return e.Sign(context.Background(), spec, req)
	}))
	return sameSignature(t, sigs)
}

func sameSignature(t testing.TB, sigs map[mpc.PartyID]mpc.Signature) mpc.Signature {
	t.Helper()
	var first *mpc.Signature
	for p, s := range sigs {
		if first == nil {
			first = &s
			continue
		}
		if !bytes.Equal(s.Bytes(), first.Bytes()) || s.RecoveryID != first.RecoveryID {
			t.Fatalf("%s got a different signature", p)
		}
	}
	return *first
}

// presignOn runs Presign on every signer and returns the agreed ID.
func presignOn(t testing.TB, c *cluster, key mpc.KeyID, epoch uint64, signers []mpc.PartyID) mpc.PresignatureID {
	t.Helper()
	spec := newSpec(t, signers, okDeadline)
	ids := allOK(t, onEach(c, signers, func(e *mpc.Engine) (mpc.PresignatureID, error) {
		return e.Presign(context.Background(), spec, key, epoch)
	}))
	for p, id := range ids {
		if id != mpc.PresignatureID(spec.ID) {
			t.Fatalf("%s filed the presignature under %s, not the session ID", p, id)
		}
	}
	return mpc.PresignatureID(spec.ID)
}

// heavy skips a test that runs CMP keygen, refresh, presign or full sign
// when the race detector is on and the soak tag is off: under -race each of
// those takes one to three minutes on this machine (measured: 2-of-3 full
// sign 1m52s, presign 1m14s, refresh 2m46s), while the engine code they go
// through is the same as FROST's and the online sign's, which run under
// -race in every test run. Without -race they always run; make soak runs
// them with -race.
func heavy(tb testing.TB) {
	tb.Helper()
	if raceEnabled && !soakEnabled {
		tb.Skip("CMP keygen, refresh, presign and full sign take minutes under -race: run without -race or with -tags soak")
	}
}

// TestCMPKeygen runs a live keygen and signs with the new key. It is the
// one heavy CMP test that also runs under -race (about two minutes there).
func TestCMPKeygen(t *testing.T) {
	leakCheck(t)
	parties := partiesN(3)
	c := newCluster(t, parties, nil)
	spec := newSpec(t, parties, okDeadline)
	outs := onEach(c, parties, func(e *mpc.Engine) (mpc.KeyInfo, error) {
		return e.Keygen(context.Background(), spec, 2)
	})
	allOK(t, outs)
	if err := sameKeyInfo(outs); err != nil {
		t.Fatal(err)
	}
	info := outs["alice"].val
	if info.Key != mpc.KeyID(spec.ID) || info.Threshold != 2 || len(info.PublicKey) != 33 || len(info.ChainCode) != 32 {
		t.Fatalf("unexpected key: %+v", info)
	}
	for _, p := range parties {
		checkStored(t, c, p, info.Key, 0)
	}
	req := mpc.SignRequest{Key: info.Key, Digest: randomDigest(t)}
	if !ecdsaValid(t, info.PublicKey, req.Digest, signOn(t, c, []mpc.PartyID{"alice", "carol"}, req)) {
		t.Fatal("signature with the new key does not verify")
	}
}

// TestECDSASignVerify signs with the vector keys: from a presignature (in
// every run), in full and from a fresh presignature (heavy).
func TestECDSASignVerify(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n, t    int
		signers []mpc.PartyID
	}{
		{"2-of-3", 3, 2, []mpc.PartyID{"bob", "carol"}},
		{"3-of-5", 5, 3, []mpc.PartyID{"alice", "dave", "erin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			fx := cmpKey(t, tc.n, tc.t)
			c := newCluster(t, fx.parties, fx.clonedStores())
			checkKeyInfo(t, c, fx.info)
			ids := fx.loadPresigs(t, c, tc.signers)
			checkOnlineSign(t, c, fx, tc.signers, ids[0])

			heavy(t)
			req := mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t)}
			if !ecdsaValid(t, fx.info.PublicKey, req.Digest, signOn(t, c, tc.signers, req)) {
				t.Fatal("full sign: signature does not verify")
			}
			checkOnlineSign(t, c, fx, tc.signers, presignOn(t, c, fx.info.Key, 0, tc.signers))
		})
	}
}

func checkOnlineSign(t *testing.T, c *cluster, fx *keyFixture, signers []mpc.PartyID, id mpc.PresignatureID) {
	t.Helper()
	req := mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t), Presignature: id}
	sig := signOn(t, c, signers, req)
	if !ecdsaValid(t, fx.info.PublicKey, req.Digest, sig) {
		t.Fatal("presigned sign: signature does not verify")
	}
	if ecdsaValid(t, fx.info.PublicKey, randomDigest(t), sig) {
		t.Fatal("signature verifies over another digest")
	}
}

// checkKeyInfo checks every party reports the fixture's key.
func checkKeyInfo(t *testing.T, c *cluster, want mpc.KeyInfo) {
	t.Helper()
	infos := allOK(t, onEach(c, c.parties, func(e *mpc.Engine) (mpc.KeyInfo, error) {
		return e.Key(context.Background(), want.Key)
	}))
	for p, got := range infos {
		if !bytes.Equal(got.PublicKey, want.PublicKey) || got.Threshold != want.Threshold || len(got.Parties) != len(c.parties) {
			t.Errorf("%s reports another key: %+v", p, got)
		}
	}
}

func TestECDSADerivedKey(t *testing.T) {
	leakCheck(t)
	fx := cmpKey(t, 3, 2)
	c := newCluster(t, fx.parties, fx.clonedStores())
	signers := []mpc.PartyID{"alice", "carol"}
	path := []uint32{44, 0, 7, 1<<31 - 1}

	derived := sameDerivedKey(t, c, fx.info.Key, path)
	wantPub, wantChain := ckdPub(t, fx.info.PublicKey, fx.info.ChainCode, path)
	if !bytes.Equal(derived.PublicKey, wantPub) || !bytes.Equal(derived.ChainCode, wantChain) {
		t.Fatal("derived key differs from BIP-32 CKDpub")
	}

	heavy(t)

	req := mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t), Path: path}
	sig := signOn(t, c, signers, req)
	if !bytes.Equal(sig.PublicKey, derived.PublicKey) {
		t.Error("signature names another key than the derived one")
	}
	if !ecdsaValid(t, derived.PublicKey, req.Digest, sig) {
		t.Fatal("derived-key signature does not verify under the derived key")
	}
	if ecdsaValid(t, fx.info.PublicKey, req.Digest, sig) {
		t.Fatal("derived-key signature verifies under the parent key")
	}
}

// sameDerivedKey derives on every party, with no session, and checks they
// agree.
func sameDerivedKey(t *testing.T, c *cluster, key mpc.KeyID, path []uint32) mpc.DerivedKey {
	t.Helper()
	var first *mpc.DerivedKey
	for _, p := range c.parties {
		d, err := c.engines[p].DeriveKey(context.Background(), key, path)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if first != nil && !bytes.Equal(d.PublicKey, first.PublicKey) {
			t.Fatalf("%s derives another key", p)
		}
		first = &d
	}
	return *first
}

func TestECDSARejectsBadRequests(t *testing.T) {
	leakCheck(t)
	fx := cmpKey(t, 3, 2)
	c := newCluster(t, fx.parties, fx.clonedStores())
	e := c.engines["alice"]
	signers := []mpc.PartyID{"alice", "bob"}
	someID, _ := mpc.NewSessionID()
	good := mpc.SignRequest{Key: fx.info.Key, Digest: randomDigest(t)}
	for name, tc := range map[string]struct {
		spec mpc.SessionSpec
		req  mpc.SignRequest
		want error
	}{
		"hardened path":        {newSpec(t, signers, okDeadline), withPath(good, 1<<31), mpc.ErrInvalidRequest},
		"short digest":         {newSpec(t, signers, okDeadline), mpc.SignRequest{Key: good.Key, Digest: []byte{1}}, mpc.ErrInvalidRequest},
		"presigned derived":    {newSpec(t, signers, okDeadline), withPresig(withPath(good, 1), someID), mpc.ErrInvalidRequest},
		"unknown presignature": {newSpec(t, signers, okDeadline), withPresig(good, someID), mpc.ErrPresignatureUnavailable},
		"wrong epoch":          {newSpec(t, signers, okDeadline), mpc.SignRequest{Key: good.Key, Digest: good.Digest, Epoch: 1}, mpc.ErrEpochMismatch},
		"too few signers":      {newSpec(t, []mpc.PartyID{"alice"}, okDeadline), good, mpc.ErrInvalidRequest},
		"stranger signer":      {newSpec(t, []mpc.PartyID{"alice", "mallory"}, okDeadline), good, mpc.ErrInvalidRequest},
		"self not a signer":    {newSpec(t, []mpc.PartyID{"bob", "carol"}, okDeadline), good, mpc.ErrInvalidRequest},
		"duplicate signer":     {newSpec(t, []mpc.PartyID{"alice", "bob", "bob"}, okDeadline), good, mpc.ErrInvalidRequest},
		"bad party ID":         {newSpec(t, []mpc.PartyID{"alice", "b\x00b"}, okDeadline), good, mpc.ErrInvalidRequest},
		"no deadline":          {mpc.SessionSpec{ID: someID, Parties: signers}, good, mpc.ErrInvalidRequest},
		"unknown key":          {newSpec(t, signers, okDeadline), mpc.SignRequest{Digest: good.Digest}, mpc.ErrKeyNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.Sign(context.Background(), tc.spec, tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func withPath(r mpc.SignRequest, path ...uint32) mpc.SignRequest {
	r.Path = path
	return r
}

func withPresig(r mpc.SignRequest, id mpc.SessionID) mpc.SignRequest {
	r.Presignature = mpc.PresignatureID(id)
	return r
}

func TestRefreshThenSign(t *testing.T) {
	leakCheck(t)
	heavy(t)
	fx := cmpKey(t, 3, 2)
	c := newCluster(t, fx.parties, fx.clonedStores())
	signers := []mpc.PartyID{"bob", "carol"}
	key := fx.info.Key
	fx.loadPresigs(t, c, signers)

	spec := newSpec(t, c.parties, okDeadline)
	infos := allOK(t, onEach(c, c.parties, func(e *mpc.Engine) (mpc.KeyInfo, error) {
		return e.Refresh(context.Background(), spec, key, 0)
	}))
	for p, info := range infos {
		if info.Epoch != 1 || !bytes.Equal(info.PublicKey, fx.info.PublicKey) {
			t.Fatalf("%s: after refresh epoch %d, same key %v", p, info.Epoch, bytes.Equal(info.PublicKey, fx.info.PublicKey))
		}
		checkStored(t, c, p, key, 1)
	}
	if _, ok := c.engines["bob"].ClaimPresignature(key, 0, signers); ok {
		t.Error("a presignature of the old epoch survived the refresh")
	}
	if s, _ := poolOf(c, "bob", key); s.Depth != 0 || s.Epoch != 1 {
		t.Errorf("pool after refresh: %+v", s)
	}

	req := mpc.SignRequest{Key: key, Epoch: 1, Digest: randomDigest(t)}
	if !ecdsaValid(t, fx.info.PublicKey, req.Digest, signOn(t, c, signers, req)) {
		t.Fatal("signature after refresh does not verify")
	}
	_, err := c.engines["bob"].Sign(context.Background(), newSpec(t, signers, okDeadline), mpc.SignRequest{Key: key, Digest: req.Digest})
	if !errors.Is(err, mpc.ErrEpochMismatch) {
		t.Fatalf("sign at the old epoch: got %v, want ErrEpochMismatch", err)
	}
}

func checkStored(t *testing.T, c *cluster, p mpc.PartyID, key mpc.KeyID, epoch uint64) {
	t.Helper()
	rec, err := c.stores[p].GetKey(context.Background(), key)
	if err != nil || rec.Epoch != epoch {
		t.Fatalf("%s stored epoch %d (err %v), want %d", p, rec.Epoch, err, epoch)
	}
}
