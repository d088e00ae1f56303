package optimtest_test

import (
	"math"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.

	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/optim/optimtest"
)

func problems() []optimtest.Problem {
	return append(optimtest.Standard(), optimtest.Parabola())
}

// TestGradMatchesAutodiff checks each problem's host gradient against GoMLX's autodiff of
// its graph loss, at the start and at a shifted point.
func TestGradMatchesAutodiff(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		for _, p := range problems() {
			for _, shift := range []float64{0, 0.3} {
				x := make([]float64, len(p.Start))
				for i := range x {
					x[i] = p.Start[i] + shift*float64(i%3-1)
				}
				got := MustExecOnce(backend, func(v *Node) *Node {
					return Gradient(p.Loss(v), v)[0]
				}, x).Value().([]float64)
				want := p.Grad(x)
				for i := range want {
					if math.Abs(got[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
						t.Fatalf("%s at %v: d/dx[%d] autodiff %.15g, Grad %.15g", p.Name, x, i, got[i], want[i])
					}
				}
			}
		}
	})
}

// TestRunMatchesReference runs heavy-ball SGD and Adam on every problem and compares
// the trajectories with float64 transcriptions of their rules.
func TestRunMatchesReference(t *testing.T) {
	const steps = 30
	sgdCfg := optim.DefaultSGD()
	sgdCfg.LR, sgdCfg.Momentum = 1e-3, 0.9
	adamCfg := optim.DefaultAdam()
	adamCfg.LR = 0.01
	sgdRule := func() func(k int, x, g []float64) {
		var buf []float64
		return func(_ int, x, g []float64) {
			if buf == nil {
				buf = make([]float64, len(x))
			}
			for i := range x {
				buf[i] = 0.9*buf[i] + g[i]
				x[i] -= 1e-3 * buf[i]
			}
		}
	}
	adamRule := func() func(k int, x, g []float64) {
		var m, v []float64
		return func(k int, x, g []float64) {
			if m == nil {
				m, v = make([]float64, len(x)), make([]float64, len(x))
			}
			bc1, bc2 := 1-math.Pow(0.9, float64(k)), 1-math.Pow(0.999, float64(k))
			for i := range x {
				m[i] = 0.9*m[i] + 0.1*g[i]
				v[i] = 0.999*v[i] + 0.001*g[i]*g[i]
				x[i] -= 0.01 / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + 1e-8)
			}
		}
	}
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		for _, p := range problems() {
			for _, c := range []struct {
				name string
				opt  func() (optim.Optimizer, error)
				rule func() func(k int, x, g []float64)
			}{
				{"sgd", func() (optim.Optimizer, error) { return optim.NewSGD(sgdCfg) }, sgdRule},
				{"adam", func() (optim.Optimizer, error) { return optim.NewAdam(adamCfg) }, adamRule},
			} {
				t.Run(p.Name+"/"+c.name, func(t *testing.T) {
					opt, err := c.opt()
					if err != nil {
						t.Fatal(err)
					}
					traj, err := optimtest.Run(backend, opt, p, optimtest.Config{Steps: steps})
					if err != nil {
						t.Fatal(err)
					}
					want := optimtest.Reference(p, steps, c.rule())
					if err := optimtest.Compare(traj.X, want, 1e-9, 1e-12); err != nil {
						t.Error(err)
					}
					if traj.Loss[steps-1] >= traj.Loss[0] {
						t.Errorf("loss went from %g to %g", traj.Loss[0], traj.Loss[steps-1])
					}
				})
			}
		}
	})
}

// TestCompareDetects checks that Compare reports a one-ulp-scale difference beyond the
// tolerance, and a length mismatch.
func TestCompareDetects(t *testing.T) {
	a := [][]float64{{1, 2}, {3, 4}}
	if err := optimtest.Compare(a, [][]float64{{1, 2}, {3, 4}}, 0, 0); err != nil {
		t.Errorf("equal trajectories: %v", err)
	}
	err := optimtest.Compare(a, [][]float64{{1, 2}, {3, 4 + 1e-9}}, 1e-12, 0)
	if err == nil || !strings.Contains(err.Error(), "step 2, x[1]") {
		t.Errorf("got %v, want a difference at step 2, x[1]", err)
	}
	if err := optimtest.Compare(a, a[:1], 0, 0); err == nil {
		t.Error("length mismatch not reported")
	}
	if err := optimtest.Compare([][]float64{{math.NaN()}}, [][]float64{{1}}, 1, 1); err == nil {
		t.Error("NaN not reported")
	}
}

// TestRunFloat32AndErrors checks the float32 path and argument errors.
func TestRunFloat32AndErrors(t *testing.T) {
	backend := mlxtest.Backends(t)[0].Backend
	opt, err := optim.NewAdam(optim.DefaultAdam())
	if err != nil {
		t.Fatal(err)
	}
	traj, err := optimtest.Run(backend, opt, optimtest.Rosenbrock(), optimtest.Config{Steps: 3, DType: dtypes.Float32})
	if err != nil {
		t.Fatal(err)
	}
	if x := traj.Final(); float64(float32(x[0])) != x[0] {
		t.Errorf("x = %v is not float32 values", x)
	}
	if _, err := optimtest.Run(backend, 42, optimtest.Rosenbrock(), optimtest.Config{Steps: 1}); err == nil {
		t.Error("a non-optimizer was accepted")
	}
	if _, err := optimtest.Run(backend, opt, optimtest.Rosenbrock(), optimtest.Config{}); err == nil {
		t.Error("Steps=0 was accepted")
	}
	if _, err := optimtest.Converges(backend, opt, optimtest.Rosenbrock(), 3, optimtest.DefaultTolerance); err == nil {
		t.Error("3 Adam steps from (-1.2, 1) reported as converged")
	}
}
