package localsgd

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/internal/gomlxerr"
	"github.com/goptlab/goptlab/mlx/train"
)

// Test problem: a regression MLP in -> hidden (tanh, optional batch norm) -> out.
const (
	testIn     = 4
	testHidden = 6
	testOut    = 2
	testBatch  = 5
)

// fixedInit returns a deterministic initializer (the same values in every Store), so
// that two stores start from the same model without sharing a random seed.
func fixedInit(offset float64) model.VariableInitializer {
	return func(g *Graph, shape shapes.Shape) *Node {
		flat := Iota(g, shapes.Make(shape.DType, shape.Size()), 0)
		values := MulScalar(Sin(AddScalar(MulScalar(flat, 0.73), offset)), 0.5)
		return Reshape(values, shape.Dimensions...)
	}
}

// mlpLoss returns the mean squared error of the test MLP; withBN adds batch
// normalization (running mean and variance: non-trainable state) after the hidden layer.
func mlpLoss(withBN bool) train.LossFn {
	return func(scope *model.Scope, inputs, labels []*Node) *Node {
		x, y := inputs[0], labels[0]
		s := scope.In("mlp")
		dense := func(name string, in *Node, outDim int, offset float64) *Node {
			ds := s.In("%s", name)
			w := ds.WithInitializer(fixedInit(offset)).VariableWithShape("weights", shapes.Make(in.DType(), in.Shape().Dim(-1), outDim))
			b := ds.WithInitializer(fixedInit(offset+1)).VariableWithShape("biases", shapes.Make(in.DType(), outDim))
			return Add(Dot(in, w.NodeValue(in)).Product(), ExpandAxes(b.NodeValue(in), 0))
		}
		h := Tanh(dense("hidden", x, testHidden, 0.1))
		if withBN {
			h = batchNorm(s.In("bn"), h)
		}
		pred := dense("output", h, testOut, 2.3)
		return ReduceAllMean(Square(Sub(pred, y)))
	}
}

// batchNorm is batch normalization over axis 0 with running mean and variance
// (non-trainable state updated in the graph), written here because GoMLX's pure-Go
// backend lacks the BatchNormForTraining op of norm.BatchNorm.
func batchNorm(scope *model.Scope, x *Node) *Node {
	shape := shapes.Make(x.DType(), x.Shape().Dim(-1))
	scale := scope.WithInitializer(initializer.One).VariableWithShape("scale", shape)
	offset := scope.WithInitializer(initializer.Zero).VariableWithShape("offset", shape)
	meanVar := scope.WithInitializer(initializer.Zero).VariableWithShape("mean", shape).SetTrainable(false)
	varianceVar := scope.WithInitializer(initializer.One).VariableWithShape("variance", shape).SetTrainable(false)
	mean := ReduceMean(x, 0)
	centered := Sub(x, ExpandAxes(mean, 0))
	variance := ReduceMean(Square(centered), 0)
	meanVar.SetNodeValue(Add(MulScalar(meanVar.NodeValue(x), 0.9), MulScalar(mean, 0.1)))
	varianceVar.SetNodeValue(Add(MulScalar(varianceVar.NodeValue(x), 0.9), MulScalar(variance, 0.1)))
	normalized := Div(centered, ExpandAxes(Sqrt(AddScalar(variance, 1e-3)), 0))
	return Add(Mul(normalized, ExpandAxes(scale.NodeValue(x), 0)), ExpandAxes(offset.NodeValue(x), 0))
}

// fillExample draws one regression example of worker k into x (testIn values) and y
// (testOut values): inputs from a normal distribution shifted by k/2, so that the
// workers' data differ, and labels from a fixed teacher plus noise.
func fillExample(rng *rand.Rand, k int, x, y []float32) {
	sum := 0.0
	for i := range testIn {
		v := rng.NormFloat64() + float64(k)/2
		x[i] = float32(v)
		sum += v * float64(i+1) / 4
	}
	for o := range testOut {
		y[o] = float32(math.Sin(sum+float64(o)) + 0.1*rng.NormFloat64())
	}
}

// testData returns n batches of inputs [K, B, in] and labels [K, B, out] (K workers)
// drawn by fillExample.
func testData(seed uint64, steps, K int) (xs, ys []*tensors.Tensor) {
	rng := rand.New(rand.NewPCG(seed, 7))
	for range steps {
		x := make([]float32, K*testBatch*testIn)
		y := make([]float32, K*testBatch*testOut)
		for k := range K {
			for b := range testBatch {
				row := k*testBatch + b
				fillExample(rng, k, x[row*testIn:(row+1)*testIn], y[row*testOut:(row+1)*testOut])
			}
		}
		xs = append(xs, tensors.FromFlatDataAndDimensions(x, K, testBatch, testIn))
		ys = append(ys, tensors.FromFlatDataAndDimensions(y, K, testBatch, testOut))
	}
	return xs, ys
}

// workerDataset returns a regression dataset of n rows whose examples carry the K
// workers (inputs [K, testIn], labels [K, testOut]: batches [batch, K, ...], so
// WorkerAxis 1), drawn by fillExample.
func workerDataset(t *testing.T, seed uint64, n, K int) *data.Dataset {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 11))
	x := make([]float32, n*K*testIn)
	y := make([]float32, n*K*testOut)
	for r := range n {
		for k := range K {
			row := r*K + k
			fillExample(rng, k, x[row*testIn:(row+1)*testIn], y[row*testOut:(row+1)*testOut])
		}
	}
	ds, err := data.New("workers", []data.Column{{Dims: []int{K, testIn}, Float32: x}},
		[]data.Column{{Dims: []int{K, testOut}, Float32: y}})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// workerSlice returns worker k's batch of a [K, B, ...] tensor, as [B, ...].
func workerSlice(t *testing.T, x *tensors.Tensor, k int) *tensors.Tensor {
	t.Helper()
	flat := tensors.MustCopyFlatData[float32](x)
	dims := x.Shape().Dimensions
	size := len(flat) / dims[0]
	return tensors.FromFlatDataAndDimensions(append([]float32(nil), flat[k*size:(k+1)*size]...), dims[1:]...)
}

// flattenWorkers reshapes a [K, B, ...] tensor into the large batch [K*B, ...].
func flattenWorkers(x *tensors.Tensor) *tensors.Tensor {
	flat := tensors.MustCopyFlatData[float32](x)
	dims := x.Shape().Dimensions
	return tensors.FromFlatDataAndDimensions(flat, append([]int{dims[0] * dims[1]}, dims[2:]...)...)
}

// trainer runs a stepper's training step with model.Exec on one Store.
type trainer struct {
	t     *testing.T
	store *model.Store
	exec  *model.Exec
}

func newTrainer(t *testing.T, backend compute.Backend, stepper train.Stepper, lossFn train.LossFn) *trainer {
	t.Helper()
	store := model.NewStore()
	exec, err := model.NewExec(backend, store, func(scope *model.Scope, x, y *Node) *Node {
		store.SetTraining(x.Graph(), true)
		return stepper.BuildStep(scope, lossFn, []*Node{x}, []*Node{y})
	})
	if err != nil {
		t.Fatalf("creating the training exec: %v", err)
	}
	return &trainer{t: t, store: store, exec: exec}
}

// step runs one training step and returns the loss.
func (tr *trainer) step(x, y *tensors.Tensor) float64 {
	tr.t.Helper()
	out, err := tr.exec.Exec(x, y)
	if err != nil {
		tr.t.Fatalf("training step: %v", err)
	}
	loss, err := gomlxerr.ScalarFloat(out[0])
	if err != nil {
		tr.t.Fatalf("reading the loss: %v", err)
	}
	return loss
}

// values returns the flat float64 values of every variable whose path starts with prefix.
func (tr *trainer) values(prefix string) map[string][]float64 {
	tr.t.Helper()
	return storeValues(tr.t, tr.store, prefix)
}

// value returns the flat float64 values of the variable at path.
func (tr *trainer) value(path string) []float64 {
	tr.t.Helper()
	return storeValue(tr.t, tr.store, path)
}

// storeValues returns the flat float64 values of every variable of store whose path
// starts with prefix.
func storeValues(t *testing.T, store *model.Store, prefix string) map[string][]float64 {
	t.Helper()
	out := make(map[string][]float64)
	for v := range store.IterVariables() {
		if strings.HasPrefix(v.Path(), prefix) {
			out[v.Path()] = storeValue(t, store, v.Path())
		}
	}
	return out
}

// storeValue returns the flat float64 values of the variable of store at path; it fails
// the test if there is none.
func storeValue(t *testing.T, store *model.Store, path string) []float64 {
	t.Helper()
	v := store.GetVariable(path)
	if v == nil {
		t.Fatalf("no variable %q in the store", path)
	}
	value, err := v.Value()
	if err != nil {
		t.Fatalf("reading %q: %v", path, err)
	}
	switch value.DType() {
	case dtypes.Float32:
		return asFloat64s(tensors.MustCopyFlatData[float32](value))
	case dtypes.Float64:
		return tensors.MustCopyFlatData[float64](value)
	case dtypes.Int64:
		return asFloat64s(tensors.MustCopyFlatData[int64](value))
	}
	t.Fatalf("variable %q has dtype %s", path, value.DType())
	return nil
}

// asFloat64s converts values to float64.
func asFloat64s[T float32 | int64](values []T) []float64 {
	out := make([]float64, len(values))
	for i, x := range values {
		out[i] = float64(x)
	}
	return out
}

// assertClose fails if a and b differ by more than tol relative to max(1, |b|).
func assertClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(got[i] - want[i]); d > tol*math.Max(1, math.Abs(want[i])) || math.IsNaN(got[i]) {
			t.Fatalf("%s[%d] = %.9g, want %.9g (difference %.3g > tolerance %.3g)", what, i, got[i], want[i], d, tol)
		}
	}
}

// maxDiff returns the largest absolute difference between a and b.
func maxDiff(a, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}
