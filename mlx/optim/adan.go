package optim

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/ml/model"
)

// AdanConfig configures [NewAdan]. Start from [DefaultAdan].
type AdanConfig struct {
	Common
	// Beta1, Beta2, Beta3 use the official code's convention (the code's 0.98 is the
	// paper's 0.02): decay rates of the gradient, gradient-difference and squared-update
	// averages, each in [0, 1).
	Beta1, Beta2, Beta3 float64
	// Eps is added to the denominator and to the global norm when clipping, > 0.
	Eps float64
	// WeightDecay is >= 0 (the authors' examples use 0.02).
	WeightDecay float64
	// NoProx selects the AdamW-like decay w = w*(1-lr*wd) - step instead of the paper's
	// proximal w = (w - step)/(1 + lr*wd).
	NoProx bool
	// MaxGradNorm > 0 clips the gradient by its global L2 norm over ALL parameters;
	// 0 (the default) disables clipping.
	MaxGradNorm float64
}

// DefaultAdan returns the official defaults: lr 1e-3, betas (0.98, 0.92, 0.99), eps 1e-8,
// weight decay 0, proximal decay, no clipping.
func DefaultAdan() AdanConfig {
	return AdanConfig{Common: Common{LR: 1e-3, ScopeName: "adan"}, Beta1: 0.98, Beta2: 0.92, Beta3: 0.99, Eps: 1e-8}
}

// Adan (Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
// Models") follows the official code (sail-sg/Adan, adan.py) exactly:
//
//	if MaxGradNorm > 0: g *= min(1, MaxGradNorm / (||g over all params|| + eps))
//	g_prev = g on the first step (k = 1), so d = 0
//	d = g - g_prev
//	m = b1*m + (1-b1)*g
//	v = b2*v + (1-b2)*d
//	n = b3*n + (1-b3)*(g + b2*d)^2
//	step = lr * (m/(1-b1^k) + b2*v/(1-b2^k)) / (sqrt(n)/sqrt(1-b3^k) + eps)
//	w = (w - step)/(1 + lr*wd)         (default, the paper's proximal form)
//	w = w*(1 - lr*wd) - step           (NoProx)
//
// It differs from optax's adan, which weighs the difference term by (1-b2) = 0.08 where the
// official code uses b2 = 0.92, and only has the AdamW-like decay. One gradient per step.
// [Adan.Restart] is the official restart_opt: never automatic.
type Adan struct {
	base
	cfg AdanConfig
}

// NewAdan validates cfg and returns the optimizer.
func NewAdan(cfg AdanConfig) (*Adan, error) {
	ck := &checker{opt: "Adan"}
	cfg.Common.check(ck)
	ck.beta("Beta1", cfg.Beta1)
	ck.beta("Beta2", cfg.Beta2)
	ck.beta("Beta3", cfg.Beta3)
	ck.positive("Eps", cfg.Eps)
	ck.nonNegative("WeightDecay", cfg.WeightDecay)
	ck.nonNegative("MaxGradNorm", cfg.MaxGradNorm)
	if ck.err != nil {
		return nil, ck.err
	}
	return &Adan{base: cfg.Common.base("adan"), cfg: cfg}, nil
}

// adanCounter is Adan's bias-correction counter k, which Restart sets back to 0; the
// schedule keeps using StepVariable, which Restart leaves alone.
const adanCounter = "k"

// Restart zeroes Adan's moments m, v, n and its bias-correction counter k in the store of
// scope (the official restart_opt), so the next step is a first step again (g_prev = g).
// The learning-rate schedule is not restarted. Call it between executions, not while
// building a graph. It is a no-op for variables not yet created.
func (o *Adan) Restart(scope *model.Scope) error {
	if err := o.zeroState(scope, StepVariable, LearningRateVariable); err != nil {
		return fmt.Errorf("Adan.Restart: %w", err)
	}
	return nil
}

// UpdateGraph implements optimizer.Interface.
func (o *Adan) UpdateGraph(scope *model.Scope, _ *Graph, loss *Node) { updateFromLoss(o, scope, loss) }

// UpdateGraphWithGradients implements [Optimizer].
func (o *Adan) UpdateGraphWithGradients(scope *model.Scope, grads []*Node, lossDType dtypes.DType) {
	c := o.begin(scope, grads, lossDType)
	cfg := o.cfg
	k := c.counter(adanCounter)
	if cfg.MaxGradNorm > 0 {
		clipGlobalNorm(c.grads, cfg.MaxGradNorm, cfg.Eps)
	}
	first := ConvertDType(Equal(k, c.scalar(1)), c.dtype) // 1 on the first step, else 0
	bc1 := c.biasCorrection(cfg.Beta1, k)
	bc2 := c.biasCorrection(cfg.Beta2, k)
	sqrtBC3 := Sqrt(c.biasCorrection(cfg.Beta3, k))
	lrWD := MulScalar(c.lr, cfg.WeightDecay)
	for i, v := range c.vars {
		w, grad := c.value(v), c.grads[i]
		mVar, vVar, nVar, pVar := c.slot(v, "m"), c.slot(v, "v"), c.slot(v, "n"), c.slot(v, "prev_grad")
		prev := pVar.NodeValue(c.g)
		prev = Add(Mul(first, grad), Mul(OneMinus(first), prev))
		d := Sub(grad, prev)
		m := ema(mVar.NodeValue(c.g), cfg.Beta1, grad)
		dv := ema(vVar.NodeValue(c.g), cfg.Beta2, d)
		n := ema(nVar.NodeValue(c.g), cfg.Beta3, Square(Add(grad, MulScalar(d, cfg.Beta2))))
		mVar.SetNodeValue(m)
		vVar.SetNodeValue(dv)
		nVar.SetNodeValue(n)
		pVar.SetNodeValue(grad)
		denom := AddScalar(Div(Sqrt(n), sqrtBC3), cfg.Eps)
		num := Add(Div(m, bc1), MulScalar(Div(dv, bc2), cfg.Beta2))
		step := Mul(c.lr, Div(num, denom))
		if cfg.WeightDecay == 0 {
			w = Sub(w, step)
		} else if cfg.NoProx {
			w = Sub(Mul(w, OneMinus(lrWD)), step)
		} else {
			w = Div(Sub(w, step), OnePlus(lrWD))
		}
		c.set(v, w)
	}
}

// clipGlobalNorm scales all grads in place by min(1, maxNorm/(||grads||_2 + eps)), the norm
// taken over all of them together.
func clipGlobalNorm(grads []*Node, maxNorm, eps float64) {
	factor := globalNormClipFactor(grads, maxNorm, eps)
	for i := range grads {
		grads[i] = Mul(grads[i], factor)
	}
}

// globalNormClipFactor returns min(1, maxNorm/(||xs||_2 + eps)), the norm taken over all
// xs together, in the dtype of xs[0].
func globalNormClipFactor(xs []*Node, maxNorm, eps float64) *Node {
	norm := AddScalar(globalNorm(xs), eps)
	return MinScalar(Div(Scalar(norm.Graph(), norm.DType(), maxNorm), norm), 1.0)
}
