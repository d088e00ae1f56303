package localsgd

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/internal/gomlxerr"
	"github.com/goptlab/goptlab/mlx/train"
)

// RunDistributed trains like mlx/train's Run with this stepper, but with one worker per
// device (see [Distributed]): ds and cfg are those Run takes (batches carrying the K
// workers along Config.WorkerAxis, e.g. from [ShardedDataset]), and lossFn the one given
// to Run: the loss of one worker's batch. Each batch is split on the host and worker
// k's part sent to device k. The history records the FedAvg-weighted mean of the
// workers' losses, as Run's does.
//
// Supported: Steps, BatchSize, Seed, LogEvery, Name, OnStep, Context, Eval and EvalMetrics
// (the global model, as Run evaluates it: the Store's, updated at the end of each round).
// Checkpoints and SkipNonFinite are not (an error says so); a non-finite loss stops the
// run with a *train.NonFiniteError. It returns an error wrapping [ErrTooFewDevices] if
// the backend has fewer than K devices.
func (l *LocalSGD) RunDistributed(backend compute.Backend, store *model.Store, lossFn train.LossFn, ds *data.Dataset,
	cfg train.Config) (*history.History, error) {
	if ds == nil {
		return nil, errors.New("localsgd.RunDistributed: dataset is nil")
	}
	switch {
	case len(cfg.EvalMetrics) > 0 && cfg.Eval == nil:
		return nil, errors.New("localsgd.RunDistributed: Config.EvalMetrics needs Config.Eval (a dataset)")
	case cfg.CheckpointDir != "" || cfg.CheckpointEvery != 0:
		return nil, errors.New("localsgd.RunDistributed: checkpoints are not supported")
	case cfg.SkipNonFinite:
		return nil, errors.New("localsgd.RunDistributed: Config.SkipNonFinite is not supported")
	case cfg.Steps < 1:
		return nil, fmt.Errorf("localsgd.RunDistributed: Config.Steps=%d out of range: must be >= 1", cfg.Steps)
	case cfg.LogEvery < 0:
		return nil, fmt.Errorf("localsgd.RunDistributed: Config.LogEvery=%d out of range: must be >= 0 (0 means 1)", cfg.LogEvery)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = ds.Len()
	}
	if err := ds.CheckBatchSize(cfg.BatchSize); err != nil {
		return nil, fmt.Errorf("localsgd.RunDistributed: Config.BatchSize: %w", err)
	}
	if cfg.LogEvery == 0 {
		cfg.LogEvery = 1
	}
	name := cfg.Name
	if name == "" {
		name = l.name
	}
	hist := history.New(name, l.name, cfg.Seed)
	fail := func(err error) (*history.History, error) {
		return hist, fmt.Errorf("localsgd.RunDistributed(%q): %w", name, err)
	}
	d, err := l.NewDistributed(backend, store, lossFn)
	if err != nil {
		return nil, err
	}
	defer d.Finalize()
	if err := train.SeedStore(store, cfg.Seed); err != nil {
		return fail(err)
	}
	inputs, labels, err := ds.Batch(cfg.Seed, cfg.BatchSize, 0)
	if err != nil {
		return fail(err)
	}
	if err := l.createVariables(backend, store, lossFn, inputs, labels); err != nil {
		return fail(err)
	}
	var eval *train.Evaluator
	if cfg.Eval != nil {
		if eval, err = train.NewEvaluator(backend, store, lossFn, cfg.EvalMetrics, 0); err != nil {
			return fail(err)
		}
		defer eval.Finalize()
	}
	evalsPerStep := int64(l.LossEvalsPerStep())
	var elapsed time.Duration
	for step := 1; step <= cfg.Steps; step++ {
		if cfg.Context != nil {
			if err := cfg.Context.Err(); err != nil {
				return fail(fmt.Errorf("interrupted before step %d: %w", step, err))
			}
		}
		inputs, labels, err := ds.Batch(cfg.Seed, cfg.BatchSize, step-1)
		if err != nil {
			return fail(fmt.Errorf("step %d: %w", step, err))
		}
		workerInputs, err := l.splitHost("inputs", inputs)
		if err != nil {
			return fail(fmt.Errorf("step %d: %w", step, err))
		}
		workerLabels, err := l.splitHost("labels", labels)
		if err != nil {
			return fail(fmt.Errorf("step %d: %w", step, err))
		}
		start := time.Now()
		losses, err := d.Step(workerInputs, workerLabels)
		elapsed += time.Since(start)
		if err != nil {
			return fail(fmt.Errorf("step %d: %w", step, err))
		}
		loss := d.Loss(losses)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return fail(&train.NonFiniteError{Step: step, Variable: "loss", All: []string{"loss"}})
		}
		if step%cfg.LogEvery == 0 || step == cfg.Steps {
			rec := history.Record{Step: step, Time: elapsed.Seconds(), Evals: int64(step) * evalsPerStep, Loss: loss}
			if eval != nil {
				res, err := eval.Evaluate(cfg.Eval)
				if err != nil {
					return fail(fmt.Errorf("step %d: evaluation: %w", step, err))
				}
				rec.Metrics = make(map[string]float64, len(res))
				for k, v := range res {
					rec.Metrics["eval_"+k] = v
				}
			}
			hist.Add(rec)
			if cfg.OnStep != nil {
				if err := cfg.OnStep(hist); err != nil {
					return fail(fmt.Errorf("step %d: OnStep: %w", step, err))
				}
			}
		}
	}
	return hist, nil
}

// createVariables runs the loss once, forward only, on one device, as mlx/train's Run
// does, so that the model's variables exist and hold their initial values before the
// SPMD programs are built: through [LocalSGD.CreateVariables], on worker 0's part of the
// batch (inputs and labels carry the K workers along Config.WorkerAxis).
func (l *LocalSGD) createVariables(backend compute.Backend, store *model.Store, lossFn train.LossFn,
	inputs, labels []*tensors.Tensor) error {
	return gomlxerr.Catch(func() error {
		exec, err := model.NewExec(backend, store, func(scope *model.Scope, args []*graph.Node) *graph.Node {
			return l.CreateVariables(scope, lossFn, args[:len(inputs)], args[len(inputs):])
		})
		if err != nil {
			return err
		}
		defer exec.Finalize()
		args := make([]any, 0, len(inputs)+len(labels))
		for _, t := range inputs {
			args = append(args, t)
		}
		for _, t := range labels {
			args = append(args, t)
		}
		outs, err := exec.Exec(args...)
		for _, t := range outs {
			_ = t.FinalizeAll()
		}
		if err != nil {
			return fmt.Errorf("creating the model's variables: %w", err)
		}
		return nil
	})
}

// splitHost splits each tensor along Config.WorkerAxis (of dimension K) into the K
// workers' parts, on the host: parts[k][i] is worker k's part of tensors[i].
func (l *LocalSGD) splitHost(what string, ts []*tensors.Tensor) ([][]*tensors.Tensor, error) {
	K := l.cfg.Workers
	axis := l.cfg.WorkerAxis
	parts := make([][]*tensors.Tensor, K)
	for k := range parts {
		parts[k] = make([]*tensors.Tensor, len(ts))
	}
	for i, t := range ts {
		dims := t.Shape().Dimensions
		if len(dims) <= axis || dims[axis] != K {
			return nil, fmt.Errorf("%s[%d] has shape %s: its axis %d (WorkerAxis) must be the %d workers", what, i, t.Shape(), axis, K)
		}
		outer := 1
		for _, dim := range dims[:axis] {
			outer *= dim
		}
		inner := 1
		for _, dim := range dims[axis+1:] {
			inner *= dim
		}
		partDims := append(append([]int(nil), dims[:axis]...), dims[axis+1:]...)
		elem := t.DType().Size()
		var err error
		readErr := t.ConstBytes(func(src []byte) {
			for k := range K {
				part := tensors.FromShape(shapes.Make(t.DType(), partDims...))
				err = errors.Join(err, part.MutableBytes(func(dst []byte) {
					for o := range outer {
						from := ((o*K + k) * inner) * elem
						copy(dst[o*inner*elem:(o+1)*inner*elem], src[from:from+inner*elem])
					}
				}))
				parts[k][i] = part
			}
		})
		if err = errors.Join(readErr, err); err != nil {
			return nil, fmt.Errorf("splitting %s[%d] over the workers: %w", what, i, err)
		}
	}
	return parts, nil
}
