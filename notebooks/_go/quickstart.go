// ---
// jupyter:
//   jupytext:
//     text_representation:
//       extension: .go
//       format_name: percent
//       format_version: '1.3'
//       jupytext_version: 1.19.6
//   kernelspec:
//     display_name: Go (GoMLX)
//     language: go
//     name: goptlab
// ---

// %% [markdown]
// # Quickstart: Go and GoMLX in a notebook
//
// This kernel runs each cell as a Go program (GoNB) with this repository in the notebook's
// `go.work`, so the first cell can import our packages (`mlx`, `plots`, ...) and GoMLX with no
// set-up. `mlx.MustBackend()` picks the compute backend and prints one line saying which and why:
// `$GOMLX_BACKEND` if set, else XLA on a GPU, else XLA on the CPU, else GoMLX's pure-Go backend.
//
// Below we fit a small MLP to a fixed "teacher" function. Everything is seeded, so re-running the
// notebook gives the same numbers.

// %%
import (
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/loss"
	"github.com/gomlx/gomlx/ml/train/optimizer"
	"github.com/goptlab/goptlab/mlx"
)

// teacherData draws n points in [-1, 1]^2 and the value of a fixed smooth function at each.
func teacherData(n int, seed uint64) (x, y [][]float32) {
	rng := rand.New(rand.NewPCG(seed, 0))
	for range n {
		a, b := 2*rng.Float64()-1, 2*rng.Float64()-1
		x = append(x, []float32{float32(a), float32(b)})
		y = append(y, []float32{float32(math.Sin(3*a) * math.Cos(2*b))})
	}
	return x, y
}

// mlp is a 2-32-32-1 tanh network; its initial weights come from the store's seed.
func mlp(scope *model.Scope, x *graph.Node) *graph.Node {
	h := graph.Tanh(layers.DenseWithBias(scope.In("hidden1"), x, 32))
	h = graph.Tanh(layers.DenseWithBias(scope.In("hidden2"), h, 32))
	return layers.DenseWithBias(scope.In("output"), h, 1)
}

//gonb:%%
backend := mlx.MustBackend()
x, y := teacherData(256, 1)
store := model.NewStore()
store.SetParam(model.ParamInitialSeed, int64(42))
trainer := train.NewTrainer(backend, store, mlp, loss.MeanSquaredError,
	optimizer.Adam().LearningRate(0.01).Done(), nil, nil)
batch := train.Batch{
	Inputs: []*tensors.Tensor{tensors.FromValue(x)},
	Labels: []*tensors.Tensor{tensors.FromValue(y)},
}
for step := 1; step <= 300; step++ {
	metrics, err := trainer.TrainStep(batch)
	if err != nil {
		panic(err)
	}
	if step == 1 || step%100 == 0 {
		fmt.Printf("step %3d  mean squared error %.5f\n", step, metrics[0].Value())
	}
}

// %% [markdown]
// The error falls by well over an order of magnitude in 300 full-batch Adam steps: the network
// fits the teacher function. The same cell runs unchanged on any backend: set `GOMLX_BACKEND=go`
// (or `xla:cpu`, `xla:cuda`) in the kernel's environment to force one.
