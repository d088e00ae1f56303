package zo_test

import (
	"math"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/train"
	"github.com/goptlab/goptlab/mlx/zo"
)

const quadDim = 10

// Quadratic f(θ) = ½ Σ a_i θ_i² + Σ b_i θ_i, in float64, with gradient a∘θ + b.
var (
	quadA  = []float64{1, 2, 3, 0.5, 4, 1.5, 2.5, 0.25, 3.5, 1}
	quadB  = []float64{0.1, -0.2, 0.3, 0, 1, -1, 0.5, 0.25, -0.75, 2}
	quadT0 = []float64{1, -1, 0.5, 2, -0.3, 0.7, -1.2, 0.1, 0.9, -2}
)

func quadLoss(scope *model.Scope, inputs, _ []*graph.Node) *graph.Node {
	g := inputs[0].Graph()
	theta := scope.VariableWithShape("theta", shapes.Make(dtypes.Float64, quadDim)).NodeValue(g)
	a, b := graph.Const(g, quadA), graph.Const(g, quadB)
	return graph.Add(graph.MulScalar(graph.ReduceAllSum(graph.Mul(a, graph.Square(theta))), 0.5),
		graph.ReduceAllSum(graph.Mul(b, theta)))
}

func quadStore(t *testing.T) (*model.Store, *model.Variable) {
	t.Helper()
	store := model.NewStore()
	if err := train.SeedStore(store, 5); err != nil {
		t.Fatal(err)
	}
	v, err := store.CreateVariable("/theta", tensors.FromValue(append([]float64(nil), quadT0...)))
	if err != nil {
		t.Fatal(err)
	}
	return store, v
}

// runSteps builds the stepper's step on its own (outside train.Run) and runs it n times.
func runSteps(t *testing.T, backend compute.Backend, store *model.Store, z *zo.ZO, n int) {
	t.Helper()
	exec, err := model.NewExec(backend, store, func(scope *model.Scope, x *graph.Node) *graph.Node {
		return z.BuildStep(scope, quadLoss, []*graph.Node{x}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	for step := 1; step <= n; step++ {
		if _, err := exec.Call(float64(0)); err != nil {
			t.Fatal(err)
		}
		if err := z.AfterStep(store, step, false); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCentralDifferenceIsDirectionalDerivative(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		store, theta := quadStore(t)
		z, err := zo.New(zo.Config{LR: 0, Epsilon: 1e-3, Directions: 3, Trace: true})
		if err != nil {
			t.Fatal(err)
		}
		runSteps(t, backend, store, z, 1)
		tr := z.Trace()
		if len(tr) != 1 || len(tr[0].Seeds) != 3 || len(tr[0].GProj) != 3 {
			t.Fatalf("unexpected trace %+v", tr)
		}
		if tr[0].Seeds[0] == tr[0].Seeds[1] {
			t.Fatalf("two directions share the seed %v", tr[0].Seeds[0])
		}
		for k, seed := range tr[0].Seeds {
			zs, err := zo.SampleZ(backend, seed, []shapes.Shape{theta.Shape()}, zo.Gaussian)
			if err != nil {
				t.Fatal(err)
			}
			zv := zs[0].Value().([]float64)
			want := 0.0
			for i := range quadDim {
				want += zv[i] * (quadA[i]*quadT0[i] + quadB[i])
			}
			if got := tr[0].GProj[k]; math.Abs(got-want) > 1e-8*(1+math.Abs(want)) {
				t.Errorf("direction %d: (L+ - L-)/2ε = %.15g, z·∇f = %.15g", k, got, want)
			}
		}
		// lr = 0: θ is restored exactly after the perturbations.
		got := theta.MustValue().Value().([]float64)
		for i := range quadDim {
			if got[i] != quadT0[i] {
				t.Fatalf("θ[%d] = %.17g after a step with lr=0, want %.17g", i, got[i], quadT0[i])
			}
		}
	})
}

func TestReplayIsBitForBit(t *testing.T) {
	ds, err := data.TwoSpirals(64, 1, 0.05, 3)
	if err != nil {
		t.Fatal(err)
	}
	fn := models.MLPConfig{Hidden: []int{16}, Outputs: 2, Activation: "tanh"}.Fn()
	loss := models.Classifier(fn)
	configs := map[string]func() zo.Config{
		"sgd": func() zo.Config { return zo.Config{LR: 0.01, Epsilon: 1e-3, Directions: 2, Trace: true} },
		"momentum-wd-magnitude": func() zo.Config {
			return zo.Config{LR: 0.01, Epsilon: 1e-3, Directions: 1, Momentum: 0.9, WeightDecay: 0.01,
				Mask: zo.MagnitudeMask(0.5), Trace: true}
		},
		"momentum": func() zo.Config {
			return zo.Config{LR: 0.01, Epsilon: 1e-3, Directions: 1, Momentum: 0.9, Trace: true}
		},
		"weight-decay": func() zo.Config {
			return zo.Config{LR: 0.01, Epsilon: 1e-3, Directions: 1, WeightDecay: 0.01, Trace: true}
		},
		"magnitude-mask": func() zo.Config {
			return zo.Config{LR: 0.01, Epsilon: 1e-3, Directions: 1, Mask: zo.MagnitudeMask(0.5), Trace: true}
		},
		"rademacher-3-directions": func() zo.Config {
			return zo.Config{LR: 0.01, Epsilon: 1e-3, Directions: 3, Distribution: zo.Rademacher,
				Momentum: 0.5, WeightDecay: 0.01, Trace: true}
		},
		"adam-random-mask": func() zo.Config {
			return zo.Config{Epsilon: 1e-3, Directions: 2, Rule: optimizer.Adam().LearningRate(0.01).Done(),
				Mask: zo.RandomMask(0.3, 9), Trace: true}
		},
	}
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		for name, cfgFn := range configs {
			t.Run(name, func(t *testing.T) {
				trained := model.NewStore()
				if err := train.SeedStore(trained, 21); err != nil {
					t.Fatal(err)
				}
				if _, err := train.Evaluate(backend, trained, loss, ds, nil, 0); err != nil { // Creates the variables.
					t.Fatal(err)
				}
				replayed, err := trained.Clone()
				if err != nil {
					t.Fatal(err)
				}
				initial := flatWeights(t, trained)
				z, err := zo.New(cfgFn())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := train.Run(backend, trained, loss, ds, z, train.Config{Steps: 12, BatchSize: 16, Seed: 21}); err != nil {
					t.Fatal(err)
				}
				if len(z.Trace()) != 12 {
					t.Fatalf("trace has %d steps, want 12", len(z.Trace()))
				}
				z2, _ := zo.New(cfgFn())
				if err := z2.Replay(backend, replayed, z.Trace()); err != nil {
					t.Fatal(err)
				}
				want, got := flatWeights(t, trained), flatWeights(t, replayed)
				changed, total := 0, 0
				for path, w := range want {
					for i := range w {
						total++
						if w[i] != initial[path][i] {
							changed++
						}
						if math.Float32bits(w[i]) != math.Float32bits(got[path][i]) {
							t.Fatalf("%s[%d]: replayed %.9g, trained %.9g", path, i, got[path][i], w[i])
						}
					}
				}
				if changed == 0 {
					t.Fatal("training changed no parameter")
				}
				if cfgFn().Mask != nil && cfgFn().WeightDecay == 0 && changed > total*9/10 {
					t.Fatalf("with a mask, %d of %d parameters changed", changed, total)
				}
			})
		}
	})
}

func flatWeights(t *testing.T, store *model.Store) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for v := range store.IterVariables() {
		if !v.Trainable || v.DType() != dtypes.Float32 {
			continue
		}
		value := v.MustValue()
		flat := make([]float32, value.Shape().Size())
		tensors.MustConstFlatData(value, func(f []float32) { copy(flat, f) })
		out[v.Path()] = flat
	}
	return out
}

func TestZOReducesLoss(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds := data.LinearRegression()
		loss := models.Regressor(models.MLPConfig{Outputs: 1}.Fn())
		for _, cfg := range []zo.Config{
			{LR: 0.02, Epsilon: 1e-3, Directions: 4},
			{LR: 0.005, Epsilon: 1e-3, Directions: 1, Momentum: 0.9},
			{Epsilon: 1e-3, Directions: 1, Rule: optimizer.Adam().LearningRate(0.05).Done()},
		} {
			z, err := zo.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			hist, err := train.Run(backend, model.NewStore(), loss, ds, z, train.Config{Steps: 300, Seed: 4, LogEvery: 1})
			if err != nil {
				t.Fatal(err)
			}
			first, last := hist.Records[0], hist.Records[len(hist.Records)-1]
			if !(first.Loss > 20*last.Loss) {
				t.Errorf("%s: loss went from %g to %g, want a 20x reduction", z.Name(), first.Loss, last.Loss)
			}
			if last.Evals != int64(300*2*cfg.Directions) {
				t.Errorf("%s: %d evaluations recorded, want %d", z.Name(), last.Evals, 300*2*cfg.Directions)
			}
			if !(last.Loss < 0.05) {
				t.Errorf("%s: loss %g after 300 steps, want < 0.05", z.Name(), last.Loss)
			}
		}
	})
}

// TestStepHasNoBackwardPass removes tanh's gradient rule: a first-order step on a tanh
// model can no longer be built, a ZO step still can (it only evaluates the loss).
func TestStepHasNoBackwardPass(t *testing.T) {
	saved := graph.VJPRegistration[graph.NodeTypeTanh]
	delete(graph.VJPRegistration, graph.NodeTypeTanh)
	defer func() { graph.VJPRegistration[graph.NodeTypeTanh] = saved }()
	backend := mlxtest.Backends(t)[0].Backend
	ds, err := data.TwoSpirals(32, 1, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	loss := models.Classifier(models.MLPConfig{Hidden: []int{8}, Outputs: 2, Activation: "tanh"}.Fn())
	cfg := train.Config{Steps: 3, Seed: 1}
	fo := train.FirstOrder(optimizer.StochasticGradientDescent().WithLearningRate(0.1).Done(), "sgd")
	if _, err := train.Run(backend, model.NewStore(), loss, ds, fo, cfg); err == nil || !strings.Contains(err.Error(), "gradient") {
		t.Fatalf("control: a first-order step without tanh's gradient should fail, got %v", err)
	}
	z, err := zo.New(zo.Config{LR: 0.01, Epsilon: 1e-3, Directions: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := train.Run(backend, model.NewStore(), loss, ds, z, cfg); err != nil {
		t.Fatalf("ZO step needed a gradient: %v", err)
	}
}

func TestBadHyperparameters(t *testing.T) {
	ok := zo.Config{LR: 1e-3, Epsilon: 1e-3, Directions: 1}
	for _, tc := range []struct {
		edit func(*zo.Config)
		want string
	}{
		{func(c *zo.Config) { c.Epsilon = 0 }, "Epsilon=0 out of range: must be in (0, +Inf)"},
		{func(c *zo.Config) { c.Epsilon = -1 }, "Epsilon=-1"},
		{func(c *zo.Config) { c.Epsilon = math.NaN() }, "Epsilon=NaN"},
		{func(c *zo.Config) { c.Directions = 0 }, "Directions=0 out of range: must be >= 1"},
		{func(c *zo.Config) { c.LR = -0.1 }, "LR=-0.1 out of range: must be in [0, +Inf)"},
		{func(c *zo.Config) { c.WeightDecay = -1 }, "WeightDecay=-1"},
		{func(c *zo.Config) { c.Momentum = 1 }, "Momentum=1 out of range: must be in [0, 1)"},
		{func(c *zo.Config) { c.Mask = zo.RandomMask(0, 1) }, "fraction=0 out of range: must be in (0, 1]"},
		{func(c *zo.Config) { c.Mask = zo.MagnitudeMask(1.5) }, "fraction=1.5"},
		{func(c *zo.Config) { c.Rule = optimizer.Adam().Done(); c.Momentum = 0.5 }, "Momentum=0.5 is for the built-in rule"},
	} {
		cfg := ok
		tc.edit(&cfg)
		_, err := zo.New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error containing %q, got %v", tc.want, err)
		}
	}
	if _, err := zo.New(ok); err != nil {
		t.Fatal(err)
	}
	if _, err := zo.New(zo.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
}
