package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Shards is a split of a dataset's examples over K workers (for local SGD / federated
// averaging): Indices[k] lists the rows of worker k's shard. Every row belongs to
// exactly one shard, and every shard has at least one row.
type Shards struct {
	Indices [][]int
}

// Workers returns K, the number of shards.
func (s Shards) Workers() int { return len(s.Indices) }

// Sizes returns the number of examples of each shard: the FedAvg weights (see
// localsgd.Config.ShardSizes).
func (s Shards) Sizes() []int {
	sizes := make([]int, len(s.Indices))
	for k, rows := range s.Indices {
		sizes[k] = len(rows)
	}
	return sizes
}

// shardRNG returns the random generator of the sharding functions for a seed.
func shardRNG(seed int64) *rand.Rand { return newRNG(seed, 0x5a4d5) }

func checkWorkers(numExamples, workers int) error {
	if workers < 1 {
		return fmt.Errorf("shard: workers = %d: must be >= 1", workers)
	}
	if numExamples < workers {
		return fmt.Errorf("shard: workers = %d is more than the %d examples: every worker needs at least one",
			workers, numExamples)
	}
	return nil
}

// ShardIID splits numExamples rows over workers shards uniformly at random: a seeded
// permutation cut into parts whose sizes differ by at most one. It returns an error
// if workers < 1 or workers > numExamples.
func ShardIID(numExamples, workers int, seed int64) (Shards, error) {
	if err := checkWorkers(numExamples, workers); err != nil {
		return Shards{}, err
	}
	perm := shardRNG(seed).Perm(numExamples)
	s := Shards{Indices: make([][]int, workers)}
	start := 0
	for k := range workers {
		size := numExamples / workers
		if k < numExamples%workers {
			size++
		}
		s.Indices[k] = slices.Clone(perm[start : start+size])
		slices.Sort(s.Indices[k])
		start += size
	}
	return s, nil
}

// ShardDirichlet splits a classification dataset over workers shards with label skew
// (Hsu et al. 2019, the usual federated-learning benchmark): for each class, the
// proportions of its examples going to each worker are drawn from a symmetric
// Dirichlet(alpha) distribution, and the class's shuffled examples are cut accordingly.
// Small alpha (0.1) gives each worker few classes; large alpha (100) approaches an IID
// split. A worker left without examples receives one from the largest shard, so every
// shard is non-empty. Labels are class indices >= 0.
//
// It returns an error naming the parameter if workers < 1, workers > len(labels),
// alpha <= 0 (or not finite) or a label is negative.
func ShardDirichlet[L ~int | ~int32 | ~int64](labels []L, workers int, alpha float64, seed int64) (Shards, error) {
	if err := checkWorkers(len(labels), workers); err != nil {
		return Shards{}, err
	}
	if !(alpha > 0) || math.IsInf(alpha, 0) {
		return Shards{}, fmt.Errorf("shard: alpha = %g: must be finite and > 0", alpha)
	}
	byClass := make(map[int64][]int)
	for i, l := range labels {
		if l < 0 {
			return Shards{}, fmt.Errorf("shard: labels[%d] = %d: class labels must be >= 0", i, int64(l))
		}
		byClass[int64(l)] = append(byClass[int64(l)], i)
	}
	classes := make([]int64, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, c)
	}
	slices.Sort(classes)

	rng := shardRNG(seed)
	s := Shards{Indices: make([][]int, workers)}
	proportions := make([]float64, workers)
	for _, c := range classes {
		rows := byClass[c]
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		sampleDirichlet(rng, alpha, proportions)
		cumulative, start := 0.0, 0
		for k := range workers {
			cumulative += proportions[k]
			end := int(math.Round(cumulative * float64(len(rows))))
			if k == workers-1 {
				end = len(rows)
			}
			end = max(start, min(end, len(rows)))
			s.Indices[k] = append(s.Indices[k], rows[start:end]...)
			start = end
		}
	}
	// Give every empty shard one example from the currently largest shard.
	for k := range s.Indices {
		if len(s.Indices[k]) > 0 {
			continue
		}
		largest := 0
		for j := range s.Indices {
			if len(s.Indices[j]) > len(s.Indices[largest]) {
				largest = j
			}
		}
		last := len(s.Indices[largest]) - 1
		s.Indices[k] = append(s.Indices[k], s.Indices[largest][last])
		s.Indices[largest] = s.Indices[largest][:last]
	}
	for k := range s.Indices {
		slices.Sort(s.Indices[k])
	}
	return s, nil
}

// sampleDirichlet fills p with a draw from the symmetric Dirichlet(alpha) distribution.
func sampleDirichlet(rng *rand.Rand, alpha float64, p []float64) {
	sum := 0.0
	for k := range p {
		p[k] = sampleGamma(rng, alpha)
		sum += p[k]
	}
	if sum == 0 { // All draws underflowed (tiny alpha): put everything on one worker.
		p[rng.IntN(len(p))] = 1
		return
	}
	for k := range p {
		p[k] /= sum
	}
}

// sampleGamma draws from Gamma(shape, 1) with Marsaglia and Tsang's method
// (shape < 1 through Gamma(shape+1) * U^(1/shape)).
func sampleGamma(rng *rand.Rand, shape float64) float64 {
	if shape < 1 {
		u := rng.Float64()
		return sampleGamma(rng, shape+1) * math.Pow(u, 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// TakeRows returns the given rows of a row-major slice with rowSize values per row
// (e.g. a shard's examples of a [N, features] array), or an error naming the bad
// argument.
func TakeRows[T any](values []T, rowSize int, rows []int) ([]T, error) {
	if rowSize < 1 {
		return nil, fmt.Errorf("shard: rowSize = %d: must be >= 1", rowSize)
	}
	if len(values)%rowSize != 0 {
		return nil, fmt.Errorf("shard: values has %d elements, not a multiple of rowSize = %d", len(values), rowSize)
	}
	n := len(values) / rowSize
	for i, r := range rows {
		if r < 0 || r >= n {
			return nil, fmt.Errorf("shard: rows[%d] = %d: out of range [0, %d)", i, r, n)
		}
	}
	return takeRows(values, rowSize, rows), nil
}

// takeRows is [TakeRows] for arguments already checked.
func takeRows[T any](values []T, rowSize int, rows []int) []T {
	out := make([]T, 0, len(rows)*rowSize)
	for _, r := range rows {
		out = append(out, values[r*rowSize:(r+1)*rowSize]...)
	}
	return out
}
