package optim

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

// A Transform is one stage of an optimizer built with [NewChain], in the spirit of optax's
// gradient transformations: a plain Go function of the [Step] (parameters, updates, state
// slots, step counter, learning rate) that rewrites the updates and its own state. It runs
// while the graph of one training step is built, so it uses GoMLX graph functions and,
// like them, panics on misuse (an out-of-range argument of the transforms below included);
// train.Run and model.NewExec report such panics as errors.
//
// A research optimizer is usually one Transform written as a loop over s.Params:
//
//	rule := func(s *optim.Step) {
//		for i := range s.Params {
//			m := s.EMA(i, "m", 0.9, s.Update(i))   // slot "<var>_m", saved in checkpoints
//			s.SetUpdate(i, m)
//		}
//		s.ScaleByLR()
//	}
//	opt, err := optim.NewChain("mymomentum", optim.Common{LR: 0.01, ScopeName: "mymomentum"}, rule)
type Transform func(s *Step)

// Step is the state of one optimizer update while a [Chain] builds its graph. The update
// it represents is
//
//	w_new = w * (1 - decay) - factor * u
//
// with per-variable directions u (initially the gradients), a scalar factor and a scalar
// decoupled decay, both kept apart from u until a transform needs the materialized update
// ([Step.Update], [Step.Updates]): this is how a chain reproduces the hand-written Adam,
// AdamW and SGD bit for bit (it evaluates lr/(1-beta1^k) once, as they do, instead of
// scaling every element twice). When the chain's step is built from the loss (UpdateGraph),
// a transform can also take Hessian-vector products of the loss ([Step.HessianVectorProducts],
// [Step.HutchinsonDiagonal]).
type Step struct {
	// Graph is the graph being built.
	Graph *Graph
	// DType is the dtype of the optimizer's arithmetic and state.
	DType dtypes.DType
	// K is the optimizer's step counter k = 1, 2, ... (state variable [StepVariable]), as DType.
	K *Node
	// KInt is the same counter as int64.
	KInt *Node
	// LR is the scheduled learning rate (variable [LearningRateVariable] times the
	// config's Schedule), as DType.
	LR *Node
	// Vars are the trainable variables being updated, in GoMLX's order.
	Vars []*model.Variable
	// Params are their current values as DType (read only: the chain writes the new values).
	Params []*Node
	// Grads are the gradients as DType, as the chain received them.
	Grads []*Node

	ctx    *stepCtx
	chain  string       // the chain's name, for messages
	scope  *model.Scope // the scope of the update
	nodes  []*Node      // the variables' values as the graph had them when the step began
	loss   []*Node      // autodiff gradients of the loss as given (nil: no loss, see HasLoss)
	u      []*Node
	num    *Node // scalar numerator of the factor (nil: 1)
	den    *Node // scalar denominator of the factor (nil: 1)
	decay  *Node // scalar decoupled decay (nil: 0)
	gate   *Node // boolean scalar: when false, state and parameters keep their values (nil: true)
	after  []func(i int, w *Node) *Node
	active []bool
}

// newStep starts a Step from an update context.
func newStep(c *stepCtx) *Step {
	s := &Step{Graph: c.g, DType: c.dtype, K: c.step, KInt: c.stepI, LR: c.lr, Vars: c.vars, ctx: c}
	s.Params = make([]*Node, len(c.vars))
	s.nodes = make([]*Node, len(c.vars))
	for i, v := range c.vars {
		s.nodes[i] = v.NodeValue(c.g)
		s.Params[i] = ConvertDType(s.nodes[i], c.dtype)
	}
	s.Grads = c.grads
	s.u = append([]*Node(nil), c.grads...)
	return s
}

// Scalar returns a constant scalar of the step's dtype.
func (s *Step) Scalar(x float64) *Node { return Scalar(s.Graph, s.DType, x) }

// materialize folds the pending factor and decay into the updates.
func (s *Step) materialize() {
	if s.num == nil && s.den == nil && s.decay == nil {
		return
	}
	f := s.factor()
	for i, u := range s.u {
		if f != nil {
			u = Mul(f, u)
		}
		if s.decay != nil {
			u = Add(u, Mul(s.decay, s.Params[i]))
		}
		s.u[i] = u
	}
	s.num, s.den, s.decay = nil, nil, nil
}

// factor returns num/den (nil for 1).
func (s *Step) factor() *Node {
	switch {
	case s.num == nil && s.den == nil:
		return nil
	case s.den == nil:
		return s.num
	case s.num == nil:
		return Reciprocal(s.den)
	}
	return Div(s.num, s.den)
}

// Update returns the materialized update of variable i: factor*u + decay*w.
func (s *Step) Update(i int) *Node {
	s.materialize()
	return s.u[i]
}

// Updates returns the materialized updates of all variables (a copy of the slice).
func (s *Step) Updates() []*Node {
	s.materialize()
	return append([]*Node(nil), s.u...)
}

// SetUpdate replaces the update of variable i (after materializing the others).
func (s *Step) SetUpdate(i int, u *Node) {
	s.materialize()
	s.u[i] = ConvertDType(u, s.DType)
}

// ScaleBy multiplies every update by the scalar x (without touching the elements until
// an update is materialized).
func (s *Step) ScaleBy(x *Node) {
	x = ConvertDType(x, s.DType)
	if s.num == nil {
		s.num = x
	} else {
		s.num = Mul(s.num, x)
	}
	if s.decay != nil {
		s.decay = Mul(s.decay, x)
	}
}

// DivideBy divides every update by the scalar x.
func (s *Step) DivideBy(x *Node) {
	x = ConvertDType(x, s.DType)
	if s.den == nil {
		s.den = x
	} else {
		s.den = Mul(s.den, x)
	}
	if s.decay != nil {
		s.decay = Div(s.decay, x)
	}
}

// ScaleByLR multiplies the updates by the scheduled learning rate [Step.LR]: the usual last
// stage of a chain (the chain then subtracts the updates from the parameters).
func (s *Step) ScaleByLR() { s.ScaleBy(s.LR) }

// AddDecayedWeights adds wd*w to the updates (decoupled weight decay when it comes after
// the preconditioner and before [Step.ScaleByLR]: w_new = w*(1 - lr*wd) - ...).
func (s *Step) AddDecayedWeights(wd float64) {
	if wd == 0 {
		return
	}
	if s.decay == nil {
		s.decay = s.Scalar(wd)
	} else {
		s.decay = AddScalar(s.decay, wd)
	}
}

// Slot returns the state variable called name of trainable variable i: a non-trainable
// variable "<variable name>_<name>" under the optimizer's state scope and the variable's
// own scope (e.g. "/adam/dense/weights_m"), created with zeros of the step's dtype, and so
// saved and restored by checkpoints with the model.
func (s *Step) Slot(i int, name string) *model.Variable { return s.ctx.slot(s.Vars[i], name) }

// State returns the current value of slot name of variable i.
func (s *Step) State(i int, name string) *Node { return s.Slot(i, name).NodeValue(s.Graph) }

// SetState stores a new value of slot name of variable i (kept unchanged on the steps a
// gate such as [Accumulate] skips).
func (s *Step) SetState(i int, name string, x *Node) {
	v := s.Slot(i, name)
	x = ConvertDType(x, s.DType)
	if s.gate != nil {
		x = Where(s.gate, x, v.NodeValue(s.Graph))
	}
	v.SetNodeValue(x)
}

// EMA updates slot name of variable i to beta*old + (1-beta)*x and returns the new value.
func (s *Step) EMA(i int, name string, beta float64, x *Node) *Node {
	m := ema(s.State(i, name), beta, x)
	s.SetState(i, name, m)
	return m
}

// Counter increments the int64 counter called name in the optimizer's state scope and
// returns its new value as the step's dtype. Inside a gate such as [Accumulate] it counts
// only the steps that apply an update.
func (s *Step) Counter(name string) *Node {
	if s.gate == nil {
		return s.ctx.counter(name)
	}
	return s.counterIf(name, nil)
}

// counterIf increments the int64 counter called name where cond (a boolean scalar, nil for
// true) and the step's gate hold, and returns its new value as the step's dtype.
func (s *Step) counterIf(name string, cond *Node) *Node {
	switch {
	case s.gate == nil && cond == nil:
		return s.ctx.counter(name)
	case cond == nil:
		cond = s.gate
	case s.gate != nil:
		cond = LogicalAnd(s.gate, cond)
	}
	return ConvertDType(s.ctx.counterIntIf(name, cond), s.DType)
}

// HasLoss reports whether the step's gradients are autodiff gradients of the loss built in
// the same graph, as when the chain's step is built with UpdateGraph: only then can
// [Step.HessianVectorProducts] and [Step.HutchinsonDiagonal] differentiate them again.
// Through UpdateGraphWithGradients (zeroth-order estimates, local SGD's inner step, SAM)
// the chain only has gradients and HasLoss is false.
func (s *Step) HasLoss() bool { return s.loss != nil }

// needLoss panics, naming who, when the step has no loss to differentiate twice.
func (s *Step) needLoss(who string) {
	if s.loss == nil {
		exceptions.Panicf("optim.%s: needs Hessian-vector products of the loss, but chain %q was given "+
			"gradients only (UpdateGraphWithGradients, as zeroth-order estimates, local SGD and SAM call it), "+
			"not the loss: build its step with UpdateGraph(scope, graph, loss)", who, s.chain)
	}
}

// HessianVectorProducts returns H z, one product per trainable variable in the step's dtype,
// where H is the Hessian of the loss with respect to all trainable variables together and
// zs are the directions, one per variable with its shape: the gradient of
// sum_i <g_i, z_i> with z held constant, g the autodiff gradients of the loss (as the chain
// received them, whatever earlier transforms did to the updates). Each call adds a second
// backward pass to the graph. It panics when the step has no loss ([Step.HasLoss]).
func (s *Step) HessianVectorProducts(zs []*Node) []*Node {
	s.needLoss("Step.HessianVectorProducts")
	if len(zs) != len(s.loss) {
		exceptions.Panicf("optim.Step.HessianVectorProducts: got %d directions for %d trainable variables", len(zs), len(s.loss))
	}
	cast := make([]*Node, len(zs))
	for i, z := range zs {
		if z == nil || !z.Shape().EqualDimensions(s.loss[i].Shape()) {
			exceptions.Panicf("optim.Step.HessianVectorProducts: direction #%d must have the shape of variable %s, %v",
				i, s.Vars[i].Path(), s.Vars[i].Shape().Dimensions)
		}
		cast[i] = ConvertDType(z, s.loss[i].DType())
	}
	hz := hessianVectorProducts(s.loss, s.nodes, cast)
	for i := range hz {
		hz[i] = ConvertDType(hz[i], s.DType)
	}
	return hz
}

// HutchinsonDiagonal returns the Hutchinson estimate of the Hessian diagonal of the loss,
// one per trainable variable in the step's dtype, as the package's [HutchinsonDiagonal]
// computes it (probes Rademacher or, with gaussian, N(0, 1), drawn from the store's random
// number generator). probes must be in [1, MaxProbes]. It panics when the step has no loss
// ([Step.HasLoss]).
func (s *Step) HutchinsonDiagonal(probes int, gaussian bool) []*Node {
	s.needLoss("Step.HutchinsonDiagonal")
	return s.hutchinsonDiagonal(probes, gaussian)
}

// hutchinsonDiagonal is HutchinsonDiagonal once the loss is known to be there.
func (s *Step) hutchinsonDiagonal(probes int, gaussian bool) []*Node {
	if probes < 1 || probes > MaxProbes {
		exceptions.Panicf("optim.Step.HutchinsonDiagonal: probes=%d is out of range: it must be in [1, %d]", probes, MaxProbes)
	}
	diag := hutchinson(s.scope, s.loss, s.nodes, probes, gaussian)
	for i := range diag {
		diag[i] = ConvertDType(diag[i], s.DType)
	}
	return diag
}

// BiasCorrection returns 1 - beta^k for the step counter k (a scalar of the step's
// dtype), computed in float64 and then converted, as PyTorch does (it computes
// 1 - beta**step in Python's double precision): in float32, rounding beta first
// (0.999 -> 0.99900001) changes 1 - beta^k by up to ~1e-4 relative at small k.
func (s *Step) BiasCorrection(beta float64, k *Node) *Node { return BiasCorrection(beta, k, s.DType) }

// BiasCorrection returns 1 - beta^k as dtype, computed in float64 (see [Step.BiasCorrection]).
// k is a scalar step count of any numeric dtype.
func BiasCorrection(beta float64, k *Node, dtype dtypes.DType) *Node {
	k64 := ConvertDType(k, dtypes.Float64)
	return ConvertDType(OneMinus(Pow(Scalar(k.Graph(), dtypes.Float64, beta), k64)), dtype)
}

// GlobalNorm returns sqrt(sum_i ||x_i||^2) over all xs, in the dtype of xs[0]: the norm of
// all the parameters' gradients taken together, as clipping uses it.
func GlobalNorm(xs []*Node) *Node {
	if len(xs) == 0 {
		exceptions.Panicf("optim.GlobalNorm: no tensors")
	}
	return globalNorm(xs)
}

// AfterApply registers fn to be called with the new value of each parameter once the
// chain has applied the update; fn returns the value to store (weight averaging and
// lookahead use it).
func (s *Step) AfterApply(fn func(i int, w *Node) *Node) { s.after = append(s.after, fn) }

// apply writes w*(1-decay) - factor*u into the variables.
func (s *Step) apply() {
	f := s.factor()
	for i, v := range s.Vars {
		w := s.Params[i]
		if s.decay != nil {
			w = Mul(w, OneMinus(s.decay))
		}
		if f != nil {
			w = Sub(w, Mul(f, s.u[i]))
		} else {
			w = Sub(w, s.u[i])
		}
		if s.gate != nil {
			w = Where(s.gate, w, s.Params[i])
		}
		for _, fn := range s.after {
			w = fn(i, w)
		}
		s.ctx.set(v, w)
	}
}

// Chain is an [Optimizer] made of [Transform]s run in order; build it with [NewChain].
type Chain struct {
	base
	transforms []Transform
}

// NewChain returns the optimizer that runs the transforms in order on each step, then
// subtracts the resulting updates from the parameters. c gives the learning rate (the
// [LearningRateVariable] that [Step.LR] reads, times c.Schedule), the state scope and
// the dtype; name is the optimizer's [Optimizer.Name]. A chain without [ScaleByLR] (or
// [Step.ScaleByLR]) does not use the learning rate.
func NewChain(name string, c Common, transforms ...Transform) (*Chain, error) {
	ck := &checker{opt: "NewChain"}
	c.check(ck)
	if name == "" {
		ck.fail("name is empty")
	}
	if len(transforms) == 0 {
		ck.fail("no transforms")
	}
	for i, t := range transforms {
		if t == nil {
			ck.fail("transform #%d is nil", i)
		}
	}
	if ck.err != nil {
		return nil, ck.err
	}
	return &Chain{base: c.base(name), transforms: transforms}, nil
}

// UpdateGraph implements optimizer.Interface. The transforms see the loss: they can take
// Hessian-vector products ([Step.HasLoss]).
func (o *Chain) UpdateGraph(scope *model.Scope, _ *Graph, loss *Node) {
	updateFromLoss(lossChain{o}, scope, loss)
}

// UpdateGraphWithGradients implements [Optimizer]. The transforms get the gradients only: a
// transform that needs Hessian-vector products ([ScaleByAdaHessian]) panics.
func (o *Chain) UpdateGraphWithGradients(scope *model.Scope, grads []*Node, lossDType dtypes.DType) {
	o.update(scope, grads, lossDType, false)
}

// lossChain is a Chain whose UpdateGraphWithGradients is only called by UpdateGraph, with
// the autodiff gradients of the loss.
type lossChain struct{ *Chain }

// UpdateGraphWithGradients implements [Optimizer].
func (o lossChain) UpdateGraphWithGradients(scope *model.Scope, grads []*Node, lossDType dtypes.DType) {
	o.update(scope, grads, lossDType, true)
}

// update builds one step; fromLoss says that grads are autodiff gradients of the loss.
func (o *Chain) update(scope *model.Scope, grads []*Node, lossDType dtypes.DType, fromLoss bool) {
	s := newStep(o.begin(scope, grads, lossDType))
	s.chain, s.scope = o.name, scope
	if fromLoss {
		s.loss = grads
	}
	for _, t := range o.transforms {
		t(s)
	}
	s.apply()
}

// --- Transforms -------------------------------------------------------------------------

// ScaleByLR multiplies the updates by the scheduled learning rate.
func ScaleByLR() Transform { return func(s *Step) { s.ScaleByLR() } }

// ScaleBySchedule multiplies the updates by sched's factor at the step counter (on top of
// the config's own Schedule, which ScaleByLR applies).
func ScaleBySchedule(sched Schedule) Transform {
	return func(s *Step) {
		if err := sched.Validate(); err != nil {
			exceptions.Panicf("optim.ScaleBySchedule: %v", err)
		}
		if !sched.isConstant() {
			s.ScaleBy(sched.factorGraph(s.K, s.DType))
		}
	}
}

// AddL2 adds wd*w to the gradients (coupled "L2" weight decay, as torch.optim.SGD and
// Adam's weight_decay): put it first in the chain.
func AddL2(wd float64) Transform {
	return func(s *Step) {
		if wd == 0 {
			return
		}
		for i := range s.Vars {
			s.SetUpdate(i, Add(s.Update(i), MulScalar(s.Params[i], wd)))
		}
	}
}

// AddDecayedWeights adds wd*w to the updates: decoupled weight decay (AdamW) when placed
// after the preconditioner and before ScaleByLR.
func AddDecayedWeights(wd float64) Transform { return func(s *Step) { s.AddDecayedWeights(wd) } }

// ClipByGlobalNorm scales the updates by maxNorm / max(maxNorm, ||u||) where ||u|| is the
// norm of all updates together (optax's clip_by_global_norm).
func ClipByGlobalNorm(maxNorm float64) Transform {
	return func(s *Step) {
		norm := GlobalNorm(s.Updates())
		mx := s.Scalar(maxNorm)
		s.ScaleBy(Div(mx, Max(mx, norm)))
	}
}

// ClipByValue clips every element of the updates to [-c, c].
func ClipByValue(c float64) Transform {
	return func(s *Step) {
		for i := range s.Vars {
			s.SetUpdate(i, Clip(s.Update(i), s.Scalar(-c), s.Scalar(c)))
		}
	}
}

// Momentum is PyTorch's SGD momentum (dampening 0) on the updates, slot "momentum":
// buf = mu*buf + u; u = u + mu*buf with nesterov, else buf.
func Momentum(mu float64, nesterov bool) Transform {
	return func(s *Step) {
		for i := range s.Vars {
			u := s.Update(i)
			buf := Add(MulScalar(s.State(i, "momentum"), mu), u)
			s.SetState(i, "momentum", buf)
			if nesterov {
				s.SetUpdate(i, Add(u, MulScalar(buf, mu)))
			} else {
				s.SetUpdate(i, buf)
			}
		}
	}
}

// ScaleByAdam is Adam's preconditioner with PyTorch's rules, slots "m", "v" (and "vmax"
// with amsgrad): u = m / (sqrt(v)/sqrt(1-b2^k) + eps), divided by 1-b1^k.
func ScaleByAdam(b1, b2, eps float64, amsgrad bool) Transform {
	return func(s *Step) {
		bc1 := s.BiasCorrection(b1, s.K)
		sqrtBC2 := Sqrt(s.BiasCorrection(b2, s.K))
		for i := range s.Vars {
			g := s.Update(i)
			m := s.EMA(i, "m", b1, g)
			v := s.EMA(i, "v", b2, Square(g))
			if amsgrad {
				v = Max(s.State(i, "vmax"), v)
				s.SetState(i, "vmax", v)
			}
			s.SetUpdate(i, Div(m, AddScalar(Div(Sqrt(v), sqrtBC2), eps)))
		}
		s.DivideBy(bc1)
	}
}

// Accumulate is gradient accumulation (optax's MultiSteps): it sums the updates of n
// steps in slot "acc" and, every n-th step, runs inner on their mean; on the other steps
// the parameters and inner's state keep their values. Inside inner, [Step.K] counts the
// applied steps (k/n), so bias corrections and schedules see the number of real updates.
func Accumulate(n int, inner ...Transform) Transform {
	return func(s *Step) {
		if n < 1 || n > MaxSteps {
			exceptions.Panicf("optim.Accumulate: n=%d is out of range: it must be in [1, %d]", n, MaxSteps)
		}
		if n == 1 {
			for _, t := range inner {
				t(s)
			}
			return
		}
		k := s.Counter("accumulate_step")
		fire := Equal(Mod(k, s.Scalar(float64(n))), s.Scalar(0))
		for i := range s.Vars {
			acc := Add(s.State(i, "acc"), s.Update(i))
			s.Slot(i, "acc").SetNodeValue(Where(fire, ZerosLike(acc), acc))
			s.SetUpdate(i, DivScalar(acc, float64(n)))
		}
		outerK, outerGate := s.K, s.gate
		s.K = Floor(DivScalar(k, float64(n)))
		s.KInt = ConvertDType(s.K, dtypes.Int64)
		s.gate = fire
		if outerGate != nil {
			s.gate = LogicalAnd(outerGate, fire)
		}
		for _, t := range inner {
			t(s)
		}
		s.K, s.KInt = outerK, ConvertDType(outerK, dtypes.Int64)
	}
}

// Lookahead (Zhang et al., arXiv:1907.08610) keeps slow weights in slot "slow": every
// syncEvery steps they move by alpha towards the fast weights and the fast weights are
// reset to them. The slow weights start at the parameters' values at the first step.
func Lookahead(syncEvery int, alpha float64) Transform {
	return func(s *Step) {
		if syncEvery < 1 || syncEvery > MaxSteps {
			exceptions.Panicf("optim.Lookahead: syncEvery=%d is out of range: it must be in [1, %d]", syncEvery, MaxSteps)
		}
		first := Equal(s.K, s.Scalar(1))
		sync := Equal(Mod(s.K, s.Scalar(float64(syncEvery))), s.Scalar(0))
		s.AfterApply(func(i int, w *Node) *Node {
			slow := Where(first, s.Params[i], s.State(i, "slow"))
			moved := Add(slow, MulScalar(Sub(w, slow), alpha))
			slow = Where(sync, moved, slow)
			s.SetState(i, "slow", slow)
			return Where(sync, slow, w)
		})
	}
}

// EMAWeights keeps an exponential moving average of the parameters in slot "ema"
// (ema = decay*ema + (1-decay)*w after each step, starting at the first step's new
// parameters); it does not change the update. Read it from the variable
// "/<ScopeName>/<variable scope>/<name>_ema".
func EMAWeights(decay float64) Transform {
	return func(s *Step) {
		first := Equal(s.K, s.Scalar(1))
		s.AfterApply(func(i int, w *Node) *Node {
			e := Where(first, w, ema(s.State(i, "ema"), decay, w))
			s.SetState(i, "ema", e)
			return w
		})
	}
}
