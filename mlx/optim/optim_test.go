package optim

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	gomlxtrain "github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/loss"

	"github.com/goptlab/goptlab/mlx/mlxtest"
)

// TestValidation: out-of-range hyperparameters fail at construction with a message naming
// the parameter and its valid range.
func TestValidation(t *testing.T) {
	type errCase struct {
		name string
		err  error
		want []string // substrings of the message
	}
	var cases []errCase
	add := func(name string, err error, want ...string) { cases = append(cases, errCase{name, err, want}) }
	sgd := func(f func(*SGDConfig)) error { c := DefaultSGD(); f(&c); _, err := NewSGD(c); return err }
	adam := func(f func(*AdamConfig)) error { c := DefaultAdam(); f(&c); _, err := NewAdam(c); return err }
	adan := func(f func(*AdanConfig)) error { c := DefaultAdan(); f(&c); _, err := NewAdan(c); return err }
	ah := func(f func(*AdaHessianConfig)) error {
		c := DefaultAdaHessian()
		f(&c)
		_, err := NewAdaHessian(c)
		return err
	}
	add("negative lr", sgd(func(c *SGDConfig) { c.LR = -0.1 }), "LR=-0.1", "> 0")
	add("NaN lr", adam(func(c *AdamConfig) { c.LR = math.NaN() }), "LR=NaN", "> 0")
	add("momentum 1", sgd(func(c *SGDConfig) { c.Momentum = 1 }), "Momentum=1", "[0, 1)")
	add("nesterov without momentum", sgd(func(c *SGDConfig) { c.Nesterov = true }), "Nesterov", "Momentum")
	add("beta1 negative", adam(func(c *AdamConfig) { c.Beta1 = -0.1 }), "Beta1=-0.1", "[0, 1)")
	add("beta2 1", adam(func(c *AdamConfig) { c.Beta2 = 1 }), "Beta2=1", "[0, 1)")
	add("eps 0", adam(func(c *AdamConfig) { c.Eps = 0 }), "Eps=0", "> 0")
	add("weight decay negative", adam(func(c *AdamConfig) { c.WeightDecay = -1 }), "WeightDecay=-1", ">= 0")
	add("adan beta3", adan(func(c *AdanConfig) { c.Beta3 = 1.5 }), "Beta3=1.5", "[0, 1)")
	add("adan max grad norm", adan(func(c *AdanConfig) { c.MaxGradNorm = -1 }), "MaxGradNorm=-1", ">= 0")
	add("adahessian power", ah(func(c *AdaHessianConfig) { c.HessianPower = 1.5 }), "HessianPower=1.5", "(0, 1]")
	add("adahessian probes", ah(func(c *AdaHessianConfig) { c.Probes = 0 }), "Probes=0", "[1, ")
	add("adahessian update every", ah(func(c *AdaHessianConfig) { c.UpdateEvery = 0 }), "UpdateEvery=0", "[1, ")
	add("adahessian axes", ah(func(c *AdaHessianConfig) { c.KernelSpatialAxes = []int{1, 1} }), "KernelSpatialAxes", "distinct")
	add("empty scope", adam(func(c *AdamConfig) { c.ScopeName = "" }), "ScopeName")
	add("scope with slash", adam(func(c *AdamConfig) { c.ScopeName = "a/b" }), "ScopeName", "'/'")
	add("scope with space", adam(func(c *AdamConfig) { c.ScopeName = "my adam" }), "ScopeName", "spaces")
	add("scope of spaces", adam(func(c *AdamConfig) { c.ScopeName = "   " }), "ScopeName", "spaces")
	add("scope with NUL", adam(func(c *AdamConfig) { c.ScopeName = "adam\x00" }), "ScopeName", "printable")
	add("scope too long", adam(func(c *AdamConfig) { c.ScopeName = strings.Repeat("a", MaxScopeNameLen+1) }), "ScopeName", "128 bytes")
	add("adahessian probes huge", ah(func(c *AdaHessianConfig) { c.Probes = math.MaxInt }),
		fmt.Sprintf("Probes=%d", math.MaxInt), fmt.Sprintf("[1, %d]", MaxProbes))
	add("adahessian update every huge", ah(func(c *AdaHessianConfig) { c.UpdateEvery = math.MaxInt }),
		fmt.Sprintf("UpdateEvery=%d", math.MaxInt), fmt.Sprintf("[1, %d]", MaxSteps))
	add("schedule warmup huge", adam(func(c *AdamConfig) { c.Schedule = Schedule{WarmupSteps: math.MaxInt} }),
		fmt.Sprintf("Schedule.WarmupSteps=%d", math.MaxInt), fmt.Sprintf("[0, %d]", MaxSteps))
	add("schedule decay steps huge", adam(func(c *AdamConfig) {
		c.Schedule = Schedule{Decay: DecayCosine, DecaySteps: MaxSteps + 1}
	}), fmt.Sprintf("Schedule.DecaySteps=%d", MaxSteps+1), fmt.Sprintf("[0, %d]", MaxSteps))
	add("int dtype", adam(func(c *AdamConfig) { c.DType = dtypes.Int32 }), "DType", "float")
	add("schedule final", adam(func(c *AdamConfig) {
		c.Schedule = Schedule{Decay: DecayCosine, DecaySteps: 10, FinalFactor: 2}
	}), "Schedule.FinalFactor=2", "[0, 1]")
	add("schedule decay steps", adam(func(c *AdamConfig) { c.Schedule = Schedule{Decay: DecayLinear} }), "Schedule.DecaySteps=0", ">= 1")
	add("schedule warmup", adam(func(c *AdamConfig) { c.Schedule = Schedule{WarmupSteps: -1} }), "Schedule.WarmupSteps=-1", "[0, ")
	_, err := NewLion(LionConfig{Common: Common{LR: 1e-4, ScopeName: "lion"}, Beta1: 0.9, Beta2: 1})
	add("lion beta2", err, "Beta2=1", "[0, 1)")
	_, err = NewAdaBelief(AdaBeliefConfig{Common: Common{LR: 1e-3, ScopeName: "ab"}, Beta1: 0.9, Beta2: 0.999})
	add("adabelief eps", err, "Eps=0", "> 0")
	_, err = NewSAM(nil, DefaultSAM())
	add("sam nil base", err, "base optimizer is nil")
	_, err = NewSAM(must(NewAdam(DefaultAdam())), SAMConfig{Rho: 0, Eps: 1e-12})
	add("sam rho", err, "Rho=0", "> 0")
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(c.err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, c.err, w)
			}
		}
	}
	// The bounds themselves are valid.
	edge := DefaultAdaHessian()
	edge.Probes, edge.UpdateEvery, edge.ScopeName = MaxProbes, MaxSteps, "ada-hessian_2.ü"
	edge.Schedule = Schedule{WarmupSteps: MaxSteps, Decay: DecayLinear, DecaySteps: MaxSteps}
	if _, err := NewAdaHessian(edge); err != nil {
		t.Errorf("settings at the bounds rejected: %v", err)
	}
	// The defaults are valid.
	for name, err := range map[string]error{
		"sgd": errOf(NewSGD(DefaultSGD())), "adam": errOf(NewAdam(DefaultAdam())), "adamw": errOf(NewAdam(DefaultAdamW())),
		"amsgrad": errOf(NewAdam(DefaultAMSGrad())), "adabelief": errOf(NewAdaBelief(DefaultAdaBelief())),
		"lion": errOf(NewLion(DefaultLion())), "adan": errOf(NewAdan(DefaultAdan())),
		"adahessian": errOf(NewAdaHessian(DefaultAdaHessian())),
	} {
		if err != nil {
			t.Errorf("default %s config rejected: %v", name, err)
		}
	}
}

func errOf[T any](_ T, err error) error { return err }

func TestScheduleFactor(t *testing.T) {
	s := Schedule{WarmupSteps: 4, Decay: DecayCosine, DecaySteps: 10, FinalFactor: 0.1}
	for _, c := range []struct {
		k    int
		want float64
	}{{1, 0.25}, {4, 1}, {9, 0.1 + 0.9*0.5*(1+math.Cos(math.Pi*0.5))}, {14, 0.1}, {100, 0.1}} {
		if got := s.Factor(c.k); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("cosine Factor(%d) = %g, want %g", c.k, got, c.want)
		}
	}
	lin := Schedule{Decay: DecayLinear, DecaySteps: 4}
	for k, want := range map[int]float64{1: 0.75, 2: 0.5, 4: 0, 8: 0} {
		if got := lin.Factor(k); math.Abs(got-want) > 1e-12 {
			t.Errorf("linear Factor(%d) = %g, want %g", k, got, want)
		}
	}
	if got := (Schedule{}).Factor(7); got != 1 {
		t.Errorf("zero Schedule Factor = %g, want 1", got)
	}
}

// quadStore makes a store with x = start and returns the quadratic loss sum((x-1)^2 * [1, 10]).
func quadStore(t *testing.T, start []float64) (*model.Store, *model.Variable, func(scope *model.Scope, inputs, _ []*Node) *Node) {
	store := model.NewStore()
	_ = store.SetRNGStateFromSeed(1)
	x := newVar(t, store.RootScope(), "x", start, len(start))
	return store, x, func(scope *model.Scope, inputs, _ []*Node) *Node {
		v := scope.GetVariable("x").NodeValue(inputs[0].Graph())
		return ReduceAllSum(Mul(Square(AddScalar(v, -1)), Const(v.Graph(), []float64{1, 10})))
	}
}

// TestAdanRestart: after Restart, Adan continues exactly as a fresh Adan started from the
// current parameters (m, v, n, k zeroed; g_prev = g on the next step).
func TestAdanRestart(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		cfg := DefaultAdan()
		cfg.LR, cfg.WeightDecay = 0.05, 0.02
		opt := must(NewAdan(cfg))
		store, x, lossFn := quadStore(t, []float64{3, -2})
		exec := newStepExec(t, backend, store, opt, lossFn)
		runSteps(t, exec, 5)
		mid := floats(t, x)
		if err := opt.Restart(store.RootScope()); err != nil {
			t.Fatal(err)
		}
		runSteps(t, exec, 4)
		restarted := floats(t, x)

		fresh := must(NewAdan(cfg))
		store2, x2, lossFn2 := quadStore(t, mid)
		runSteps(t, newStepExec(t, backend, store2, fresh, lossFn2), 4)
		want := floats(t, x2)
		for i := range want {
			if !isClose(restarted[i], want[i], 1e-12, 1e-14) {
				t.Errorf("x[%d] after restart = %.15g, a fresh Adan from the same point gives %.15g", i, restarted[i], want[i])
			}
		}
		// Without the restart the trajectory is different: the test would notice a no-op Restart.
		store3, x3, lossFn3 := quadStore(t, []float64{3, -2})
		runSteps(t, newStepExec(t, backend, store3, must(NewAdan(cfg)), lossFn3), 9)
		if isClose(floats(t, x3)[0], want[0], 1e-9, 0) {
			t.Errorf("9 steps without restart equal 5+restart+4: the restart changed nothing")
		}
	})
}

// TestStateVariables: the state lives in store variables under "/"+ScopeName (so checkpoints
// carry it), the learning rate is a variable one can change, and Clear deletes the state.
func TestStateVariables(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		cfg := DefaultAdam()
		cfg.ScopeName = "my_adam"
		opt := must(NewAdam(cfg))
		store, x, lossFn := quadStore(t, []float64{3, -2})
		exec := newStepExec(t, backend, store, opt, lossFn)
		runSteps(t, exec, 3)
		want := map[string]bool{"/my_adam/step": false, "/my_adam/learning_rate": false, "/my_adam/x_m": false, "/my_adam/x_v": false}
		for v := range store.IterVariables() {
			if _, ok := want[v.Path()]; ok {
				want[v.Path()] = true
			}
		}
		for p, found := range want {
			if !found {
				t.Errorf("state variable %s not in the store", p)
			}
		}
		if got := store.GetVariable("/my_adam/step").MustValue().Value().(int64); got != 3 {
			t.Errorf("step counter = %d after 3 steps", got)
		}
		// A zero learning rate freezes the parameters.
		if err := store.GetVariable("/my_adam/learning_rate").SetValue(tensors.FromScalar(0.0)); err != nil {
			t.Fatal(err)
		}
		before := floats(t, x)
		runSteps(t, exec, 2)
		if after := floats(t, x); after[0] != before[0] || after[1] != before[1] {
			t.Errorf("learning_rate set to 0 but x moved from %v to %v", before, after)
		}
		if err := opt.Clear(store.RootScope()); err != nil {
			t.Fatal(err)
		}
		for v := range store.IterVariables() {
			if strings.HasPrefix(v.Path(), "/my_adam/") {
				t.Errorf("Clear left %s", v.Path())
			}
		}
	})
}

// TestWithGoMLXTrainer trains a linear regression with GoMLX's own train.Trainer, with
// gradient accumulation (which calls UpdateGraphWithGradients), for each optimizer.
func TestWithGoMLXTrainer(t *testing.T) {
	xs := fixedRand(21, 16*3, -1, 1)
	coef := []float64{1.5, -2, 0.5}
	ys := make([]float64, 16)
	for i := range ys {
		for j, c := range coef {
			ys[i] += c * xs[i*3+j]
		}
	}
	mkAdan := func() Optimizer { c := DefaultAdan(); c.LR, c.Schedule = 0.1, decay(500); return must(NewAdan(c)) }
	mkAdam := func() Optimizer { c := DefaultAdamW(); c.LR, c.WeightDecay = 0.05, 0; return must(NewAdam(c)) }
	mkLion := func() Optimizer {
		c := DefaultLion()
		c.LR, c.Schedule = 0.03, decay(500)
		return must(NewLion(c))
	}
	mkAH := func() Optimizer { c := DefaultAdaHessian(); c.LR = 0.3; return must(NewAdaHessian(c)) }
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		for name, mk := range map[string]func() Optimizer{"adan": mkAdan, "adamw": mkAdam, "lion": mkLion, "adahessian": mkAH} {
			t.Run(name, func(t *testing.T) {
				store := model.NewStore()
				_ = store.SetRNGStateFromSeed(2)
				w := newVar(t, store.RootScope(), "w", []float64{0, 0, 0}, 3)
				modelFn := func(scope *model.Scope, x *Node) *Node {
					return Einsum("bi,i->b", x, scope.GetVariable("w").NodeValue(x.Graph()))
				}
				trainer := gomlxtrain.NewTrainer(backend, store, modelFn, loss.MeanSquaredError, mk(), nil, nil)
				if name != "adahessian" { // AdaHessian differentiates the gradients: not accumulated ones.
					if err := trainer.AccumulateGradients(2); err != nil {
						t.Fatal(err)
					}
				}
				batch := gomlxtrain.Batch{
					Inputs: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(xs, 16, 3)},
					Labels: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(ys, 16)},
				}
				for range 1000 {
					if _, err := trainer.TrainStep(batch); err != nil {
						t.Fatal(err)
					}
				}
				got := floats(t, w)
				for i := range coef {
					if math.Abs(got[i]-coef[i]) > 3e-2 {
						t.Errorf("w = %v, want %v", got, coef)
						break
					}
				}
			})
		}
	})
}
