package localsgd_test

import (
	"fmt"
	"os"

	"github.com/gomlx/compute/gobackend"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/localsgd"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/train"
)

// Federated averaging of 4 workers with Dirichlet label skew on two spirals, through
// mlx/train's loop, then the floats each round sends.
func Example() {
	ds, err := data.TwoSpirals(400, 1.5, 0.05, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	labels := ds.Labels()[0].Int32
	shards, err := data.ShardDirichlet(labels, 4, 0.5, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	sharded, err := localsgd.ShardedDataset(ds, shards)
	if err != nil {
		fmt.Println(err)
		return
	}
	stepper, err := localsgd.New(optimizer.Adam().LearningRate(0.01).Done(), localsgd.Config{
		Workers: 4, LocalSteps: 5, ShardSizes: shards.Sizes(), WorkerAxis: 1,
		Outer: localsgd.DiLoCoOuter(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	mlp := models.MLPConfig{Hidden: []int{16}, Outputs: 2, Activation: "tanh"}
	store := model.NewStore()
	hist, err := train.Run(gobackend.GetBackend(), store, models.Classifier(mlp.Fn()), sharded, stepper,
		train.Config{Steps: 20, BatchSize: 16, Seed: 1, LogEvery: 20})
	if err != nil {
		fmt.Println(err)
		return
	}
	last, _ := hist.Last()
	fmt.Println(stepper.Name(), "steps:", last.Step, "loss evaluations:", last.Evals)
	comm, err := stepper.Communication()
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := comm.WriteTable(os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// diloco(K=4,H=5) steps: 20 loss evaluations: 80
	//                floats per round (K=4)  per worker  total
	//   model only (82 trainable + 0 state)          82    328
	//         model + optimizer state (165)         247    988
	//    ratio with/without optimizer state       3.012  3.012
}
