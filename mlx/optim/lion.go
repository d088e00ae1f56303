package optim

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/ml/model"
)

// LionConfig configures [NewLion]. Start from [DefaultLion].
type LionConfig struct {
	Common
	// Beta1 interpolates the update direction, Beta2 the momentum; each in [0, 1).
	Beta1, Beta2 float64
	// WeightDecay is the decoupled decay w *= 1 - lr*wd, >= 0.
	WeightDecay float64
}

// DefaultLion returns the official defaults: lr 1e-4, betas (0.9, 0.99), weight decay 0.
func DefaultLion() LionConfig {
	return LionConfig{Common: Common{LR: 1e-4, ScopeName: "lion"}, Beta1: 0.9, Beta2: 0.99}
}

// Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms") follows the
// official code (google/automl, lion_pytorch.py):
//
//	c = b1*m + (1-b1)*g
//	w = w*(1 - lr*wd) - lr*sign(c)
//	m = b2*m + (1-b2)*g
type Lion struct {
	base
	cfg LionConfig
}

// NewLion validates cfg and returns the optimizer.
func NewLion(cfg LionConfig) (*Lion, error) {
	ck := &checker{opt: "Lion"}
	cfg.Common.check(ck)
	ck.beta("Beta1", cfg.Beta1)
	ck.beta("Beta2", cfg.Beta2)
	ck.nonNegative("WeightDecay", cfg.WeightDecay)
	if ck.err != nil {
		return nil, ck.err
	}
	return &Lion{base: cfg.Common.base("lion"), cfg: cfg}, nil
}

// UpdateGraph implements optimizer.Interface.
func (o *Lion) UpdateGraph(scope *model.Scope, _ *Graph, loss *Node) { updateFromLoss(o, scope, loss) }

// UpdateGraphWithGradients implements [Optimizer].
func (o *Lion) UpdateGraphWithGradients(scope *model.Scope, grads []*Node, lossDType dtypes.DType) {
	c := o.begin(scope, grads, lossDType)
	cfg := o.cfg
	for i, v := range c.vars {
		w, grad := c.value(v), c.grads[i]
		mVar := c.slot(v, "m")
		m := mVar.NodeValue(c.g)
		direction := Sign(Add(MulScalar(m, cfg.Beta1), MulScalar(grad, 1-cfg.Beta1)))
		if cfg.WeightDecay > 0 {
			w = Mul(w, OneMinus(MulScalar(c.lr, cfg.WeightDecay)))
		}
		mVar.SetNodeValue(ema(m, cfg.Beta2, grad))
		c.set(v, Sub(w, Mul(c.lr, direction)))
	}
}
