package localsgd

import (
	"math"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/train"
)

// train.Run takes the plain loss of one worker's batch (LocalSGD creates the variables
// on worker 0's part of the batch) and evaluates the global model on an unsharded dataset.
func TestRunTakesThePlainLoss(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		const K = 3
		ds := workerDataset(t, 1, 20, K)
		in, lb := ds.Inputs()[0], ds.Labels()[0]
		flat, err := data.New("flat", []data.Column{{Dims: []int{testIn}, Float32: in.Float32}},
			[]data.Column{{Dims: []int{testOut}, Float32: lb.Float32}})
		if err != nil {
			t.Fatal(err)
		}
		l := mustNew(t, sgd(0.1, false), Config{Workers: K, LocalSteps: 2, WorkerAxis: 1})
		runCfg := train.Config{Steps: 4, BatchSize: 5, Seed: 2, Eval: flat}
		hist, err := train.Run(backend, model.NewStore(), mlpLoss(false), ds, l, runCfg)
		if err != nil {
			t.Fatal(err)
		}
		losses, _ := hist.Column("loss")
		evalLoss, _ := hist.Column("eval_loss")
		if len(losses) != runCfg.Steps || len(evalLoss) != runCfg.Steps {
			t.Fatalf("%d losses and %d eval losses, want %d", len(losses), len(evalLoss), runCfg.Steps)
		}
		for s := range losses {
			for name, v := range map[string]float64{"loss": losses[s], "eval_loss": evalLoss[s]} {
				if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
					t.Errorf("%s[%d] = %g", name, s, v)
				}
			}
		}
	})
}
