package zo_test

import (
	"fmt"
	"io"

	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/train"
	"github.com/goptlab/goptlab/mlx/zo"
)

// Train a linear model with MeZO's two-point estimator (4 directions per step) and check
// that the recorded trace replays to the same parameters.
func ExampleNew() {
	mlx.Output = io.Discard
	backend, err := mlx.Backend()
	if err != nil {
		fmt.Println(err)
		return
	}
	stepper, err := zo.New(zo.Config{LR: 0.02, Epsilon: 1e-3, Directions: 4, Trace: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	loss := models.Regressor(models.MLPConfig{Outputs: 1}.Fn())
	hist, err := train.Run(backend, model.NewStore(), loss, data.LinearRegression(), stepper,
		train.Config{Steps: 300, Seed: 4, LogEvery: 300})
	if err != nil {
		fmt.Println(err)
		return
	}
	last, _ := hist.Last()
	fmt.Printf("%s: %d loss evaluations, loss below 0.05: %v, %d steps traced\n",
		stepper.Name(), last.Evals, last.Loss < 0.05, len(stepper.Trace()))
	// Output:
	// zo-sgd: 2400 loss evaluations, loss below 0.05: true, 300 steps traced
}

// Bad hyperparameters fail at construction, naming the parameter and its range.
func ExampleConfig_Validate() {
	_, err := zo.New(zo.Config{LR: 1e-3, Epsilon: 0, Directions: 1})
	fmt.Println(err)
	// Output:
	// zo: Epsilon=0 out of range: must be in (0, +Inf)
}
