package data_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/goptlab/goptlab/mlx/data"
)

func TestTwoSpiralsIsSeededAndBalanced(t *testing.T) {
	a, err := data.TwoSpirals(100, 1.5, 0.1, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := data.TwoSpirals(100, 1.5, 0.1, 7)
	c, _ := data.TwoSpirals(100, 1.5, 0.1, 8)
	if !slices.Equal(a.Inputs()[0].Float32, b.Inputs()[0].Float32) {
		t.Fatal("same seed, different points")
	}
	if slices.Equal(a.Inputs()[0].Float32, c.Inputs()[0].Float32) {
		t.Fatal("different seeds, same points")
	}
	counts := map[int32]int{}
	for _, y := range a.Labels()[0].Int32 {
		counts[y]++
	}
	if counts[0] != 50 || counts[1] != 50 || a.Len() != 100 {
		t.Fatalf("class counts %v, len %d", counts, a.Len())
	}
	// Without noise, every point lies within the unit disc.
	clean, _ := data.TwoSpirals(10, 1, 0, 1)
	x := clean.Inputs()[0].Float32
	for i := 0; i < len(x); i += 2 {
		if r := math.Hypot(float64(x[i]), float64(x[i+1])); r > 1+1e-6 {
			t.Fatalf("point %d has radius %g > 1", i/2, r)
		}
	}
}

func TestTeacherStudentLabelsComeFromTheTeacher(t *testing.T) {
	ds, teacher, err := data.TeacherStudent(20, 3, 5, 2, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	x, y := ds.Inputs()[0].Float32, ds.Labels()[0].Float32
	for i := range 20 {
		in := []float64{float64(x[3*i]), float64(x[3*i+1]), float64(x[3*i+2])}
		want := teacher.Predict(in)
		for k := range 2 {
			// Inputs were rounded to float32 after labelling: allow for that.
			if math.Abs(float64(y[2*i+k])-want[k]) > 1e-5 {
				t.Fatalf("example %d output %d: label %g, teacher %g", i, k, y[2*i+k], want[k])
			}
		}
	}
	if _, _, err := data.TeacherStudent(10, 0, 5, 2, 0, 1); err == nil || !strings.Contains(err.Error(), "in=0") {
		t.Fatalf("want an error naming in=0, got %v", err)
	}
}

func TestLinearRegressionIsExact(t *testing.T) {
	ds := data.LinearRegression()
	x, y := ds.Inputs()[0].Float32, ds.Labels()[0].Float32
	for i := range ds.Len() {
		s := data.LinearTrueBias
		for j, w := range data.LinearTrueWeights {
			s += float64(x[3*i+j]) * w
		}
		if float32(s) != y[i] {
			t.Fatalf("example %d: label %g, x·w+b = %g", i, y[i], s)
		}
	}
	if !slices.Equal(ds.Inputs()[0].Float32, data.LinearRegression().Inputs()[0].Float32) {
		t.Fatal("LinearRegression is not fixed")
	}
}

func TestBatchesCoverEachEpochOnceInSeededOrder(t *testing.T) {
	ds, err := data.New("ids", []data.Column{{Dims: []int{1}, Int32: []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ds.BatchesPerEpoch(3) != 3 {
		t.Fatalf("BatchesPerEpoch(3) = %d, want 3 (the partial batch is dropped)", ds.BatchesPerEpoch(3))
	}
	epoch := func(seed int64, e int) []int32 {
		var ids []int32
		for k := e * 3; k < e*3+3; k++ {
			in, _, err := ds.Batch(seed, 3, k)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, in[0].Value().([][]int32)[0][0], in[0].Value().([][]int32)[1][0], in[0].Value().([][]int32)[2][0])
		}
		return ids
	}
	e0, e1, again := epoch(1, 0), epoch(1, 1), epoch(1, 0)
	if !slices.Equal(e0, again) {
		t.Fatalf("batch order not reproducible: %v vs %v", e0, again)
	}
	if slices.Equal(e0, e1) {
		t.Fatalf("epochs 0 and 1 have the same order %v", e0)
	}
	for _, e := range [][]int32{e0, e1} {
		seen := map[int32]bool{}
		for _, id := range e {
			if seen[id] {
				t.Fatalf("example %d twice in one epoch: %v", id, e)
			}
			seen[id] = true
		}
	}
	if slices.Equal(e0, epoch(2, 0)) {
		t.Fatal("seeds 1 and 2 give the same order")
	}
	// The GoMLX train.Dataset view yields the same batches.
	it, err := ds.Epochs(3, 1)
	if err != nil {
		t.Fatal(err)
	}
	var fromIter []int32
	for b, err := range it.Iter() {
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range b.Inputs[0].Value().([][]int32) {
			fromIter = append(fromIter, row[0])
		}
	}
	if !slices.Equal(fromIter, e0) {
		t.Fatalf("Epochs().Iter() gave %v, Batch gave %v", fromIter, e0)
	}
}

func TestBadInputs(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{func() error { _, err := data.TwoSpirals(1, 1, 0, 1); return err }(), "n=1"},
		{func() error { _, err := data.TwoSpirals(10, 0, 0, 1); return err }(), "turns=0"},
		{func() error { _, err := data.TwoSpirals(10, 1, -1, 1); return err }(), "noise=-1"},
		{func() error {
			_, err := data.New("x", []data.Column{{Dims: []int{2}, Float32: []float32{1, 2, 3}}}, nil)
			return err
		}(), "inputs[0]"},
		{func() error {
			_, err := data.New("x", []data.Column{{Float32: []float32{1, 2}}}, []data.Column{{Int32: []int32{1}}})
			return err
		}(), "labels[0] has 1 examples, want 2"},
		{func() error { _, _, err := data.LinearRegression().Batch(1, 0, 0); return err }(), "batch size 0 out of range"},
		{func() error { _, _, err := data.LinearRegression().Rows([]int{32}); return err }(), "row 32 out of range"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("want an error containing %q, got %v", tc.want, tc.err)
		}
	}
}
