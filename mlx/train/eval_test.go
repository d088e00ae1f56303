package train_test

import (
	"math"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/train"
)

// TestEvaluatorWeightsBatchesBySize evaluates the 32 examples of the linear regression in
// batches of 5 (the last one of 2): the averages must equal those of one batch of 32, which
// only holds if each batch counts in proportion to its size. The Evaluator is reused, and
// refuses a dataset with another number of inputs.
func TestEvaluatorWeightsBatchesBySize(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds := data.LinearRegression()
		store := model.NewStore()
		if _, err := train.Run(backend, store, linearLoss, ds, sgd(0.05), train.Config{Steps: 3, Seed: 1}); err != nil {
			t.Fatal(err)
		}
		whole, err := train.Evaluate(backend, store, linearLoss, ds, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		e, err := train.NewEvaluator(backend, store, linearLoss, map[string]train.MetricFn{"mse": train.MetricFn(linearLoss)}, 5)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Finalize()
		for range 2 {
			batched, err := e.Evaluate(ds)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(batched["loss"]-whole["loss"]) > 1e-5*whole["loss"] || batched["mse"] != batched["loss"] {
				t.Fatalf("in batches of 5: %v; in one batch: %v", batched, whole)
			}
		}

		in, lb := ds.Inputs()[0], ds.Labels()[0]
		twoInputs, err := data.New("two-inputs", []data.Column{in, in}, []data.Column{lb})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Evaluate(twoInputs); err == nil || !strings.Contains(err.Error(), "built for 1") {
			t.Errorf("a dataset with 2 inputs: error = %v, want one saying the evaluator was built for 1", err)
		}
	})
	backend := mlxtest.Backends(t)[0].Backend
	if _, err := train.NewEvaluator(backend, model.NewStore(), linearLoss, map[string]train.MetricFn{"loss": train.MetricFn(linearLoss)}, 0); err == nil {
		t.Error("a metric named \"loss\" was accepted")
	}
}
