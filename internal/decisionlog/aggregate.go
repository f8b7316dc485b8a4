package decisionlog

import (
	"math"
	"slices"
	"time"
)

// aggregate is one interval's counts.
type aggregate struct {
	tuples  map[tupleKey]*tuple
	order   []tupleKey // first seen first, so records come out in a stable order
	calls   int64
	latency histogram
	dynamo  histogram
	groups  map[groupKey]int64
	gorder  []groupKey
}

// tupleKey is one value of each dimension of the counts.
type tupleKey struct {
	allow  bool
	reason string
	plan   string
}

type tuple struct {
	decisions int64
	counts    map[string]int64
}

// groupKey is what a repeated decision's line is about.
type groupKey struct {
	allow         bool
	reason        string
	keyID, planID string
	apiID, stage  string
	shadow        bool
	overflow      bool // counted here because MaxGroups was reached
}

func newAggregate() aggregate {
	return aggregate{tuples: map[tupleKey]*tuple{}, groups: map[groupKey]int64{}}
}

func (a *aggregate) empty() bool { return len(a.tuples) == 0 && len(a.groups) == 0 }

// add counts d, and for a repeated or unusual decision when collapse is
// set, its group's line. It says whether d opened a group.
func (a *aggregate) add(d *Decision, maxGroups int, collapse bool) (first bool) {
	k := tupleKey{d.Allow, d.Reason, d.PlanID}
	t := a.tuples[k]
	if t == nil {
		t = &tuple{counts: map[string]int64{}}
		a.tuples[k] = t
		a.order = append(a.order, k)
	}
	t.decisions++
	for _, c := range d.Counts {
		t.counts[c.Name] += c.N
	}
	a.calls += int64(d.DynamoDBCalls)
	a.latency.add(ms(d.Latency))
	if d.DynamoDBCalls > 0 {
		a.dynamo.add(ms(d.DynamoDBLatency))
	}
	if !collapse || d.Kind == Counted {
		return false
	}
	g := groupKey{allow: d.Allow, reason: d.Reason, keyID: d.KeyID, planID: d.PlanID, apiID: d.APIID, stage: d.Stage, shadow: d.Shadow}
	if _, ok := a.groups[g]; !ok && len(a.groups) >= maxGroups {
		g = groupKey{allow: d.Allow, reason: d.Reason, apiID: d.APIID, stage: d.Stage, shadow: d.Shadow, overflow: true}
	}
	n, ok := a.groups[g]
	if !ok {
		a.gorder = append(a.gorder, g)
	}
	a.groups[g] = n + 1
	return !ok
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// histogram gathers values in bins 20% wide, which CloudWatch takes as an
// EMF metric value {"Values", "Counts", "Max", "Min", "Count", "Sum"} and
// computes percentiles from, to within the width of a bin. Values are
// clamped to [0.001, 100,000] for binning (at most 100 bins, EMF's limit);
// Min, Max and Sum are exact.
type histogram struct {
	bins     map[int]int64
	count    int64
	sum      float64
	min, max float64
}

const (
	binRatio = 1.2
	binLow   = 1e-3
	binHigh  = 6e4
)

var logRatio = math.Log(binRatio)

func (h *histogram) add(v float64) {
	if h.bins == nil {
		h.bins = map[int]int64{}
	}
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if h.count == 0 || v > h.max {
		h.max = v
	}
	h.count++
	h.sum += v
	h.bins[bin(v)]++
}

func bin(v float64) int {
	return int(math.Floor(math.Log(min(max(v, binLow), binHigh)) / logRatio))
}

// binValue is the middle of bin i, geometrically.
func binValue(i int) float64 {
	v := math.Exp((float64(i) + 0.5) * logRatio)
	return math.Round(v*1e4) / 1e4
}

// values returns the bins' values and counts, in increasing order.
func (h *histogram) values() ([]float64, []int64) {
	idx := make([]int, 0, len(h.bins))
	for i := range h.bins {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	values, counts := make([]float64, len(idx)), make([]int64, len(idx))
	for j, i := range idx {
		values[j], counts[j] = binValue(i), h.bins[i]
	}
	return values, counts
}
