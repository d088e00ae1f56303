package zo

import (
	"fmt"
	"strings"
	"sync"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/goptlab/goptlab/mlx/train"
)

// gradientRule is a first-order rule that can take gradients computed elsewhere.
type gradientRule interface {
	UpdateGraphWithGradients(scope *model.Scope, grads []*graph.Node, lossDType dtypes.DType)
}

// ZO is a zeroth-order stepper; it implements train.Stepper and train.AfterStepper.
// Create it with [New].
type ZO struct {
	cfg   Config
	scope string

	mu    sync.Mutex
	trace []StepTrace
}

var (
	_ train.Stepper      = (*ZO)(nil)
	_ train.AfterStepper = (*ZO)(nil)
)

// New validates cfg and returns the stepper.
func New(cfg Config) (*ZO, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	scope := cfg.Scope
	if scope == "" {
		scope = "/zo"
	}
	if !strings.HasPrefix(scope, "/") {
		scope = "/" + scope
	}
	return &ZO{cfg: cfg, scope: scope}, nil
}

// Config returns the stepper's configuration.
func (z *ZO) Config() Config { return z.cfg }

// Name implements train.Stepper.
func (z *ZO) Name() string {
	switch {
	case z.cfg.Name != "":
		return z.cfg.Name
	case z.cfg.Rule != nil:
		return "zo-" + strings.ToLower(strings.TrimPrefix(fmt.Sprintf("%T", z.cfg.Rule), "*"))
	case z.cfg.Momentum > 0:
		return "zo-momentum"
	default:
		return "zo-sgd"
	}
}

// LossEvalsPerStep implements train.Stepper: two forward passes per direction.
func (z *ZO) LossEvalsPerStep() int { return 2 * z.cfg.Directions }

// Seed is the random state (GoMLX's Philox RNG state, 3 uint64) from which one direction's
// z is regenerated.
type Seed [3]uint64

// Paths of the stepper's own variables, under its scope.
const (
	rngName    = "rng"        // uint64[3]: the state from which each step's seeds are split
	seedsName  = "last_seeds" // uint64[m, 3]: the seeds of the last step
	gprojName  = "last_gproj" // [m]: the projected gradients of the last step
	bufferName = "momentum"   // prefix of the momentum buffers
)

// params returns the variables a step perturbs: the trainable float variables outside the
// stepper's scope, in Store order (the fixed order in which z is generated).
func (z *ZO) params(store *model.Store) []*model.Variable {
	var out []*model.Variable
	for v := range store.IterVariables() {
		p := v.Path()
		if !v.Trainable || !v.DType().IsFloat() || p == z.scope || strings.HasPrefix(p, z.scope+"/") {
			continue
		}
		out = append(out, v)
	}
	return out
}

// rngVar returns the stepper's RNG state, created the first time from the Store's
// model.ParamInitialSeed (0 if unset), on a stream separate from the initialisation's.
func (z *ZO) rngVar(store *model.Store) *model.Variable {
	path := z.scope + "/" + rngName
	if v := store.GetVariable(path); v != nil {
		return v
	}
	seed := model.GetParamOr(store.RootScope(), model.ParamInitialSeed, int64(0))
	state, err := graph.RNGStateFromSeed(seed ^ 0x5A0E_5EED_2E70_0001)
	if err != nil {
		panic(err)
	}
	v, err := store.CreateVariable(path, state)
	if err != nil {
		panic(err)
	}
	return v.SetTrainable(false)
}

// BuildStep implements train.Stepper. It is a graph-building function and panics on error.
func (z *ZO) BuildStep(scope *model.Scope, lossFn train.LossFn, inputs, labels []*graph.Node) *graph.Node {
	if len(inputs) == 0 {
		exceptions.Panicf("zo: BuildStep needs at least one input")
	}
	g := inputs[0].Graph()
	store := scope.Store()
	vars := z.params(store)
	if len(vars) == 0 {
		// The variables are created by a first evaluation (train.Run does this before building the step,
		// so this extra forward pass only happens when the stepper is used on its own).
		_ = lossFn(scope.ResetVisited(), inputs, labels)
		vars = z.params(store)
		if len(vars) == 0 {
			exceptions.Panicf("zo: the loss has no trainable float variables to optimize")
		}
	}
	m := z.cfg.Directions

	// One split of the stepper's state per step gives the step's seed; m more splits give one seed per direction.
	rng := z.rngVar(store)
	next, stepState := graph.RNGStateSplit(rng.NodeValue(g))
	rng.SetNodeValue(next)
	seeds := make([]*graph.Node, m)
	for k := range m {
		stepState, seeds[k] = graph.RNGStateSplit(stepState)
	}

	theta := make([]*graph.Node, len(vars))
	for i, v := range vars {
		theta[i] = v.NodeValue(g)
	}
	masks := z.masks(theta)
	shapesList := make([]shapes.Shape, len(vars))
	for i, v := range vars {
		shapesList[i] = v.Shape()
	}
	eval := func() *graph.Node {
		loss := lossFn(scope.ResetVisited(), inputs, labels)
		if loss == nil || !loss.Shape().IsScalar() || !loss.DType().IsFloat() {
			exceptions.Panicf("zo: the loss must be a float scalar, got %v", loss)
		}
		return loss
	}
	var lossSum, after *graph.Node
	gproj := make([]*graph.Node, m)
	var sums []*graph.Node // Σ_k (g_k/ε) d_k so far, per variable.
	for k := range m {
		plus := z.plusPoints(theta, z.maskedZ(seeds[k], shapesList, masks), after)
		for i, v := range vars {
			v.SetNodeValue(plus[i])
		}
		lossPlus := eval()
		minus := minusPoints(theta, plus, lossPlus)
		for i, v := range vars {
			v.SetNodeValue(minus[i])
		}
		lossMinus := eval()
		gproj[k] = computeOnce(graph.DivScalar(graph.Sub(lossPlus, lossMinus), 2*z.cfg.Epsilon))
		pair := graph.Add(lossPlus, lossMinus)
		if lossSum == nil {
			lossSum = pair
		} else {
			lossSum = graph.Add(lossSum, pair)
		}
		// Accumulate (g_k/ε)·(θ - θ-) now, so that θ- need not be kept until the end.
		sums = accumulate(sums, z.coefficient(gproj[k]), displacements(theta, minus), k, m)
		if k < m-1 {
			// The next direction starts once this one is accumulated (0·sum[0] per variable).
			after = lossMinus
			for _, sum := range sums {
				after = dependOn(after, firstEntry(sum))
			}
		}
	}
	for i, v := range vars {
		v.SetNodeValue(theta[i]) // Back to θ, exactly.
	}
	gprojVec := graph.Stack(gproj, 0)
	seedsMat := graph.Stack(seeds, 0)
	z.applyUpdate(scope, vars, theta, shapesList, masks, seedsMat, gprojVec, sums)

	// Expose the step's seeds and projected gradients as (small) variables.
	stateScope := store.Scope(z.scope)
	seedsVar := stateScope.VariableWithShape(seedsName, seedsMat.Shape()).SetTrainable(false)
	seedsVar.SetNodeValue(seedsMat)
	gprojVar := stateScope.VariableWithShape(gprojName, gprojVec.Shape()).SetTrainable(false)
	gprojVar.SetNodeValue(gprojVec)

	// The reported loss is the mean of the 2m perturbed losses: L(θ) up to O(ε²).
	return graph.DivScalar(lossSum, float64(2*m))
}

// masks returns one mask node per variable (nil entries: no mask).
func (z *ZO) masks(theta []*graph.Node) []*graph.Node {
	out := make([]*graph.Node, len(theta))
	if z.cfg.Mask == nil {
		return out
	}
	for i, t := range theta {
		out[i] = z.cfg.Mask.build(i, t)
	}
	return out
}

// maskedZ returns the direction of seed, masked.
func (z *ZO) maskedZ(seed *graph.Node, shapesList []shapes.Shape, masks []*graph.Node) []*graph.Node {
	zs := sampleZ(seed, shapesList, z.cfg.Distribution)
	for i := range zs {
		if masks[i] != nil {
			zs[i] = graph.Mul(zs[i], masks[i])
		}
	}
	return zs
}

// plusPoints returns θ+ = θ + ε·z per variable, computed only once the scalar after (if
// not nil) is.
//
// One direction of a step evaluates the loss at θ+ and at θ- = 2θ - θ+ ([minusPoints]), and
// its update moves along the displacement that was evaluated, (θ - θ-)/ε, which is z up to
// the rounding of θ± (the central difference is exact along it). So z is generated once,
// fused into θ+, and neither stored nor generated again: with θ± and the new θ computed in
// one buffer per variable, a step needs one parameter copy beyond a forward pass. θ itself
// is left as it is until the update, so with lr = 0 it is restored exactly.
//
// The points are built last variable first, each after the one before (ε + 0·x, where x is
// the previous point's first entry or after: a data dependency XLA cannot remove, and ε
// unless x is not finite, when the step is void anyway). XLA's buffer assignment then keeps
// θ+, θ- and the new value of each variable in one buffer; built in any order, variables of
// equal size could get each other's output buffer, which costs a parameter copy. The
// dependency on after keeps XLA from building the points of all directions up front.
//
// The step and Replay build θ+, θ- and the displacements with these same functions, with
// the same dependencies (only their values differ), so that XLA compiles them alike and the
// updates agree bit for bit.
func (z *ZO) plusPoints(theta, dirs []*graph.Node, after *graph.Node) []*graph.Node {
	out := make([]*graph.Node, len(theta))
	for i := len(theta) - 1; i >= 0; i-- {
		eps := graph.Scalar(theta[i].Graph(), theta[i].DType(), z.cfg.Epsilon)
		out[i] = graph.Add(theta[i], graph.Mul(dependOn(eps, after), dirs[i]))
		after = firstEntry(out[i])
	}
	return out
}

// minusPoints returns θ- = 2θ - θ+ per variable (θ - ε·z up to rounding, without z),
// computed once the scalar after is.
func minusPoints(theta, plus []*graph.Node, after *graph.Node) []*graph.Node {
	out := make([]*graph.Node, len(theta))
	for i := range theta {
		two := dependOn(graph.Scalar(theta[i].Graph(), theta[i].DType(), 2), after) // 2θ is exact.
		out[i] = graph.Sub(graph.Mul(two, theta[i]), plus[i])
	}
	return out
}

// dependOn returns the scalar x + 0·after (x if after is nil or finite): a data dependency
// that schedules x's consumers after after.
func dependOn(x, after *graph.Node) *graph.Node {
	if after == nil {
		return x
	}
	g := x.Graph()
	return graph.Add(x, graph.Mul(graph.ScalarZero(g, x.DType()), graph.ConvertDType(after, x.DType())))
}

// firstEntry returns x's first entry, as a scalar: a cheap scheduling dependency on x.
func firstEntry(x *graph.Node) *graph.Node {
	return graph.Reshape(graph.Slice(graph.Reshape(x, -1), graph.AxisRange(0, 1)))
}

// displacements returns θ - θ- per variable: ε times the direction that was evaluated.
func displacements(theta, minus []*graph.Node) []*graph.Node {
	out := make([]*graph.Node, len(theta))
	for i := range theta {
		out[i] = graph.Sub(theta[i], minus[i])
	}
	return out
}

// coefficient returns g/ε, the weight of a direction's displacement θ - θ- in the estimate.
func (z *ZO) coefficient(gproj *graph.Node) *graph.Node {
	return graph.DivScalar(gproj, z.cfg.Epsilon)
}

// accumulate adds c_k·d_k (the k-th of m directions: c_k = g_k/ε, d_k = θ - θ-) to the
// running sums Σ c_k d_k, one per variable (sums is nil for k = 0). Except after the last
// direction, each sum is divided by an exact 1 that XLA cannot see through ([opaqueOne]):
// that keeps XLA from fusing the m terms into one loop at the end, which would hold the m
// directions' points until then; each partial sum is stored instead, and the points freed.
// The step and Replay both use it. The sums are taken by [sumOfProducts], whose rounding
// does not depend on how XLA fuses them.
func accumulate(sums []*graph.Node, ck *graph.Node, ds []*graph.Node, k, m int) []*graph.Node {
	out := make([]*graph.Node, len(ds))
	for i := range ds {
		c := graph.ConvertDType(ck, ds[i].DType())
		if sums == nil {
			out[i] = graph.Mul(c, ds[i])
		} else {
			out[i] = sumOfProducts(sums[i], c, ds[i])
		}
		if k < m-1 {
			out[i] = graph.Div(out[i], graph.ConvertDType(opaqueOne(ck), ds[i].DType()))
		}
	}
	return out
}

// computeOnce returns x divided by an exact 1 that XLA cannot see through ([opaqueOne]), so
// that XLA computes x once instead of duplicating its computation into each consumer. The
// projected gradient needs it: the step uses it in the update and stores it for the trace,
// and where the loss ends in a product (L = q·s, as with a data-dependent factor), XLA
// duplicated L+ - L- into both and contracted q+·s - q-·s into a fused multiply-add in one
// copy only, so the recorded value differed from the one applied by an ulp, and so did
// Replay (TestReplayBitForBitDataDependentLoss).
func computeOnce(x *graph.Node) *graph.Node {
	return graph.Div(x, graph.ConvertDType(opaqueOne(x), x.DType()))
}

// opaqueOne returns a float32 scalar 1 computed from x (a float or 32-bit scalar) as the
// bits (x | 1.0f) & 1.0f, which XLA does not simplify: dividing by it is exact, and keeps
// XLA from duplicating the dividend into several consumers (it does not recompute a
// division), so that the dividend is computed once and stored.
func opaqueOne(x *graph.Node) *graph.Node {
	g := x.Graph()
	if x.DType() == dtypes.Float64 {
		x = graph.ConvertDType(x, dtypes.Float32)
	}
	if x.DType() != dtypes.Uint32 {
		x = graph.Bitcast(x, dtypes.Uint32)
	}
	oneBits := graph.Scalar(g, dtypes.Uint32, uint32(0x3f800000))
	return graph.Bitcast(graph.BitwiseAnd(graph.BitwiseOr(x, oneBits), oneBits), dtypes.Float32)
}

// applyUpdate applies the update of one step, given the values θ at its start, the seeds
// (uint64 [m, 3]), the projected gradients ([m]) and Σ_k (g_k/ε)(θ - θ-_k) per variable.
// The step and Replay both use it; the step passes the sums it accumulated, Replay passes
// nil to regenerate z from the seeds, rebuild the points and accumulate them the same way.
//
// Bit-for-bit replays: XLA contracts a·b+c into fused multiply-adds when both operations
// land in the same fused loop. Every multiplication here feeds an addition in the same
// elementwise chain, in the step and in Replay alike (z and the points are made of such
// chains), so both graphs fuse the update the same way and round it identically (the
// points too: see [ZO.plusPoints]). Where two products meet in one sum
// (weight decay, momentum), which one gets fused would be up to the compiler: those sums
// are taken by [sumOfProducts] in float64, where the products are exact. Hyperparameters
// are rounded to the variable's dtype.
func (z *ZO) applyUpdate(scope *model.Scope, vars []*model.Variable, theta []*graph.Node, shapesList []shapes.Shape,
	masks []*graph.Node, seeds, gproj *graph.Node, sums []*graph.Node) {
	g := seeds.Graph()
	m := seeds.Shape().Dimensions[0]
	hyper := func(v float64, dt dtypes.DType) *graph.Node { return graph.Scalar(g, dt, v) }
	grads := sums
	if grads == nil {
		for k := range m {
			seed := graph.Reshape(graph.Slice(seeds, graph.AxisElem(k)), 3)
			gk := graph.Reshape(graph.Slice(gproj, graph.AxisElem(k)))
			// The same points as the step's, with the same kind of dependencies: on nothing for
			// the first direction, then on the sums so far; θ- on the projected gradient.
			var after *graph.Node
			if grads != nil {
				after = gk
				for _, sum := range grads {
					after = dependOn(after, firstEntry(sum))
				}
			}
			plus := z.plusPoints(theta, z.maskedZ(seed, shapesList, masks), after)
			minus := minusPoints(theta, plus, gk)
			grads = accumulate(grads, z.coefficient(gk), displacements(theta, minus), k, m)
		}
	}
	grads = append([]*graph.Node(nil), grads...)
	for i, v := range vars {
		dt := v.DType()
		if m > 1 {
			grads[i] = graph.DivScalar(grads[i], float64(m))
		}
		if z.cfg.WeightDecay > 0 && v.Shape().Rank() >= 2 {
			grads[i] = sumOfProducts(grads[i], hyper(z.cfg.WeightDecay, dt), theta[i])
		}
	}
	if z.cfg.Rule != nil {
		z.cfg.Rule.(gradientRule).UpdateGraphWithGradients(scope, grads, gproj.DType())
		return
	}
	for i, v := range vars {
		dt := v.DType()
		step := grads[i]
		if z.cfg.Momentum > 0 {
			buf := scope.Store().Scope(z.scope+"/"+bufferName).
				WithInitializer(graph.Zeros).
				VariableWithShape(strings.ReplaceAll(strings.TrimPrefix(v.Path(), "/"), "/", "."), v.Shape()).
				SetTrainable(false)
			step = sumOfProducts(step, hyper(z.cfg.Momentum, dt), buf.NodeValue(g))
			buf.SetNodeValue(step)
		}
		v.SetNodeValue(graph.Sub(theta[i], graph.Mul(hyper(z.cfg.LR, dt), step)))
	}
}

// sumOfProducts returns x + a·b rounded to x's dtype, the same whether or not the backend
// fuses the multiply-add: for dtypes narrower than float64, a·b is taken in float64, where
// the product of two values representable in the narrower dtype is exact, and the sum is
// rounded to float64, then to x's dtype. x is typically itself a product (g·z), so this
// also removes the choice of which of two products to fuse.
func sumOfProducts(x, a, b *graph.Node) *graph.Node {
	dt := x.DType()
	if dt == dtypes.Float64 {
		return graph.Add(x, graph.Mul(a, b))
	}
	wide := func(n *graph.Node) *graph.Node { return graph.ConvertDType(n, dtypes.Float64) }
	return graph.ConvertDType(graph.Add(wide(x), graph.Mul(wide(a), wide(b))), dt)
}
