package models_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
)

func TestModelsShapesParamsAndSeeding(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		mlp := models.MLPConfig{Hidden: []int{7, 5}, Outputs: 3, Activation: "tanh"}
		cnn := models.CNNConfig{Channels: []int{4, 6}, Dense: []int{8}, Outputs: 10}
		run := func(fn models.Fn, x *tensors.Tensor, seed int64) (*model.Store, []int, float32) {
			store := model.NewStore()
			if err := train.SeedStore(store, seed); err != nil {
				t.Fatal(err)
			}
			out, err := model.CallOnce(backend, store, func(scope *model.Scope, x *graph.Node) *graph.Node { return fn(scope, x) }, x)
			if err != nil {
				t.Fatal(err)
			}
			var first float32
			tensors.MustConstFlatData(out, func(f []float32) { first = f[0] })
			return store, out.Shape().Dimensions, first
		}
		store, dims, _ := run(mlp.Fn(), tensors.FromShape(tensorShape(4, 6)), 1)
		trainable := 0
		for v := range store.IterVariables() {
			if v.Trainable {
				trainable += v.Shape().Size()
			}
		}
		if len(dims) != 2 || dims[0] != 4 || dims[1] != 3 || trainable != mlp.NumParams(6) {
			t.Fatalf("MLP: output %v, %d parameters (want [4 3], %d)", dims, trainable, mlp.NumParams(6))
		}
		ones := tensors.FromShape(tensorShape(2, 8, 8, 1))
		tensors.MustMutableFlatData(ones, func(f []float32) {
			for i := range f {
				f[i] = 1
			}
		})
		_, dims, c1 := run(cnn.Fn(), ones, 3)
		if len(dims) != 2 || dims[0] != 2 || dims[1] != 10 {
			t.Fatalf("CNN output %v, want [2 10]", dims)
		}
		_, _, c2 := run(cnn.Fn(), ones, 3)
		_, _, c3 := run(cnn.Fn(), ones, 4)
		if c1 != c2 || c1 == c3 {
			t.Fatalf("CNN initialisation is not seeded: %g %g %g", c1, c2, c3)
		}
	})
}

// TestAccuracyCountsArgMaxHits feeds fixed logits (the identity model) and labels: the
// accuracy is the fraction of rows whose arg-max is the label.
func TestAccuracyCountsArgMaxHits(t *testing.T) {
	identity := func(_ *model.Scope, x *graph.Node) *graph.Node { return x }
	logits := [][]float32{{3, 1, 0}, {0, 2, 1}, {0, 1, 5}, {4, 0, 1}, {1, 1, 0}}
	// Rows 0, 1 and 3 hit; row 4 ties classes 0 and 1, and arg-max picks the first: a miss.
	labels := [][]int32{{0}, {1}, {0}, {0}, {1}}
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		acc := models.Accuracy(identity)
		out, err := model.CallOnce(backend, model.NewStore(), func(scope *model.Scope, x, y *graph.Node) *graph.Node {
			return acc(scope, []*graph.Node{x}, []*graph.Node{y})
		}, logits, labels)
		if err != nil {
			t.Fatal(err)
		}
		if got := out.Value().(float32); got != 0.6 {
			t.Fatalf("accuracy = %g, want 0.6 (3 of 5)", got)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{models.MLPConfig{Hidden: []int{0}, Outputs: 1}.Validate(), "Hidden[0]=0"},
		{models.MLPConfig{Outputs: 0}.Validate(), "Outputs=0"},
		{models.MLPConfig{Outputs: 1, Activation: "nope"}.Validate(), `Activation="nope"`},
		{models.CNNConfig{Outputs: 1}.Validate(), "Channels is empty"},
		{models.CNNConfig{Channels: []int{2}, Kernel: -1, Outputs: 1}.Validate(), "Kernel=-1"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("want an error containing %q, got %v", tc.want, tc.err)
		}
	}
}

func tensorShape(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }

// TestClassifierRejectsOutOfRangeLabels: a label outside [0, classes) (here -1, 3 or 2^30
// with 3 classes) gave a loss of -0 for its example and trained silently; the run must now
// stop at step 1 with a NonFiniteError, and CheckLabels must name the label, the example
// and the range.
func TestClassifierRejectsOutOfRangeLabels(t *testing.T) {
	mlp := models.MLPConfig{Hidden: []int{4}, Outputs: 3}
	dataset := func(bad int32) *data.Dataset {
		x := make([]float32, 8*2)
		y := make([]int32, 8)
		for i := range y {
			x[2*i], x[2*i+1] = float32(i)/8, float32(i%3)
			y[i] = int32(i % 3)
		}
		y[5] = bad
		ds, err := data.New("labels", []data.Column{{Dims: []int{2}, Float32: x}}, []data.Column{{Dims: []int{1}, Int32: y}})
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		for _, bad := range []int32{-1, 3, 1 << 30} {
			opt, err := optim.NewSGD(optim.DefaultSGD())
			if err != nil {
				t.Fatal(err)
			}
			hist, err := train.Run(backend, model.NewStore(), models.Classifier(mlp.Fn()), dataset(bad),
				train.FirstOrder(opt, "sgd"), train.Config{Steps: 3, Seed: 1})
			var nf *train.NonFiniteError
			if !errors.As(err, &nf) {
				t.Fatalf("label %d: want a NonFiniteError at step 1, got %v (history of %d steps)", bad, err, hist.Len())
			}
			if nf.Step != 1 || nf.Variable != "loss" || !strings.Contains(err.Error(), "class label outside [0, classes)") ||
				strings.Contains(err.Error(), "lower the learning rate") {
				t.Errorf("label %d: error %q: want a non-finite loss at step 1 pointing at the data, not the learning rate", bad, err)
			}
			err = models.CheckLabels(dataset(bad), 3)
			want := fmt.Sprintf("label %d of example 5 is outside the valid range [0, 3)", bad)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("CheckLabels with label %d: got %v, want an error containing %q", bad, err, want)
			}
		}
		// Valid labels: no error from either.
		opt, _ := optim.NewSGD(optim.DefaultSGD())
		if _, err := train.Run(backend, model.NewStore(), models.Classifier(mlp.Fn()), dataset(2), train.FirstOrder(opt, "sgd"),
			train.Config{Steps: 3, Seed: 1}); err != nil {
			t.Fatalf("valid labels: %v", err)
		}
		if err := models.CheckLabels(dataset(2), 3); err != nil {
			t.Errorf("CheckLabels on valid labels: %v", err)
		}
	})
}
