package optim

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

// AdaHessianConfig configures [NewAdaHessian]. Start from [DefaultAdaHessian].
type AdaHessianConfig struct {
	Common
	// Beta1 and Beta2 are the decay rates of the gradient and squared-Hessian-diagonal
	// averages, each in [0, 1).
	Beta1, Beta2 float64
	// Eps is added to the denominator, > 0.
	Eps float64
	// WeightDecay is >= 0, applied as in the official code: w -= lr*wd*w.
	WeightDecay float64
	// HessianPower is the exponent k of the denominator, in (0, 1].
	HessianPower float64
	// Probes is the number of Hutchinson probes averaged per Hessian estimate, in
	// [1, MaxProbes]; each adds a Hessian-vector product to the step.
	Probes int
	// Gaussian draws N(0, 1) probes instead of Rademacher (+-1) ones.
	Gaussian bool
	// UpdateEvery refreshes the Hessian average every N steps (in [1, MaxSteps]); between refreshes the
	// second moment is kept. The Hessian-vector product is still built in every step's graph
	// and selected with Where: it changes the algorithm, not the cost per step.
	UpdateEvery int
	// KernelSpatialAxes are the two spatial axes of 4-D convolution kernels over which the
	// Hessian diagonal is averaged ("spatial averaging"). GoMLX kernels are
	// [height, width, in, out], so the default is {0, 1}; PyTorch's [out, in, h, w] would be
	// {2, 3}. An empty slice turns averaging off. Tensors of other ranks are never averaged.
	KernelSpatialAxes []int
}

// DefaultAdaHessian returns the official defaults: lr 0.15, betas (0.9, 0.999), eps 1e-4,
// weight decay 0, hessian power 1, one Rademacher probe, Hessian refreshed every step,
// spatial averaging over GoMLX's kernel axes {0, 1}.
func DefaultAdaHessian() AdaHessianConfig {
	return AdaHessianConfig{
		Common: Common{LR: 0.15, ScopeName: "adahessian"},
		Beta1:  0.9, Beta2: 0.999, Eps: 1e-4, HessianPower: 1, Probes: 1, UpdateEvery: 1,
		KernelSpatialAxes: []int{0, 1},
	}
}

// AdaHessian (Yao et al., "ADAHESSIAN: An Adaptive Second Order Optimizer for Machine
// Learning") follows the official code (amirgholami/adahessian, optim_adahessian.py):
//
//	z  = Rademacher probe (+-1 with probability 1/2 each), fresh every step
//	Hz = gradient of (g . z) with respect to the parameters
//	D  = |z * Hz|, averaged over the spatial axes of 4-D kernels
//	m  = b1*m + (1-b1)*g
//	v  = b2*v + (1-b2)*D^2
//	w  = w - lr * ( m/(1-b1^k) / ((sqrt(v)/sqrt(1-b2^k))^hessian_power + eps) + wd*w )
//
// Its probes are really +-1 with both signs (kozistr/pytorch_optimizer draws
// randint(0, 1)*2-1, which is always -1). With several probes, D = |mean_p z_p * Hz_p|.
// With UpdateEvery > 1, v and its bias correction advance only on refresh steps.
//
// It needs second-order autodiff: [AdaHessian.UpdateGraphWithGradients] differentiates the
// gradients it is given, so they must be autodiff gradients of the loss built in the same
// graph (a gradient estimate that does not depend on the parameters gives Hz = 0). Gradient
// rules missing in GoMLX for second order through max-pooling, batch normalization and
// stacked convolutions are registered by this package (see vjp.go).
type AdaHessian struct {
	base
	cfg AdaHessianConfig
}

// NewAdaHessian validates cfg and returns the optimizer.
func NewAdaHessian(cfg AdaHessianConfig) (*AdaHessian, error) {
	ck := &checker{opt: "AdaHessian"}
	cfg.Common.check(ck)
	ck.beta("Beta1", cfg.Beta1)
	ck.beta("Beta2", cfg.Beta2)
	ck.positive("Eps", cfg.Eps)
	ck.nonNegative("WeightDecay", cfg.WeightDecay)
	if !finite(cfg.HessianPower) || cfg.HessianPower <= 0 || cfg.HessianPower > 1 {
		ck.fail("HessianPower=%g is out of range: it must be in (0, 1]", cfg.HessianPower)
	}
	cfg.estimate().check(ck, "")
	if ck.err != nil {
		return nil, ck.err
	}
	cfg.KernelSpatialAxes = append([]int(nil), cfg.KernelSpatialAxes...)
	return &AdaHessian{base: cfg.Common.base("adahessian"), cfg: cfg}, nil
}

// UpdateGraph implements optimizer.Interface.
func (o *AdaHessian) UpdateGraph(scope *model.Scope, _ *Graph, loss *Node) {
	updateFromLoss(o, scope, loss)
}

// UpdateGraphWithGradients implements [Optimizer]. The gradients must be autodiff gradients
// of the loss in this graph (see [AdaHessian]).
func (o *AdaHessian) UpdateGraphWithGradients(scope *model.Scope, grads []*Node, lossDType dtypes.DType) {
	c := o.begin(scope, grads, lossDType)
	cfg := o.cfg
	diag := HutchinsonDiagonal(scope, grads, cfg.Probes, cfg.Gaussian)
	refresh := (*Node)(nil)
	hk := c.step
	if cfg.UpdateEvery > 1 {
		refresh = hessianRefresh(c.stepI, cfg.UpdateEvery)
		hk = ConvertDType(c.counterIntIf(hessianUpdatesCounter, refresh), c.dtype)
	}
	bc1 := c.biasCorrection(cfg.Beta1, c.step)
	sqrtBC2 := Sqrt(c.biasCorrection(cfg.Beta2, hk))
	for i, v := range c.vars {
		w, grad := c.value(v), c.grads[i]
		d := hessianSpatialMean(Abs(ConvertDType(diag[i], c.dtype)), cfg.KernelSpatialAxes)
		mVar, vVar := c.slot(v, "m"), c.slot(v, "hessian_sq")
		m := ema(mVar.NodeValue(c.g), cfg.Beta1, grad)
		hv := hessianSquareEMA(vVar.NodeValue(c.g), cfg.Beta2, d, refresh)
		mVar.SetNodeValue(m)
		vVar.SetNodeValue(hv)
		update := Div(Div(m, bc1), adaHessianDenominator(hv, sqrtBC2, cfg.HessianPower, cfg.Eps))
		if cfg.WeightDecay > 0 {
			update = Add(update, MulScalar(w, cfg.WeightDecay))
		}
		c.set(v, Sub(w, Mul(c.lr, update)))
	}
}

// estimate returns the settings of cfg's Hessian estimate.
func (cfg AdaHessianConfig) estimate() HessianEstimate {
	return HessianEstimate{Probes: cfg.Probes, Gaussian: cfg.Gaussian, UpdateEvery: cfg.UpdateEvery,
		KernelSpatialAxes: cfg.KernelSpatialAxes}
}

// HessianEstimate says how [ScaleByAdaHessian] estimates the Hessian diagonal; its fields
// mean what the [AdaHessianConfig] fields of the same names mean.
type HessianEstimate struct {
	// Probes is the number of Hutchinson probes averaged per estimate, in [1, MaxProbes].
	Probes int
	// Gaussian draws N(0, 1) probes instead of Rademacher (+-1) ones.
	Gaussian bool
	// UpdateEvery refreshes the squared-Hessian average every N steps, in [1, MaxSteps].
	UpdateEvery int
	// KernelSpatialAxes are the two axes of 4-D kernels over which the diagonal is
	// averaged, or empty for none.
	KernelSpatialAxes []int
}

// check validates e, naming its fields with the given prefix.
func (e HessianEstimate) check(ck *checker, prefix string) {
	ck.intIn(prefix+"Probes", e.Probes, 1, MaxProbes)
	ck.intIn(prefix+"UpdateEvery", e.UpdateEvery, 1, MaxSteps)
	if axes := e.KernelSpatialAxes; len(axes) != 0 &&
		(len(axes) != 2 || axes[0] == axes[1] || axes[0] < 0 || axes[0] > 3 || axes[1] < 0 || axes[1] > 3) {
		ck.fail("%sKernelSpatialAxes=%v is invalid: it must be two distinct axes in [0, 3], or empty", prefix, axes)
	}
}

// hessianUpdatesCounter is AdaHessian's count of refresh steps (with UpdateEvery > 1): the
// step counter of the second moment's bias correction.
const hessianUpdatesCounter = "hessian_updates"

// hessianRefresh returns the boolean scalar "the Hessian average is refreshed at step k"
// (k = 1, 1+every, 1+2*every, ...), for the int64 step counter k.
func hessianRefresh(k *Node, every int) *Node {
	g := k.Graph()
	return Equal(Rem(AddScalar(k, -1), Scalar(g, dtypes.Int64, every)), Scalar(g, dtypes.Int64, 0))
}

// hessianSpatialMean averages the Hessian diagonal d of a 4-D kernel over the two spatial
// axes (broadcast back to d's shape); other ranks, or no axes, are returned as they are.
func hessianSpatialMean(d *Node, axes []int) *Node {
	if d.Rank() != 4 || len(axes) != 2 {
		return d
	}
	return BroadcastToDims(ReduceAndKeep(d, ReduceMean, axes...), d.Shape().Dimensions...)
}

// hessianSquareEMA returns b2*old + (1-b2)*d^2, or old where refresh (a boolean scalar,
// nil for always) is false.
func hessianSquareEMA(old *Node, b2 float64, d, refresh *Node) *Node {
	hv := ema(old, b2, Square(d))
	if refresh != nil {
		hv = Where(BroadcastToDims(refresh, hv.Shape().Dimensions...), hv, old)
	}
	return hv
}

// adaHessianDenominator returns (sqrt(hv)/sqrtBC2)^power + eps.
func adaHessianDenominator(hv, sqrtBC2 *Node, power, eps float64) *Node {
	denom := Div(Sqrt(hv), sqrtBC2)
	if power != 1 {
		denom = Pow(denom, Scalar(hv.Graph(), hv.DType(), power))
	}
	return AddScalar(denom, eps)
}

// counterIntIf increments an int64 counter only where cond is true and returns it.
func (c *stepCtx) counterIntIf(name string, cond *Node) *Node {
	v := c.root.VariableWithValue(name, int64(0)).SetTrainable(false)
	old := v.NodeValue(c.g)
	k := Where(cond, AddScalar(old, 1), old)
	v.SetNodeValue(k)
	return k
}

// HutchinsonDiagonal returns, for each gradient, the Hutchinson estimate of the Hessian
// diagonal, mean over probes of z * (H z), where Hz is the gradient of sum_i(grads_i . z_i)
// with respect to the trainable variables of scope used by the graph (GoMLX's order, one per
// gradient). grads must be autodiff gradients of a scalar loss built in the same graph.
// Probes are Rademacher (+-1) or, with gaussian, N(0, 1), drawn from the store's random
// number generator. For a separable loss (diagonal Hessian) and Rademacher probes the
// estimate is the exact Hessian diagonal. Graph-building: it panics on error.
func HutchinsonDiagonal(scope *model.Scope, grads []*Node, probes int, gaussian bool) []*Node {
	if len(grads) == 0 {
		exceptions.Panicf("optim.HutchinsonDiagonal: %v", errNoGradients)
	}
	if probes < 1 || probes > MaxProbes {
		exceptions.Panicf("optim.HutchinsonDiagonal: probes=%d is out of range: it must be in [1, %d]", probes, MaxProbes)
	}
	g := grads[0].Graph()
	vars := trainableVars(scope, g)
	if len(vars) != len(grads) {
		exceptions.Panicf("optim.HutchinsonDiagonal: got %d gradients for %d trainable variables", len(grads), len(vars))
	}
	params := make([]*Node, len(vars))
	for i, v := range vars {
		params[i] = v.NodeValue(g)
	}
	return hutchinson(scope, grads, params, probes, gaussian)
}

// hutchinson returns mean over probes of z * (H z), z drawn for each gradient (in its dtype)
// from the store of scope, H z by [hessianVectorProducts] of grads with respect to params.
func hutchinson(scope *model.Scope, grads, params []*Node, probes int, gaussian bool) []*Node {
	g := grads[0].Graph()
	sums := make([]*Node, len(grads))
	for range probes {
		zs := make([]*Node, len(grads))
		for i, grad := range grads {
			if gaussian {
				zs[i] = scope.Store().RandomNormal(g, grad.Shape())
			} else {
				zs[i] = RademacherProbe(scope, g, grad.Shape())
			}
		}
		hz := hessianVectorProducts(grads, params, zs)
		for i := range grads {
			est := Mul(zs[i], ConvertDType(hz[i], zs[i].DType()))
			if sums[i] == nil {
				sums[i] = est
			} else {
				sums[i] = Add(sums[i], est)
			}
		}
	}
	if probes > 1 {
		for i := range sums {
			sums[i] = DivScalar(sums[i], float64(probes))
		}
	}
	return sums
}

// hessianVectorProducts returns H z, the gradient of sum_i <grads_i, z_i> (z held constant)
// with respect to params; grads are autodiff gradients of a scalar loss with respect to
// params, and each z_i has the shape and dtype of grads_i.
func hessianVectorProducts(grads, params, zs []*Node) []*Node {
	var gz *Node
	for i, grad := range grads {
		term := ReduceAllSum(Mul(grad, StopGradient(zs[i])))
		if gz == nil {
			gz = term
		} else {
			gz = Add(gz, term)
		}
	}
	return Gradient(gz, params...)
}

// RademacherProbe draws a tensor of the given shape (a float dtype) whose entries are +1 or
// -1 with probability 1/2 each, from the store's random number generator. It draws 32 random
// bits per 32 entries and unpacks them, which on XLA CPU is far cheaper than one uniform
// float per entry (the random bit generator dominated AdaHessian's step otherwise).
func RademacherProbe(scope *model.Scope, g *Graph, shape shapes.Shape) *Node {
	if !shape.DType.IsFloat() {
		exceptions.Panicf("optim.RademacherProbe: shape %s must have a float dtype", shape)
	}
	const bitsPerWord = 32
	n := shape.Size()
	words := (n + bitsPerWord - 1) / bitsPerWord
	// Uniform integers in [0, 2^32): 32 random bits each. (GoMLX v0.28.8's RandomIntN loses
	// the top bit for N > 2^53, its maximum going through a float64, so we stay at 2^32.)
	bits := scope.Store().RandomIntN(g, uint64(1)<<bitsPerWord, shapes.Make(dtypes.Uint64, words))
	bits = BroadcastToDims(Reshape(bits, words, 1), words, bitsPerWord)
	shifts := Iota(g, shapes.Make(dtypes.Uint64, words, bitsPerWord), 1)
	bit := BitwiseAnd(BitwiseShiftRightLogical(bits, shifts), OnesLike(bits))
	flat := Slice(Reshape(bit, words*bitsPerWord), AxisRange(0, n))
	z := AddScalar(MulScalar(ConvertDType(flat, shape.DType), 2), -1)
	if shape.IsScalar() {
		return Reshape(z)
	}
	return Reshape(z, shape.Dimensions...)
}
