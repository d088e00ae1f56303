package adahessian

import (
	"errors"
	"fmt"
	"math"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
)

// Param describes one trainable variable of a model, in the order GoMLX (and
// mlx/optim) lists a graph's trainable variables; a flat parameter vector is the
// concatenation of every variable's values, row-major.
type Param struct {
	Name string `json:"name"`
	Dims []int  `json:"dims"`
}

// size is the number of values of the variable.
func (p Param) size() int {
	n := 1
	for _, d := range p.Dims {
		n *= d
	}
	return n
}

// Curvature measures the Hessian of a model's loss on one fixed batch, at the current
// values of the model's variables in a Store: exact Hessian-vector products, the exact
// diagonal (one product per parameter), and mlx/optim's Hutchinson estimates.
type Curvature struct {
	backend        compute.Backend
	store          *model.Store
	lossFn         train.LossFn
	inputs, labels []*tensors.Tensor
	params         []Param
	n              int
	hvp, hutch     *model.Exec
}

// NewCurvature prepares the measurements of lossFn on the batch (inputs, labels) for the
// model whose variables live in store (they must exist: train or evaluate it first).
// Call Finalize when done.
func NewCurvature(backend compute.Backend, store *model.Store, lossFn train.LossFn, inputs, labels []*tensors.Tensor) (*Curvature, error) {
	switch {
	case backend == nil || store == nil || lossFn == nil:
		return nil, errors.New("adahessian.NewCurvature: backend, store and lossFn must not be nil")
	case len(inputs) == 0:
		return nil, errors.New("adahessian.NewCurvature: no inputs")
	}
	c := &Curvature{backend: backend, store: store, lossFn: lossFn, inputs: inputs, labels: labels}
	for v := range store.IterVariables() {
		if v.Trainable {
			c.n += v.Shape().Size()
		}
	}
	if c.n == 0 {
		return nil, errors.New("adahessian.NewCurvature: the store has no trainable variables (create the model first)")
	}
	var err error
	c.hvp, err = model.NewExec(backend, store, func(scope *model.Scope, in []*Node) *Node {
		return c.hvpGraph(scope, in)
	})
	if err != nil {
		return nil, fmt.Errorf("adahessian.NewCurvature: %w", err)
	}
	c.hutch, err = model.NewExec(backend, store, func(scope *model.Scope, in []*Node) *Node {
		return c.hutchinsonGraph(scope, in)
	})
	if err != nil {
		c.hvp.Finalize()
		return nil, fmt.Errorf("adahessian.NewCurvature: %w", err)
	}
	// Compile once now, so that the parameter list is known.
	if _, err := c.HVP(make([]float64, c.n)); err != nil {
		c.Finalize()
		return nil, err
	}
	return c, nil
}

// Finalize releases the compiled graphs.
func (c *Curvature) Finalize() {
	c.hvp.Finalize()
	c.hutch.Finalize()
}

// Params returns the model's trainable variables, in the order of the flat vectors.
func (c *Curvature) Params() []Param { return c.params }

// NumParams is the length of the flat parameter vectors.
func (c *Curvature) NumParams() int { return c.n }

// lossAndParams builds the loss on the batch and returns the trainable variables' values,
// in GoMLX's order (the order of scope.BuildTrainableVariablesGradientsGraph and mlx/optim).
func (c *Curvature) lossAndParams(scope *model.Scope, in []*Node) (*Node, []*Node) {
	nIn := len(c.inputs)
	loss := c.lossFn(scope.ResetVisited(), in[:nIn], in[nIn:nIn+len(c.labels)])
	g := loss.Graph()
	var nodes []*Node
	var params []Param
	total := 0
	for v := range scope.IterVariables() {
		if v.Trainable && v.InUseByGraph(g) {
			nodes = append(nodes, v.NodeValue(g))
			params = append(params, Param{Name: v.String(), Dims: v.Shape().Dimensions})
			total += v.Shape().Size()
		}
	}
	if total != c.n {
		exceptions.Panicf("adahessian: the loss uses %d trainable parameters, the store holds %d", total, c.n)
	}
	c.params = params
	return loss, nodes
}

// flatConcat flattens and concatenates nodes into one vector.
func flatConcat(nodes []*Node) *Node {
	flat := make([]*Node, len(nodes))
	for i, n := range nodes {
		flat[i] = Reshape(n, -1)
	}
	if len(flat) == 1 {
		return flat[0]
	}
	return Concatenate(flat, 0)
}

// hvpGraph returns H v for the flat vector v (the last input): the gradient of g . v.
func (c *Curvature) hvpGraph(scope *model.Scope, in []*Node) *Node {
	loss, nodes := c.lossAndParams(scope, in[:len(in)-1])
	v := in[len(in)-1]
	grads := Gradient(loss, nodes...)
	var gv *Node
	off := 0
	for _, grad := range grads {
		n := grad.Shape().Size()
		vi := Reshape(Slice(v, AxisRange(off, off+n)), grad.Shape().Dimensions...)
		off += n
		term := ReduceAllSum(Mul(grad, ConvertDType(vi, grad.DType())))
		if gv == nil {
			gv = term
		} else {
			gv = Add(gv, term)
		}
	}
	return ConvertDType(flatConcat(Gradient(gv, nodes...)), v.DType())
}

// hutchinsonGraph returns one single-probe Hutchinson estimate z * (H z), drawn by
// mlx/optim.HutchinsonDiagonal (the estimator AdaHessian uses) from the store's random state.
func (c *Curvature) hutchinsonGraph(scope *model.Scope, in []*Node) *Node {
	loss, _ := c.lossAndParams(scope, in)
	grads := scope.BuildTrainableVariablesGradientsGraph(loss)
	return ConvertDType(flatConcat(optim.HutchinsonDiagonal(scope, grads, 1, false)), dtypes.Float64)
}

// args returns the batch followed by extra arguments.
func (c *Curvature) args(extra ...any) []any {
	args := make([]any, 0, len(c.inputs)+len(c.labels)+len(extra))
	for _, t := range c.inputs {
		args = append(args, t)
	}
	for _, t := range c.labels {
		args = append(args, t)
	}
	return append(args, extra...)
}

// call runs exec and returns its single output as float64 values.
func (c *Curvature) call(exec *model.Exec, what string, args []any) (out []float64, err error) {
	if e := exceptions.TryCatch[error](func() {
		var ts []*tensors.Tensor
		ts, err = exec.Exec(args...)
		if err != nil {
			return
		}
		defer ts[0].FinalizeAll()
		out, err = tensors.CopyFlatData[float64](ts[0])
	}); e != nil {
		err = e
	}
	if err != nil {
		return nil, fmt.Errorf("adahessian: %s: %w", what, err)
	}
	if len(out) != c.n {
		return nil, fmt.Errorf("adahessian: %s: %d values, want %d", what, len(out), c.n)
	}
	return out, nil
}

// HVP returns the exact Hessian-vector product H v for a flat vector v of NumParams values.
func (c *Curvature) HVP(v []float64) ([]float64, error) {
	if len(v) != c.n {
		return nil, fmt.Errorf("adahessian.Curvature.HVP: %d values, want %d", len(v), c.n)
	}
	return c.call(c.hvp, "Hessian-vector product", c.args(tensors.FromValue(v)))
}

// ExactDiagonal returns the exact Hessian diagonal: H_ii = (H e_i)_i, one Hessian-vector
// product per parameter.
func (c *Curvature) ExactDiagonal() ([]float64, error) {
	diag := make([]float64, c.n)
	e := make([]float64, c.n)
	for i := range e {
		e[i] = 1
		hv, err := c.HVP(e)
		if err != nil {
			return nil, err
		}
		diag[i] = hv[i]
		e[i] = 0
	}
	return diag, nil
}

// Hutchinson returns one single-probe estimate z * (H z) of the Hessian diagonal from
// mlx/optim.HutchinsonDiagonal, with a Rademacher probe z from the store's random state
// (which advances: each call draws a new probe). The mean of k calls is the estimate of
// HutchinsonDiagonal with k probes.
func (c *Curvature) Hutchinson() ([]float64, error) {
	return c.call(c.hutch, "Hutchinson estimate", c.args())
}

// BlockAverage returns the diagonal estimate d (a flat vector over params) averaged over
// blocks of b consecutive entries along the first (input) axis of every rank-2 variable,
// separately for each column: the MLP counterpart of AdaHessian's spatial averaging of
// convolution kernels (the paper's block averaging). The last block of an axis whose
// length is not a multiple of b is shorter. Other variables (biases) are left as they are.
func BlockAverage(d []float64, params []Param, b int) ([]float64, error) {
	out := make([]float64, len(d))
	copy(out, d)
	off := 0
	for _, p := range params {
		n := p.size()
		if off+n > len(d) {
			return nil, fmt.Errorf("adahessian.BlockAverage: %d values, the parameters need more", len(d))
		}
		if len(p.Dims) == 2 && b > 1 {
			rows, cols := p.Dims[0], p.Dims[1]
			for col := range cols {
				for start := 0; start < rows; start += b {
					end := min(start+b, rows)
					sum := 0.0
					for r := start; r < end; r++ {
						sum += d[off+r*cols+col]
					}
					for r := start; r < end; r++ {
						out[off+r*cols+col] = sum / float64(end-start)
					}
				}
			}
		}
		off += n
	}
	if off != len(d) {
		return nil, fmt.Errorf("adahessian.BlockAverage: %d values for parameters of %d", len(d), off)
	}
	return out, nil
}

// RelativeError returns |est - exact|_2 / |exact|_2.
func RelativeError(est, exact []float64) float64 {
	var num, den float64
	for i := range exact {
		num += (est[i] - exact[i]) * (est[i] - exact[i])
		den += exact[i] * exact[i]
	}
	return math.Sqrt(num / den)
}

// LogLogSlope returns the least-squares slope of log(ys) against log(xs).
func LogLogSlope(xs, ys []float64) (float64, error) {
	if len(xs) != len(ys) || len(xs) < 2 {
		return 0, fmt.Errorf("adahessian.LogLogSlope: %d xs and %d ys: want the same number, at least 2", len(xs), len(ys))
	}
	var mx, my float64
	lx, ly := make([]float64, len(xs)), make([]float64, len(ys))
	for i := range xs {
		if !(xs[i] > 0 && ys[i] > 0) {
			return 0, fmt.Errorf("adahessian.LogLogSlope: point (%g, %g) is not positive", xs[i], ys[i])
		}
		lx[i], ly[i] = math.Log(xs[i]), math.Log(ys[i])
		mx += lx[i]
		my += ly[i]
	}
	mx /= float64(len(xs))
	my /= float64(len(xs))
	var sxy, sxx float64
	for i := range lx {
		sxy += (lx[i] - mx) * (ly[i] - my)
		sxx += (lx[i] - mx) * (lx[i] - mx)
	}
	if sxx == 0 {
		return 0, errors.New("adahessian.LogLogSlope: all xs are equal")
	}
	return sxy / sxx, nil
}
