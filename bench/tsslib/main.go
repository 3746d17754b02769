// Command tsslib times bnb-chain/tss-lib/v2's GG18-style ECDSA signing,
// 2-of-3 (three key holders, tss-lib threshold 1, two signers), every
// party in this process, messages routed over channels by tss-lib's own
// test helper (test.SharedPartyUpdater: wire encoding and parsing
// included, as tss-lib's tests do). bench/ runs it beside its own full
// sign and reads the JSON it prints.
//
// The key comes from a tss-lib keygen run here. Its pre-parameters (the
// safe primes and Paillier keys, which tss-lib expects to be generated
// out of band) are taken from tss-lib's published test fixtures when they
// are in the module cache, otherwise generated, which takes minutes.
// Keygen is timed for information only; bench/ compares signing. With
// -fixture-keys (bench's smoke run) it signs 3-of-5 with tss-lib's fixture
// key instead, without a keygen.
//
// It lives in a Go module of its own so that tss-lib never enters the
// product's go.mod.
package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/bnb-chain/tss-lib/v2/tss"
	"github.com/btcsuite/btcd/btcec/v2"
	btcecdsa "github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/ipfs/go-log"
)

// Result is what tsslib prints.
type Result struct {
	Library   string    `json:"library"`
	Version   string    `json:"version"`
	Parties   int       `json:"parties"`
	Signers   int       `json:"signers"`
	PreParams string    `json:"preparams"` // "fixtures" or "generated"
	KeygenMs  float64   `json:"keygen_ms"`
	SignMs    []float64 `json:"sign_ms"`
}

func main() {
	reps := flag.Int("reps", 3, "signatures to time")
	fixtures := flag.String("fixtures", "", "tss-lib's test/_ecdsa_fixtures directory (default: found in the module cache)")
	useFixtureKeys := flag.Bool("fixture-keys", false, "sign 3-of-5 with tss-lib's fixture key instead of running a 2-of-3 keygen (quick)")
	flag.Parse()
	if err := log.SetLogLevel("tss-lib", "error"); err != nil {
		fail(err)
	}
	res, err := run(*reps, *fixtures, *useFixtureKeys)
	if err != nil {
		fail(err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tsslib:", err)
	os.Exit(1)
}

const (
	parties   = 3
	threshold = 1 // tss-lib's t: t+1 parties sign
)

func run(reps int, fixtures string, useFixtureKeys bool) (*Result, error) {
	version, err := libVersion()
	if err != nil {
		return nil, err
	}
	if fixtures == "" {
		fixtures = fixturesDir(version)
	}
	res := &Result{Library: libPath, Version: version}
	ids, keys, t, err := prepare(res, fixtures, useFixtureKeys)
	if err != nil {
		return nil, err
	}
	res.Signers = t + 1
	for range reps {
		d, err := timeSign(ids[:t+1], keys, t)
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		res.SignMs = append(res.SignMs, ms(d))
	}
	return res, nil
}

// prepare returns the key to sign with: a 2-of-3 keygen's, timed, or the
// 3-of-5 fixture key.
func prepare(res *Result, fixtures string, useFixtureKeys bool) (tss.SortedPartyIDs, []*keygenData, int, error) {
	if useFixtureKeys {
		res.Parties, res.PreParams = 5, "fixtures"
		ids, keys, err := fixtureKeys(fixtures, 3)
		return ids, keys, 2, err
	}
	pre, source, err := preParams(fixtures)
	if err != nil {
		return nil, nil, 0, err
	}
	res.Parties, res.PreParams = parties, source
	ids := tss.GenerateTestPartyIDs(parties)
	start := time.Now()
	keys, err := runKeygen(ids, pre)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("keygen: %w", err)
	}
	res.KeygenMs = ms(time.Since(start))
	return ids, keys, threshold, nil
}

// timeSign signs a random digest with signers and checks the signature
// (outside the timing).
func timeSign(signers tss.SortedPartyIDs, keys []*keygenData, t int) (time.Duration, error) {
	digest := make([]byte, 32)
	if _, err := rand.Read(digest); err != nil {
		return 0, err
	}
	start := time.Now()
	sig, err := sign(signers, keys, t, new(big.Int).SetBytes(digest))
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if err := verify(keys[0].ECDSAPub.X(), keys[0].ECDSAPub.Y(), digest, sig.R, sig.S); err != nil {
		return 0, err
	}
	return d, nil
}

// verify checks an ECDSA signature over secp256k1 with btcec.
func verify(x, y *big.Int, digest, r, s []byte) error {
	uncompressed := append([]byte{4}, append(x.FillBytes(make([]byte, 32)), y.FillBytes(make([]byte, 32))...)...)
	pub, err := btcec.ParsePubKey(uncompressed)
	if err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	var rs, ss btcec.ModNScalar
	if rs.SetByteSlice(r) || ss.SetByteSlice(s) {
		return errors.New("signature values overflow the group order")
	}
	if !btcecdsa.NewSignature(&rs, &ss).Verify(digest, pub) {
		return errors.New("the signature does not verify")
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
