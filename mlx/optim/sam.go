package optim

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/goptlab/goptlab/mlx/train"
)

// SAMConfig configures [NewSAM]. Start from [DefaultSAM].
type SAMConfig struct {
	// Rho is the radius of the neighbourhood, > 0 (0.05 in the paper; ~2 for Adaptive).
	Rho float64
	// Adaptive selects ASAM (Kwon et al.): the perturbation is scaled by |w| elementwise.
	Adaptive bool
	// Eps is added to the gradient norm, > 0 (1e-12 in the official code).
	Eps float64
}

// DefaultSAM returns rho 0.05, eps 1e-12, non-adaptive.
func DefaultSAM() SAMConfig { return SAMConfig{Rho: 0.05, Eps: 1e-12} }

// SAM is sharpness-aware minimization (Foret et al.), as the widely used davda54/sam code:
//
//	g1   = gradient at w
//	e    = rho * T^2 g1 / (||T g1|| + eps)     (T = 1, or |w| elementwise for Adaptive;
//	                                          the norm is global over all parameters)
//	g2   = gradient at w + e
//	w    = base optimizer step from w with gradient g2
//
// A SAM step needs the loss at a second point, which optimizer.Interface's UpdateGraph (that
// only receives the loss node) cannot evaluate, so SAM implements train.Stepper instead: its
// BuildStep calls the loss function twice in the same graph (the second time on the
// variables perturbed with SetNodeValue, with scope.ResetVisited()), then restores the
// variables and lets the base optimizer apply g2 through UpdateGraphWithGradients.
// Use it with mlx/train's loop in place of train.FirstOrder(opt, name).
type SAM struct {
	base Optimizer
	cfg  SAMConfig
}

var _ train.Stepper = (*SAM)(nil)

// NewSAM validates cfg and wraps the base optimizer.
func NewSAM(base Optimizer, cfg SAMConfig) (*SAM, error) {
	ck := &checker{opt: "SAM"}
	if base == nil {
		ck.fail("the base optimizer is nil")
	}
	ck.positive("Rho", cfg.Rho)
	ck.positive("Eps", cfg.Eps)
	if ck.err != nil {
		return nil, ck.err
	}
	return &SAM{base: base, cfg: cfg}, nil
}

// Name implements train.Stepper: "sam(<base>)" or "asam(<base>)".
func (s *SAM) Name() string {
	if s.cfg.Adaptive {
		return fmt.Sprintf("asam(%s)", s.base.Name())
	}
	return fmt.Sprintf("sam(%s)", s.base.Name())
}

// LossEvalsPerStep implements train.Stepper: SAM evaluates the loss and its gradient twice.
func (s *SAM) LossEvalsPerStep() int { return 2 }

// Base returns the wrapped optimizer.
func (s *SAM) Base() Optimizer { return s.base }

// Clear deletes the base optimizer's state (SAM itself keeps none).
func (s *SAM) Clear(scope *model.Scope) error { return s.base.Clear(scope) }

// BuildStep implements train.Stepper; it returns the loss at the unperturbed point.
func (s *SAM) BuildStep(scope *model.Scope, lossFn train.LossFn, inputs, labels []*Node) *Node {
	loss := lossFn(scope, inputs, labels)
	if loss == nil || !loss.Shape().IsScalar() {
		exceptions.Panicf("optim.%s: the loss function must return a scalar loss, got %v", s.Name(), loss)
	}
	g := loss.Graph()
	vars := trainableVars(scope, g)
	if len(vars) == 0 {
		exceptions.Panicf("optim.%s: %v", s.Name(), errNoGradients)
	}
	ws := make([]*Node, len(vars))
	for i, v := range vars {
		ws[i] = v.NodeValue(g)
	}
	grads := Gradient(loss, ws...)
	scaled := make([]*Node, len(grads))
	for i, grad := range grads {
		grad = StopGradient(grad)
		if s.cfg.Adaptive {
			grad = Mul(grad, Abs(ws[i]))
		}
		scaled[i] = grad
	}
	norm := globalNorm(scaled)
	scale := Div(Scalar(g, norm.DType(), s.cfg.Rho), AddScalar(norm, s.cfg.Eps))
	perturbed := make([]*Node, len(vars))
	for i, v := range vars {
		e := Mul(scaled[i], ConvertDType(scale, scaled[i].DType()))
		if s.cfg.Adaptive {
			e = Mul(e, Abs(ws[i]))
		}
		perturbed[i] = Add(ws[i], StopGradient(e))
		v.SetNodeValue(perturbed[i])
	}
	loss2 := lossFn(scope.ResetVisited(), inputs, labels)
	grads2 := Gradient(loss2, perturbed...)
	for i, v := range vars {
		v.SetNodeValue(ws[i])
	}
	s.base.UpdateGraphWithGradients(scope, grads2, loss.DType())
	return loss
}
