package zoexp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/experiments"
	"github.com/goptlab/goptlab/experiments/verdict"
	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/train"
	"github.com/goptlab/goptlab/mlx/zo"
)

// QuadLR is the learning rate chosen for one (d, m) of part (a) on the tuning seed.
type QuadLR struct {
	Dim        int     `json:"dim"`
	Directions int     `json:"directions"`
	LR         float64 `json:"lr"`
	// TuningEvals is the chosen rate's evaluations to the target on the tuning seed.
	TuningEvals verdict.Float `json:"tuning_evals"`
}

// QuadRun is one evaluation run of part (a).
type QuadRun struct {
	Dim        int     `json:"dim"`
	Directions int     `json:"directions"`
	Seed       int64   `json:"seed"`
	LR         float64 `json:"lr"`
	// Evals is the number of function evaluations (2m per step) of the steps before the
	// first step that starts at or below the target; +Inf if not reached within the cap.
	Evals verdict.Float `json:"evals"`
}

// QuadSlope is the per-seed log-log slope of evaluations against d for one m.
type QuadSlope struct {
	Directions int              `json:"directions"`
	Values     []verdict.Float  `json:"values"` // one per evaluation seed
	Summary    verdict.Summary  `json:"summary"`
	Interval   verdict.Interval `json:"interval"`
}

// QuadResult is part (a)'s measurements.
type QuadResult struct {
	ChosenLR []QuadLR    `json:"chosen_lr"`
	Runs     []QuadRun   `json:"runs"`
	Slopes   []QuadSlope `json:"slopes"`
}

// runner holds what every part needs.
type runner struct {
	ctx      context.Context
	cfg      Config
	backend  compute.Backend
	progress io.Writer
}

// Sentinel errors that stop a run from OnStep.
var (
	errReached  = errors.New("target reached")
	errDiverged = errors.New("diverged")
)

// unitDataset is a one-example dataset: the synthetic objectives ignore their inputs, but
// the training loop needs batches.
func unitDataset() (*data.Dataset, error) {
	return data.New("unit", []data.Column{{Float32: []float32{0}, Dims: []int{1}}}, nil)
}

// quadLoss is f(x) = ½|x|² on a variable x of dimension d that starts at (1, ..., 1).
func quadLoss(d int) train.LossFn {
	return func(scope *model.Scope, inputs, _ []*graph.Node) *graph.Node {
		x := scope.WithInitializer(graph.Ones).VariableWithShape("x", shapes.Make(dtypes.Float32, d))
		v := x.NodeValue(inputs[0].Graph())
		return graph.MulScalar(graph.ReduceAllSum(graph.Square(v)), 0.5)
	}
}

// evalsToTarget runs stepper (m directions) from the store's state until the loss at the
// start of a step is at most target, for at most maxEvals evaluations of updates. It
// returns the evaluations of the updates made before that step (2m per step), or +Inf if
// the target is not reached or the run diverges (loss not finite or above 1e6 times the
// start).
func (e *runner) evalsToTarget(store *model.Store, lossFn train.LossFn, stepper *zo.ZO, seed int64, target float64, maxEvals int) (float64, error) {
	ds, err := unitDataset()
	if err != nil {
		return 0, fmt.Errorf("zoexp: %w", err)
	}
	per := stepper.LossEvalsPerStep()
	steps := maxEvals/per + 1 // the last step's start loss is the loss after maxEvals/per updates
	start := math.NaN()
	found := math.Inf(1)
	_, err = train.Run(e.backend, store, lossFn, ds, stepper, train.Config{
		Steps: steps, Seed: seed, LogEvery: 1, Context: e.ctx,
		OnStep: func(h *history.History) error {
			r, _ := h.Last()
			if math.IsNaN(start) {
				start = r.Loss
			}
			switch {
			case r.Loss <= target:
				found = float64(per * (r.Step - 1))
				return errReached
			case math.IsNaN(r.Loss) || math.IsInf(r.Loss, 0) || math.Abs(r.Loss) > 1e6*math.Max(math.Abs(start), 1):
				return errDiverged
			}
			return nil
		},
	})
	var nf *train.NonFiniteError
	switch {
	case err == nil, errors.Is(err, errReached), errors.Is(err, errDiverged), errors.As(err, &nf):
		return found, nil
	}
	return 0, err
}

// quadEvals is one run of part (a): evaluations to QuadTarget of the start value.
func (e *runner) quadEvals(d, m int, lr float64, seed int64, maxEvals int) (float64, error) {
	stepper, err := zo.New(zo.Config{LR: lr, Epsilon: e.cfg.Epsilon, Directions: m})
	if err != nil {
		return 0, fmt.Errorf("zoexp: quadratic d=%d m=%d lr=%g: %w", d, m, lr, err)
	}
	target := e.cfg.QuadTarget * 0.5 * float64(d) // f(1, ..., 1) = d/2
	evals, err := e.evalsToTarget(model.NewStore(), quadLoss(d), stepper, seed, target, maxEvals)
	if err != nil {
		return 0, fmt.Errorf("zoexp: quadratic d=%d m=%d lr=%g seed %d: %w", d, m, lr, seed, err)
	}
	return evals, nil
}

// quadratic runs part (a).
func (e *runner) quadratic() (QuadResult, error) {
	cfg := e.cfg
	var res QuadResult
	lrs := slices.Clone(cfg.QuadLRGrid)
	slices.Sort(lrs)
	slices.Reverse(lrs)
	chosen := map[[2]int]float64{}
	for _, m := range cfg.QuadDirections {
		for _, d := range cfg.QuadDims {
			capEvals := cfg.QuadEvalsPerDim * (d + m)
			best, bestLR, misses := math.Inf(1), 0.0, 0
			// From the largest rate down, each run capped at the best so far (it cannot win
			// beyond it); two misses in a row after a success end the scan.
			for _, lr := range lrs {
				limit := capEvals
				if !math.IsInf(best, 1) {
					limit = min(limit, int(best)-1)
				}
				if limit < 2*m {
					break
				}
				evals, err := e.quadEvals(d, m, lr, 0, limit)
				if err != nil {
					return res, err
				}
				if evals < best {
					best, bestLR, misses = evals, lr, 0
					continue
				}
				if !math.IsInf(best, 1) {
					if misses++; misses == 2 {
						break
					}
				}
			}
			if math.IsInf(best, 1) {
				return res, fmt.Errorf("zoexp: quadratic d=%d m=%d: no learning rate of %v reaches the target within %d evaluations on the tuning seed",
					d, m, cfg.QuadLRGrid, capEvals)
			}
			chosen[[2]int{d, m}] = bestLR
			res.ChosenLR = append(res.ChosenLR, QuadLR{Dim: d, Directions: m, LR: bestLR, TuningEvals: verdict.Float(best)})
			e.logf("quadratic d=%-5d m=%-3d tuned lr %-10g %7.0f evaluations to %g of the start", d, m, bestLR, best, cfg.QuadTarget)
		}
	}
	for _, m := range cfg.QuadDirections {
		slope := QuadSlope{Directions: m}
		var values []float64
		for seed := int64(1); seed <= int64(cfg.Seeds); seed++ {
			var evals []float64
			for _, d := range cfg.QuadDims {
				lr := chosen[[2]int{d, m}]
				n, err := e.quadEvals(d, m, lr, seed, cfg.QuadEvalsPerDim*(d+m))
				if err != nil {
					return res, err
				}
				res.Runs = append(res.Runs, QuadRun{Dim: d, Directions: m, Seed: seed, LR: lr, Evals: verdict.Float(n)})
				evals = append(evals, n)
			}
			s := logLogSlope(cfg.QuadDims, evals)
			values = append(values, s)
			slope.Values = append(slope.Values, verdict.Float(s))
			e.logf("quadratic m=%-3d seed %d: evaluations %v, log-log slope %.3f", m, seed, evals, s)
		}
		var err error
		if slope.Summary, err = verdict.Summarize(values); err != nil {
			return res, fmt.Errorf("zoexp: slopes of m=%d: %w", m, err)
		}
		if slope.Interval, err = verdict.BootstrapMedian(values, 0.95, 10000, uint64(200+m)); err != nil {
			return res, fmt.Errorf("zoexp: slopes of m=%d: %w", m, err)
		}
		res.Slopes = append(res.Slopes, slope)
	}
	return res, nil
}

// logLogSlope returns the least-squares slope of log(evals) against log(dims); +Inf if
// any value is not a positive finite number (a target not reached).
func logLogSlope(dims []int, evals []float64) float64 {
	n := float64(len(dims))
	var sx, sy, sxx, sxy float64
	for i, d := range dims {
		if !(evals[i] > 0) || math.IsInf(evals[i], 1) {
			return math.Inf(1)
		}
		x, y := math.Log(float64(d)), math.Log(evals[i])
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

// quadClaims judges part (a): one claim per m, on |slope − 1| at most 0.25.
func quadClaims(q QuadResult, cfg Config) ([]experiments.Claim, error) {
	var out []experiments.Claim
	for i, s := range q.Slopes {
		dev := make([]float64, len(s.Values))
		for k, v := range s.Values {
			dev[k] = math.Abs(float64(v) - 1)
		}
		rule := verdict.Rule{Quantity: fmt.Sprintf("|log-log slope − 1| of ZO evaluations to %g of the start against d in %v (m=%d)",
			cfg.QuadTarget, cfg.QuadDims, s.Directions), Direction: verdict.AtMost, Bound: 0.25}
		j, err := judge(rule, dev, uint64(300+i))
		if err != nil {
			return nil, err
		}
		out = append(out, experiments.Claim{ID: fmt.Sprintf("evals-linear-in-d-m%d", s.Directions),
			Text: fmt.Sprintf("ZO estimates are dimension-dependent: evaluations to reach %g of the start grow about linearly in d (log-log slope in [0.75, 1.25]), m=%d",
				cfg.QuadTarget, s.Directions), Judgement: j})
	}
	return out, nil
}
