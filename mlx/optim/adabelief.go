package optim

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/ml/model"
)

// AdaBeliefConfig configures [NewAdaBelief]. Start from [DefaultAdaBelief].
type AdaBeliefConfig struct {
	Common
	// Beta1 and Beta2 are the moment decay rates, each in [0, 1).
	Beta1, Beta2 float64
	// Eps is > 0; the official code adds it both inside the second moment and to the denominator.
	Eps float64
	// WeightDecay is >= 0: decoupled (w *= 1 - lr*wd, the official default weight_decouple=True),
	// or an L2 term added to the gradient when Coupled is set.
	WeightDecay float64
	// Coupled selects L2 weight decay (weight_decouple=False in the official code).
	Coupled bool
}

// DefaultAdaBelief returns the official adabelief-pytorch 0.2 defaults: lr 1e-3, betas
// (0.9, 0.999), eps 1e-16, decoupled weight decay 0.
func DefaultAdaBelief() AdaBeliefConfig {
	return AdaBeliefConfig{Common: Common{LR: 1e-3, ScopeName: "adabelief"}, Beta1: 0.9, Beta2: 0.999, Eps: 1e-16}
}

// AdaBelief (Zhuang et al.) follows the official adabelief-pytorch 0.2 code
// (juntang-zhuang/Adabelief-Optimizer), without its RAdam-style rectification
// (rectify=False):
//
//	w = w * (1 - lr*wd)                         (decoupled; or g += wd*w when Coupled)
//	m = b1*m + (1-b1)*g
//	s = b2*s + (1-b2)*(g-m)^2 + eps             (the official in-place add_ keeps eps in s)
//	w = w - lr/(1-b1^k) * m / (sqrt(s)/sqrt(1-b2^k) + eps)
//
// Note the eps inside s: implementations written from the paper's pseudo-code (which
// adds eps once) differ from the official code by it.
type AdaBelief struct {
	base
	cfg AdaBeliefConfig
}

// NewAdaBelief validates cfg and returns the optimizer.
func NewAdaBelief(cfg AdaBeliefConfig) (*AdaBelief, error) {
	ck := &checker{opt: "AdaBelief"}
	cfg.Common.check(ck)
	ck.beta("Beta1", cfg.Beta1)
	ck.beta("Beta2", cfg.Beta2)
	ck.positive("Eps", cfg.Eps)
	ck.nonNegative("WeightDecay", cfg.WeightDecay)
	if ck.err != nil {
		return nil, ck.err
	}
	return &AdaBelief{base: cfg.Common.base("adabelief"), cfg: cfg}, nil
}

// UpdateGraph implements optimizer.Interface.
func (o *AdaBelief) UpdateGraph(scope *model.Scope, _ *Graph, loss *Node) {
	updateFromLoss(o, scope, loss)
}

// UpdateGraphWithGradients implements [Optimizer].
func (o *AdaBelief) UpdateGraphWithGradients(scope *model.Scope, grads []*Node, lossDType dtypes.DType) {
	c := o.begin(scope, grads, lossDType)
	cfg := o.cfg
	stepSize := Div(c.lr, c.biasCorrection(cfg.Beta1, c.step))
	sqrtBC2 := Sqrt(c.biasCorrection(cfg.Beta2, c.step))
	for i, v := range c.vars {
		w, grad := c.value(v), c.grads[i]
		if cfg.WeightDecay > 0 {
			if cfg.Coupled {
				grad = Add(grad, MulScalar(w, cfg.WeightDecay))
			} else {
				w = Mul(w, OneMinus(MulScalar(c.lr, cfg.WeightDecay)))
			}
		}
		mVar, sVar := c.slot(v, "m"), c.slot(v, "s")
		m := ema(mVar.NodeValue(c.g), cfg.Beta1, grad)
		s := AddScalar(ema(sVar.NodeValue(c.g), cfg.Beta2, Square(Sub(grad, m))), cfg.Eps)
		mVar.SetNodeValue(m)
		sVar.SetNodeValue(s)
		denom := AddScalar(Div(Sqrt(s), sqrtBC2), cfg.Eps)
		c.set(v, Sub(w, Mul(stepSize, Div(m, denom))))
	}
}
