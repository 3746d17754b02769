//go:build !release

package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// tssResult is what bench/tsslib prints.
type tssResult struct {
	Version   string    `json:"version"`
	Parties   int       `json:"parties"`
	Signers   int       `json:"signers"`
	PreParams string    `json:"preparams"`
	KeygenMs  float64   `json:"keygen_ms"`
	SignMs    []float64 `json:"sign_ms"`
}

// tssLib runs bench/tsslib (`go run` in its own module) and compares its
// signs with this run's full signs.
func (r *run) tssLib(ctx context.Context) error {
	res, err := runTSSLib(ctx, r.cfg.TSSLibDir, r.plan.tssReps, r.plan.tssFixtureKeys)
	if err != nil {
		return err
	}
	var signs []time.Duration
	for _, v := range res.SignMs {
		signs = append(signs, time.Duration(v*float64(time.Millisecond)))
	}
	label := fmt.Sprintf("%dof%d", res.Signers, res.Parties)
	sec := r.report.section(secTSS, methodTSS)
	sec.add("tsslib_sign_ms_"+label, ms(median(signs)), "ms")
	if res.KeygenMs > 0 {
		sec.add("tsslib_keygen_ms_"+label, res.KeygenMs, "ms")
	}
	sec.add("full_sign_ratio_vs_tsslib_2of3", ratio(median(r.fullSignStack), median(signs)), "ratio").caveat(
		"Our full sign over tss-lib's is the bare libraries' ratio (lib_sign_ratio_vs_tsslib) times what the stack " +
			"adds to the bare multi-party-sig sign (full_sign_ratio_vs_lib).")
	sec.add("lib_sign_ratio_vs_tsslib_2of3", ratio(median(r.fullSignLib), median(signs)), "ratio").caveat(
		"The library's: the bare multi-party-sig CMP sign (presign included: Paillier-encryption range proofs, " +
			"affine-operation proofs and log* proofs for every pair of signers) does more zero-knowledge work than " +
			"tss-lib's GG18 sign; that is the price of CMP's identifiable aborts and security proof, not of our stack.")
	if label != "2of3" {
		r.report.note("Smoke run: tss-lib signed %s with its fixture keys instead of a 2-of-3 keygen; "+
			"the ratios against it compare different sizes.", label)
	}
	r.report.note("tss-lib %s (pre-parameters: %s).", res.Version, res.PreParams)
	return nil
}

func runTSSLib(ctx context.Context, dir string, reps int, fixtureKeys bool) (tssResult, error) {
	args := []string{"run", ".", "-reps", strconv.Itoa(reps)}
	if fixtureKeys {
		args = append(args, "-fixture-keys")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return tssResult{}, fmt.Errorf("go run (in %s): %w\n%s", dir, err, stderr.String())
	}
	var res tssResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return res, fmt.Errorf("bench/tsslib's output: %w", err)
	}
	if len(res.SignMs) == 0 {
		return res, fmt.Errorf("bench/tsslib timed no sign")
	}
	return res, nil
}
