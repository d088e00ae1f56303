package optim

import (
	"math"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/mlxtest"
)

// convergeCase is one optimizer, tuned per problem as optax's tests do.
type convergeCase struct {
	name  string
	steps int
	make  func() stepper
}

// parabola is sum((x - target)^2), minimum at target.
var parabolaTarget = []float64{1, -0.5}

func parabola(scope *model.Scope, inputs, _ []*Node) *Node {
	x := scope.GetVariable("x").NodeValue(inputs[0].Graph())
	return ReduceAllSum(Square(Sub(x, Const(x.Graph(), parabolaTarget))))
}

// rosenbrock is (a-x)^2 + b(y-x^2)^2 with a=1, b=100, minimum at (1, 1).
func rosenbrock(scope *model.Scope, inputs, _ []*Node) *Node {
	v := scope.GetVariable("x").NodeValue(inputs[0].Graph())
	x, y := Slice(v, AxisRange(0, 1)), Slice(v, AxisRange(1, 2))
	return ReduceAllSum(Add(Square(OneMinus(x)), MulScalar(Square(Sub(y, Square(x))), 100)))
}

// decay is a cosine decay to 1% over n steps.
func decay(n int) Schedule { return Schedule{Decay: DecayCosine, DecaySteps: n, FinalFactor: 0.01} }

func convergeCases(rosen bool) []convergeCase {
	// On the parabola every optimizer uses a cosine decay (sign-based and momentum methods
	// end within lr of the optimum otherwise); on Rosenbrock a constant rate walks the valley
	// faster, except for Lion, whose sign steps need the decay to settle.
	sched := func(n int) Schedule {
		if rosen {
			return Schedule{}
		}
		return decay(n)
	}
	pick := func(p, r float64) float64 {
		if rosen {
			return r
		}
		return p
	}
	n := func(p, r int) int {
		if rosen {
			return r
		}
		return p
	}
	return []convergeCase{
		{"sgd_nesterov", n(200, 2000), func() stepper {
			c := DefaultSGD()
			c.LR, c.Momentum, c.Nesterov = pick(0.05, 1e-3), 0.9, true
			return must(NewSGD(c))
		}},
		{"adam", n(1000, 2000), func() stepper {
			c := DefaultAdam()
			c.LR, c.Schedule = pick(0.1, 0.05), sched(1000)
			return must(NewAdam(c))
		}},
		{"adamw", n(1000, 2000), func() stepper {
			c := DefaultAdamW()
			c.LR, c.WeightDecay, c.Schedule = pick(0.1, 0.05), 1e-4, sched(1000)
			return must(NewAdam(c))
		}},
		{"amsgrad", n(1000, 2000), func() stepper {
			c := DefaultAMSGrad()
			c.LR, c.Schedule = 0.1, sched(1000)
			return must(NewAdam(c))
		}},
		{"adabelief", n(1000, 2000), func() stepper {
			c := DefaultAdaBelief()
			c.LR, c.Schedule = pick(0.1, 0.05), sched(1000)
			return must(NewAdaBelief(c))
		}},
		{"lion", n(700, 2000), func() stepper {
			c := DefaultLion()
			c.LR, c.Schedule = pick(0.03, 0.01), decay(n(700, 2000))
			return must(NewLion(c))
		}},
		{"adan", n(1000, 2000), func() stepper {
			c := DefaultAdan()
			c.LR, c.Schedule = pick(0.1, 0.02), sched(1000)
			return must(NewAdan(c))
		}},
		{"adahessian", n(200, 3000), func() stepper {
			c := DefaultAdaHessian()
			c.LR, c.Schedule = pick(0.5, 2.0), sched(200)
			return must(NewAdaHessian(c))
		}},
		{"sam_adam", n(1000, 2000), func() stepper {
			c := DefaultAdam()
			c.LR, c.Schedule = pick(0.1, 0.05), sched(1000)
			return must(NewSAM(must(NewAdam(c)), SAMConfig{Rho: pick(0.01, 1e-3), Eps: 1e-12}))
		}},
	}
}

// TestConvergence runs every optimizer on a parabola and on Rosenbrock (a=1, b=100), as
// optax does, and requires the end point within 3e-2 of the optimum.
func TestConvergence(t *testing.T) {
	problems := []struct {
		name   string
		loss   func(scope *model.Scope, inputs, _ []*Node) *Node
		start  []float64
		target []float64
	}{
		{"parabola", parabola, []float64{3, 2}, parabolaTarget},
		{"rosenbrock", rosenbrock, []float64{-1.2, 1}, []float64{1, 1}},
	}
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		for _, p := range problems {
			for _, c := range convergeCases(p.name == "rosenbrock") {
				t.Run(p.name+"/"+c.name, func(t *testing.T) {
					store := model.NewStore()
					_ = store.SetRNGStateFromSeed(1)
					x := newVar(t, store.RootScope(), "x", p.start, 2)
					exec := newStepExec(t, backend, store, c.make(), p.loss)
					runSteps(t, exec, c.steps)
					got := floats(t, x)
					dist := math.Hypot(got[0]-p.target[0], got[1]-p.target[1])
					t.Logf("after %d steps: %.2g from the optimum", c.steps, dist)
					if dist > 3e-2 || math.IsNaN(dist) {
						t.Errorf("after %d steps x = %v, %.3g from the optimum %v (want <= 3e-2)", c.steps, got, dist, p.target)
					}
				})
			}
		}
	})
}
