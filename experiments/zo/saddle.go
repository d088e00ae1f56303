package zoexp

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/experiments"
	"github.com/goptlab/goptlab/experiments/verdict"
	"github.com/goptlab/goptlab/mlx/train"
	"github.com/goptlab/goptlab/mlx/zo"
)

// SaddleRun is one seed of part (b).
type SaddleRun struct {
	Seed int64 `json:"seed"`
	// StartNorm is |x0|, the seeded offset's norm.
	StartNorm float64 `json:"start_norm"`
	Escaped   bool    `json:"escaped"`
	// Evals is the evaluations of the updates before the loss first reached
	// SaddleEscapeLoss (+Inf if it did not within SaddleMaxEvals).
	Evals verdict.Float `json:"evals"`
}

// SaddleResult is part (b)'s measurements.
type SaddleResult struct {
	Runs []SaddleRun `json:"runs"`
	// Fraction is the fraction of seeds that escaped; Wilson its 95% Wilson score interval.
	Fraction float64    `json:"fraction"`
	Wilson   [2]float64 `json:"wilson"`
	// ZeroStartMaxAbs is max |x_i| after SaddleZeroSteps steps started exactly at 0 (seed 1):
	// 0 means the two-point estimator never moved; anything else is float rounding (the two
	// losses of a direction are equal in exact arithmetic). ZeroStart is the run from
	// exactly 0 (seed 1) with the seeds' budget.
	ZeroStartMaxAbs float64   `json:"zero_start_max_abs"`
	ZeroStart       SaddleRun `json:"zero_start"`
}

// saddleLoss is f(x) = ½(|x_1..d-1|² − x_d²) + ¼|x|⁴ on the variable x of dimension d,
// which must exist in the store before the first call.
func saddleLoss(d int) train.LossFn {
	return func(scope *model.Scope, inputs, _ []*graph.Node) *graph.Node {
		x := scope.VariableWithShape("x", shapes.Make(dtypes.Float32, d))
		v := x.NodeValue(inputs[0].Graph())
		head := graph.ReduceAllSum(graph.Square(graph.Slice(v, graph.AxisRange(0, d-1))))
		last := graph.ReduceAllSum(graph.Square(graph.Slice(v, graph.AxisRange(d-1, d))))
		sq := graph.ReduceAllSum(graph.Square(v))
		return graph.Add(graph.MulScalar(graph.Sub(head, last), 0.5), graph.MulScalar(graph.Square(sq), 0.25))
	}
}

// saddleStore returns a store holding x = offset·ξ, ξ ~ N(0, I) drawn from seed (x = 0
// when offset is 0), with the ZO stepper's seed set to seed.
func saddleStore(d int, offset float64, seed int64) (*model.Store, float64, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5add1e))
	x := make([]float32, d)
	var norm2 float64
	for i := range x {
		x[i] = float32(offset * rng.NormFloat64())
		norm2 += float64(x[i]) * float64(x[i])
	}
	store := model.NewStore()
	if _, err := store.CreateVariable("/x", tensors.FromFlatDataAndDimensions(x, d)); err != nil {
		return nil, 0, fmt.Errorf("zoexp: saddle start: %w", err)
	}
	// train.SeedStore leaves a store that already holds variables alone: set the seed the
	// ZO stepper draws its directions from here.
	store.SetParam(model.ParamInitialSeed, seed)
	return store, math.Sqrt(norm2), nil
}

// saddle runs part (b).
func (e *runner) saddle() (SaddleResult, error) {
	cfg := e.cfg
	var res SaddleResult
	newStepper := func() (*zo.ZO, error) {
		s, err := zo.New(zo.Config{LR: cfg.SaddleLR, Epsilon: cfg.Epsilon, Directions: cfg.SaddleDirections})
		if err != nil {
			return nil, fmt.Errorf("zoexp: saddle: %w", err)
		}
		return s, nil
	}
	lossFn := saddleLoss(cfg.SaddleDim)

	// From exactly 0: f is even, so in exact arithmetic every two-point difference is 0.
	ds, err := unitDataset()
	if err != nil {
		return res, fmt.Errorf("zoexp: %w", err)
	}
	store, _, err := saddleStore(cfg.SaddleDim, 0, 1)
	if err != nil {
		return res, err
	}
	stepper, err := newStepper()
	if err != nil {
		return res, err
	}
	if _, err := train.Run(e.backend, store, lossFn, ds, stepper, train.Config{Steps: cfg.SaddleZeroSteps, Seed: 1,
		LogEvery: cfg.SaddleZeroSteps, Context: e.ctx}); err != nil {
		return res, fmt.Errorf("zoexp: saddle from 0: %w", err)
	}
	x, err := store.GetVariable("/x").Value()
	if err != nil {
		return res, fmt.Errorf("zoexp: saddle from 0: %w", err)
	}
	for _, v := range tensors.MustCopyFlatData[float32](x) {
		res.ZeroStartMaxAbs = max(res.ZeroStartMaxAbs, math.Abs(float64(v)))
	}
	if store, _, err = saddleStore(cfg.SaddleDim, 0, 1); err != nil {
		return res, err
	}
	if stepper, err = newStepper(); err != nil {
		return res, err
	}
	evals, err := e.evalsToTarget(store, lossFn, stepper, 1, cfg.SaddleEscapeLoss, cfg.SaddleMaxEvals)
	if err != nil {
		return res, fmt.Errorf("zoexp: saddle from 0: %w", err)
	}
	res.ZeroStart = SaddleRun{Seed: 1, Escaped: !math.IsInf(evals, 1), Evals: verdict.Float(evals)}
	e.logf("saddle d=%d from exactly 0 (seed 1): max |x_i| after %d steps = %g; escaped %v after %g evaluations",
		cfg.SaddleDim, cfg.SaddleZeroSteps, res.ZeroStartMaxAbs, res.ZeroStart.Escaped, evals)

	escaped := 0
	for seed := int64(1); seed <= int64(cfg.SaddleSeeds); seed++ {
		store, norm, err := saddleStore(cfg.SaddleDim, cfg.SaddleOffset, seed)
		if err != nil {
			return res, err
		}
		stepper, err := newStepper()
		if err != nil {
			return res, err
		}
		evals, err := e.evalsToTarget(store, lossFn, stepper, seed, cfg.SaddleEscapeLoss, cfg.SaddleMaxEvals)
		if err != nil {
			return res, fmt.Errorf("zoexp: saddle seed %d: %w", seed, err)
		}
		r := SaddleRun{Seed: seed, StartNorm: norm, Escaped: !math.IsInf(evals, 1), Evals: verdict.Float(evals)}
		if r.Escaped {
			escaped++
		}
		res.Runs = append(res.Runs, r)
		e.logf("saddle d=%d seed %-2d |x0|=%.2g: escaped %v after %g evaluations", cfg.SaddleDim, seed, norm, r.Escaped, evals)
	}
	n := float64(cfg.SaddleSeeds)
	res.Fraction = float64(escaped) / n
	res.Wilson = wilson(escaped, cfg.SaddleSeeds, 1.959963984540054)
	return res, nil
}

// wilson returns the Wilson score interval of a binomial proportion k/n at normal quantile z.
func wilson(k, n int, z float64) [2]float64 {
	p, nf := float64(k)/float64(n), float64(n)
	den := 1 + z*z/nf
	center := (p + z*z/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / den
	return [2]float64{max(0, center-half), min(1, center+half)}
}

// judgeFraction judges "the fraction of seeds with outcome true is Direction bound": per
// seed 1 or 0, their mean (the fraction) and a seeded percentile-bootstrap interval of
// that mean, compared with bound as verdict.Rule.Judge compares its interval of the median.
func judgeFraction(quantity string, outcomes []bool, dir verdict.Direction, bound float64, seed uint64) (*verdict.Judgement, error) {
	const level, resamples, minSeeds = 0.95, 10000, 5
	rule := verdict.Rule{Quantity: quantity, Direction: dir, Bound: bound, Level: level, Resamples: resamples, MinSeeds: minSeeds}
	if err := rule.Validate(); err != nil {
		return nil, fmt.Errorf("zoexp: %w", err)
	}
	if len(outcomes) == 0 {
		return nil, fmt.Errorf("zoexp: judging %q: no outcomes", quantity)
	}
	values := make([]float64, len(outcomes))
	for i, o := range outcomes {
		if o {
			values[i] = 1
		}
	}
	sum, err := verdict.Summarize(values)
	if err != nil {
		return nil, fmt.Errorf("zoexp: judging %q: %w", quantity, err)
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	means := make([]float64, resamples)
	for r := range means {
		k := 0.0
		for range values {
			k += values[rng.IntN(len(values))]
		}
		means[r] = k / float64(len(values))
	}
	slices.Sort(means)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*resamples)) - 1
		return means[min(max(i, 0), resamples-1)]
	}
	iv := verdict.Interval{Lo: verdict.Float(at((1 - level) / 2)), Hi: verdict.Float(at(1 - (1-level)/2)), Level: level, Resamples: resamples}
	other := map[verdict.Direction]string{verdict.AtMost: "above", verdict.AtLeast: "below"}[dir]
	same := map[verdict.Direction]string{verdict.AtMost: "at or below", verdict.AtLeast: "at or above"}[dir]
	j := &verdict.Judgement{Rule: rule, Summary: sum, Interval: iv, Values: make([]verdict.Float, len(values)),
		Stated: fmt.Sprintf("claim: the %s (the mean of one 0/1 outcome per seed) is %s %g. Supports if the %g%% percentile-bootstrap "+
			"interval of that mean (%d resamples) lies %s %g; does not support if it lies entirely %s; inconclusive otherwise or with fewer than %d seeds.",
			quantity, dir, bound, 100*level, resamples, same, bound, other, minSeeds)}
	for i, v := range values {
		j.Values[i] = verdict.Float(v)
	}
	holds := func(x verdict.Float) bool {
		if dir == verdict.AtMost {
			return float64(x) <= bound
		}
		return float64(x) >= bound
	}
	switch {
	case len(values) < minSeeds:
		j.Verdict, j.Why = verdict.Inconclusive, fmt.Sprintf("only %d seeds, the rule asks for at least %d", len(values), minSeeds)
	case holds(iv.Lo) && holds(iv.Hi):
		j.Verdict, j.Why = verdict.Supports, fmt.Sprintf("the fraction %.3g has the bootstrap interval %s, %s %g", float64(sum.Mean), iv, dir, bound)
	case !holds(iv.Lo) && !holds(iv.Hi):
		j.Verdict, j.Why = verdict.DoesNotSupport, fmt.Sprintf("the fraction %.3g has the bootstrap interval %s, entirely on the other side of %g", float64(sum.Mean), iv, bound)
	default:
		j.Verdict, j.Why = verdict.Inconclusive, fmt.Sprintf("the fraction %.3g has the bootstrap interval %s, which contains %g", float64(sum.Mean), iv, bound)
	}
	return j, nil
}

// saddleClaim judges part (b).
func saddleClaim(s SaddleResult, cfg Config) (experiments.Claim, error) {
	outcomes := make([]bool, len(s.Runs))
	for i, r := range s.Runs {
		outcomes[i] = r.Escaped
	}
	q := fmt.Sprintf("fraction of seeds whose ZO-SGD run (m=%d two-point directions, lr %g, d=%d, start |x0| ≈ %g·√d) reaches loss %g within %d evaluations",
		cfg.SaddleDirections, cfg.SaddleLR, cfg.SaddleDim, cfg.SaddleOffset, cfg.SaddleEscapeLoss, cfg.SaddleMaxEvals)
	j, err := judgeFraction(q, outcomes, verdict.AtLeast, 0.9, 400)
	if err != nil {
		return experiments.Claim{}, err
	}
	return experiments.Claim{ID: "saddle-escape",
		Text:      fmt.Sprintf("two-point estimators (2m evaluations per step) escape the strict saddle at 0 (escape fraction at least 0.9 within %d evaluations)", cfg.SaddleMaxEvals),
		Judgement: j}, nil
}
