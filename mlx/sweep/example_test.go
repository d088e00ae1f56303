package sweep_test

import (
	"fmt"
	"io"
	"math"

	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/sweep"
)

// Build an optimizer by name, with hyperparameters by name.
func ExampleOptimizer() {
	opt, err := sweep.Optimizer("adam", sweep.Params{"lr": 1e-3, "beta2": 0.99})
	fmt.Println(opt.Name(), err)
	_, err = sweep.Optimizer("adam", sweep.Params{"momentum": 0.9})
	fmt.Println(err)
	// Output:
	// adam <nil>
	// sweep.Optimizer("adam"): unknown hyperparameter "momentum": adam accepts amsgrad, beta1, beta2, decoupled, eps, lr, weight_decay
}

// Sweep SGD's learning rate over two seeds in one compiled graph, and summarise.
func ExampleTrain() {
	mlx.Output = io.Discard // Do not print the backend line.
	backend, err := mlx.Backend()
	if err != nil {
		fmt.Println(err)
		return
	}
	loss := models.Regressor(models.MLPConfig{Outputs: 1}.Fn())
	runs := sweep.Grid("sgd", map[string][]float64{"lr": {0.0001, 0.3}}, 1, 2)
	hs, err := sweep.Train(backend, loss, data.LinearRegression(), runs, sweep.Options{Steps: 200, LogEvery: 50})
	if err != nil {
		fmt.Println(err)
		return
	}
	s := sweep.Summarize(hs, 1e-6)
	for _, r := range s.Rows {
		fmt.Printf("%s: %d seeds, reached 1e-6: %d\n", r.Name, r.Seeds, r.Reached)
	}
	best, _ := s.Best()
	fmt.Println("best:", best.Name, math.IsInf(best.Median, 0))
	// Output:
	// sgd lr=0.0001: 2 seeds, reached 1e-6: 0
	// sgd lr=0.3: 2 seeds, reached 1e-6: 2
	// best: sgd lr=0.3 false
}
