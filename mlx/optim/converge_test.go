package optim_test

import (
	"testing"

	"github.com/gomlx/compute"

	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/optim/optimtest"
)

// convergeCase is one optimizer, tuned per problem as optax's tests do.
type convergeCase struct {
	name  string
	steps int
	make  func() any // an optim.Optimizer or a train.Stepper (SAM)
}

// must panics on a construction error (in tests, for settings known to be valid).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// decay is a cosine decay to 1% over n steps.
func decay(n int) optim.Schedule {
	return optim.Schedule{Decay: optim.DecayCosine, DecaySteps: n, FinalFactor: 0.01}
}

func convergeCases(rosen bool) []convergeCase {
	// On the parabola every optimizer uses a cosine decay (sign-based and momentum methods
	// end within lr of the optimum otherwise); on Rosenbrock a constant rate walks the valley
	// faster, except for Lion, whose sign steps need the decay to settle.
	sched := func(n int) optim.Schedule {
		if rosen {
			return optim.Schedule{}
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
		{"sgd_nesterov", n(200, 2000), func() any {
			c := optim.DefaultSGD()
			c.LR, c.Momentum, c.Nesterov = pick(0.05, 1e-3), 0.9, true
			return must(optim.NewSGD(c))
		}},
		{"adam", n(1000, 2000), func() any {
			c := optim.DefaultAdam()
			c.LR, c.Schedule = pick(0.1, 0.05), sched(1000)
			return must(optim.NewAdam(c))
		}},
		{"adamw", n(1000, 2000), func() any {
			c := optim.DefaultAdamW()
			c.LR, c.WeightDecay, c.Schedule = pick(0.1, 0.05), 1e-4, sched(1000)
			return must(optim.NewAdam(c))
		}},
		{"amsgrad", n(1000, 2000), func() any {
			c := optim.DefaultAMSGrad()
			c.LR, c.Schedule = 0.1, sched(1000)
			return must(optim.NewAdam(c))
		}},
		{"adabelief", n(1000, 2000), func() any {
			c := optim.DefaultAdaBelief()
			c.LR, c.Schedule = pick(0.1, 0.05), sched(1000)
			return must(optim.NewAdaBelief(c))
		}},
		{"lion", n(700, 2000), func() any {
			c := optim.DefaultLion()
			c.LR, c.Schedule = pick(0.03, 0.01), decay(n(700, 2000))
			return must(optim.NewLion(c))
		}},
		{"adan", n(1000, 2000), func() any {
			c := optim.DefaultAdan()
			c.LR, c.Schedule = pick(0.1, 0.02), sched(1000)
			return must(optim.NewAdan(c))
		}},
		{"adahessian", n(200, 3000), func() any {
			c := optim.DefaultAdaHessian()
			c.LR, c.Schedule = pick(0.5, 2.0), sched(200)
			return must(optim.NewAdaHessian(c))
		}},
		{"sam_adam", n(1000, 2000), func() any {
			c := optim.DefaultAdam()
			c.LR, c.Schedule = pick(0.1, 0.05), sched(1000)
			return must(optim.NewSAM(must(optim.NewAdam(c)), optim.SAMConfig{Rho: pick(0.01, 1e-3), Eps: 1e-12}))
		}},
	}
}

// TestConvergence runs every optimizer on a parabola and on Rosenbrock (a=1, b=100), as
// optax does, and requires the end point within 3e-2 of the optimum (optimtest.Converges).
func TestConvergence(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		for _, p := range []optimtest.Problem{optimtest.Parabola(), optimtest.Rosenbrock()} {
			for _, c := range convergeCases(p.Name == "rosenbrock") {
				t.Run(p.Name+"/"+c.name, func(t *testing.T) {
					dist, err := optimtest.Converges(backend, c.make(), p, c.steps, optimtest.DefaultTolerance)
					t.Logf("after %d steps: %.2g from the optimum", c.steps, dist)
					if err != nil {
						t.Error(err)
					}
				})
			}
		}
	})
}
