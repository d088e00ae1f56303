package zo

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
)

// Mask selects which entries of each variable a ZO step perturbs (and so updates; weight
// decay still applies to all entries). Build one with [RandomMask] or [MagnitudeMask].
type Mask interface {
	// String describes the mask, e.g. "random(0.1)".
	String() string
	validate() error
	// build returns a 0/1 node with value's shape and dtype for the index-th perturbed variable.
	build(index int, value *graph.Node) *graph.Node
}

func checkFraction(fraction float64) error {
	if math.IsNaN(fraction) || fraction <= 0 || fraction > 1 {
		return fmt.Errorf("zo: mask fraction=%g out of range: must be in (0, 1]", fraction)
	}
	return nil
}

// RandomMask perturbs a fixed random subset of each variable: each entry independently with
// probability fraction, in (0, 1]. The subset is regenerated in the graph from seed and the
// variable's index at every step (never stored), so it is the same at every step.
func RandomMask(fraction float64, seed int64) Mask { return randomMask{fraction, seed} }

type randomMask struct {
	fraction float64
	seed     int64
}

func (m randomMask) String() string  { return fmt.Sprintf("random(%g, seed=%d)", m.fraction, m.seed) }
func (m randomMask) validate() error { return checkFraction(m.fraction) }

// build draws entry i with the directions' hash (normal.go), keyed by the mask's seed and
// the variable's index: it is in the subset if its word w(2i) < fraction·2^32.
func (m randomMask) build(index int, value *graph.Node) *graph.Node {
	g := value.Graph()
	threshold := math.Round(m.fraction * (1 << 32))
	if threshold >= 1<<32 {
		return graph.OnesLike(value)
	}
	// The mask's "seed": its own constant in the last word keeps it apart from any direction's.
	seed := graph.Const(g, []uint64{uint64(m.seed), 0x6D61736B_5A0E5EED, 0})
	k0, k1 := directionKeys(seed, index)
	w := evenWords(k0, k1, value.Shape().Size())
	in := graph.LessThan(w, graph.Scalar(g, dtypes.Uint32, uint32(threshold)))
	return graph.Reshape(graph.ConvertDType(in, value.DType()), value.Shape().Dimensions...)
}

// MagnitudeMask perturbs, in each variable, the entries of smallest magnitude: the
// ceil(fraction·size) smallest |θ| (plus any within 2^-32·max|θ| of the last one), recomputed
// from θ at the start of every step, as Sparse MeZO (Liu et al.) does. fraction is in (0, 1].
// The threshold is found by bisection (32 counting passes over the variable per step)
// rather than by sorting, which GoMLX's pure-Go backend does not run reliably.
func MagnitudeMask(fraction float64) Mask { return magnitudeMask{fraction} }

type magnitudeMask struct{ fraction float64 }

// bisectionSteps is the number of halvings of the threshold interval.
const bisectionSteps = 32

func (m magnitudeMask) String() string  { return fmt.Sprintf("magnitude(%g)", m.fraction) }
func (m magnitudeMask) validate() error { return checkFraction(m.fraction) }
func (m magnitudeMask) build(_ int, value *graph.Node) *graph.Node {
	size := value.Shape().Size()
	k := int(math.Ceil(m.fraction * float64(size)))
	k = max(1, min(k, size))
	abs := graph.Abs(value)
	if k == size {
		return graph.OnesLike(value)
	}
	g := value.Graph()
	// Invariant: count(|θ| <= hi) >= k. The smallest such threshold lies in [lo, hi].
	lo := graph.ScalarZero(g, value.DType())
	hi := graph.ReduceAllMax(abs)
	kNode := graph.Scalar(g, dtypes.Int32, k)
	for range bisectionSteps {
		mid := graph.DivScalar(graph.Add(lo, hi), 2)
		count := graph.ReduceAllSum(graph.ConvertDType(graph.LessOrEqual(abs, mid), dtypes.Int32))
		enough := graph.GreaterOrEqual(count, kNode)
		hi = graph.Where(enough, mid, hi)
		lo = graph.Where(enough, lo, mid)
	}
	return graph.ConvertDType(graph.LessOrEqual(abs, hi), value.DType())
}
