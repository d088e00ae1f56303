package train

import (
	"errors"
	"fmt"
	"sort"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/internal/gomlxerr"
)

// MetricFn measures a scalar on one batch (graph-building: panics on error), e.g. accuracy.
// [Evaluate] averages it over a dataset, weighting each batch by its size.
type MetricFn func(scope *model.Scope, inputs, labels []*graph.Node) *graph.Node

// Evaluator measures the loss and metrics of the model held in a Store on datasets. It
// compiles its graph once per batch shape and reuses it; call Finalize to release it.
type Evaluator struct {
	backend   compute.Backend
	store     *model.Store
	lossFn    LossFn
	metrics   map[string]MetricFn
	names     []string
	batchSize int
	// numInputs is the number of input columns of the datasets exec was built for.
	numInputs int
	exec      *guardedExec // nil until the first Evaluate builds it
}

// NewEvaluator prepares the evaluation of lossFn and metrics in batches of batchSize
// examples (0 means each dataset in one batch; a last partial batch is evaluated too).
// Metric names must not be empty or "loss".
func NewEvaluator(backend compute.Backend, store *model.Store, lossFn LossFn, metrics map[string]MetricFn, batchSize int) (*Evaluator, error) {
	switch {
	case backend == nil:
		return nil, errors.New("train.NewEvaluator: backend is nil")
	case store == nil:
		return nil, errors.New("train.NewEvaluator: store is nil")
	case lossFn == nil:
		return nil, errors.New("train.NewEvaluator: lossFn is nil")
	case batchSize < 0:
		return nil, fmt.Errorf("train.NewEvaluator: batchSize=%d out of range: must be >= 0 (0: whole dataset)", batchSize)
	}
	names := make([]string, 0, len(metrics))
	for k, m := range metrics {
		if k == "" || k == "loss" {
			return nil, fmt.Errorf("train.NewEvaluator: metric name %q is reserved or empty", k)
		}
		if m == nil {
			return nil, fmt.Errorf("train.NewEvaluator: metric %q is nil", k)
		}
		names = append(names, k)
	}
	sort.Strings(names)
	return &Evaluator{backend: backend, store: store, lossFn: lossFn, metrics: metrics, names: names,
		batchSize: batchSize}, nil
}

func (e *Evaluator) build() error {
	return catch("building the evaluation graph", func() error {
		exec, err := model.NewExec(e.backend, e.store, func(scope *model.Scope, inputsAndLabels []*graph.Node) []*graph.Node {
			g := inputsAndLabels[0].Graph()
			e.store.SetTraining(g, false)
			in, lb := inputsAndLabels[:e.numInputs], inputsAndLabels[e.numInputs:]
			outs := []*graph.Node{e.lossFn(scope.ResetVisited(), in, lb)}
			for _, k := range e.names {
				outs = append(outs, e.metrics[k](scope.ResetVisited(), in, lb))
			}
			for i, o := range outs {
				what := "the loss function"
				if i > 0 {
					what = fmt.Sprintf("metric %q", e.names[i-1])
				}
				checkScalarLoss(what, g, o)
			}
			return outs
		})
		if err != nil {
			return err
		}
		e.exec = &guardedExec{exec: exec.WithName("train.Evaluator")}
		return nil
	})
}

// Evaluate returns the loss ("loss") and each metric averaged over ds, weighting each batch
// by its size. It reads the Store's variables and changes none of the model's
// (dropout and other training-only behaviour is off).
func (e *Evaluator) Evaluate(ds *data.Dataset) (map[string]float64, error) {
	if ds == nil {
		return nil, errors.New("train.Evaluator.Evaluate: dataset is nil")
	}
	if e.exec == nil {
		e.numInputs = len(ds.Inputs())
		if err := e.build(); err != nil {
			return nil, err
		}
	} else if len(ds.Inputs()) != e.numInputs {
		return nil, fmt.Errorf("train.Evaluator.Evaluate(%q): dataset has %d inputs, this evaluator was built for %d",
			ds.Name(), len(ds.Inputs()), e.numInputs)
	}
	batchSize := e.batchSize
	if batchSize == 0 || batchSize > ds.Len() {
		batchSize = ds.Len()
	}
	sums := make([]float64, len(e.names)+1)
	err := catch(fmt.Sprintf("train.Evaluator.Evaluate(%q)", ds.Name()), func() error {
		for start := 0; start < ds.Len(); start += batchSize {
			rows := make([]int, 0, batchSize)
			for i := start; i < min(start+batchSize, ds.Len()); i++ {
				rows = append(rows, i)
			}
			inputs, labels, err := ds.Rows(rows)
			if err != nil {
				return err
			}
			outs, err := e.exec.call(batchArgs(inputs, labels)...)
			if err != nil {
				return err
			}
			for i, o := range outs {
				v, err := gomlxerr.ScalarFloat(o)
				_ = o.FinalizeAll()
				if err != nil {
					return err
				}
				sums[i] += v * float64(len(rows))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := map[string]float64{"loss": sums[0] / float64(ds.Len())}
	for i, k := range e.names {
		res[k] = sums[i+1] / float64(ds.Len())
	}
	return res, nil
}

// Finalize releases the compiled graphs. The Evaluator must not be used afterwards.
func (e *Evaluator) Finalize() {
	if e.exec != nil {
		e.exec.finalize()
		e.exec = nil
	}
}

// Evaluate measures the loss and the given metrics on the whole dataset once: a shortcut
// for [NewEvaluator], [Evaluator.Evaluate] and [Evaluator.Finalize].
func Evaluate(backend compute.Backend, store *model.Store, lossFn LossFn, ds *data.Dataset, metrics map[string]MetricFn, batchSize int) (map[string]float64, error) {
	e, err := NewEvaluator(backend, store, lossFn, metrics, batchSize)
	if err != nil {
		return nil, err
	}
	defer e.Finalize()
	return e.Evaluate(ds)
}
