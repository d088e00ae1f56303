package optim

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/ml/model"
)

// SGDConfig configures [NewSGD]. Start from [DefaultSGD].
type SGDConfig struct {
	Common
	// Momentum is the heavy-ball coefficient mu in [0, 1); 0 is plain SGD.
	Momentum float64
	// Nesterov uses Nesterov momentum (needs Momentum > 0).
	Nesterov bool
	// WeightDecay is the L2 coefficient added to the gradient (g += wd*w), >= 0.
	WeightDecay float64
}

// DefaultSGD returns plain SGD with lr 0.01 and no momentum.
func DefaultSGD() SGDConfig {
	return SGDConfig{Common: Common{LR: 0.01, ScopeName: "sgd"}}
}

// SGD is stochastic gradient descent with optional (Nesterov) momentum, following
// PyTorch's torch.optim.SGD with dampening 0:
//
//	g = g + wd*w
//	buf = mu*buf + g                  (buf = g on the first step, since buf starts at 0)
//	d = g + mu*buf if Nesterov, else buf
//	w = w - lr*d
//
// Unlike GoMLX's own SGD, it does not divide the learning rate by sqrt(step).
type SGD struct {
	base
	cfg SGDConfig
}

// NewSGD validates cfg and returns the optimizer.
func NewSGD(cfg SGDConfig) (*SGD, error) {
	ck := &checker{opt: "SGD"}
	cfg.Common.check(ck)
	ck.beta("Momentum", cfg.Momentum)
	ck.nonNegative("WeightDecay", cfg.WeightDecay)
	if cfg.Nesterov && cfg.Momentum == 0 && ck.err == nil {
		ck.fail("Nesterov=true needs Momentum in (0, 1), got Momentum=0")
	}
	if ck.err != nil {
		return nil, ck.err
	}
	return &SGD{base: cfg.Common.base("sgd"), cfg: cfg}, nil
}

// UpdateGraph implements optimizer.Interface.
func (o *SGD) UpdateGraph(scope *model.Scope, _ *Graph, loss *Node) { updateFromLoss(o, scope, loss) }

// UpdateGraphWithGradients implements [Optimizer].
func (o *SGD) UpdateGraphWithGradients(scope *model.Scope, grads []*Node, lossDType dtypes.DType) {
	c := o.begin(scope, grads, lossDType)
	for i, v := range c.vars {
		w, grad := c.value(v), c.grads[i]
		if o.cfg.WeightDecay > 0 {
			grad = Add(grad, MulScalar(w, o.cfg.WeightDecay))
		}
		d := grad
		if o.cfg.Momentum > 0 {
			bufVar := c.slot(v, "momentum")
			buf := Add(MulScalar(bufVar.NodeValue(c.g), o.cfg.Momentum), grad)
			bufVar.SetNodeValue(buf)
			d = buf
			if o.cfg.Nesterov {
				d = Add(grad, MulScalar(buf, o.cfg.Momentum))
			}
		}
		c.set(v, Sub(w, Mul(c.lr, d)))
	}
}
