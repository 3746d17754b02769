package procpath_test

import (
	"context"
	"fmt"
	"os"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// cmpFixture is the path of the CMP 2-of-3 test vectors (parties alice,
// bob and carol), relative to this package.
const cmpFixture = "../../enclave/mpc/testdata/cmp-2-of-3.cbor"

// fixtureFile mirrors the layout enclave/mpc's fixtures_test.go writes:
// one key record per party (public test vectors, never a real key). The
// presignatures it also holds are not read.
type fixtureFile struct {
	Records []fixtureRecord
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

// loadFixture puts this helper's record of the test-vector key in its
// store; an empty path loads nothing.
func (h *helper) loadFixture(path string) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var ff fixtureFile
	if err := cbor.Unmarshal(b, &ff); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	for _, r := range ff.Records {
		if r.Self == h.id {
			return h.putFixture(r)
		}
	}
	return fmt.Errorf("%s holds no record for %s", path, h.id)
}

func (h *helper) putFixture(r fixtureRecord) error {
	rec := mpc.KeyRecord{Scheme: mpc.Scheme(r.Scheme), Epoch: r.Epoch, Threshold: r.Threshold,
		Self: mpc.PartyID(r.Self), PublicKey: r.PublicKey, ChainCode: r.ChainCode, Share: r.Share}
	if len(r.Key) != len(rec.Key) {
		return fmt.Errorf("test vector key ID is %d bytes", len(r.Key))
	}
	copy(rec.Key[:], r.Key)
	for _, p := range r.Parties {
		rec.Parties = append(rec.Parties, mpc.PartyID(p))
	}
	if err := h.store.PutKey(context.Background(), rec); err != nil {
		return err
	}
	h.fixture = &rec.Key
	return nil
}
