//go:build !release

package harness

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/node"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {1, time.Millisecond}} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	few := []time.Duration{3, 1, 2}
	if got := percentile(few, 99); got != 3 {
		t.Errorf("p99 of 3 samples = %v, want the largest", got)
	}
	if got := median([]time.Duration{4, 1, 3, 2}); got != 2 {
		t.Errorf("median = %v, want 2 (integer mean of 2 and 3)", got)
	}
}

func TestPairedAlternates(t *testing.T) {
	var order []string
	var p paired
	for i := range 2 {
		err := p.run(i, func() (time.Duration, error) { order = append(order, "a"); return 2, nil },
			func() (time.Duration, error) { order = append(order, "b"); return 1, nil })
		if err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(order, "") != "abba" || p.ratio() != 2 || len(p.a) != 2 || p.a[1] != 2 {
		t.Errorf("order %v, a %v, b %v", order, p.a, p.b)
	}
}

// Check accepts what WriteJSON writes and refuses what is not a flat
// list of well-formed figures.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	r := &Report{}
	sec := r.section("s", "m")
	for _, n := range RequiredNames {
		sec.add(n, 1.5, "ms")
	}
	good := filepath.Join(dir, "good.json")
	if err := r.WriteJSON(good); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(good, true); err != nil {
		t.Errorf("a complete report: %v", err)
	}
	for name, body := range map[string]string{
		"not a list":   `{"name": "x", "value": 1, "unit": "ms"}`,
		"empty":        `[]`,
		"no unit":      `[{"name": "x", "value": 1}]`,
		"no name":      `[{"value": 1, "unit": "ms"}]`,
		"twice":        `[{"name": "x", "value": 1, "unit": "ms"}, {"name": "x", "value": 2, "unit": "ms"}]`,
		"string value": `[{"name": "x", "value": "1", "unit": "ms"}]`,
	} {
		path := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Check(path, false); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	partial := filepath.Join(dir, "partial.json")
	os.WriteFile(partial, []byte(`[{"name": "x", "value": 1, "unit": "ms"}]`), 0o644)
	if _, err := Check(partial, false); err != nil {
		t.Errorf("a smoke report: %v", err)
	}
	if _, err := Check(partial, true); err == nil || !strings.Contains(err.Error(), "online_sign_p50_ms_2of3") {
		t.Errorf("missing required figures: %v", err)
	}
}

// A figure that is not finite is left out rather than written as
// something JSON cannot hold.
func TestNotFiniteLeftOut(t *testing.T) {
	r := &Report{}
	r.section("s", "m").add("x", ratio(1, 0), "ratio")
	if len(r.Figures()) != 0 {
		t.Errorf("figures %v", r.Figures())
	}
}

// The Markdown report marks misses and writes a shared note once.
func TestMarkdownMisses(t *testing.T) {
	r := &Report{}
	sec := r.section(secOnline, "how")
	sec.add("a_p50", 7, "ms").atMost(5, "slow")
	sec.add("a_p99", 30, "ms").atMost(25, "slow")
	sec.add("b_p50", 1, "ms").atMost(5, "never shown")
	md := r.markdown()
	for _, want := range []string{"| `a_p50` | 7.00 | ms | ≤ 5.00 | **missed** |", "| `b_p50` | 1.00 | ms | ≤ 5.00 | met |",
		"- `a_p50`, `a_p99`: slow\n"} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in\n%s", want, md)
		}
	}
	if strings.Contains(md, "never shown") {
		t.Error("a met goal's note is shown")
	}
}

func TestKeysLabel(t *testing.T) {
	for n, want := range map[int]string{10: "10", 100: "100", 1000: "1k", 10000: "10k", 1500: "1500"} {
		if got := keysLabel(n); got != want {
			t.Errorf("keysLabel(%d) = %q, want %q", n, got, want)
		}
	}
}

// poolSets counts the signer sets enclave/node.PoolSets gives a key.
func TestPoolSets(t *testing.T) {
	for _, c := range []struct{ n, t int }{{3, 2}, {5, 3}, {4, 2}, {3, 3}} {
		parties := []mpc.PartyID{"a", "b", "c", "d", "e"}[:c.n]
		want := len(node.PoolSets(mpc.KeyInfo{Threshold: c.t, Parties: parties}))
		if got := poolSets(c.n, c.t); got != want {
			t.Errorf("%d-of-%d: %d sets, node.PoolSets has %d", c.t, c.n, got, want)
		}
	}
}

func TestPoolSizingFlags(t *testing.T) {
	if got := strings.Join(poolSizing{36, 17, 0}.flags(), " "); got != "--presig-pool-target 36 --presig-pool-low-water 17" {
		t.Errorf("flags %q", got)
	}
	if got := (poolSizing{}).withDefaults(); got != (poolSizing{8, 4, 1}) {
		t.Errorf("defaults %+v, want mpc.PoolConfig's", got)
	}
	if got := (poolSizing{2, 0, 0}).withDefaults(); got != (poolSizing{2, 2, 1}) {
		t.Errorf("a target below the default low water: %+v", got)
	}
}

// Every note on a missed goal says whose the miss is.
func TestMissesSayWhose(t *testing.T) {
	r := &run{report: &Report{}, pools: map[string]bool{}, sizing: map[string]poolSizing{"2of3": {36, 17, 1}}}
	slow := loadResult{lat: []time.Duration{time.Second, 2 * time.Second}, wall: 3 * time.Second, cpu: 4 * time.Second,
		presigned: 1, errs: []error{errors.New("sign operation FAILED (BUSY)")}}
	b := newBreakdown(tallies{seriesApproval: {0.01, 2}, seriesReplication: {0.05, 10}, seriesSession + "{sign-presigned}": {0.004, 2},
		seriesSession + "{presign}": {9, 1}, seriesTransit: {0.002, 4}}, 1, 2)
	slow.breakdown = &b
	for _, kind := range []string{"online_sign", "frost_sign"} {
		r.addOnline(kind, "2of3", load{1, 2, ""}, slow)
		r.addOnline(kind, "2of3", load{50, 1, "burst"}, slow)
		r.addOnline(kind, "2of3", load{10, 4, "sustained"}, slow)
	}
	r.addPair("keygen", paired{a: []time.Duration{3}, b: []time.Duration{1}})
	r.addBroker(&stack{attDoc: 3400}, "broker_bytes_per_sign_per_party", "broker_frames_per_sign_per_party",
		tapCount{bytes: 20000, frames: 5}, 1, 2, false)
	r.addCreationBytes(10000, 3300, 46000)
	missed := 0
	for _, s := range r.report.sections {
		for _, e := range s.entries {
			if e.goal == nil || e.goal.met(e.Value) {
				continue
			}
			missed++
			if !strings.HasPrefix(e.note, "**") {
				t.Errorf("%s misses its goal; the note does not say whose: %q", e.Name, e.note)
			}
		}
	}
	if missed < 10 {
		t.Fatalf("only %d misses: the test does not exercise the notes", missed)
	}
	if !strings.Contains(r.report.markdown(), "2 approval calls of 5.0 ms") {
		t.Error("the breakdown is not in the notes")
	}
}
