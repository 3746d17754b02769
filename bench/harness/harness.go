//go:build !release

// Package harness is nitro-cosigner's benchmark harness (issue 9): it
// starts devnets of real cosigner processes on this machine, drives them
// through the gRPC API, runs the bare multi-party-sig library and
// bnb-chain/tss-lib beside them in the same run, measures the sealed
// state with synthetic keys, and writes results.json (a flat list of
// {"name", "value", "unit"}) and BENCHMARKS.md (the same figures, how each
// was measured, and why one misses its goal when that can be told).
//
// It asserts nothing about the figures; a step that fails fails the run.
// Smoke mode runs every kind of step at tiny sizes, to check the harness
// itself.
package harness

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"
)

// Config configures a run.
type Config struct {
	// Smoke runs tiny sizes: one 2-of-3 devnet, a few signs, 100 keys.
	Smoke bool
	// BinDir holds cosigner-parent and cosigner-enclave (`make build`
	// puts them in bin/). Required.
	BinDir string
	// TSSLibDir is the bench/tsslib module, run with `go run`. Required.
	TSSLibDir string
	// WorkDir is where devnet directories are made; empty means the
	// system's temporary directory. Keep it short (unix socket paths).
	WorkDir string
	// KeepDevnets keeps the devnets' directories (their logs) after the
	// run; they are always kept when a step fails.
	KeepDevnets bool
	// Steps limits the run to the named steps (see Steps); empty runs
	// every one.
	Steps []string
	// Log receives progress; nil discards it.
	Log *slog.Logger
}

// Steps are a run's steps, in order.
var Steps = []string{"ratios-2of3", "stack-2of3", "tsslib", "storage", "stack-3of5"}

// plan is how much of each step a run does.
type plan struct {
	keygenReps, refreshReps, fullSignReps int
	cmpLoads, frostLoads                  []load // 2-of-3
	cmpLoads35, frostLoads35              []load // 3-of-5; none: no 3-of-5 devnet
	restoreKeys, bytesAtKeys              []int
	restoreReps, newKeys                  int
	tssReps                               int
	tssFixtureKeys                        bool // sign with tss-lib's fixture keys (3-of-5) instead of a keygen
	// ratiosOnStack runs the ratios' keygen and full signs on the 2-of-3
	// load devnet, with its key (smoke: one CMP keygen instead of two).
	ratiosOnStack bool
	// Presignature pool sizing of each devnet's enclaves: the ratios
	// devnet's pools are as small as can be (their refills are work the
	// harness waits for after each keygen and refresh); the others' hold
	// their loads (see fullPlan).
	poolsRatios, pools23, pools35 poolSizing
}

// poolSizing is a devnet's --presig-pool-* flags; zero fields take the
// enclave's defaults.
type poolSizing struct{ target, lowWater, concurrency int }

func (p poolSizing) flags() []string {
	var out []string
	for _, f := range []struct {
		name string
		v    int
	}{{"--presig-pool-target", p.target}, {"--presig-pool-low-water", p.lowWater}, {"--presig-pool-concurrency", p.concurrency}} {
		if f.v > 0 {
			out = append(out, f.name, fmt.Sprint(f.v))
		}
	}
	return out
}

// withDefaults is the sizing the enclaves run with (mpc.PoolConfig's
// defaults for zero fields).
func (p poolSizing) withDefaults() poolSizing {
	if p.target <= 0 {
		p.target = 8
	}
	if p.lowWater <= 0 || p.lowWater > p.target {
		p.lowWater = min(4, p.target)
	}
	if p.concurrency <= 0 {
		p.concurrency = 1
	}
	return p
}

func (p poolSizing) String() string {
	p = p.withDefaults()
	return fmt.Sprintf("%d presignatures per signer set, refilled once fewer than %d remain, %d presign session(s) at a time per pool",
		p.target, p.lowWater, p.concurrency)
}

// load is a number of concurrent clients, each making perClient signs;
// role names its throughput figure ("burst", "sustained"), if any.
type load struct {
	clients, perClient int
	role               string
}

// fullPlan is make bench's. Client i signs through cosigner i mod N, and
// each cosigner signs with the pool of its own signer set
// (enclave/node.PoolSets): in 2-of-3, [1 2] serves the clients of
// cosigners 1 and 2, [1 3] those of cosigner 3. So 50 clients draw 34
// presignatures from [1 2]: the 2-of-3 pools hold 36, refilled once fewer
// than 17 remain, and the burst runs first, from full pools; the
// one-client and ten-client loads then draw from what the refill put
// back without starting another (no refill shares the cores with the
// figures most read), and the sustained load draws more than is left, so
// refills run during it. In 3-of-5, [1 2 3] serves cosigners 1 to 3; its
// pools hold 6, refilled once fewer than 3 remain: the ten-client load
// runs first (6 from [1 2 3], which the refill restores), then the
// one-client load (3, starting no refill). No 3-of-5 CMP load of 50
// clients runs: warming 3-party pools for it (30 presignatures in [1 2 3]
// alone) would take longer than the whole run's budget.
func fullPlan() plan {
	return plan{
		keygenReps: 1, refreshReps: 1, fullSignReps: 3,
		cmpLoads:     []load{{50, 1, "burst"}, {1, 4, ""}, {10, 1, ""}, {10, 4, "sustained"}},
		frostLoads:   []load{{1, 30, ""}, {10, 10, "sustained"}, {50, 4, "burst"}},
		cmpLoads35:   []load{{10, 1, ""}, {1, 3, ""}},
		frostLoads35: []load{{1, 20, ""}, {10, 5, ""}, {50, 2, ""}},
		restoreKeys:  []int{1000, 10000}, bytesAtKeys: []int{10, 10000},
		restoreReps: 3, newKeys: 50, tssReps: 3,
		poolsRatios: poolSizing{1, 1, 1}, pools23: poolSizing{36, 17, 2}, pools35: poolSizing{6, 3, 2},
	}
}

func smokePlan() plan {
	return plan{
		keygenReps: 1, fullSignReps: 1,
		cmpLoads:    []load{{1, 1, ""}, {2, 1, "burst"}},
		frostLoads:  []load{{1, 5, ""}, {10, 1, "burst"}},
		restoreKeys: []int{100}, bytesAtKeys: []int{10, 100},
		restoreReps: 1, newKeys: 10, tssReps: 1, tssFixtureKeys: true, ratiosOnStack: true,
		poolsRatios: poolSizing{1, 1, 1}, pools23: poolSizing{2, 1, 1},
	}
}

// run is one run's state.
type run struct {
	cfg    Config
	plan   plan
	log    *slog.Logger
	report *Report
	// Carried between steps.
	shareSize     int             // bytes of a real CMP 2-of-3 share (library keygen)
	fullSignStack []time.Duration // 2-of-3 full signs through the stack
	fullSignLib   []time.Duration
	pools         map[string]bool       // by devnet: presignature pools served the one-client CMP signs
	sizing        map[string]poolSizing // by devnet: its pools' sizing
}

// Run runs the benchmarks and returns the report; write it with
// Report.WriteJSON and Report.WriteMarkdown.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	r := &run{cfg: cfg, plan: fullPlan(), log: cfg.Log, report: &Report{}, pools: map[string]bool{},
		sizing: map[string]poolSizing{}}
	if cfg.Smoke {
		r.plan = smokePlan()
	}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r.report.start(cfg.Smoke)
	steps := map[string]func(context.Context) error{
		"ratios-2of3": r.ratios2of3, "stack-2of3": r.stack2of3, "tsslib": r.tssLib, "storage": r.storage,
		"stack-3of5": r.stack3of5,
	}
	for _, name := range Steps {
		if len(cfg.Steps) > 0 && !slices.Contains(cfg.Steps, name) {
			continue
		}
		r.log.Info("step", "name", name)
		began := time.Now()
		if err := steps[name](ctx); err != nil {
			return r.report, fmt.Errorf("%s: %w", name, err)
		}
		r.report.phases = append(r.report.phases, phase{name, time.Since(began)})
	}
	r.report.finish()
	return r.report, nil
}
