package mpc_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/taurusgroup/multi-party-sig/pkg/ecdsa"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
)

// CMP keygen is by far the slowest operation (and about ten times slower
// under the race detector), so the CMP keys most tests use, and a few
// presignatures for them, are test vectors in testdata, made by
//
//	go test ./enclave/mpc -run TestFixtures -update-fixtures
//
// Live keygens run in TestCMPKeygen (2-of-3) and, behind the soak tag, for
// larger sets.
var updateFixtures = flag.Bool("update-fixtures", false, "regenerate the CMP test vectors in testdata")

const fixtureWarning = "TEST VECTORS ONLY: these key shares and presignatures are public; never use these keys"

// fixtureSpecs lists the vectors: key size, and a signer set with how many
// presignatures to make for it.
var fixtureSpecs = []struct {
	n, t    int
	signers []mpc.PartyID
	presigs int
}{
	{3, 2, []mpc.PartyID{"bob", "carol"}, 10},
	{5, 3, []mpc.PartyID{"alice", "dave", "erin"}, 2},
}

type fixtureFile struct {
	Warning string
	Records []fixtureRecord
	Presigs []fixturePresigs
}

type fixtureRecord struct {
	Key                  []byte
	Scheme               uint8
	Epoch                uint64
	Threshold            int
	Parties              []string
	Self                 string
	PublicKey, ChainCode []byte
	Share                []byte
}

type fixturePresigs struct {
	Signers []string
	IDs     [][]byte
	// ByParty holds each signer's presignatures, in IDs order.
	ByParty map[string][]fixturePresig
}

type fixturePresig struct {
	ID, R, RBar, S, KShare, ChiShare []byte
}

func fixturePath(n, t int) string {
	return filepath.Join("testdata", fmt.Sprintf("cmp-%d-of-%d.cbor", t, n))
}

// cmpKey returns the CMP test-vector key with threshold t of n parties.
func cmpKey(tb testing.TB, n, t int) *keyFixture {
	tb.Helper()
	return fixture(tb, fmt.Sprintf("cmp-%d-of-%d", t, n), n, func(f *keyFixture) error {
		return f.load(fixturePath(n, t))
	})
}

func (f *keyFixture) load(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w (regenerate with -update-fixtures)", err)
	}
	var ff fixtureFile
	if err := cbor.Unmarshal(b, &ff); err != nil {
		return err
	}
	f.stores = map[mpc.PartyID]*mpctest.MemStore{}
	for _, r := range ff.Records {
		rec := r.record()
		f.stores[rec.Self] = mpctest.NewMemStore()
		if err := f.stores[rec.Self].PutKey(context.Background(), rec); err != nil {
			return err
		}
		f.info = mpc.KeyInfo{Key: rec.Key, Scheme: rec.Scheme, Threshold: rec.Threshold,
			Parties: rec.Parties, PublicKey: rec.PublicKey, ChainCode: rec.ChainCode}
	}
	f.presigs = ff.Presigs
	return nil
}

func (r fixtureRecord) record() mpc.KeyRecord {
	rec := mpc.KeyRecord{Key: mpc.KeyID(r.Key), Scheme: mpc.Scheme(r.Scheme), Epoch: r.Epoch,
		Threshold: r.Threshold, Self: mpc.PartyID(r.Self), PublicKey: r.PublicKey,
		ChainCode: r.ChainCode, Share: r.Share}
	for _, p := range r.Parties {
		rec.Parties = append(rec.Parties, mpc.PartyID(p))
	}
	return rec
}

// loadPresigs files the vector presignatures of signers in the cluster's
// pools and returns their IDs. Every test that loads them reuses them, so
// these presignatures are only fit for test keys.
func (f *keyFixture) loadPresigs(tb testing.TB, c *cluster, signers []mpc.PartyID) []mpc.PresignatureID {
	tb.Helper()
	for _, set := range f.presigs {
		if fmt.Sprint(set.Signers) != fmt.Sprint(signers) {
			continue
		}
		ids := make([]mpc.PresignatureID, len(set.IDs))
		for i, id := range set.IDs {
			ids[i] = mpc.PresignatureID(id)
			for _, s := range signers {
				ps := set.ByParty[string(s)][i].decode(tb)
				c.engines[s].AddPresignatureForTest(f.info.Key, signers, 0, ids[i], ps)
			}
		}
		return ids
	}
	tb.Fatalf("no vector presignatures for %v", signers)
	return nil
}

func (p fixturePresig) decode(tb testing.TB) *ecdsa.PreSignature {
	ps := ecdsa.EmptyPreSignature(curve.Secp256k1{})
	ps.ID = p.ID
	for _, err := range []error{
		ps.R.UnmarshalBinary(p.R), ps.RBar.UnmarshalBinary(p.RBar), ps.S.UnmarshalBinary(p.S),
		ps.KShare.UnmarshalBinary(p.KShare), ps.ChiShare.UnmarshalBinary(p.ChiShare),
	} {
		if err != nil {
			tb.Fatalf("decoding a vector presignature: %v", err)
		}
	}
	return ps
}

func encodePresig(ps *ecdsa.PreSignature) (fixturePresig, error) {
	out := fixturePresig{ID: ps.ID}
	var errs [5]error
	out.R, errs[0] = ps.R.MarshalBinary()
	out.RBar, errs[1] = ps.RBar.MarshalBinary()
	out.S, errs[2] = ps.S.MarshalBinary()
	out.KShare, errs[3] = ps.KShare.MarshalBinary()
	out.ChiShare, errs[4] = ps.ChiShare.MarshalBinary()
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// TestFixtures checks the vectors load and agree, or regenerates them.
func TestFixtures(t *testing.T) {
	leakCheck(t)
	for _, fs := range fixtureSpecs {
		t.Run(fmt.Sprintf("%d-of-%d", fs.t, fs.n), func(t *testing.T) {
			if *updateFixtures {
				writeFixture(t, fs.n, fs.t, fs.signers, fs.presigs)
			}
			fx := cmpKey(t, fs.n, fs.t)
			c := newCluster(t, fx.parties, fx.clonedStores())
			checkKeyInfo(t, c, fx.info)
			if got := len(fx.loadPresigs(t, c, fs.signers)); got != fs.presigs {
				t.Fatalf("%d presignatures, want %d", got, fs.presigs)
			}
		})
	}
}

func writeFixture(t *testing.T, n, th int, signers []mpc.PartyID, presigs int) {
	parties := partiesN(n)
	c := newCluster(t, parties, nil)
	spec := newSpec(t, parties, okDeadline)
	infos := allOK(t, onEach(c, parties, func(e *mpc.Engine) (mpc.KeyInfo, error) {
		return e.Keygen(context.Background(), spec, th)
	}))
	ff := fixtureFile{Warning: fixtureWarning}
	for _, p := range parties {
		rec, err := c.stores[p].GetKey(context.Background(), infos[p].Key)
		if err != nil {
			t.Fatal(err)
		}
		ff.Records = append(ff.Records, fixtureFromRecord(rec))
	}
	ff.Presigs = []fixturePresigs{makeVectorPresigs(t, c, infos[parties[0]].Key, signers, presigs)}
	b, err := cbor.Marshal(&ff)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fixturePath(n, th), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fixtureFromRecord(rec mpc.KeyRecord) fixtureRecord {
	r := fixtureRecord{Key: rec.Key[:], Scheme: uint8(rec.Scheme), Epoch: rec.Epoch, Threshold: rec.Threshold,
		Self: string(rec.Self), PublicKey: rec.PublicKey, ChainCode: rec.ChainCode, Share: []byte(rec.Share)}
	for _, p := range rec.Parties {
		r.Parties = append(r.Parties, string(p))
	}
	return r
}

func makeVectorPresigs(t *testing.T, c *cluster, key mpc.KeyID, signers []mpc.PartyID, n int) fixturePresigs {
	set := fixturePresigs{ByParty: map[string][]fixturePresig{}}
	for _, s := range signers {
		set.Signers = append(set.Signers, string(s))
	}
	for range n {
		id := presignOn(t, c, key, 0, signers)
		set.IDs = append(set.IDs, id[:])
		for _, s := range signers {
			fp, err := encodePresig(c.engines[s].PresignatureForTest(key, signers, id))
			if err != nil {
				t.Fatal(err)
			}
			set.ByParty[string(s)] = append(set.ByParty[string(s)], fp)
		}
	}
	return set
}
