//go:build !release

package harness

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"time"
)

// Figure is one entry of results.json.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// RequiredNames are the figures a full run must report (issue 9).
var RequiredNames = []string{
	"online_sign_p50_ms_2of3", "online_sign_p99_ms_2of3", "online_sign_p50_ms_3of5",
	"burst_sign_per_s_2of3", "sustained_sign_per_s_2of3",
	"keygen_ratio_vs_lib_2of3", "full_sign_ratio_vs_lib_2of3", "full_sign_ratio_vs_tsslib_2of3",
	"restore_s_10k_keys", "s3_bytes_per_key_at_10k", "broker_bytes_per_sign_per_party", "rss_bytes_per_key",
}

// goal is a target a figure should meet: at most (or at least) bound.
type goal struct {
	atMost bool
	bound  float64
}

func (g goal) met(v float64) bool {
	if g.atMost {
		return v <= g.bound
	}
	return v >= g.bound
}

func (g goal) String() string {
	if g.atMost {
		return fmt.Sprintf("≤ %s", formatValue(g.bound))
	}
	return fmt.Sprintf("≥ %s", formatValue(g.bound))
}

// entry is a figure with what BENCHMARKS.md says about it.
type entry struct {
	Figure
	goal *goal
	note string // why it misses its goal, or a caveat of this figure
}

// section groups figures measured one way; method says how.
type section struct {
	title, method string
	entries       []*entry
}

// Report collects the run's figures, in the order they were measured.
type Report struct {
	sections []*section
	notes    []string // caveats of the whole run
	phases   []phase

	smoke                 bool
	began                 time.Time
	took                  time.Duration
	loadBefore, loadAfter string
}

type phase struct {
	name string
	took time.Duration
}

// section returns the section with title, adding it with method if new.
func (r *Report) section(title, method string) *section {
	for _, s := range r.sections {
		if s.title == title {
			return s
		}
	}
	s := &section{title: title, method: method}
	r.sections = append(r.sections, s)
	return s
}

// add records a figure; a value that is not finite is left out and noted.
func (s *section) add(name string, value float64, unit string) *entry {
	e := &entry{Figure: Figure{Name: name, Value: value, Unit: unit}}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return e // not in the section: nothing to report
	}
	s.entries = append(s.entries, e)
	return e
}

// find returns the section's figure of that name, or nil.
func (s *section) find(name string) *entry {
	for _, e := range s.entries {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// atMost sets the figure's goal to value ≤ bound, and the note explaining
// a miss.
func (e *entry) atMost(bound float64, whyMissed string) *entry {
	e.goal = &goal{atMost: true, bound: bound}
	e.explain(whyMissed)
	return e
}

// caveat notes something about a figure that has no goal.
func (e *entry) caveat(note string) *entry {
	e.note = note
	return e
}

// atLeast sets the figure's goal to value ≥ bound.
func (e *entry) atLeast(bound float64, whyMissed string) *entry {
	e.goal = &goal{bound: bound}
	e.explain(whyMissed)
	return e
}

func (e *entry) explain(whyMissed string) {
	if !e.goal.met(e.Value) {
		e.note = whyMissed
	}
}

// note adds a caveat of the whole run.
func (r *Report) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// Figures lists every figure in measurement order.
func (r *Report) Figures() []Figure {
	var out []Figure
	for _, s := range r.sections {
		for _, e := range s.entries {
			out = append(out, e.Figure)
		}
	}
	return out
}

// WriteJSON writes the figures as results.json: a flat list of
// {"name", "value", "unit"}.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r.Figures(), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Check reads a results file and checks its form: a JSON list of figures,
// each with a name (unique), a unit and a finite value, and, when
// required is set, every name of RequiredNames. It asserts nothing about
// the values.
func Check(path string, required bool) ([]Figure, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var figs []Figure
	if err := json.Unmarshal(b, &figs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(figs) == 0 {
		return nil, fmt.Errorf("%s: no figures", path)
	}
	seen := map[string]bool{}
	for i, f := range figs {
		switch {
		case f.Name == "" || f.Unit == "":
			return nil, fmt.Errorf("%s: figure %d has no name or no unit", path, i)
		case seen[f.Name]:
			return nil, fmt.Errorf("%s: %s appears twice", path, f.Name)
		case math.IsNaN(f.Value) || math.IsInf(f.Value, 0):
			return nil, fmt.Errorf("%s: %s is not finite", path, f.Name)
		}
		seen[f.Name] = true
	}
	if required {
		var missing []string
		for _, n := range RequiredNames {
			if !seen[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%s: missing %v", path, missing)
		}
	}
	return figs, nil
}
