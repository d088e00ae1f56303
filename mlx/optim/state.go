package optim

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
	"github.com/gomlx/gomlx/ml/train/optimizer"
	"github.com/gomlx/gomlx/support/exceptions"
)

// Optimizer is implemented by every first-order optimizer of this package (and by AdaHessian):
// GoMLX's [optimizer.Interface], plus the gradient form used by gradient accumulation,
// zeroth-order estimators and local SGD, plus a short name for tables and plots.
type Optimizer interface {
	optimizer.Interface
	// UpdateGraphWithGradients applies one step from the given gradients, one per trainable
	// variable of scope used in the graph, in the order of scope.IterVariables() (GoMLX's
	// convention, as returned by scope.BuildTrainableVariablesGradientsGraph).
	UpdateGraphWithGradients(scope *model.Scope, grads []*Node, lossDType dtypes.DType)
	// Name is a short label such as "adan".
	Name() string
	// StateScope is the absolute scope, "/"+ScopeName, under which the optimizer keeps its
	// state variables: the step counter [StepVariable], the base learning rate
	// [LearningRateVariable] and the per-variable slots "<scope of v>/<name of v>_<slot>"
	// (each optimizer's doc comment lists its slot names).
	StateScope() string
}

// Names of the state variables shared by all optimizers, under the optimizer's scope.
const (
	// StepVariable is the optimizer's own step counter (int64, 1 after the first step).
	StepVariable = "step"
	// LearningRateVariable holds the base learning rate (before the schedule);
	// change its value to change the learning rate of a running optimizer.
	LearningRateVariable = "learning_rate"
)

// base holds what every optimizer shares: its name, state scope, learning rate and schedule.
type base struct {
	name      string
	scopeName string
	lr        float64
	schedule  Schedule
	dtype     dtypes.DType // InvalidDType: the loss dtype
}

// Name implements [Optimizer].
func (b *base) Name() string { return b.name }

// StateScope returns the absolute scope path under which the optimizer keeps its state
// (moments, counters, learning rate): "/" + ScopeName.
func (b *base) StateScope() string { return "/" + b.scopeName }

// Clear implements optimizer.Interface: it deletes all the optimizer's state variables.
func (b *base) Clear(scope *model.Scope) error {
	if scope == nil {
		return fmt.Errorf("optim.%s.Clear: scope is nil", b.name)
	}
	if err := scope.Store().DeleteVariablesInScope(b.StateScope()); err != nil {
		return fmt.Errorf("optim.%s.Clear: %w", b.name, err)
	}
	return nil
}

// zeroState sets to zero every state variable of the optimizer whose name is not kept.
func (b *base) zeroState(scope *model.Scope, keep ...string) error {
	if scope == nil {
		return fmt.Errorf("optim.%s: scope is nil", b.name)
	}
	prefix := b.StateScope() + "/"
	for v := range scope.Store().IterVariables() {
		if !strings.HasPrefix(v.Path(), prefix) || !v.HasValue() {
			continue
		}
		if slices.Contains(keep, strings.TrimPrefix(v.Path(), prefix)) {
			continue
		}
		if err := v.SetValue(tensors.FromShape(v.Shape())); err != nil {
			return fmt.Errorf("optim.%s: zeroing %s: %w", b.name, v.Path(), err)
		}
	}
	return nil
}

// stepCtx is the per-graph context of one update: built by begin, it gives the
// trainable variables, the step counter and the scheduled learning rate.
type stepCtx struct {
	g     *Graph
	dtype dtypes.DType
	root  *model.Scope // absolute state scope
	vars  []*model.Variable
	grads []*Node // converted to dtype
	step  *Node   // this optimizer's step counter k >= 1, as dtype
	stepI *Node   // the same counter as int64
	lr    *Node   // scheduled learning rate, as dtype
}

// trainableVars lists the trainable variables of scope used by g, in GoMLX's order.
func trainableVars(scope *model.Scope, g *Graph) []*model.Variable {
	var vars []*model.Variable
	for v := range scope.IterVariables() {
		if v.Trainable && v.InUseByGraph(g) {
			vars = append(vars, v)
		}
	}
	return vars
}

// begin prepares an update: it matches grads to variables, increments GoMLX's global
// step and the optimizer's own counter, and builds the scheduled learning rate.
func (b *base) begin(scope *model.Scope, grads []*Node, lossDType dtypes.DType) *stepCtx {
	if len(grads) == 0 {
		exceptions.Panicf("optim.%s: %v", b.name, errNoGradients)
	}
	g := grads[0].Graph()
	vars := trainableVars(scope, g)
	if len(vars) != len(grads) {
		exceptions.Panicf("optim.%s: got %d gradients but scope %q has %d trainable variables used by the graph "+
			"(were variables created or marked trainable after the gradients were taken?)",
			b.name, len(grads), scope.Scope(), len(vars))
	}
	dtype := b.dtype
	if dtype == dtypes.InvalidDType {
		dtype = lossDType
	}
	if !dtype.IsFloat() {
		exceptions.Panicf("optim.%s: the optimizer dtype %s is not a float dtype", b.name, dtype)
	}
	c := &stepCtx{g: g, dtype: dtype, root: scope.Store().Scope(b.StateScope()), vars: vars}
	c.grads = make([]*Node, len(grads))
	for i, grad := range grads {
		if grad == nil {
			exceptions.Panicf("optim.%s: gradient #%d (for %s) is nil", b.name, i, vars[i].Path())
		}
		if !grad.Shape().EqualDimensions(vars[i].Shape()) {
			exceptions.Panicf("optim.%s: gradient #%d has shape %s, but variable %s has shape %s",
				b.name, i, grad.Shape(), vars[i].Path(), vars[i].Shape())
		}
		c.grads[i] = ConvertDType(grad, dtype)
	}
	_ = optimizer.IncrementGlobalStep(g, dtype)
	c.stepI = optimizer.IncrementCounter(c.root, g, StepVariable, dtypes.Int64)
	c.step = ConvertDType(c.stepI, dtype)
	lrVar := c.root.VariableWithValue(LearningRateVariable, shapes.CastAsDType(b.lr, dtype)).SetTrainable(false)
	c.lr = ConvertDType(lrVar.NodeValue(g), dtype)
	if !b.schedule.isConstant() {
		c.lr = Mul(c.lr, b.schedule.factorGraph(c.step, dtype))
	}
	return c
}

// counter increments the int64 counter with the given name in the state scope and
// returns its new value as the context's dtype.
func (c *stepCtx) counter(name string) *Node {
	return ConvertDType(optimizer.IncrementCounter(c.root, c.g, name, dtypes.Int64), c.dtype)
}

// slot returns the state variable of the given name for a trainable variable, created
// with zeros (in the optimizer's dtype) under StateScope()/<variable's scope>.
func (c *stepCtx) slot(v *model.Variable, name string) *model.Variable {
	shape := v.Shape().Clone()
	shape.DType = c.dtype
	scopePath := path.Join(c.root.Scope(), v.Scope())
	return c.root.Store().Scope(scopePath).WithInitializer(initializer.Zero).
		VariableWithShape(v.Name()+"_"+name, shape).SetTrainable(false)
}

// value returns the variable's current value in the context's dtype.
func (c *stepCtx) value(v *model.Variable) *Node { return ConvertDType(v.NodeValue(c.g), c.dtype) }

// set stores a new value of a trainable variable, converted back to its dtype.
func (c *stepCtx) set(v *model.Variable, value *Node) {
	v.SetNodeValue(ConvertDType(value, v.DType()))
}

// scalar returns a constant scalar of the context's dtype.
func (c *stepCtx) scalar(x float64) *Node { return Scalar(c.g, c.dtype, x) }

// biasCorrection returns 1 - beta^k, computed in float64 (see [BiasCorrection]).
func (c *stepCtx) biasCorrection(beta float64, k *Node) *Node {
	return BiasCorrection(beta, k, c.dtype)
}

// ema returns beta*old + (1-beta)*x.
func ema(old *Node, beta float64, x *Node) *Node {
	return Add(MulScalar(old, beta), MulScalar(x, 1-beta))
}

// globalNorm returns the L2 norm of all xs together, sqrt(sum_i ||x_i||^2), in the dtype
// of xs[0].
func globalNorm(xs []*Node) *Node {
	var sumSq *Node
	for _, x := range xs {
		sq := L2NormSquare(x)
		if sumSq == nil {
			sumSq = sq
		} else {
			sumSq = Add(sumSq, ConvertDType(sq, sumSq.DType()))
		}
	}
	return Sqrt(sumSq)
}

// updateFromLoss is the UpdateGraph of the first-order optimizers: gradients by reverse-mode
// autodiff, then UpdateGraphWithGradients.
func updateFromLoss(o Optimizer, scope *model.Scope, loss *Node) {
	if loss == nil {
		exceptions.Panicf("optim.%s: the loss is nil", o.Name())
	}
	if !loss.Shape().IsScalar() {
		exceptions.Panicf("optim.%s: the loss must be a scalar, got shape %s", o.Name(), loss.Shape())
	}
	grads := scope.BuildTrainableVariablesGradientsGraph(loss)
	o.UpdateGraphWithGradients(scope, grads, loss.DType())
}
