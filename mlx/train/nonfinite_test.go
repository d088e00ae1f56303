package train_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
)

// nanAtStep multiplies the loss of the k-th training step by NaN (so the loss and, through
// the gradients, the updated weights become NaN in that step). It counts the training
// steps in a variable of the Store, which checkpoints save and restore.
func nanAtStep(k int, inner train.LossFn) train.LossFn {
	return func(scope *model.Scope, inputs, labels []*graph.Node) *graph.Node {
		loss := inner(scope, inputs, labels)
		g := loss.Graph()
		if !scope.IsTraining(g) {
			return loss
		}
		counter := scope.Store().Scope("/nan_test").WithInitializer(graph.Zeros).
			VariableWithShape("steps", shapes.Make(dtypes.Int64)).SetTrainable(false)
		n := graph.AddScalar(counter.NodeValue(g), 1)
		counter.SetNodeValue(n)
		factor := graph.Where(graph.Equal(n, graph.Const(g, int64(k))),
			graph.Scalar(g, loss.DType(), math.NaN()), graph.Scalar(g, loss.DType(), 1))
		return graph.Mul(loss, factor)
	}
}

// TestNonFiniteKeepsTheLastGoodCheckpoint makes the loss NaN at step k=8 of a run with a
// checkpoint every m=3 steps: the run must stop in step 8 with an error naming the step,
// the non-finite variables and the kept checkpoint, which must be the one of step
// floor((k-1)/m)*m = 6, hold only finite values, and resume.
func TestNonFiniteKeepsTheLastGoodCheckpoint(t *testing.T) {
	const k, m, steps = 8, 3, 10
	const lastGood = (k - 1) / m * m
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds := spirals(t)
		adam := func() train.Stepper {
			cfg := optim.DefaultAdam()
			cfg.LR = 0.01
			return train.FirstOrder(must(optim.NewAdam(cfg)), "adam")
		}
		loss := models.Classifier(smallMLP.Fn())
		dir := t.TempDir()
		cfg := train.Config{Steps: steps, BatchSize: 16, Seed: 2, CheckpointDir: dir, CheckpointEvery: m}
		hist, err := train.Run(backend, model.NewStore(), nanAtStep(k, loss), ds, adam(), cfg)
		var nf *train.NonFiniteError
		if !errors.As(err, &nf) {
			t.Fatalf("want a NonFiniteError, got %v", err)
		}
		path := filepath.Join(dir, train.CheckpointFile)
		msg := err.Error()
		if nf.Step != k || !strings.Contains(msg, "step 8") || len(hist.Records) != k-1 {
			t.Fatalf("error %q (step %d) and %d records for a NaN in step %d", msg, nf.Step, len(hist.Records), k)
		}
		weights := "/layer_0/dense/weights"
		if !strings.Contains(strings.Join(nf.All, " "), weights) || !strings.Contains(msg, weights) {
			t.Errorf("error %q does not name the non-finite variable %s", msg, weights)
		}
		if !strings.Contains(msg, "last good checkpoint, of step 6") || !strings.Contains(msg, path) {
			t.Errorf("error %q does not name the kept checkpoint", msg)
		}

		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		step, records, _, err := train.DecodeCheckpoint(b)
		if err != nil || step != lastGood || len(records) != lastGood {
			t.Fatalf("kept checkpoint: step %d, %d records, error %v; want step %d", step, len(records), err, lastGood)
		}
		kept := model.NewStore()
		if _, _, _, err := train.LoadCheckpoint(dir, kept); err != nil {
			t.Fatal(err)
		}
		for v := range kept.IterVariables() {
			value, err := v.Value()
			if err != nil {
				t.Fatal(err)
			}
			value.MustConstFlatData(func(flat any) {
				if xs, ok := flat.([]float32); ok {
					for _, x := range xs {
						if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
							t.Fatalf("the kept checkpoint holds a non-finite %s: %v", v.Path(), xs)
						}
					}
				}
			})
		}

		// Resuming from it (with the fault removed) replays steps 7.. and finishes the run.
		resumed, err := train.Run(backend, model.NewStore(), loss, ds, adam(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(resumed.Records) != steps {
			t.Fatalf("resumed run has %d records, want %d", len(resumed.Records), steps)
		}
		for i := range lastGood {
			if resumed.Records[i].Loss != hist.Records[i].Loss {
				t.Fatalf("record %d: resumed loss %g, first run %g", i, resumed.Records[i].Loss, hist.Records[i].Loss)
			}
		}
		for _, r := range resumed.Records {
			if math.IsNaN(r.Loss) {
				t.Fatalf("resumed run has a NaN loss: %+v", resumed.Records)
			}
		}
	})
}
