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
	var lossSum, after *graph.Node
	gproj := make([]*graph.Node, m)
	var sums []*graph.Node // Σ_k g_k z_k so far, per variable.
	for k := range m {
		// z_k is used for θ+εz, θ-εz and the update: XLA computes it once and keeps it (one
		// parameter copy) or, with Config.RegenerateZ, recomputes it in each (see gaussianPairs).
		zs := z.maskedZ(seeds[k], shapesList, masks, after)
		lossAt := func(sign float64, after *graph.Node) *graph.Node {
			for i, v := range vars {
				eps := graph.Scalar(g, theta[i].DType(), sign*z.cfg.Epsilon)
				if after != nil {
					// ±ε + 0·after is ±ε (or NaN if after is not finite, when the step is void anyway):
					// a data dependency that makes XLA build these perturbed parameters only once
					// `after` is computed, instead of those of all evaluations up front (m copies).
					eps = graph.Add(eps, graph.Mul(graph.ScalarZero(g, theta[i].DType()), graph.ConvertDType(after, theta[i].DType())))
				}
				v.SetNodeValue(graph.Add(theta[i], graph.Mul(eps, zs[i])))
			}
			loss := lossFn(scope.ResetVisited(), inputs, labels)
			if loss == nil || !loss.Shape().IsScalar() || !loss.DType().IsFloat() {
				exceptions.Panicf("zo: the loss must be a float scalar, got %v", loss)
			}
			return loss
		}
		plus := lossAt(+1, after)
		minus := lossAt(-1, plus)
		gproj[k] = graph.DivScalar(graph.Sub(plus, minus), 2*z.cfg.Epsilon)
		pair := graph.Add(plus, minus)
		if lossSum == nil {
			lossSum = pair
		} else {
			lossSum = graph.Add(lossSum, pair)
		}
		// Accumulate g_k z_k now, so that z_k need not be kept until the end.
		sums = accumulate(sums, gproj[k], zs, k, m)
		if k < m-1 {
			// The next direction starts once this one is accumulated (0·sum[0] per variable).
			after = minus
			for _, sum := range sums {
				first := graph.ConvertDType(graph.Reshape(graph.Slice(graph.Reshape(sum, -1), graph.AxisRange(0, 1))), after.DType())
				after = graph.Add(after, graph.Mul(graph.ScalarZero(g, after.DType()), first))
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

// maskedZ returns the direction of seed, masked; after (nil, or a scalar the direction must
// not be computed before) only schedules it.
func (z *ZO) maskedZ(seed *graph.Node, shapesList []shapes.Shape, masks []*graph.Node, after *graph.Node) []*graph.Node {
	zs := sampleZ(seed, shapesList, z.cfg.Distribution, z.cfg.RegenerateZ, after)
	for i := range zs {
		if masks[i] != nil {
			zs[i] = graph.Mul(zs[i], masks[i])
		}
	}
	return zs
}

// accumulate adds g_k·z_k (k-th of m directions) to the running sums Σ g_k z_k, one per
// variable (sums is nil for k = 0). Except after the last direction, each sum is divided by
// an exact 1 that XLA cannot see through ([opaqueOne]): that keeps XLA from fusing the m
// terms into one loop at the end, which would hold the m directions' z until then; each
// partial sum is stored instead, and z_k freed. The step and Replay both use it. The sums
// are taken by [sumOfProducts], whose rounding does not depend on how XLA fuses them (z_k
// is stored in the step and fused into the sum in Replay).
func accumulate(sums []*graph.Node, gk *graph.Node, zs []*graph.Node, k, m int) []*graph.Node {
	out := make([]*graph.Node, len(zs))
	for i := range zs {
		g := graph.ConvertDType(gk, zs[i].DType())
		if sums == nil {
			out[i] = graph.Mul(g, zs[i])
		} else {
			out[i] = sumOfProducts(sums[i], g, zs[i])
		}
		if k < m-1 {
			out[i] = graph.Div(out[i], graph.ConvertDType(opaqueOne(gk), zs[i].DType()))
		}
	}
	return out
}

// applyUpdate applies the update of one step, given the values θ at its start, the seeds
// (uint64 [m, 3]), the projected gradients ([m]) and Σ_k g_k z_k per variable. The step and
// Replay both use it; the step passes the sums it accumulated, Replay passes nil to
// regenerate z from the seeds and accumulate them the same way.
//
// Bit-for-bit replays: XLA contracts a·b+c into fused multiply-adds when both operations
// land in the same fused loop. Every multiplication here feeds an addition in the same
// elementwise chain, in the step and in Replay alike (z itself is made of such chains, cut
// only after divisions and square roots, whose results are rounded), so both graphs fuse
// the update the same way and round it identically. Where two products meet in one sum
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
			grads = accumulate(grads, gk, z.maskedZ(seed, shapesList, masks, nil), k, m)
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
		v.SetNodeValue(graph.Sub(theta[i], graph.Mul(hyper(z.cfg.LearningRate, dt), step)))
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
