package optim

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/train"
)

// stepper is what the helpers run: an Optimizer (through UpdateGraph) or a train.Stepper.
type stepper any

// buildStep builds one training step of s on lossFn and returns the loss.
func buildStep(g *Graph, s stepper, scope *model.Scope, lossFn train.LossFn) *Node {
	dummy := func(*model.Scope) []*Node { return []*Node{ScalarZero(g, dtypes.Float64)} }
	switch o := s.(type) {
	case train.Stepper:
		return o.BuildStep(scope, lossFn, dummy(scope), nil)
	case Optimizer:
		loss := lossFn(scope, dummy(scope), nil)
		o.UpdateGraph(scope, loss.Graph(), loss)
		return loss
	}
	panic("unknown stepper")
}

// newStepExec returns an executor that runs one step of s per call.
func newStepExec(t testing.TB, backend compute.Backend, store *model.Store, s stepper, lossFn train.LossFn) *model.Exec {
	t.Helper()
	exec, err := model.NewExec(backend, store, func(scope *model.Scope, g *Graph) *Node {
		return buildStep(g, s, scope, lossFn)
	})
	if err != nil {
		t.Fatalf("NewExec: %v", err)
	}
	return exec
}

// runSteps runs n steps and returns the last loss.
func runSteps(t testing.TB, exec *model.Exec, n int) float64 {
	t.Helper()
	var last float64
	for range n {
		out, err := exec.Exec()
		if err != nil {
			t.Fatalf("step: %v", err)
		}
		last = scalarValue(out[0])
	}
	return last
}

func scalarValue(t *tensors.Tensor) float64 {
	switch v := t.Value().(type) {
	case float64:
		return v
	case float32:
		return float64(v)
	}
	panic("not a float scalar")
}

// floats returns a variable's value as float64s.
func floats(t testing.TB, v *model.Variable) []float64 {
	t.Helper()
	val, err := v.Value()
	if err != nil {
		t.Fatalf("reading %s: %v", v.Path(), err)
	}
	switch flat := val.Value().(type) {
	case float64:
		return []float64{flat}
	}
	out, err := tensors.CopyFlatData[float64](val)
	if err == nil {
		return out
	}
	f32, err := tensors.CopyFlatData[float32](val)
	if err != nil {
		t.Fatalf("reading %s: %v", v.Path(), err)
	}
	out = make([]float64, len(f32))
	for i, x := range f32 {
		out[i] = float64(x)
	}
	return out
}

// newVarDType creates a variable of the given float dtype with the given values.
func newVarDType(t testing.TB, scope *model.Scope, name string, dtype dtypes.DType, values []float64, dims ...int) *model.Variable {
	t.Helper()
	if dtype == dtypes.Float64 {
		return newVar(t, scope, name, values, dims...)
	}
	f32 := make([]float32, len(values))
	for i, x := range values {
		f32[i] = float32(x)
	}
	v, err := scope.CreateVariable(name, tensors.FromFlatDataAndDimensions(f32, dims...))
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	return v
}

// newVar creates a float64 variable in scope with the given values and dimensions.
func newVar(t testing.TB, scope *model.Scope, name string, values []float64, dims ...int) *model.Variable {
	t.Helper()
	v, err := scope.CreateVariable(name, tensors.FromFlatDataAndDimensions(values, dims...))
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	return v
}

// isClose reports |a-b| <= atol + rtol*|b|.
func isClose(a, b, rtol, atol float64) bool {
	return math.Abs(a-b) <= atol+rtol*math.Abs(b)
}

// must panics on a construction error (in tests, for settings known to be valid).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// fixedRand returns n reproducible values in [lo, hi).
func fixedRand(seed uint64, n int, lo, hi float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]float64, n)
	for i := range out {
		out[i] = lo + (hi-lo)*r.Float64()
	}
	return out
}

// skipWithout skips the test where the backend lacks the operation (GoMLX's pure-Go backend
// has no BatchNormForTraining, so batch normalization cannot train there at all).
func skipWithout(t *testing.T, backend compute.Backend, op compute.OpType) {
	t.Helper()
	if op != compute.OpTypeInvalid && !backend.Capabilities().Operations[op] {
		t.Skipf("backend %s does not implement %s (a forward operation, not a gradient rule)", backend.Name(), op)
	}
}

// decay is a cosine decay to 1% over n steps.
func decay(n int) Schedule { return Schedule{Decay: DecayCosine, DecaySteps: n, FinalFactor: 0.01} }
