package sweep

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/train"
)

// Run is one configuration of a sweep: an optimizer by name, its hyperparameters and a seed.
type Run struct {
	// Name labels the run's history; empty means "<optimizer> <params>", e.g.
	// "adam lr=0.01", the same for every seed (plots group seeds by name).
	Name      string
	Optimizer string
	Params    Params
	// Seed sets the initial weights and the order of the batches, as train.Config.Seed.
	Seed int64
}

// Label returns Name, or else "<optimizer> <params>".
func (r Run) Label() string {
	if r.Name != "" {
		return r.Name
	}
	if len(r.Params) == 0 {
		return r.Optimizer
	}
	return r.Optimizer + " " + r.Params.String()
}

// Grid returns the runs of optimizer at every combination of the values of params (names
// in sorted order, the last one varying fastest) and every seed (fastest of all). With no
// params it returns one run per seed at the optimizer's defaults.
func Grid(optimizer string, params map[string][]float64, seeds ...int64) []Run {
	names := slices.Sorted(maps.Keys(params))
	combos := []Params{{}}
	for _, k := range names {
		var next []Params
		for _, c := range combos {
			for _, v := range params[k] {
				p := c.Clone()
				p[k] = v
				next = append(next, p)
			}
		}
		combos = next
	}
	var runs []Run
	for _, p := range combos {
		for _, s := range seeds {
			runs = append(runs, Run{Optimizer: optimizer, Params: p.Clone(), Seed: s})
		}
	}
	return runs
}

// Options configures [Train].
type Options struct {
	// Steps, BatchSize and LogEvery are those of train.Config, shared by every run.
	Steps, BatchSize, LogEvery int
	// Sequential trains the runs one after the other, each as train.Run would alone, in one
	// train.Session (which compiles once for runs whose graphs are the same: other seeds,
	// other learning rates of an optimizer of mlx/optim), instead of batching runs into one
	// graph.
	Sequential bool
	// MaxBatch is the largest number of runs trained in one graph; 0 means all the runs of
	// an optimizer.
	MaxBatch int
	// Progress, if set, is called after each recorded step (see [Progress]); an error from it
	// stops the sweep.
	Progress func(Progress) error
	// Context, if set, stops the sweep when cancelled (after the step in progress).
	Context context.Context
	// Test, if set, is a held-out data set on which each run's final model is evaluated
	// once, after its last step: the run's last record gets the metric "test_loss" (the
	// loss function's mean over Test) and one "test_<name>" per entry of TestMetrics
	// (e.g. models.Accuracy). Runs that diverged are not evaluated.
	Test *data.Dataset
	// TestMetrics are the metric functions evaluated on Test.
	TestMetrics map[string]train.MetricFn
}

// TestMetricPrefix starts the names of the metrics that [Options.Test] adds to the last
// record of each run.
const TestMetricPrefix = "test_"

// addTestMetrics evaluates the final model of one run on opts.Test (lossFn and the metrics
// read the model's variables under scope path, "" for the root) and adds the results to
// the last record of h. It does nothing without opts.Test or for a diverged run.
func addTestMetrics(backend compute.Backend, store *model.Store, scopePath string, lossFn train.LossFn, h *history.History, opts Options) error {
	last, ok := h.Last()
	if opts.Test == nil || !ok || last.Metrics[DivergedMetric] == 1 {
		return nil
	}
	in := func(scope *model.Scope) *model.Scope {
		if scopePath == "" {
			return scope
		}
		return scope.In("%s", scopePath)
	}
	scopedLoss := func(scope *model.Scope, inputs, labels []*graph.Node) *graph.Node {
		return lossFn(in(scope), inputs, labels)
	}
	metrics := make(map[string]train.MetricFn, len(opts.TestMetrics))
	for name, fn := range opts.TestMetrics {
		metrics[name] = func(scope *model.Scope, inputs, labels []*graph.Node) *graph.Node {
			return fn(in(scope), inputs, labels)
		}
	}
	res, err := train.Evaluate(backend, store, scopedLoss, opts.Test, metrics, 0)
	if err != nil {
		return fmt.Errorf("run %q seed %d: evaluating on the test set: %w", h.Name, h.Seed, err)
	}
	rec := &h.Records[len(h.Records)-1]
	if rec.Metrics == nil {
		rec.Metrics = map[string]float64{}
	}
	for name, v := range res {
		rec.Metrics[TestMetricPrefix+name] = v
	}
	return nil
}

// Progress tells a [Options.Progress] callback where a sweep stands.
type Progress struct {
	// Runs is the number of runs of the sweep; Done counts those finished.
	Runs, Done int
	// Step is the last step taken by the runs in progress, of Steps.
	Step, Steps int
	// Current holds the histories of the runs in progress (all of a batch, or the one
	// sequential run), up to Step.
	Current []*history.History
}

// DivergedMetric is the metric set to 1 on the last record of a run that diverged: its
// loss or (in sequential mode) one of its variables became NaN or infinite at that step,
// and the run stopped there with a NaN loss recorded.
const DivergedMetric = "diverged"

// Train trains every run on ds with the loss function lossFn and returns one history per
// run, in the order of runs, with the run's Params recorded (history.History.Params).
//
// Unless opts.Sequential is set, the runs of each optimizer are trained together,
// opts.MaxBatch (default all) at a time, in one graph compiled once: each run keeps its
// own copy of the model (initialised from its seed exactly as train.Run would), its own
// batches (the batch order of its seed), its own hyperparameters and optimizer state, and
// each step executes one step of every run. Each run's losses are those of train.Run with
// the same configuration (the tests check it). Time in the histories is the wall time of
// the batched steps, shared by the runs of a batch. Where a step draws random numbers
// (dropout in the loss function, AdaHessian's probes), each run of the batch draws from a
// random state of its own, which starts where a run alone would start its first step, so
// those runs too draw what they would draw alone.
//
// A run that diverges stops (see [DivergedMetric]); the others go on. Train returns the
// histories so far with an error if a run cannot be built or trained for another reason,
// or if the sweep is interrupted.
func Train(backend compute.Backend, lossFn train.LossFn, ds *data.Dataset, runs []Run, opts Options) ([]*history.History, error) {
	switch {
	case backend == nil:
		return nil, errors.New("sweep.Train: backend is nil")
	case lossFn == nil:
		return nil, errors.New("sweep.Train: lossFn is nil")
	case ds == nil:
		return nil, errors.New("sweep.Train: dataset is nil")
	case len(runs) == 0:
		return nil, errors.New("sweep.Train: no runs")
	case opts.Steps < 1 || opts.Steps > train.MaxSteps:
		return nil, fmt.Errorf("sweep.Train: Options.Steps=%d out of range [1, %d]", opts.Steps, train.MaxSteps)
	case opts.MaxBatch < 0:
		return nil, fmt.Errorf("sweep.Train: Options.MaxBatch=%d must be >= 0 (0: all runs in one batch)", opts.MaxBatch)
	case opts.LogEvery < 0:
		return nil, fmt.Errorf("sweep.Train: Options.LogEvery=%d must be >= 0 (0 means 1)", opts.LogEvery)
	case len(opts.TestMetrics) > 0 && opts.Test == nil:
		return nil, errors.New("sweep.Train: Options.TestMetrics needs Options.Test (a held-out data set)")
	}
	for name, fn := range opts.TestMetrics {
		if fn == nil {
			return nil, fmt.Errorf("sweep.Train: Options.TestMetrics[%q] is nil", name)
		}
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = ds.Len()
	}
	if err := ds.CheckBatchSize(opts.BatchSize); err != nil {
		return nil, fmt.Errorf("sweep.Train: Options.BatchSize: %w", err)
	}
	if opts.LogEvery == 0 {
		opts.LogEvery = 1
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	// Check every configuration before training anything.
	for i, r := range runs {
		if _, err := Optimizer(r.Optimizer, r.Params); err != nil {
			return nil, fmt.Errorf("sweep.Train: run #%d (%s): %w", i, r.Label(), err)
		}
	}
	out := make([]*history.History, len(runs))
	done := 0
	collect := func() []*history.History {
		var hs []*history.History
		for _, h := range out {
			if h != nil {
				hs = append(hs, h)
			}
		}
		return hs
	}
	for _, group := range groups(runs, opts) {
		part := make([]Run, len(group))
		for j, i := range group {
			part[j] = runs[i]
		}
		var hs []*history.History
		var err error
		if opts.Sequential {
			hs, err = trainSequential(backend, lossFn, ds, part, opts, done, len(runs))
		} else {
			hs, err = trainBatch(backend, lossFn, ds, part, opts, done, len(runs), false)
			if errors.Is(err, errDrawsRandom) {
				hs, err = trainBatch(backend, lossFn, ds, part, opts, done, len(runs), true)
			}
		}
		for j, h := range hs {
			out[group[j]] = h
		}
		if err != nil {
			return collect(), fmt.Errorf("sweep.Train: %w", err)
		}
		done += len(group)
	}
	return out, nil
}

// groups splits the indices of runs into the groups Train trains together: all in one
// group with opts.Sequential; else the runs of each optimizer, in order of first
// appearance, opts.MaxBatch at most at a time.
func groups(runs []Run, opts Options) [][]int {
	if opts.Sequential {
		all := make([]int, len(runs))
		for i := range all {
			all[i] = i
		}
		return [][]int{all}
	}
	var order []string
	byOpt := map[string][]int{}
	for i, r := range runs {
		if _, ok := byOpt[r.Optimizer]; !ok {
			order = append(order, r.Optimizer)
		}
		byOpt[r.Optimizer] = append(byOpt[r.Optimizer], i)
	}
	var out [][]int
	for _, name := range order {
		idx := byOpt[name]
		size := opts.MaxBatch
		if size == 0 {
			size = len(idx)
		}
		for start := 0; start < len(idx); start += size {
			out = append(out, idx[start:min(start+size, len(idx))])
		}
	}
	return out
}

// trainSequential trains the runs one after the other in a train.Session, which gives
// each the history train.Run gives and compiles once for runs with the same graphs.
func trainSequential(backend compute.Backend, lossFn train.LossFn, ds *data.Dataset, runs []Run, opts Options, done, total int) ([]*history.History, error) {
	var out []*history.History
	sess, err := train.NewSession(backend, lossFn, ds)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	for i, r := range runs {
		stepper, err := Stepper(r.Optimizer, r.Params)
		if err != nil {
			return out, err
		}
		cfg := train.Config{Steps: opts.Steps, BatchSize: opts.BatchSize, Seed: r.Seed, LogEvery: opts.LogEvery,
			Name: r.Label(), Context: opts.Context}
		if opts.Progress != nil {
			cfg.OnStep = func(h *history.History) error {
				last, _ := h.Last()
				return opts.Progress(Progress{Runs: total, Done: done + i, Step: last.Step, Steps: opts.Steps, Current: []*history.History{h}})
			}
		}
		h, err := sess.Run(stepper, cfg)
		if h != nil {
			h.Params = maps.Clone(r.Params)
		}
		var nf *train.NonFiniteError
		if errors.As(err, &nf) {
			h.Add(history.Record{Step: nf.Step, Time: lastTime(h), Evals: int64(nf.Step), Loss: nan(),
				Metrics: map[string]float64{DivergedMetric: 1}})
			err = nil
		}
		if err == nil {
			err = addTestMetrics(backend, sess.Store(), "", lossFn, h, opts)
		}
		if h != nil {
			out = append(out, h)
		}
		if err != nil {
			return out, fmt.Errorf("run %q seed %d: %w", r.Label(), r.Seed, err)
		}
	}
	return out, nil
}

func lastTime(h *history.History) float64 {
	if last, ok := h.Last(); ok {
		return last.Time
	}
	return 0
}
