package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Series is one unlabelled series read from a snapshot of type S.
type Series[S any] struct {
	// Name is the full metric name (namespace included).
	Name, Help string
	// Counter marks a monotonic count; otherwise the series is a gauge.
	Counter bool
	Value   func(S) float64
}

// Counter builds a counter Series.
func Counter[S any](name, help string, v func(S) float64) Series[S] {
	return Series[S]{Name: name, Help: help, Counter: true, Value: v}
}

// Gauge builds a gauge Series.
func Gauge[S any](name, help string, v func(S) float64) Series[S] {
	return Series[S]{Name: name, Help: help, Value: v}
}

// Bool turns a flag into 1 or 0.
func Bool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// snapshotCollector takes one snapshot per scrape and reports every series
// from it, so the series of one scrape agree with each other.
type snapshotCollector[S any] struct {
	snap   func() S
	series []Series[S]
	descs  []*prometheus.Desc
}

// Snapshot returns a collector that calls snap once per scrape (a Stats
// method, typically) and reports series from that one value.
func Snapshot[S any](snap func() S, series ...Series[S]) prometheus.Collector {
	c := &snapshotCollector[S]{snap: snap, series: series}
	for _, s := range series {
		c.descs = append(c.descs, prometheus.NewDesc(s.Name, s.Help, nil, nil))
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *snapshotCollector[S]) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *snapshotCollector[S]) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	for i, series := range c.series {
		t := prometheus.GaugeValue
		if series.Counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(c.descs[i], t, series.Value(s))
	}
}

// NewCollector returns a collector that may report the series of descs
// and reports whatever collect sends, for labelled series built from a
// snapshot (drop reasons, pools).
func NewCollector(descs []*prometheus.Desc, collect func(ch chan<- prometheus.Metric)) prometheus.Collector {
	return funcCollector{descs: descs, collect: collect}
}

type funcCollector struct {
	descs   []*prometheus.Desc
	collect func(ch chan<- prometheus.Metric)
}

// Describe implements prometheus.Collector.
func (c funcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c funcCollector) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// Join returns one collector of cs.
func Join(cs ...prometheus.Collector) prometheus.Collector { return joined(cs) }

type joined []prometheus.Collector

// Describe implements prometheus.Collector.
func (j joined) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range j {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (j joined) Collect(ch chan<- prometheus.Metric) {
	for _, c := range j {
		c.Collect(ch)
	}
}
