package train_test

import (
	"fmt"
	"io"

	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/optim"
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

// Train one model over three seeds and two learning rates of Adam (package mlx/optim keeps
// the learning rate in a variable), compiling the graphs once; each run's history is the
// one train.Run gives on a fresh Store.
func ExampleSession() {
	mlx.Output = io.Discard
	backend, err := mlx.Backend()
	if err != nil {
		fmt.Println(err)
		return
	}
	loss := models.Regressor(models.MLPConfig{Outputs: 1}.Fn())
	sess, err := train.NewSession(backend, loss, data.LinearRegression())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sess.Close()
	for _, lr := range []float64{0.01, 0.1} {
		for seed := int64(1); seed <= 3; seed++ {
			cfg := optim.DefaultAdam()
			cfg.LR = lr
			adam, err := optim.NewAdam(cfg)
			if err != nil {
				fmt.Println(err)
				return
			}
			hist, err := sess.Run(train.FirstOrder(adam, "adam"), train.Config{Steps: 200, Seed: seed, LogEvery: 200})
			if err != nil {
				fmt.Println(err)
				return
			}
			last, _ := hist.Last()
			fmt.Printf("lr %g seed %d: loss below 0.01: %v\n", lr, seed, last.Loss < 0.01)
		}
	}
	fmt.Println("compiled steps:", sess.Compiles())
	// Output:
	// lr 0.01 seed 1: loss below 0.01: false
	// lr 0.01 seed 2: loss below 0.01: false
	// lr 0.01 seed 3: loss below 0.01: false
	// lr 0.1 seed 1: loss below 0.01: true
	// lr 0.1 seed 2: loss below 0.01: true
	// lr 0.1 seed 3: loss below 0.01: true
	// compiled steps: 1
}

// Run 100 steps per execution of the compiled step (an XLA while loop): the history is
// still recorded every LogEvery steps, and the run takes a fraction of the dispatch time.
func ExampleConfig_stepsPerExecution() {
	mlx.Output = io.Discard
	backend, err := mlx.Backend()
	if err != nil {
		fmt.Println(err)
		return
	}
	loss := models.Regressor(models.MLPConfig{Outputs: 1}.Fn())
	sgd := train.FirstOrder(optimizer.StochasticGradientDescent().WithLearningRate(0.3).Done(), "sgd")
	hist, err := train.Run(backend, model.NewStore(), loss, data.LinearRegression(), sgd,
		train.Config{Steps: 300, Seed: 1, LogEvery: 150, StepsPerExecution: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range hist.Records {
		fmt.Printf("step %d: loss below 1e-6: %v\n", r.Step, r.Loss < 1e-6)
	}
	// Output:
	// step 150: loss below 1e-6: true
	// step 300: loss below 1e-6: true
}
