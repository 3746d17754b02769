package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/bnb-chain/tss-lib/v2/common"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
	"github.com/bnb-chain/tss-lib/v2/test"
	"github.com/bnb-chain/tss-lib/v2/tss"
)

const libPath = "github.com/bnb-chain/tss-lib/v2"

type keygenData = keygen.LocalPartySaveData

// runKeygen runs a keygen of every party in ids and returns their save data
// in ids order.
func runKeygen(ids tss.SortedPartyIDs, pre []keygen.LocalPreParams) ([]*keygenData, error) {
	ctx := tss.NewPeerContext(ids)
	out := make(chan tss.Message, 64)
	end := make(chan *keygen.LocalPartySaveData, len(ids))
	ps := make([]tss.Party, len(ids))
	for i, id := range ids {
		params := tss.NewParameters(tss.S256(), ctx, id, len(ids), threshold)
		ps[i] = keygen.NewLocalParty(params, out, end, pre[i])
	}
	got, err := route(ps, out, end)
	if err != nil {
		return nil, err
	}
	keys := make([]*keygenData, len(ids))
	for _, k := range got {
		for i, id := range ids {
			if k.ShareID.Cmp(id.KeyInt()) == 0 {
				keys[i] = k
			}
		}
	}
	return keys, nil
}

// sign runs a sign of msg by the parties in signers (a prefix of the
// keygen's ids, so keys[i] is signers[i]'s) and returns the signature.
func sign(signers tss.SortedPartyIDs, keys []*keygenData, t int, msg *big.Int) (*common.SignatureData, error) {
	ids := make(tss.UnSortedPartyIDs, len(signers))
	for i, s := range signers {
		ids[i] = tss.NewPartyID(s.Id, s.Moniker, s.KeyInt())
	}
	sorted := tss.SortPartyIDs(ids)
	ctx := tss.NewPeerContext(sorted)
	out := make(chan tss.Message, 64)
	end := make(chan *common.SignatureData, len(sorted))
	ps := make([]tss.Party, len(sorted))
	for i, id := range sorted {
		params := tss.NewParameters(tss.S256(), ctx, id, len(sorted), t)
		ps[i] = signing.NewLocalParty(msg, params, keygen.BuildLocalSaveDataSubset(*keys[i], sorted), out, end)
	}
	sigs, err := route(ps, out, end)
	if err != nil {
		return nil, err
	}
	return sigs[0], nil
}

// route starts every party and delivers their messages until each has
// ended, the way tss-lib's own tests do.
func route[T any](ps []tss.Party, out <-chan tss.Message, end <-chan T) ([]T, error) {
	errs := make(chan *tss.Error, len(ps))
	for _, p := range ps {
		go func() {
			if err := p.Start(); err != nil {
				errs <- err
			}
		}()
	}
	var results []T
	timeout := time.After(10 * time.Minute)
	for len(results) < len(ps) {
		select {
		case err := <-errs:
			return nil, err
		case m := <-out:
			deliver(ps, m, errs)
		case r := <-end:
			results = append(results, r)
		case <-timeout:
			return nil, errors.New("timed out")
		}
	}
	return results, nil
}

func deliver(ps []tss.Party, m tss.Message, errs chan<- *tss.Error) {
	if to := m.GetTo(); to != nil {
		go test.SharedPartyUpdater(ps[to[0].Index], m, errs)
		return
	}
	for _, p := range ps {
		if p.PartyID().Index != m.GetFrom().Index {
			go test.SharedPartyUpdater(p, m, errs)
		}
	}
}

// preParams loads the first parties' pre-parameters from tss-lib's
// fixtures, or generates them.
func preParams(dir string) ([]keygen.LocalPreParams, string, error) {
	if pre, err := loadPreParams(dir); err == nil {
		return pre, "fixtures", nil
	}
	pre := make([]keygen.LocalPreParams, parties)
	for i := range pre {
		p, err := keygen.GeneratePreParams(10 * time.Minute)
		if err != nil {
			return nil, "", fmt.Errorf("generating pre-parameters: %w", err)
		}
		pre[i] = *p
	}
	return pre, "generated", nil
}

func loadPreParams(dir string) ([]keygen.LocalPreParams, error) {
	pre := make([]keygen.LocalPreParams, parties)
	for i := range pre {
		saved, err := loadFixture(dir, i)
		if err != nil {
			return nil, err
		}
		if !saved.LocalPreParams.Validate() {
			return nil, errors.New("fixture pre-parameters incomplete")
		}
		pre[i] = saved.LocalPreParams
	}
	return pre, nil
}

// fixtureKeys returns the first n parties of tss-lib's fixture key (5
// parties, threshold 2), with their IDs, in ID order.
func fixtureKeys(dir string, n int) (tss.SortedPartyIDs, []*keygenData, error) {
	byShare := map[string]*keygenData{}
	ids := make(tss.UnSortedPartyIDs, n)
	for i := range n {
		k, err := loadFixture(dir, i)
		if err != nil {
			return nil, nil, err
		}
		name := fmt.Sprint(i + 1)
		ids[i] = tss.NewPartyID(name, name, k.ShareID)
		byShare[k.ShareID.String()] = k
	}
	sorted := tss.SortPartyIDs(ids)
	keys := make([]*keygenData, n)
	for i, id := range sorted {
		keys[i] = byShare[id.KeyInt().String()]
	}
	return sorted, keys, nil
}

// loadFixture reads party i's save data from tss-lib's fixtures.
func loadFixture(dir string, i int) (*keygenData, error) {
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("keygen_data_%d.json", i)))
	if err != nil {
		return nil, err
	}
	var k keygenData
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, err
	}
	for _, x := range k.BigXj {
		x.SetCurve(tss.S256())
	}
	k.ECDSAPub.SetCurve(tss.S256())
	return &k, nil
}

// fixturesDir is where the module cache keeps tss-lib's fixtures.
func fixturesDir(version string) string {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return ""
	}
	return filepath.Join(strings.TrimSpace(string(out)), "github.com/bnb-chain/tss-lib/v2@"+version, "test", "_ecdsa_fixtures")
}

// libVersion is tss-lib's version in this build.
func libVersion() (string, error) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", errors.New("no build information")
	}
	for _, m := range info.Deps {
		if m.Path == libPath {
			return m.Version, nil
		}
	}
	return "", errors.New("tss-lib is not in the build")
}
