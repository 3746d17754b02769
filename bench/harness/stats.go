//go:build !release

package harness

import (
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p ≤ 100) of ds by the
// nearest-rank method: with few samples, p99 is the largest.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(rank, 1)-1]
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ratio is a/b, NaN when b is zero (left out of the report).
func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// paired times two ways of doing the same work, alternating which goes
// first, as enclave/mpc's benchmarks do (the machine's state drifts).
type paired struct{ a, b []time.Duration }

func (p *paired) run(i int, a, b func() (time.Duration, error)) error {
	first, second := a, b
	if i%2 == 1 {
		first, second = b, a
	}
	d1, err := first()
	if err != nil {
		return err
	}
	d2, err := second()
	if err != nil {
		return err
	}
	if i%2 == 1 {
		d1, d2 = d2, d1
	}
	p.a, p.b = append(p.a, d1), append(p.b, d2)
	return nil
}

// ratio is the total of a over the total of b.
func (p *paired) ratio() float64 { return ratio(sum(p.a), sum(p.b)) }
