package optim_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
)

// The model x optimizer matrix: every optimizer of this package trains every model shape
// of mlx/models for a few steps on a tiny seeded image classification task, and the loss
// must stay finite and drop. It catches what the unit tests on quadratics cannot: an
// optimizer that fails to build on a real model graph (AdaHessian's second order through two
// stacked convolutions did), or that diverges on one.

const (
	matrixImages  = 16 // examples; one full batch per step, so the losses are comparable
	matrixSide    = 8  // images are matrixSide x matrixSide x 1
	matrixClasses = 3
	matrixSteps   = 20
)

// matrixData returns the task: class c has a bright 3x3 patch at a class-specific corner
// of an 8x8x1 image with uniform noise.
func matrixData(t testing.TB) *data.Dataset {
	t.Helper()
	r := rand.New(rand.NewPCG(17, 29))
	pixels := make([]float32, matrixImages*matrixSide*matrixSide)
	labels := make([]int32, matrixImages)
	corners := [matrixClasses][2]int{{1, 1}, {1, 4}, {4, 2}}
	for i := range matrixImages {
		c := i % matrixClasses
		labels[i] = int32(c)
		img := pixels[i*matrixSide*matrixSide : (i+1)*matrixSide*matrixSide]
		for j := range img {
			img[j] = float32(r.Float64()*0.6 - 0.3)
		}
		for dy := range 3 {
			for dx := range 3 {
				img[(corners[c][0]+dy)*matrixSide+corners[c][1]+dx] += 1
			}
		}
	}
	dims := []int{matrixSide, matrixSide, 1}
	ds, err := data.New("patches", []data.Column{{Dims: dims, Float32: pixels}}, []data.Column{{Dims: []int{1}, Int32: labels}})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// matrixModel is one model shape of mlx/models.
type matrixModel struct {
	name string
	fn   models.Fn
	cnn  bool
}

func matrixModels() []matrixModel {
	cnn := func(name string, channels, dense []int) matrixModel {
		cfg := models.CNNConfig{Channels: channels, Dense: dense, Outputs: matrixClasses}
		return matrixModel{name: name, fn: cfg.Fn(), cnn: true}
	}
	mlp := func(name string, hidden []int) matrixModel {
		fn := models.MLPConfig{Hidden: hidden, Outputs: matrixClasses}.Fn()
		return matrixModel{name: name, fn: func(scope *model.Scope, x *graph.Node) *graph.Node {
			return fn(scope, graph.Reshape(x, x.Shape().Dimensions[0], -1)) // images as rows of pixels
		}}
	}
	return []matrixModel{
		mlp("mlp", []int{16}),
		mlp("mlp_linear", nil),
		cnn("cnn1", []int{4}, nil),
		cnn("cnn1_dense", []int{4}, []int{8}),
		cnn("cnn2", []int{8, 16}, nil),
		cnn("cnn2_dense", []int{8, 16}, []int{8}),
	}
}

// modelLoss is the classifier loss of one model, with its variables under scope/<name>.
func modelLoss(m matrixModel) train.LossFn {
	inner := models.Classifier(m.fn)
	return func(scope *model.Scope, inputs, labels []*graph.Node) *graph.Node {
		return inner(scope.In("%s", m.name), inputs, labels)
	}
}

// jointLoss is the sum of the models' losses. The models share no variable, so each
// optimizer's step on the sum is its step on each model (the Hessian is block diagonal),
// except where an optimizer couples all parameters: SAM's perturbation and Adan's clipping
// use the global gradient norm. One run trains all models with one compilation (XLA CPU
// compiles one graph per run, which dominates the cost of such small runs).
func jointLoss(ms []matrixModel) train.LossFn {
	return func(scope *model.Scope, inputs, labels []*graph.Node) *graph.Node {
		var sum *graph.Node
		for _, m := range ms {
			l := modelLoss(m)(scope, inputs, labels)
			if sum == nil {
				sum = l
			} else {
				sum = graph.Add(sum, l)
			}
		}
		return sum
	}
}

// matrixOptimizer builds a fresh stepper; the learning rates suit 20 full-batch steps.
type matrixOptimizer struct {
	name string
	new  func() (train.Stepper, error)
}

func firstOrder[C any, O optim.Optimizer](name string, newOpt func(C) (O, error), cfg C) matrixOptimizer {
	return matrixOptimizer{name: name, new: func() (train.Stepper, error) {
		o, err := newOpt(cfg)
		if err != nil {
			return nil, err
		}
		return train.FirstOrder(o, name), nil
	}}
}

func matrixOptimizers() []matrixOptimizer {
	sgd := optim.DefaultSGD()
	sgd.LR = 0.1
	momentum := sgd
	momentum.LR, momentum.Momentum = 0.03, 0.9
	nesterov := momentum
	nesterov.Nesterov = true
	adam := optim.DefaultAdam()
	adam.LR = 0.01
	adamCosine := adam
	adamCosine.Schedule = optim.Schedule{WarmupSteps: 3, Decay: optim.DecayCosine, DecaySteps: matrixSteps - 3}
	adamw := optim.DefaultAdamW()
	adamw.LR = 0.01
	amsgrad := optim.DefaultAMSGrad()
	amsgrad.LR = 0.01
	adabelief := optim.DefaultAdaBelief()
	adabelief.LR = 0.01
	lion := optim.DefaultLion()
	lion.LR = 0.002
	adan := optim.DefaultAdan()
	adan.LR, adan.WeightDecay = 0.01, 0.02
	adahessian := optim.DefaultAdaHessian()
	adahessian.LR = 0.05
	sam := func(name string, base func() (optim.Optimizer, error)) matrixOptimizer {
		return matrixOptimizer{name: name, new: func() (train.Stepper, error) {
			b, err := base()
			if err != nil {
				return nil, err
			}
			return optim.NewSAM(b, optim.DefaultSAM())
		}}
	}
	return []matrixOptimizer{
		firstOrder("sgd", optim.NewSGD, sgd),
		firstOrder("momentum", optim.NewSGD, momentum),
		firstOrder("nesterov", optim.NewSGD, nesterov),
		firstOrder("adam", optim.NewAdam, adam),
		firstOrder("adam_warmup_cosine", optim.NewAdam, adamCosine),
		firstOrder("adamw", optim.NewAdam, adamw),
		firstOrder("amsgrad", optim.NewAdam, amsgrad),
		firstOrder("adabelief", optim.NewAdaBelief, adabelief),
		firstOrder("lion", optim.NewLion, lion),
		firstOrder("adan", optim.NewAdan, adan),
		firstOrder("adahessian", optim.NewAdaHessian, adahessian),
		sam("sam_sgd", func() (optim.Optimizer, error) { return optim.NewSGD(sgd) }),
	}
}

// trainMatrixRow trains the models jointly with one optimizer (see jointLoss) and checks
// the losses: every step's joint loss finite, and each model's loss after the last step at
// most maxRatio times its initial loss.
func trainMatrixRow(t *testing.T, backend compute.Backend, ms []matrixModel, o matrixOptimizer, maxRatio float64) {
	t.Helper()
	stepper, err := o.new()
	if err != nil {
		t.Fatal(err)
	}
	ds := matrixData(t)
	store := model.NewStore()
	const seed = 5
	if err := train.SeedStore(store, seed); err != nil {
		t.Fatal(err)
	}
	perModel := map[string]train.MetricFn{}
	for _, m := range ms {
		perModel[m.name] = train.MetricFn(modelLoss(m))
	}
	loss := jointLoss(ms)
	eval, err := train.NewEvaluator(backend, store, loss, perModel, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer eval.Finalize()
	before, err := eval.Evaluate(ds) // also creates the models' variables
	if err != nil {
		t.Fatal(err)
	}
	hist, err := train.Run(backend, store, loss, ds, stepper, train.Config{Steps: matrixSteps, Seed: seed})
	if err != nil {
		t.Fatalf("training: %v", err)
	}
	losses, err := hist.Column("loss")
	if err != nil {
		t.Fatal(err)
	}
	if len(losses) != matrixSteps {
		t.Fatalf("history has %d losses, want %d", len(losses), matrixSteps)
	}
	for i, l := range losses {
		if math.IsNaN(l) || math.IsInf(l, 0) {
			t.Fatalf("step %d: joint loss %g is not finite", i+1, l)
		}
	}
	after, err := eval.Evaluate(ds)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		first, last := before[m.name], after[m.name]
		t.Logf("%-10s loss %.4f -> %.4f (ratio %.3f)", m.name, first, last, last/first)
		if !(last <= maxRatio*first) {
			t.Errorf("%s: loss %.4f -> %.4f after %d steps: want at most %.2f times the initial loss",
				m.name, first, last, matrixSteps, maxRatio)
		}
	}
}

// matrixMaxRatio is the final/initial loss ratio every model must reach with every
// optimizer. The initial losses are about 0.8 to 2.3; the measured ratios are at most about
// 0.66 (Lion, the slowest here; see the test's -v output), so a failure means an optimizer
// that does not train a model.
const matrixMaxRatio = 0.75

// TestModelOptimizerMatrix trains every model with every optimizer, on XLA CPU (where
// installed) and on the pure-Go backend.
func TestModelOptimizerMatrix(t *testing.T) {
	start := time.Now()
	// The pure-Go backend as mlx creates it: with GoMLX's default options, AdaHessian's
	// step on the two-block CNN deadlocked (see goBackendOptions in mlx/backend.go).
	for _, nb := range mlxtest.Backends(t) {
		t.Run(nb.Name, func(t *testing.T) {
			for _, o := range matrixOptimizers() {
				t.Run(o.name, func(t *testing.T) { trainMatrixRow(t, nb.Backend, matrixModels(), o, matrixMaxRatio) })
			}
		})
	}
	t.Logf("matrix run time: %s", time.Since(start).Round(time.Millisecond))
}
