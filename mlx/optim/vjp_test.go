package optim

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/goptlab/goptlab/mlx/mlxtest"
)

// fdCheck compares the autodiff gradient of the scalar function f at x0 (float64, shape
// dims) with central finite differences.
func fdCheck(t *testing.T, backend compute.Backend, x0 []float64, dims []int, f func(x *Node) *Node, rtol float64) {
	t.Helper()
	exec, err := NewExec(backend, func(x *Node) []*Node {
		y := f(x)
		return []*Node{y, Gradient(y, x)[0]}
	})
	if err != nil {
		t.Fatalf("NewExec: %v", err)
	}
	eval := func(x []float64) (float64, []float64) {
		out, err := exec.Exec(tensors.FromFlatDataAndDimensions(x, dims...))
		if err != nil {
			t.Fatalf("exec: %v", err)
		}
		return scalarValue(out[0]), tensors.MustCopyFlatData[float64](out[1])
	}
	_, grad := eval(x0)
	const h = 1e-6
	scale := 0.0
	fd := make([]float64, len(x0))
	for i := range x0 {
		xp := append([]float64(nil), x0...)
		xm := append([]float64(nil), x0...)
		xp[i] += h
		xm[i] -= h
		fp, _ := eval(xp)
		fm, _ := eval(xm)
		fd[i] = (fp - fm) / (2 * h)
		scale = math.Max(scale, math.Abs(fd[i]))
	}
	if scale == 0 {
		t.Fatalf("finite differences are all zero: the check would be vacuous")
	}
	for i := range x0 {
		if math.Abs(grad[i]-fd[i]) > rtol*scale {
			t.Errorf("d/dx[%d]: autodiff %.10g, finite differences %.10g", i, grad[i], fd[i])
		}
	}
}

// secondOrder returns x -> sum(r * grad f(x)), whose gradient is the Hessian-vector product H r.
func secondOrder(f func(x *Node) *Node, r []float64) func(x *Node) *Node {
	return func(x *Node) *Node {
		grad := Gradient(f(x), x)[0]
		rv := Reshape(Const(x.Graph(), r), x.Shape().Dimensions...)
		return ReduceAllSum(Mul(rv, grad))
	}
}

// weighted returns x -> sum(w * op(x)) with fixed weights w.
func weighted(op func(x *Node) *Node, seed uint64) func(x *Node) *Node {
	return func(x *Node) *Node {
		y := op(x)
		w := Reshape(Const(x.Graph(), fixedRand(seed, y.Shape().Size(), -1, 1)), y.Shape().Dimensions...)
		return ReduceAllSum(Mul(w, y))
	}
}

func TestVJPRules(t *testing.T) {
	cases := []struct {
		name string
		dims []int
		lo   float64
		hi   float64
		f    func(x *Node) *Node
		// second: also check the Hessian-vector product (second-order rules).
		second bool
		// needs is a backend operation the case needs (skipped, saying so, where missing).
		needs compute.OpType
	}{
		{"rsqrt", []int{5}, 0.5, 2, weighted(Rsqrt, 1), true, compute.OpTypeInvalid},
		{"expm1", []int{5}, -1, 1, weighted(Expm1, 2), true, compute.OpTypeInvalid},
		{"clamp_x", []int{6}, -2, 2, weighted(func(x *Node) *Node {
			return Clamp(Scalar(x.Graph(), x.DType(), -1.0), x, Scalar(x.Graph(), x.DType(), 1.0))
		}, 3), false, compute.OpTypeInvalid},
		{"clamp_bounds", []int{1}, 0.2, 0.8, func(lo *Node) *Node {
			x := Const(lo.Graph(), []float64{-1, 0.1, 0.5, 0.9, 2})
			return ReduceAllSum(Mul(x, Clamp(Reshape(lo), x, AddScalar(Reshape(lo), 0.3))))
		}, false, compute.OpTypeInvalid},
		{"sign_and_compare", []int{5}, -1, 1, func(x *Node) *Node {
			return ReduceAllSum(Add(Mul(Sign(x), x), Where(GreaterThan(x, ZerosLike(x)), Square(x), x)))
		}, false, compute.OpTypeInvalid},
		{"maxpool", []int{1, 4, 6, 2}, -1, 1, weighted(func(x *Node) *Node {
			return Square(MaxPool(x).Window(2).Done())
		}, 4), true, compute.OpTypeInvalid},
		{"maxpool_strided_padded", []int{1, 5, 5, 1}, -1, 1, weighted(func(x *Node) *Node {
			return Square(MaxPool(x).Window(3).Strides(2).PadSame().Done())
		}, 5), true, compute.OpTypeInvalid},
		{"batchnorm", []int{4, 3, 2}, -1, 1, weighted(func(x *Node) *Node {
			g := x.Graph()
			scale := Const(g, []float64{1.5, 0.7})
			offset := Const(g, []float64{0.1, -0.2})
			y, _, _ := InternalBatchNormForTraining(x, scale, offset, 1e-3, -1)
			return Square(y)
		}, 6), true, compute.OpTypeBatchNormForTraining},
		{"batchnorm_mean_var_outputs", []int{6, 2}, -1, 1, func(x *Node) *Node {
			g := x.Graph()
			_, mean, variance := InternalBatchNormForTraining(x, OnesLike(Const(g, []float64{0, 0})),
				ZerosLike(Const(g, []float64{0, 0})), 1e-3, -1)
			return ReduceAllSum(Add(Mul(mean, Const(g, []float64{0.3, -2})), Mul(variance, Const(g, []float64{1.2, 0.5}))))
		}, false, compute.OpTypeBatchNormForTraining},
		{"conv_strided", []int{1, 5, 5, 2}, -1, 1, weighted(func(x *Node) *Node {
			k := Reshape(Const(x.Graph(), fixedRand(9, 3*3*2*2, -1, 1)), 3, 3, 2, 2)
			return Square(Convolve(x, k).Strides(2).PadSame().Done())
		}, 7), true, compute.OpTypeInvalid},
		// layers.Convolution sets strides to 1: the input gradient of such a convolution is
		// a convolution with input dilations [1, 1], whose gradient GoMLX refuses.
		{"conv_stride1", []int{2, 4, 4, 2}, -1, 1, weighted(func(x *Node) *Node {
			k := Reshape(Const(x.Graph(), fixedRand(10, 3*3*2*3, -1, 1)), 3, 3, 2, 3)
			return Square(Convolve(x, k).Strides(1).PadSame().Done())
		}, 8), true, compute.OpTypeInvalid},
		// The two-block CNN's case: the first block's kernel, differentiated twice through
		// the second block's convolution and the max-poolings.
		{"two_conv_blocks_first_kernel", []int{3, 3, 1, 2}, -1, 1, weighted(func(k1 *Node) *Node {
			g := k1.Graph()
			x := Reshape(Const(g, fixedRand(11, 2*8*8, -1, 1)), 2, 8, 8, 1)
			k2 := Reshape(Const(g, fixedRand(12, 3*3*2*3, -1, 1)), 3, 3, 2, 3)
			h := MaxPool(Tanh(Convolve(x, k1).Strides(1).PadSame().Done())).Window(2).Done()
			return MaxPool(Tanh(Convolve(h, k2).Strides(1).PadSame().Done())).Window(2).Done()
		}, 9), true, compute.OpTypeInvalid},
	}
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				skipWithout(t, backend, c.needs)
				n := 1
				for _, d := range c.dims {
					n *= d
				}
				x0 := fixedRand(uint64(100+i), n, c.lo, c.hi)
				fdCheck(t, backend, x0, c.dims, c.f, 1e-6)
				if c.second {
					t.Run("second_order", func(t *testing.T) {
						fdCheck(t, backend, x0, c.dims, secondOrder(c.f, fixedRand(uint64(200+i), n, -1, 1)), 1e-5)
					})
				}
			})
		}
	})
}

// TestVJPNodeParams fails if a GoMLX upgrade renames the private node parameters that the
// rules of vjp.go read by reflection.
func TestVJPNodeParams(t *testing.T) {
	backends := mlxtest.Backends(t)
	backend := backends[len(backends)-1].Backend
	skipWithout(t, backend, compute.OpTypeBatchNormForTraining)
	var fields []string
	exec, err := NewExec(backend, func(x *Node) *Node {
		pooled := MaxPool(x).Window(3).PadSame().Done()
		grad := Gradient(ReduceAllSum(pooled), x)[0]
		var sas *Node
		for _, n := range x.Graph().Nodes() {
			if n.Type() == NodeTypeSelectAndScatterMax {
				sas = n
			}
		}
		if sas == nil {
			panic("max-pool gradient did not create a SelectAndScatterMax node")
		}
		fields = append(fields, fmt.Sprint(mustIntsField(sas, "windowDimensions")), fmt.Sprint(mustIntsField(sas, "windowStrides")),
			fmt.Sprint(mustPaddingsField(sas, "paddings")))
		bn, _, _ := InternalBatchNormForTraining(x, OnesLike(Const(x.Graph(), []float32{0})), ZerosLike(Const(x.Graph(), []float32{0})), 0.01, -1)
		for _, n := range x.Graph().Nodes() {
			if n.Type() == NodeTypeBatchNormForTraining {
				eps, err1 := nodeField(n, "epsilon")
				axis, err2 := nodeField(n, "featureAxis")
				if err1 != nil || err2 != nil {
					panic(fmt.Sprintf("BatchNormForTraining parameters: %v, %v", err1, err2))
				}
				fields = append(fields, fmt.Sprintf("%.3g %d", eps.Float(), axis.Int()))
			}
		}
		return Add(ReduceAllSum(grad), ReduceAllSum(bn))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.Exec(tensors.FromShape(shapes.Make(dtypes.Float32, 1, 4, 4, 1))); err != nil {
		t.Fatal(err)
	}
	want := []string{"[1 3 3 1]", "[1 1 1 1]", "[[0 0] [1 1] [1 1] [0 0]]", "0.01 3"}
	if !reflect.DeepEqual(fields, want) {
		t.Errorf("node parameters read by reflection = %q, want %q", fields, want)
	}
}
