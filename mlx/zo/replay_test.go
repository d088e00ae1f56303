package zo_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
	"github.com/goptlab/goptlab/mlx/zo"
)

// concatLoss is a quadratic of two variables joined with Concatenate, times 1 + mean(x²)
// of the batch when there is one: a loss that ends in a product, L = q·s, so that
// L+ - L- = q+·s - q-·s is a candidate for a fused multiply-add.
func concatLoss(dtype dtypes.DType) train.LossFn {
	return func(scope *model.Scope, inputs, _ []*graph.Node) *graph.Node {
		g := inputs[0].Graph()
		w := scope.GetVariable("w").NodeValue(g)
		b := scope.GetVariable("b").NodeValue(g)
		x := graph.Concatenate([]*graph.Node{graph.Reshape(w, -1), b}, 0)
		n := x.Shape().Dimensions[0]
		a := make([]float64, n)
		c := make([]float64, n)
		for i := range a {
			a[i], c[i] = 0.5+0.37*float64(i%7), 0.3*math.Sin(float64(i))
		}
		d := graph.Sub(x, graph.ConvertDType(graph.Const(g, c), dtype))
		q := graph.ReduceAllSum(graph.Mul(graph.ConvertDType(graph.Const(g, a), dtype), graph.Square(d)))
		if in := inputs[0]; in.Rank() == 2 { // a batch of train.Run: scale by 1 + mean(x²)
			q = graph.Mul(q, graph.OnePlus(graph.ConvertDType(graph.ReduceAllMean(graph.Square(in)), dtype)))
		}
		return q
	}
}

func concatStore(t *testing.T, dtype dtypes.DType) *model.Store {
	t.Helper()
	store := model.NewStore()
	if err := train.SeedStore(store, 3); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, n int, dims ...int) {
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = math.Cos(1.3*float64(i)) + 0.1
		}
		var tn *tensors.Tensor
		if dtype == dtypes.Float32 {
			f := make([]float32, n)
			for i, x := range vals {
				f[i] = float32(x)
			}
			tn = tensors.FromFlatDataAndDimensions(f, dims...)
		} else {
			tn = tensors.FromFlatDataAndDimensions(vals, dims...)
		}
		if _, err := store.RootScope().CreateVariable(name, tn); err != nil {
			t.Fatal(err)
		}
	}
	mk("w", 48, 6, 8)
	mk("b", 7, 7)
	return store
}

func storeFloats(t *testing.T, store *model.Store) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for v := range store.IterVariables() {
		if !v.Trainable {
			continue
		}
		val := v.MustValue()
		switch f := val.Value().(type) {
		case [][]float32:
			for _, r := range f {
				for _, x := range r {
					out[v.Path()] = append(out[v.Path()], float64(x))
				}
			}
		case [][]float64:
			for _, r := range f {
				out[v.Path()] = append(out[v.Path()], r...)
			}
		case []float32:
			for _, x := range f {
				out[v.Path()] = append(out[v.Path()], float64(x))
			}
		case []float64:
			out[v.Path()] = append(out[v.Path()], f...)
		default:
			t.Fatalf("%s: unexpected %T", v.Path(), f)
		}
	}
	return out
}

// TestReplayBitForBitDataDependentLoss trains on a quadratic built with Concatenate and
// scaled by a function of the batch (where XLA CPU was measured 1 ulp off after a few
// steps: the projected gradient it recorded was not the one it applied), through
// train.Run, and requires Replay to give the same bits.
func TestReplayBitForBitDataDependentLoss(t *testing.T) {
	const steps = 30
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		for _, dtype := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
			for _, cfg := range []zo.Config{
				{LR: 0.002, Epsilon: 1e-3, Directions: 1, Trace: true},
				{LR: 0.002, Epsilon: 1e-3, Directions: 3, Momentum: 0.9, WeightDecay: 0.01, Trace: true},
				{LR: 0.002, Epsilon: 1e-3, Directions: 2, Distribution: zo.Rademacher, Mask: zo.MagnitudeMask(0.5), Trace: true},
				{Epsilon: 1e-3, Directions: 2, Rule: mustAdam(), Mask: zo.RandomMask(0.5, 3), Trace: true},
			} {
				t.Run(fmt.Sprintf("%s/m%d/%v/%v", dtype, cfg.Directions, cfg.Distribution, cfg.Rule != nil), func(t *testing.T) {
					if cfg.Rule != nil {
						cfg.Rule = mustAdam()
					}
					trained := concatStore(t, dtype)
					replayed := concatStore(t, dtype)
					z, err := zo.New(cfg)
					if err != nil {
						t.Fatal(err)
					}
					loss := concatLoss(dtype)
					ds, err := data.TwoSpirals(64, 1, 0.05, 3)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := train.Run(backend, trained, loss, ds, z, train.Config{Steps: steps, BatchSize: 16, Seed: 21}); err != nil {
						t.Fatal(err)
					}
					z2, _ := zo.New(cfg)
					if err := z2.Replay(backend, replayed, z.Trace()); err != nil {
						t.Fatal(err)
					}
					want, got := storeFloats(t, trained), storeFloats(t, replayed)
					bad := 0
					for p, w := range want {
						for i := range w {
							if math.Float64bits(w[i]) != math.Float64bits(got[p][i]) {
								if bad == 0 {
									t.Errorf("%s[%d]: replayed %.17g, trained %.17g", p, i, got[p][i], w[i])
								}
								bad++
							}
						}
					}
					if bad > 0 {
						t.Errorf("%d elements differ after %d steps", bad, steps)
					}
				})
			}
		}
	})
}

func mustAdam() *optim.Adam {
	c := optim.DefaultAdam()
	c.LR, c.ScopeName = 0.002, "zoadam"
	o, err := optim.NewAdam(c)
	if err != nil {
		panic(err)
	}
	return o
}

// TestSampleZByPath checks that ZO.SampleZ gives, for each variable by path, the direction a
// recorded step moved it along: on a linear loss one step of one direction moves θ by
// -lr·g·z (up to rounding), for both variables of a two-variable model.
func TestSampleZByPath(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		store := concatStore(t, dtypes.Float64)
		before := storeFloats(t, store)
		z, err := zo.New(zo.Config{LR: 0.1, Epsilon: 1e-3, Directions: 1, Trace: true})
		if err != nil {
			t.Fatal(err)
		}
		linear := func(scope *model.Scope, inputs, _ []*graph.Node) *graph.Node {
			g := inputs[0].Graph()
			w, b := scope.GetVariable("w").NodeValue(g), scope.GetVariable("b").NodeValue(g)
			return graph.Add(graph.MulScalar(graph.ReduceAllSum(w), 2), graph.MulScalar(graph.ReduceAllSum(b), -3))
		}
		exec, err := model.NewExec(backend, store, func(scope *model.Scope, x *graph.Node) *graph.Node {
			return z.BuildStep(scope, linear, []*graph.Node{x}, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer exec.Finalize()
		if _, err := exec.Call(float64(0)); err != nil {
			t.Fatal(err)
		}
		if err := z.AfterStep(store, 1, false); err != nil {
			t.Fatal(err)
		}
		tr := z.Trace()[0]
		zs, err := z.SampleZ(backend, store, tr.Seeds[0])
		if err != nil {
			t.Fatal(err)
		}
		after := storeFloats(t, store)
		if len(zs) != 2 {
			t.Fatalf("got %d variables, want 2 (/w and /b)", len(zs))
		}
		for path, zt := range zs {
			zv, err := tensors.CopyFlatData[float64](zt)
			if err != nil {
				t.Fatal(err)
			}
			for i := range zv {
				want := before[path][i] - 0.1*tr.GProj[0]*zv[i]
				if math.Abs(after[path][i]-want) > 1e-9*(1+math.Abs(want)) {
					t.Fatalf("%s[%d] = %.12g after the step, θ - lr·g·z = %.12g", path, i, after[path][i], want)
				}
			}
		}
	})
}
