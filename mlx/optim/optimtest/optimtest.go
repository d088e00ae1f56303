// Package optimtest checks optimizers on standard problems, from a notebook or a test: it
// runs an optimizer (an optim.Optimizer or a train.Stepper such as optim.SAM) on Rosenbrock,
// an ill-conditioned quadratic, logistic regression or a small MLP, records the
// trajectory, compares it with a reference given as numbers (for instance one computed by
// [Reference], a float64 transcription of the update rule in plain Go), and checks
// convergence as mlx/optim's own tests do (optax's criterion: within 3e-2 of the optimum).
//
// Every problem has one parameter vector, the variable "x" of the store's root scope, so
// a trajectory is a list of flat vectors:
//
//	p := optimtest.Rosenbrock()
//	traj, err := optimtest.Run(backend, opt, p, optimtest.Config{Steps: 100})
//	want := optimtest.Reference(p, 100, func(k int, x, g []float64) { ... })
//	err = optimtest.Compare(traj.X, want, 1e-9, 1e-12)
package optimtest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
)

// Problem is a loss of one flat parameter vector x.
type Problem struct {
	// Name is a short label.
	Name string
	// Start is the initial x.
	Start []float64
	// Optimum is the minimizer, or nil where it has no closed form.
	Optimum []float64
	// Loss builds the scalar loss of x (a vector of any float dtype) in x's dtype.
	Loss func(x *Node) *Node
	// Grad is the gradient of Loss in float64 on the host, for [Reference].
	Grad func(x []float64) []float64
}

// Parabola is sum((x - (1, -0.5))^2) from (3, 2): optax's parabola.
func Parabola() Problem {
	target := []float64{1, -0.5}
	return Problem{
		Name: "parabola", Start: []float64{3, 2}, Optimum: target,
		Loss: func(x *Node) *Node {
			return ReduceAllSum(Square(Sub(x, ConvertDType(Const(x.Graph(), target), x.DType()))))
		},
		Grad: func(x []float64) []float64 { return []float64{2 * (x[0] - target[0]), 2 * (x[1] - target[1])} },
	}
}

// Rosenbrock is (1-x)^2 + 100(y-x^2)^2 from (-1.2, 1), minimum at (1, 1).
func Rosenbrock() Problem {
	return Problem{
		Name: "rosenbrock", Start: []float64{-1.2, 1}, Optimum: []float64{1, 1},
		Loss: func(v *Node) *Node {
			x, y := Slice(v, AxisRange(0, 1)), Slice(v, AxisRange(1, 2))
			return ReduceAllSum(Add(Square(OneMinus(x)), MulScalar(Square(Sub(y, Square(x))), 100)))
		},
		Grad: func(v []float64) []float64 {
			x, y := v[0], v[1]
			return []float64{-2*(1-x) - 400*x*(y-x*x), 200 * (y - x*x)}
		},
	}
}

// IllConditioned is 0.5 * sum_i a_i (x_i - 1)^2 with n >= 2 curvatures a_i spaced
// geometrically from 1 to cond, from x = 0: the minimum is x = 1, the condition number cond.
func IllConditioned(n int, cond float64) Problem {
	if n < 2 || !(cond >= 1) || math.IsInf(cond, 0) {
		panic(fmt.Sprintf("optimtest.IllConditioned: n=%d must be >= 2 and cond=%g finite and >= 1", n, cond))
	}
	a := make([]float64, n)
	for i := range a {
		a[i] = math.Pow(cond, float64(i)/float64(n-1))
	}
	ones := make([]float64, n)
	for i := range ones {
		ones[i] = 1
	}
	return Problem{
		Name: fmt.Sprintf("quadratic_cond%g", cond), Start: make([]float64, n), Optimum: ones,
		Loss: func(x *Node) *Node {
			g, dt := x.Graph(), x.DType()
			d := Sub(x, ConvertDType(Const(g, ones), dt))
			return MulScalar(ReduceAllSum(Mul(ConvertDType(Const(g, a), dt), Square(d))), 0.5)
		},
		Grad: func(x []float64) []float64 {
			out := make([]float64, n)
			for i := range x {
				out[i] = a[i] * (x[i] - 1)
			}
			return out
		},
	}
}

// LogisticRegression is L2-regularized (1e-2) logistic regression on 64 seeded points with 3
// features and a bias (x = weights then bias, from 0), labels from a noisy linear rule.
func LogisticRegression() Problem {
	const n, d, l2 = 64, 3, 1e-2
	r := rand.New(rand.NewPCG(2024, 11))
	feats := make([]float64, n*d)
	labels := make([]float64, n) // +1 or -1
	for i := range n {
		s := 0.0
		for j := range d {
			feats[i*d+j] = r.NormFloat64()
			s += []float64{1.5, -2, 0.5}[j] * feats[i*d+j]
		}
		labels[i] = 1
		if s+0.3+0.5*r.NormFloat64() < 0 {
			labels[i] = -1
		}
	}
	return Problem{
		Name: "logistic", Start: make([]float64, d+1),
		Loss: func(x *Node) *Node {
			g, dt := x.Graph(), x.DType()
			X := ConvertDType(Reshape(Const(g, feats), n, d), dt)
			y := ConvertDType(Const(g, labels), dt)
			w, b := Slice(x, AxisRange(0, d)), Slice(x, AxisRange(d, d+1))
			z := Add(Dot(X, w).Product(), b)
			margin := Mul(y, z)
			data := ReduceAllMean(Log1P(Exp(Neg(margin))))
			return Add(data, MulScalar(ReduceAllSum(Square(w)), l2/2))
		},
		Grad: func(x []float64) []float64 {
			out := make([]float64, d+1)
			for i := range n {
				z := x[d]
				for j := range d {
					z += feats[i*d+j] * x[j]
				}
				c := -labels[i] / (1 + math.Exp(labels[i]*z)) / n
				for j := range d {
					out[j] += c * feats[i*d+j]
				}
				out[d] += c
			}
			for j := range d {
				out[j] += l2 * x[j]
			}
			return out
		},
	}
}

// MLP is a 1-8-1 tanh network fit to sin(3t) on 16 points of [-1, 1] (mean squared error),
// its 25 parameters packed as [w1 (8), b1 (8), w2 (8), b2 (1)], from seeded values.
func MLP() Problem {
	const n, h = 16, 8
	ts, ys := make([]float64, n), make([]float64, n)
	for i := range n {
		ts[i] = -1 + 2*float64(i)/float64(n-1)
		ys[i] = math.Sin(3 * ts[i])
	}
	r := rand.New(rand.NewPCG(7, 3))
	start := make([]float64, 3*h+1)
	for i := range start {
		start[i] = 0.5 * r.NormFloat64()
	}
	unpack := func(x []float64) (w1, b1, w2 []float64, b2 float64) {
		return x[:h], x[h : 2*h], x[2*h : 3*h], x[3*h]
	}
	return Problem{
		Name: "mlp", Start: start,
		Loss: func(x *Node) *Node {
			g, dt := x.Graph(), x.DType()
			t := ConvertDType(Reshape(Const(g, ts), n, 1), dt)
			w1 := Reshape(Slice(x, AxisRange(0, h)), 1, h)
			b1 := Reshape(Slice(x, AxisRange(h, 2*h)), 1, h)
			w2 := Slice(x, AxisRange(2*h, 3*h))
			b2 := Slice(x, AxisRange(3*h, 3*h+1))
			hid := Tanh(Add(Mul(t, w1), b1))       // [n, h]
			out := Add(Dot(hid, w2).Product(), b2) // [n]
			return ReduceAllMean(Square(Sub(out, ConvertDType(Const(g, ys), dt))))
		},
		Grad: func(x []float64) []float64 {
			w1, b1, w2, b2 := unpack(x)
			out := make([]float64, len(x))
			for i := range n {
				hid := make([]float64, h)
				pred := b2
				for j := range h {
					hid[j] = math.Tanh(ts[i]*w1[j] + b1[j])
					pred += hid[j] * w2[j]
				}
				e := 2 * (pred - ys[i]) / n
				for j := range h {
					dz := e * w2[j] * (1 - hid[j]*hid[j])
					out[j] += dz * ts[i]
					out[h+j] += dz
					out[2*h+j] += e * hid[j]
				}
				out[3*h] += e
			}
			return out
		},
	}
}

// Standard returns the problems of a routine check: Rosenbrock, an ill-conditioned
// quadratic (n=10, condition number 100), logistic regression and the small MLP.
func Standard() []Problem {
	return []Problem{Rosenbrock(), IllConditioned(10, 100), LogisticRegression(), MLP()}
}

// Config sets how [Run] runs.
type Config struct {
	// Steps is the number of optimizer steps, >= 1.
	Steps int
	// DType is the dtype of x and of the loss; the zero value means float64.
	DType dtypes.DType
	// Seed seeds the store's random number generator (random probes, e.g. AdaHessian's).
	Seed int64
}

// Trajectory is what [Run] records.
type Trajectory struct {
	// X[k] is x after step k+1.
	X [][]float64
	// Loss[k] is the loss at step k+1, evaluated before its update.
	Loss []float64
}

// Final returns the last point (Start if the trajectory is empty).
func (t *Trajectory) Final() []float64 { return t.X[len(t.X)-1] }

// History returns the losses as a training history (one record per step) for package
// plots: name labels the run, optimizer picks its colour.
func (t *Trajectory) History(name, optimizer string) *history.History {
	h := history.New(name, optimizer, 0)
	for k, loss := range t.Loss {
		h.Add(history.Record{Step: k + 1, Evals: int64(k + 1), Loss: loss})
	}
	return h
}

// Run runs opt (an optim.Optimizer or a train.Stepper) on p for cfg.Steps steps on backend
// and returns the trajectory. Each call uses a fresh model.Store, so the optimizer state
// starts empty.
func Run(backend compute.Backend, opt any, p Problem, cfg Config) (traj *Trajectory, err error) {
	defer func() {
		// Graph building panics on misuse (GoMLX's convention): report it as an error.
		if r := recover(); r != nil {
			traj, err = nil, fmt.Errorf("optimtest.Run: %s on %s: %v", name(opt), p.Name, r)
		}
	}()
	if backend == nil {
		return nil, errors.New("optimtest.Run: backend is nil")
	}
	if cfg.Steps < 1 {
		return nil, fmt.Errorf("optimtest.Run: Steps=%d must be >= 1", cfg.Steps)
	}
	switch opt.(type) {
	case train.Stepper, optim.Optimizer:
	default:
		return nil, fmt.Errorf("optimtest.Run: %T is neither an optim.Optimizer nor a train.Stepper", opt)
	}
	dtype := cfg.DType
	if dtype == dtypes.InvalidDType {
		dtype = dtypes.Float64
	}
	if dtype != dtypes.Float64 && dtype != dtypes.Float32 {
		return nil, fmt.Errorf("optimtest.Run: DType=%s: only Float64 and Float32 are supported", dtype)
	}
	store := model.NewStore()
	if err := store.SetRNGStateFromSeed(cfg.Seed); err != nil {
		return nil, fmt.Errorf("optimtest.Run: %w", err)
	}
	x, err := store.RootScope().CreateVariable("x", startTensor(p.Start, dtype))
	if err != nil {
		return nil, fmt.Errorf("optimtest.Run: creating x: %w", err)
	}
	lossFn := func(scope *model.Scope, inputs, _ []*Node) *Node {
		return p.Loss(scope.GetVariable("x").NodeValue(inputs[0].Graph()))
	}
	exec, err := model.NewExec(backend, store, func(scope *model.Scope, g *Graph) *Node {
		dummy := []*Node{ScalarZero(g, dtypes.Float64)}
		if s, ok := opt.(train.Stepper); ok {
			return s.BuildStep(scope, lossFn, dummy, nil)
		}
		loss := lossFn(scope, dummy, nil)
		opt.(optim.Optimizer).UpdateGraph(scope, g, loss)
		return loss
	})
	if err != nil {
		return nil, fmt.Errorf("optimtest.Run: %w", err)
	}
	traj = &Trajectory{}
	for k := range cfg.Steps {
		out, err := exec.Exec()
		if err != nil {
			return nil, fmt.Errorf("optimtest.Run: %s on %s, step %d: %w", name(opt), p.Name, k+1, err)
		}
		loss, err := toFloats(out[0])
		if err != nil {
			return nil, fmt.Errorf("optimtest.Run: loss: %w", err)
		}
		val, err := x.Value()
		if err != nil {
			return nil, fmt.Errorf("optimtest.Run: reading x: %w", err)
		}
		xs, err := toFloats(val)
		if err != nil {
			return nil, fmt.Errorf("optimtest.Run: x: %w", err)
		}
		traj.Loss = append(traj.Loss, loss[0])
		traj.X = append(traj.X, xs)
	}
	return traj, nil
}

func name(opt any) string {
	if n, ok := opt.(interface{ Name() string }); ok {
		return n.Name()
	}
	return fmt.Sprintf("%T", opt)
}

func startTensor(start []float64, dtype dtypes.DType) *tensors.Tensor {
	if dtype == dtypes.Float64 {
		return tensors.FromFlatDataAndDimensions(append([]float64(nil), start...), len(start))
	}
	f32 := make([]float32, len(start))
	for i, v := range start {
		f32[i] = float32(v)
	}
	return tensors.FromFlatDataAndDimensions(f32, len(start))
}

func toFloats(t *tensors.Tensor) ([]float64, error) {
	switch v := t.Value().(type) {
	case float64:
		return []float64{v}, nil
	case float32:
		return []float64{float64(v)}, nil
	case []float64:
		return append([]float64(nil), v...), nil
	case []float32:
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out, nil
	}
	return nil, fmt.Errorf("tensor of shape %s is not a float scalar or vector", t.Shape())
}

// Reference runs rule, a float64 transcription of an update rule, for steps steps on p
// from p.Start, on the host: rule(k, x, g) gets the step k = 1, 2, ..., the current x and
// p.Grad(x), and updates x in place (keeping its own state in closure variables). It
// returns x after each step, comparable with [Run]'s Trajectory.X by [Compare].
func Reference(p Problem, steps int, rule func(k int, x, g []float64)) [][]float64 {
	x := append([]float64(nil), p.Start...)
	out := make([][]float64, 0, steps)
	for k := 1; k <= steps; k++ {
		rule(k, x, p.Grad(x))
		out = append(out, append([]float64(nil), x...))
	}
	return out
}

// Compare returns nil if got and want (trajectories: one vector per step) have the same
// shape and agree elementwise to |got-want| <= atol + rtol*|want|, and otherwise an error
// naming the first step and element that differ.
func Compare(got, want [][]float64, rtol, atol float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("optimtest.Compare: %d steps, the reference has %d", len(got), len(want))
	}
	for k := range want {
		if len(got[k]) != len(want[k]) {
			return fmt.Errorf("optimtest.Compare: step %d has %d elements, the reference %d", k+1, len(got[k]), len(want[k]))
		}
		for i, w := range want[k] {
			g := got[k][i]
			if !(math.Abs(g-w) <= atol+rtol*math.Abs(w)) {
				return fmt.Errorf("optimtest.Compare: step %d, x[%d] = %.15g, the reference says %.15g (diff %.3g, allowed %.3g)",
					k+1, i, g, w, g-w, atol+rtol*math.Abs(w))
			}
		}
	}
	return nil
}

// DefaultTolerance is the distance to the optimum that [Converges] accepts by default:
// optax's criterion for its parabola and Rosenbrock tests.
const DefaultTolerance = 3e-2

// Converges runs opt on p (which must have an Optimum) for steps steps and returns the
// Euclidean distance of the end point to the optimum; the error is non-nil if the run
// fails or the distance is above tol (or NaN).
func Converges(backend compute.Backend, opt any, p Problem, steps int, tol float64) (float64, error) {
	if p.Optimum == nil {
		return math.NaN(), fmt.Errorf("optimtest.Converges: problem %s has no known optimum", p.Name)
	}
	traj, err := Run(backend, opt, p, Config{Steps: steps, Seed: 1})
	if err != nil {
		return math.NaN(), err
	}
	got := traj.Final()
	sum := 0.0
	for i := range got {
		d := got[i] - p.Optimum[i]
		sum += d * d
	}
	dist := math.Sqrt(sum)
	if !(dist <= tol) {
		return dist, fmt.Errorf("optimtest.Converges: %s on %s: after %d steps x = %v, %.3g from the optimum %v (want <= %g)",
			name(opt), p.Name, steps, got, dist, p.Optimum, tol)
	}
	return dist, nil
}

// Backend is a backend with a short name.
type Backend struct {
	Name    string
	Backend compute.Backend
}

var backends = sync.OnceValues(func() ([]Backend, error) {
	goBackend, err := mlx.Choice{Kind: mlx.KindGo, Config: "go"}.New()
	if err != nil {
		return nil, fmt.Errorf("optimtest.Backends: %w", err)
	}
	list := []Backend{{Name: "go", Backend: goBackend}}
	if choice, err := mlx.ChooseAuto(); err == nil && choice.Kind == mlx.KindXLACPU {
		xla, err := choice.New()
		if err != nil {
			return nil, fmt.Errorf("optimtest.Backends: %w", err)
		}
		list = append(list, Backend{Name: "xla_cpu", Backend: xla})
	}
	return list, nil
})

// Backends returns GoMLX's pure-Go backend and, where its plugin is installed, XLA CPU (the
// list mlx/mlxtest tests on), created once per process.
func Backends() ([]Backend, error) { return backends() }
