// Package verdict turns an experiment's per-seed measurements into a verdict on a
// paper's claim, by a rule that is stated before the run and applied by code, never by
// hand.
//
// A [Rule] names the measured quantity and the bound the claim implies (for example
// "Adan's steps to Adam's best loss, as a fraction of Adam's" at most 0.5). [Rule.Judge]
// summarises the per-seed values (median, mean ± sd, min-max), computes a seeded
// percentile-bootstrap confidence interval of the median, and says:
//   - [Supports] when the whole interval is on the claim's side of the bound;
//   - [DoesNotSupport] when the whole interval is on the other side;
//   - [Inconclusive] when the interval contains the bound, or when there are fewer seeds
//     than the rule asks for.
//
// The bootstrap is seeded, so the same values always give the same interval and verdict.
package verdict

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat"
)

// Verdict is what an experiment says of a claim.
type Verdict string

// The three verdicts.
const (
	Supports       Verdict = "supports"
	DoesNotSupport Verdict = "does not support"
	Inconclusive   Verdict = "inconclusive"
)

// Summary describes per-seed values.
type Summary struct {
	N      int   `json:"n"`
	Median Float `json:"median"`
	Mean   Float `json:"mean"`
	SD     Float `json:"sd"` // sample standard deviation (n-1); 0 for one value, NaN with infinite values
	Min    Float `json:"min"`
	Max    Float `json:"max"`
}

// String formats the summary as "median M (mean ± sd, min-max, n=N)".
func (s Summary) String() string {
	return fmt.Sprintf("median %.4g (mean %.4g ± %.2g, range %.4g-%.4g, n=%d)", s.Median, s.Mean, s.SD, s.Min, s.Max, s.N)
}

// Median returns the median of xs (the mean of the two middle values for an even count).
// It returns NaN for no values. +Inf values (e.g. "never reached the target") are ordered
// last, as they should be; NaN values make the result NaN.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if slices.ContainsFunc(s, math.IsNaN) {
		return math.NaN()
	}
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	lo, hi := s[n/2-1], s[n/2]
	if lo == hi { // also keeps +Inf, +Inf as +Inf instead of NaN
		return lo
	}
	return lo + (hi-lo)/2
}

// Summarize returns the summary of xs. It fails on no values or on NaN values.
func Summarize(xs []float64) (Summary, error) {
	if len(xs) == 0 {
		return Summary{}, errors.New("verdict.Summarize: no values")
	}
	if slices.ContainsFunc(xs, math.IsNaN) {
		return Summary{}, fmt.Errorf("verdict.Summarize: NaN among the values %v", xs)
	}
	s := Summary{N: len(xs), Median: Float(Median(xs)), Min: Float(slices.Min(xs)), Max: Float(slices.Max(xs))}
	if len(xs) == 1 {
		s.Mean = Float(xs[0])
		return s, nil
	}
	mean, sd := stat.MeanStdDev(xs, nil)
	s.Mean, s.SD = Float(mean), Float(sd)
	return s, nil
}

// Interval is a percentile-bootstrap confidence interval of the median.
type Interval struct {
	Lo        Float   `json:"lo"`
	Hi        Float   `json:"hi"`
	Level     float64 `json:"level"`     // e.g. 0.95
	Resamples int     `json:"resamples"` // bootstrap resamples drawn
}

// String formats the interval as "[lo, hi] (95% bootstrap)".
func (iv Interval) String() string {
	return fmt.Sprintf("[%.4g, %.4g] (%g%% bootstrap)", iv.Lo, iv.Hi, 100*iv.Level)
}

// BootstrapMedian returns the percentile-bootstrap interval of the median of xs at the
// given level (in (0, 1)), from the given number of resamples (>= 100) drawn with a PCG
// generator seeded by seed. The same arguments always give the same interval.
func BootstrapMedian(xs []float64, level float64, resamples int, seed uint64) (Interval, error) {
	switch {
	case len(xs) == 0:
		return Interval{}, errors.New("verdict.BootstrapMedian: no values")
	case slices.ContainsFunc(xs, math.IsNaN):
		return Interval{}, fmt.Errorf("verdict.BootstrapMedian: NaN among the values %v", xs)
	case !(level > 0 && level < 1):
		return Interval{}, fmt.Errorf("verdict.BootstrapMedian: level=%g out of range: it must be in (0, 1)", level)
	case resamples < 100 || resamples > 1_000_000:
		return Interval{}, fmt.Errorf("verdict.BootstrapMedian: resamples=%d out of range: it must be in [100, 1e6]", resamples)
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	medians := make([]float64, resamples)
	sample := make([]float64, len(xs))
	for r := range medians {
		for i := range sample {
			sample[i] = xs[rng.IntN(len(xs))]
		}
		medians[r] = Median(sample)
	}
	slices.Sort(medians)
	alpha := (1 - level) / 2
	// Empirical quantiles: the lowest resampled median with at least that fraction at or below it.
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(resamples))) - 1
		return medians[min(max(i, 0), resamples-1)]
	}
	return Interval{Lo: Float(at(alpha)), Hi: Float(at(1 - alpha)), Level: level, Resamples: resamples}, nil
}

// Direction says on which side of its bound a claim puts the measured quantity.
type Direction string

// The two directions.
const (
	AtMost  Direction = "at most"  // the claim holds if the quantity is <= Bound
	AtLeast Direction = "at least" // the claim holds if the quantity is >= Bound
)

// Rule is a verdict rule, fixed before the run.
type Rule struct {
	// Quantity names what is measured once per seed, with its unit.
	Quantity string `json:"quantity"`
	// Direction and Bound: the claim holds if the median of Quantity is Direction Bound.
	Direction Direction `json:"direction"`
	Bound     float64   `json:"bound"`
	// Level of the bootstrap interval; 0 means 0.95.
	Level float64 `json:"level"`
	// Resamples of the bootstrap; 0 means 10000.
	Resamples int `json:"resamples"`
	// MinSeeds is the fewest per-seed values that can support or refute the claim; 0 means 5.
	MinSeeds int `json:"min_seeds"`
}

func (r Rule) withDefaults() Rule {
	if r.Level == 0 {
		r.Level = 0.95
	}
	if r.Resamples == 0 {
		r.Resamples = 10000
	}
	if r.MinSeeds == 0 {
		r.MinSeeds = 5
	}
	return r
}

// Validate checks the rule's fields.
func (r Rule) Validate() error {
	r = r.withDefaults()
	switch {
	case r.Quantity == "":
		return errors.New("verdict.Rule: Quantity is empty: name what is measured")
	case r.Direction != AtMost && r.Direction != AtLeast:
		return fmt.Errorf("verdict.Rule %q: Direction=%q: it must be %q or %q", r.Quantity, r.Direction, AtMost, AtLeast)
	case math.IsNaN(r.Bound) || math.IsInf(r.Bound, 0):
		return fmt.Errorf("verdict.Rule %q: Bound=%g: it must be finite", r.Quantity, r.Bound)
	case r.MinSeeds < 1:
		return fmt.Errorf("verdict.Rule %q: MinSeeds=%d: it must be >= 1", r.Quantity, r.MinSeeds)
	}
	return nil
}

// String states the rule in words, as a report prints it before the results.
func (r Rule) String() string {
	r = r.withDefaults()
	other := map[Direction]string{AtMost: "above", AtLeast: "below"}[r.Direction]
	same := map[Direction]string{AtMost: "at or below", AtLeast: "at or above"}[r.Direction]
	return fmt.Sprintf("claim: median of %s is %s %g. Supports if the %g%% bootstrap interval of the median "+
		"(%d resamples) lies %s %g; does not support if it lies entirely %s; inconclusive otherwise or with fewer than %d seeds.",
		r.Quantity, r.Direction, r.Bound, 100*r.Level, r.Resamples, same, r.Bound, other, r.MinSeeds)
}

// Judgement is a rule applied to the measured values.
type Judgement struct {
	Rule     Rule     `json:"rule"`
	Stated   string   `json:"stated"` // Rule.String()
	Values   []Float  `json:"values"` // one per seed, in seed order
	Summary  Summary  `json:"summary"`
	Interval Interval `json:"interval"`
	Verdict  Verdict  `json:"verdict"`
	// Why says in one sentence how the verdict follows from the interval.
	Why string `json:"why"`
}

// Judge applies the rule to one value per seed. bootstrapSeed seeds the resampling.
// Values may be +Inf or -Inf (e.g. a target never reached), but not NaN.
func (r Rule) Judge(values []float64, bootstrapSeed uint64) (*Judgement, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	r = r.withDefaults()
	sum, err := Summarize(values)
	if err != nil {
		return nil, fmt.Errorf("verdict: judging %q: %w", r.Quantity, err)
	}
	iv, err := BootstrapMedian(values, r.Level, r.Resamples, bootstrapSeed)
	if err != nil {
		return nil, fmt.Errorf("verdict: judging %q: %w", r.Quantity, err)
	}
	j := &Judgement{Rule: r, Stated: r.String(), Summary: sum, Interval: iv}
	for _, v := range values {
		j.Values = append(j.Values, Float(v))
	}
	holds := func(x Float) bool {
		if r.Direction == AtMost {
			return float64(x) <= r.Bound
		}
		return float64(x) >= r.Bound
	}
	switch {
	case len(values) < r.MinSeeds:
		j.Verdict = Inconclusive
		j.Why = fmt.Sprintf("only %d seeds, the rule asks for at least %d", len(values), r.MinSeeds)
	case holds(iv.Lo) && holds(iv.Hi):
		j.Verdict = Supports
		j.Why = fmt.Sprintf("the interval %s is %s %g", iv, r.Direction, r.Bound)
	case !holds(iv.Lo) && !holds(iv.Hi):
		j.Verdict = DoesNotSupport
		j.Why = fmt.Sprintf("the whole interval %s is on the other side of %g", iv, r.Bound)
	default:
		j.Verdict = Inconclusive
		j.Why = fmt.Sprintf("the interval %s contains the bound %g", iv, r.Bound)
	}
	return j, nil
}
