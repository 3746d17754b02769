//go:build !release

package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
