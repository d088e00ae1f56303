package data

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// checkPartition fails unless the shards cover rows 0..n-1 exactly once, none empty.
func checkPartition(t *testing.T, s Shards, n, workers int) {
	t.Helper()
	if s.Workers() != workers {
		t.Fatalf("%d shards, want %d", s.Workers(), workers)
	}
	seen := make([]bool, n)
	total := 0
	for k, rows := range s.Indices {
		if len(rows) == 0 {
			t.Fatalf("shard %d is empty", k)
		}
		for _, r := range rows {
			if r < 0 || r >= n || seen[r] {
				t.Fatalf("row %d out of range or in two shards", r)
			}
			seen[r] = true
		}
		total += len(rows)
	}
	if total != n {
		t.Fatalf("shards hold %d rows, want %d", total, n)
	}
	sum := 0
	for _, size := range s.Sizes() {
		sum += size
	}
	if sum != n {
		t.Fatalf("Sizes() sum to %d, want %d", sum, n)
	}
}

func TestShardIID(t *testing.T) {
	s, err := ShardIID(103, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	checkPartition(t, s, 103, 10)
	sizes := s.Sizes()
	if slices.Max(sizes)-slices.Min(sizes) > 1 {
		t.Fatalf("IID shard sizes %v differ by more than one", sizes)
	}
	again, _ := ShardIID(103, 10, 1)
	if fmt.Sprint(again) != fmt.Sprint(s) {
		t.Fatal("the same seed gave different shards")
	}
	other, _ := ShardIID(103, 10, 2)
	if fmt.Sprint(other) == fmt.Sprint(s) {
		t.Fatal("two seeds gave the same shards")
	}
	if slices.IsSorted(slices.Concat(s.Indices...)) {
		t.Fatal("IID shards are contiguous blocks: the rows were not shuffled")
	}
}

// labelSkew returns the mean over workers of the total-variation distance between the
// worker's label distribution and the global one.
func labelSkew(labels []int, s Shards, classes int) float64 {
	global := make([]float64, classes)
	for _, l := range labels {
		global[l] += 1 / float64(len(labels))
	}
	skew := 0.0
	for _, rows := range s.Indices {
		local := make([]float64, classes)
		for _, r := range rows {
			local[labels[r]] += 1 / float64(len(rows))
		}
		tv := 0.0
		for c := range classes {
			tv += math.Abs(local[c]-global[c]) / 2
		}
		skew += tv / float64(len(s.Indices))
	}
	return skew
}

func TestShardDirichletSkewFollowsAlpha(t *testing.T) {
	const n, classes, workers = 2000, 10, 16
	labels := make([]int, n)
	for i := range labels {
		labels[i] = (i * 7) % classes
	}
	skew := make(map[float64]float64)
	for _, alpha := range []float64{0.05, 0.5, 100} {
		s, err := ShardDirichlet(labels, workers, alpha, 3)
		if err != nil {
			t.Fatal(err)
		}
		checkPartition(t, s, n, workers)
		skew[alpha] = labelSkew(labels, s, classes)
	}
	t.Logf("mean label skew (total variation) by alpha: %v", skew)
	if !(skew[0.05] > skew[0.5] && skew[0.5] > skew[100]) {
		t.Fatalf("label skew %v does not decrease with alpha", skew)
	}
	if skew[100] > 0.15 || skew[0.05] < 0.6 {
		t.Fatalf("label skew %v: want < 0.15 for alpha 100 (near IID) and > 0.6 for alpha 0.05", skew)
	}
	a, _ := ShardDirichlet(labels, workers, 0.5, 3)
	b, _ := ShardDirichlet(labels, workers, 0.5, 3)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("the same seed gave different shards")
	}
}

// With tiny alpha most workers get no class at all: the repair must still give every
// worker an example.
func TestShardDirichletNoEmptyShard(t *testing.T) {
	labels := []int32{0, 0, 0, 1, 1, 1, 2, 2}
	for seed := range int64(20) {
		s, err := ShardDirichlet(labels, 8, 0.01, seed)
		if err != nil {
			t.Fatal(err)
		}
		checkPartition(t, s, len(labels), 8)
	}
}

func TestSampleGammaMean(t *testing.T) {
	rng := shardRNG(5)
	for _, shape := range []float64{0.1, 0.5, 1, 3.5} {
		const n = 40000
		sum := 0.0
		for range n {
			sum += sampleGamma(rng, shape)
		}
		// The mean of Gamma(shape, 1) is shape, its standard deviation sqrt(shape).
		if mean := sum / n; math.Abs(mean-shape) > 5*math.Sqrt(shape/n) {
			t.Errorf("mean of Gamma(%g) samples = %.4f, want %g", shape, mean, shape)
		}
	}
}

func TestShardBadInput(t *testing.T) {
	labels := []int{0, 1, 2}
	for _, c := range []struct {
		err  error
		want string
	}{
		{func() error { _, err := ShardIID(10, 0, 1); return err }(), "workers = 0: must be >= 1"},
		{func() error { _, err := ShardIID(3, 4, 1); return err }(), "workers = 4 is more than the 3 examples"},
		{func() error { _, err := ShardDirichlet(labels, 0, 1, 1); return err }(), "workers = 0"},
		{func() error { _, err := ShardDirichlet(labels, 4, 1, 1); return err }(), "workers = 4 is more than the 3 examples"},
		{func() error { _, err := ShardDirichlet(labels, 2, 0, 1); return err }(), "alpha = 0: must be finite and > 0"},
		{func() error { _, err := ShardDirichlet(labels, 2, -1, 1); return err }(), "alpha = -1"},
		{func() error { _, err := ShardDirichlet([]int{0, -1}, 2, 1, 1); return err }(), "labels[1] = -1"},
		{func() error { _, err := TakeRows([]float32{1, 2, 3}, 2, nil); return err }(), "not a multiple of rowSize"},
		{func() error { _, err := TakeRows([]float32{1, 2}, 0, nil); return err }(), "rowSize = 0"},
		{func() error { _, err := TakeRows([]float32{1, 2}, 1, []int{2}); return err }(), "rows[0] = 2: out of range"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("error = %v, want one containing %q", c.err, c.want)
		}
	}
}

func TestTakeRows(t *testing.T) {
	got, err := TakeRows([]float32{0, 1, 10, 11, 20, 21}, 2, []int{2, 0})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []float32{20, 21, 0, 1}) {
		t.Fatalf("TakeRows = %v", got)
	}
}

func ExampleShardDirichlet() {
	labels := []int{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}
	shards, err := ShardDirichlet(labels, 3, 0.5, 42)
	if err != nil {
		fmt.Println(err)
		return
	}
	sum := 0
	for _, size := range shards.Sizes() {
		sum += size
	}
	fmt.Println(shards.Workers(), "shards holding", sum, "examples")
	// Output: 3 shards holding 12 examples
}

func ExampleShardIID() {
	shards, err := ShardIID(10, 3, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(shards.Sizes())
	// Output: [4 3 3]
}
