//go:build !release

package e2e_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
	"github.com/nitro-cosigner/nitro-cosigner/test/demo"
)

// TestDemo runs `make demo`'s flow (test/demo) on the binaries TestMain
// built: a `cosignerctl devnet up` process driven through the CLI contract
// (cosignerctl --devnet DIR … --json), its results checked with
// go-ethereum and btcd. CMP key generation and signing take minutes under
// the race detector, so with it only the FROST Taproot half runs; the
// Ethereum half runs in the pass without it.
func TestDemo(t *testing.T) {
	cfg := demo.Config{Bin: needBinaries(t), Dir: t.TempDir(), SkipEthereum: raceEnabled}
	var out testutil.Buffer
	cfg.Out = &out
	start := time.Now()
	checks, err := demo.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("%v\ndemo output:\n%s%s", err, out.String(), childLogs(cfg.DevnetDir()))
	}
	t.Logf("%d checks held in %v (Ethereum half: %v)", len(checks), time.Since(start).Round(time.Second), !cfg.SkipEthereum)
	want := []string{"btcd's script engine", "refuses the same signature", "stopped on SIGINT"}
	if !cfg.SkipEthereum {
		want = append(want, "recovers its sender", "mined in block", "BIP-32 child", "refuses a hardened path")
	}
	for _, w := range want {
		if !slices.ContainsFunc(checks, func(c string) bool { return strings.Contains(c, w) }) {
			t.Errorf("no check mentions %q; the checks:\n%s", w, strings.Join(checks, "\n"))
		}
	}
}
