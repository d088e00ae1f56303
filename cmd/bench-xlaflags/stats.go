package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Sample is one result of a case: the loss after a step, or the GEMM's sum.
type Sample struct {
	// Round is the step's index.
	Round int
	Value float64
	// Bits are the value's bits as the child computed it (float32 losses, float64 sums),
	// to compare results exactly.
	Bits uint64
}

// median returns the median of xs (the mean of the two middle values for an even count),
// or NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// PairSample is one round of a pair: the times per step (or per product, for the GEMM)
// of A's block and of B's block, run one right after the other.
type PairSample struct {
	Round    int
	AMS, BMS float64
}

// pairTimes returns the times of A (b false) or B (b true).
func pairTimes(ps []PairSample, b bool) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = p.AMS
		if b {
			out[i] = p.BMS
		}
	}
	return out
}

// pairRatios returns B's time over A's in each round (the two blocks ran back to back,
// so these ratios cancel most of the machine's other load).
func pairRatios(ps []PairSample) []float64 {
	var out []float64
	for _, p := range ps {
		if p.AMS > 0 {
			out = append(out, p.BMS/p.AMS)
		}
	}
	return out
}

// ValueDiff compares the values of a with those of base, round by round.
type ValueDiff struct {
	// Compared is the number of rounds both have.
	Compared int
	// Equal is the number of rounds whose values are equal bit for bit.
	Equal int
	// MaxRel is the largest |a-base|/|base| (|a-base| where base is 0); +Inf where one
	// value is NaN or infinite and the other is not.
	MaxRel float64
}

// BitEqual reports whether every compared value was equal bit for bit.
func (d ValueDiff) BitEqual() bool { return d.Compared > 0 && d.Equal == d.Compared }

// compareValues compares the results of a with those of base, step by step (by Round).
func compareValues(a, base []Sample) ValueDiff {
	byRound := map[int]Sample{}
	for _, s := range base {
		byRound[s.Round] = s
	}
	var d ValueDiff
	for _, s := range a {
		b, ok := byRound[s.Round]
		if !ok {
			continue
		}
		d.Compared++
		if s.Bits == b.Bits {
			d.Equal++
			continue
		}
		d.MaxRel = math.Max(d.MaxRel, relDiff(s.Value, b.Value))
	}
	return d
}

// relDiff returns |a-b|/|b|, |a-b| if b is 0, 0 if both are the same non-finite value, and
// +Inf if only one is finite or they are different non-finite values.
func relDiff(a, b float64) float64 {
	finA, finB := !math.IsNaN(a) && !math.IsInf(a, 0), !math.IsNaN(b) && !math.IsInf(b, 0)
	switch {
	case !finA || !finB:
		if a == b || (math.IsNaN(a) && math.IsNaN(b)) {
			return 0
		}
		return math.Inf(1)
	case b == 0:
		return math.Abs(a - b)
	}
	return math.Abs(a-b) / math.Abs(b)
}

// Thresholds of the verdict: a set is worth keeping when it makes the CNN or the MLP step
// at least winRatio of the baseline's time faster (median of per-round ratios), slows no
// other case by more than loseRatio, and its losses stay within lossTol of the baseline's.
const (
	winRatio  = 0.90
	loseRatio = 1.05
	lossTol   = 1e-5
)

// parseResult decodes a child's result, "f32:" and the 8 hex digits of a float32's bits or
// "f64:" and the 16 of a float64's, into its value and bits.
func parseResult(s string) (float64, uint64, error) {
	kind, hex, ok := strings.Cut(s, ":")
	if !ok || (kind != "f32" && kind != "f64") {
		return 0, 0, fmt.Errorf("result %q: want f32:HEX or f64:HEX", s)
	}
	size := 32
	if kind == "f64" {
		size = 64
	}
	if len(hex) != size/4 {
		return 0, 0, fmt.Errorf("result %q: want %d hex digits", s, size/4)
	}
	bits, err := strconv.ParseUint(hex, 16, size)
	if err != nil {
		return 0, 0, fmt.Errorf("result %q: %w", s, err)
	}
	if kind == "f32" {
		return float64(math.Float32frombits(uint32(bits))), bits, nil
	}
	return math.Float64frombits(bits), bits, nil
}
