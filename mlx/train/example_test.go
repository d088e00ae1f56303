package train_test

import (
	"fmt"
	"io"

	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/train"
)

// Fit a linear model to the fixed linear-regression problem with plain SGD.
func ExampleRun() {
	mlx.Output = io.Discard // Do not print the backend line.
	backend, err := mlx.Backend()
	if err != nil {
		fmt.Println(err)
		return
	}
	loss := models.Regressor(models.MLPConfig{Outputs: 1}.Fn())
	sgd := train.FirstOrder(optimizer.StochasticGradientDescent().WithLearningRate(0.3).Done(), "sgd")
	hist, err := train.Run(backend, model.NewStore(), loss, data.LinearRegression(), sgd,
		train.Config{Steps: 300, Seed: 1, LogEvery: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range hist.Records {
		fmt.Printf("step %d: evals %d, loss below 1e-6: %v\n", r.Step, r.Evals, r.Loss < 1e-6)
	}
	// Output:
	// step 100: evals 100, loss below 1e-6: true
	// step 200: evals 200, loss below 1e-6: true
	// step 300: evals 300, loss below 1e-6: true
}
