package optim

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/ml/model"
)

// AdamConfig configures [NewAdam], which also builds AdamW and AMSGrad.
// Start from [DefaultAdam], [DefaultAdamW] or [DefaultAMSGrad].
type AdamConfig struct {
	Common
	// Beta1 and Beta2 are the moment decay rates, each in [0, 1).
	Beta1, Beta2 float64
	// Eps is added to the denominator, > 0.
	Eps float64
	// WeightDecay is >= 0: an L2 term added to the gradient (Adam), or, with Decoupled,
	// the AdamW decay w *= 1 - lr*wd.
	WeightDecay float64
	// Decoupled selects AdamW's decoupled weight decay (Loshchilov & Hutter).
	Decoupled bool
	// AMSGrad keeps the running maximum of the second moment (Reddi et al.).
	AMSGrad bool
}

// DefaultAdam returns PyTorch's Adam defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8.
func DefaultAdam() AdamConfig {
	return AdamConfig{Common: Common{LR: 1e-3, ScopeName: "adam"}, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// DefaultAdamW returns PyTorch's AdamW defaults: Adam's, with decoupled weight decay 0.01.
func DefaultAdamW() AdamConfig {
	c := DefaultAdam()
	c.ScopeName, c.Decoupled, c.WeightDecay = "adamw", true, 0.01
	return c
}

// DefaultAMSGrad returns Adam's defaults with AMSGrad on.
func DefaultAMSGrad() AdamConfig {
	c := DefaultAdam()
	c.ScopeName, c.AMSGrad = "amsgrad", true
	return c
}

// Adam is Adam (Kingma & Ba), AdamW and AMSGrad, exactly as PyTorch's torch.optim.Adam/AdamW
// (eps outside the square root; AMSGrad keeps the maximum of the raw second moment):
//
//	g = g + wd*w                              (Adam with WeightDecay)
//	w = w * (1 - lr*wd)                       (AdamW: Decoupled)
//	m = b1*m + (1-b1)*g
//	v = b2*v + (1-b2)*g^2
//	vmax = max(vmax, v)                       (AMSGrad; the denominator then uses vmax)
//	w = w - lr/(1-b1^k) * m / (sqrt(v)/sqrt(1-b2^k) + eps)
//
// GoMLX's own Adam uses eps 1e-7 by default and does not implement AMSGrad.
type Adam struct {
	base
	cfg AdamConfig
}

// NewAdam validates cfg and returns Adam, AdamW or AMSGrad as configured.
func NewAdam(cfg AdamConfig) (*Adam, error) {
	ck := &checker{opt: "Adam"}
	cfg.Common.check(ck)
	ck.beta("Beta1", cfg.Beta1)
	ck.beta("Beta2", cfg.Beta2)
	ck.positive("Eps", cfg.Eps)
	ck.nonNegative("WeightDecay", cfg.WeightDecay)
	if ck.err != nil {
		return nil, ck.err
	}
	name := "adam"
	switch {
	case cfg.Decoupled && cfg.AMSGrad:
		name = "adamw-amsgrad"
	case cfg.Decoupled:
		name = "adamw"
	case cfg.AMSGrad:
		name = "amsgrad"
	}
	return &Adam{base: cfg.Common.base(name), cfg: cfg}, nil
}

// UpdateGraph implements optimizer.Interface.
func (o *Adam) UpdateGraph(scope *model.Scope, _ *Graph, loss *Node) { updateFromLoss(o, scope, loss) }

// UpdateGraphWithGradients implements [Optimizer].
func (o *Adam) UpdateGraphWithGradients(scope *model.Scope, grads []*Node, lossDType dtypes.DType) {
	c := o.begin(scope, grads, lossDType)
	cfg := o.cfg
	stepSize := Div(c.lr, c.biasCorrection(cfg.Beta1, c.step))
	sqrtBC2 := Sqrt(c.biasCorrection(cfg.Beta2, c.step))
	for i, v := range c.vars {
		w, grad := c.value(v), c.grads[i]
		if cfg.WeightDecay > 0 {
			if cfg.Decoupled {
				w = Mul(w, OneMinus(MulScalar(c.lr, cfg.WeightDecay)))
			} else {
				grad = Add(grad, MulScalar(w, cfg.WeightDecay))
			}
		}
		mVar, vVar := c.slot(v, "m"), c.slot(v, "v")
		m := ema(mVar.NodeValue(c.g), cfg.Beta1, grad)
		s := ema(vVar.NodeValue(c.g), cfg.Beta2, Square(grad))
		mVar.SetNodeValue(m)
		vVar.SetNodeValue(s)
		if cfg.AMSGrad {
			maxVar := c.slot(v, "vmax")
			s = Max(maxVar.NodeValue(c.g), s)
			maxVar.SetNodeValue(s)
		}
		denom := AddScalar(Div(Sqrt(s), sqrtBC2), cfg.Eps)
		c.set(v, Sub(w, Mul(stepSize, Div(m, denom))))
	}
}
