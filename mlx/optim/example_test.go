package optim_test

import (
	"fmt"
	"slices"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/optim"
)

// goBackend is GoMLX's pure-Go backend: examples use it so that their output does not depend
// on the machine.
func goBackend() compute.Backend {
	b, err := mlx.Choice{Kind: mlx.KindGo, Config: "go"}.New()
	if err != nil {
		panic(err)
	}
	return b
}

// quadratic is sum(scales * (x - 1)^2) on the variable "x" of scope.
func quadratic(scope *model.Scope, g *Graph) *Node {
	x := scope.GetVariable("x").NodeValue(g)
	scales := Const(g, []float64{1, 10})
	return ReduceAllSum(Mul(scales, Square(AddScalar(x, -1))))
}

// Adan minimizes a badly scaled quadratic with GoMLX's model.Exec: UpdateGraph adds the
// update of every trainable variable (and of Adan's own state) to the graph.
func ExampleNewAdan() {
	cfg := optim.DefaultAdan()
	cfg.LR = 0.05
	cfg.WeightDecay = 0.02 // proximal, as in the paper; cfg.NoProx = true for the AdamW-like form
	cfg.Schedule = optim.Schedule{WarmupSteps: 10, Decay: optim.DecayCosine, DecaySteps: 990}
	adan, err := optim.NewAdan(cfg)
	if err != nil {
		panic(err)
	}
	store := model.NewStore()
	x, _ := store.RootScope().CreateVariable("x", tensors.FromValue([]float64{4, -3}))
	step, err := model.NewExec(goBackend(), store, func(scope *model.Scope, g *Graph) *Node {
		loss := quadratic(scope, g)
		adan.UpdateGraph(scope, g, loss)
		return loss
	})
	if err != nil {
		panic(err)
	}
	for range 1000 {
		if _, err := step.Exec(); err != nil {
			panic(err)
		}
	}
	fmt.Printf("x = %.2f\n", tensors.MustCopyFlatData[float64](x.MustValue()))
	// Output: x = [1.00 1.00]
}

// Adan written as a chain of transforms: gradient clipping with eps in the norm, Adan's
// preconditioner, the proximal weight decay, the learning rate. It takes the same steps as
// NewAdan with the same settings, bit for bit.
func ExampleNewChain_adan() {
	cfg := optim.DefaultAdan()
	cfg.LR, cfg.WeightDecay, cfg.MaxGradNorm = 0.05, 0.02, 10
	cfg.Schedule = optim.Schedule{WarmupSteps: 10, Decay: optim.DecayCosine, DecaySteps: 490}
	chain, err := optim.NewChain("adan", cfg.Common,
		optim.ClipByGlobalNormEps(cfg.MaxGradNorm, cfg.Eps),
		optim.ScaleByAdan(cfg.Beta1, cfg.Beta2, cfg.Beta3, cfg.Eps),
		optim.ProximalDecay(cfg.WeightDecay), // optim.AddDecayedWeights(wd) for NoProx
		optim.ScaleByLR())
	if err != nil {
		panic(err)
	}
	adan, err := optim.NewAdan(cfg)
	if err != nil {
		panic(err)
	}
	train := func(opt optim.Optimizer) []float64 {
		store := model.NewStore()
		x, _ := store.RootScope().CreateVariable("x", tensors.FromValue([]float64{4, -3}))
		step, err := model.NewExec(goBackend(), store, func(scope *model.Scope, g *Graph) *Node {
			loss := quadratic(scope, g)
			opt.UpdateGraph(scope, g, loss)
			return loss
		})
		if err != nil {
			panic(err)
		}
		for range 500 {
			if _, err := step.Exec(); err != nil {
				panic(err)
			}
		}
		return tensors.MustCopyFlatData[float64](x.MustValue())
	}
	fromChain, fromAdan := train(chain), train(adan)
	fmt.Printf("chain: x = %.2f\n", fromChain)
	fmt.Println("equal to NewAdan's:", slices.Equal(fromChain, fromAdan))
	// Output:
	// chain: x = [1.00 1.00]
	// equal to NewAdan's: true
}

// The Hutchinson estimate of the Hessian diagonal that AdaHessian uses is exact, for every
// Rademacher probe, when the Hessian is diagonal: here diag(2, 20).
func ExampleHutchinsonDiagonal() {
	store := model.NewStore()
	_ = store.SetRNGStateFromSeed(42)
	_, _ = store.RootScope().CreateVariable("x", tensors.FromValue([]float64{0.3, -2}))
	exec, err := model.NewExec(goBackend(), store, func(scope *model.Scope, g *Graph) *Node {
		grads := scope.BuildTrainableVariablesGradientsGraph(quadratic(scope, g))
		return optim.HutchinsonDiagonal(scope, grads, 1, false)[0]
	})
	if err != nil {
		panic(err)
	}
	for range 3 {
		out, err := exec.Exec()
		if err != nil {
			panic(err)
		}
		fmt.Println(out[0].Value())
	}
	// Output:
	// [2 20]
	// [2 20]
	// [2 20]
}

// SAM needs the loss at a second point, so it is a train.Stepper: BuildStep evaluates the
// loss function twice in the same graph and lets its base optimizer apply the gradient
// taken at the perturbed point.
func ExampleNewSAM() {
	base, err := optim.NewSGD(optim.SGDConfig{Common: optim.Common{LR: 0.04, ScopeName: "sgd"}, Momentum: 0.5})
	if err != nil {
		panic(err)
	}
	sam, err := optim.NewSAM(base, optim.SAMConfig{Rho: 0.01, Eps: 1e-12})
	if err != nil {
		panic(err)
	}
	store := model.NewStore()
	x, _ := store.RootScope().CreateVariable("x", tensors.FromValue([]float64{4, -3}))
	lossFn := func(scope *model.Scope, inputs, _ []*Node) *Node { return quadratic(scope, inputs[0].Graph()) }
	step, err := model.NewExec(goBackend(), store, func(scope *model.Scope, g *Graph) *Node {
		return sam.BuildStep(scope, lossFn, []*Node{ScalarZero(g, x.DType())}, nil)
	})
	if err != nil {
		panic(err)
	}
	for range 200 {
		if _, err := step.Exec(); err != nil {
			panic(err)
		}
	}
	fmt.Println(sam.Name(), sam.LossEvalsPerStep())
	fmt.Printf("x = %.2f\n", tensors.MustCopyFlatData[float64](x.MustValue()))
	// Output:
	// sam(sgd) 2
	// x = [1.00 1.00]
}

// Schedules multiply the learning rate of any optimizer; Factor computes them on the host.
func ExampleSchedule_Factor() {
	s := optim.Schedule{WarmupSteps: 2, Decay: optim.DecayLinear, DecaySteps: 4, FinalFactor: 0.2}
	for k := 1; k <= 7; k++ {
		fmt.Printf("%.1f ", s.Factor(k))
	}
	fmt.Println()
	// Output: 0.5 1.0 0.8 0.6 0.4 0.2 0.2
}

// Out-of-range hyperparameters are rejected at construction, naming the parameter and its range.
func ExampleNewAdam_validation() {
	cfg := optim.DefaultAdamW()
	cfg.Beta2 = 1
	_, err := optim.NewAdam(cfg)
	fmt.Println(err)
	// Output: optim.Adam: Beta2=1 is out of range: it must be in [0, 1)
}
