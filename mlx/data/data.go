// Package data holds in-memory datasets for optimizer experiments and their seeded
// batching: real data sets read by checked readers of their standard files (MNIST, offline
// from the GoMNIST module, [LoadMNIST]; Fashion-MNIST, [LoadFashionMNIST]; CIFAR-10,
// [LoadCIFAR10]) and small synthetic ones generated from a seed (two spirals,
// teacher-student regression, a fixed linear regression).
//
// Datasets live on the host, so a dataset and the order of its batches are the same on
// every backend and every run. Batch k of a run is a pure
// function of (seed, k) (see [Dataset.Batch]): a run resumed at step k sees exactly the
// batches it would have seen without the interruption.
package data

import (
	"fmt"
	"iter"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	gomlxtrain "github.com/gomlx/gomlx/ml/train"
)

// Column is one input or label of a dataset: the same-shaped values of every example,
// stored row-major with the example axis first.
type Column struct {
	// Dims are the dimensions of one example (empty for a scalar per example).
	Dims []int
	// Float32 holds the values when the column is float32 (N * prod(Dims) values).
	Float32 []float32
	// Int32 holds the values when the column is int32, e.g. class labels.
	Int32 []int32
}

func (c Column) rowSize() int {
	size := 1
	for _, d := range c.Dims {
		size *= d
	}
	return size
}

func (c Column) length() int {
	if c.Int32 != nil {
		return len(c.Int32)
	}
	return len(c.Float32)
}

// dtype is the column's element type.
func (c Column) dtype() dtypes.DType {
	if c.Int32 != nil {
		return dtypes.Int32
	}
	return dtypes.Float32
}

// Dataset is a fixed set of N examples, each made of inputs and labels.
type Dataset struct {
	name           string
	n              int
	inputs, labels []Column
}

// New builds a dataset from columns that all hold n examples. Each column must hold
// exactly one of Float32 or Int32 data, of length n times the product of its Dims.
func New(name string, inputs, labels []Column) (*Dataset, error) {
	if len(inputs) == 0 {
		return nil, fmt.Errorf("data.New(%q): inputs: at least one column is required", name)
	}
	n := -1
	check := func(kind string, cols []Column) error {
		for i, c := range cols {
			if (c.Float32 == nil) == (c.Int32 == nil) {
				return fmt.Errorf("data.New(%q): %s[%d]: exactly one of Float32 or Int32 must be set", name, kind, i)
			}
			for _, d := range c.Dims {
				if d <= 0 {
					return fmt.Errorf("data.New(%q): %s[%d].Dims=%v: dimensions must be >= 1", name, kind, i, c.Dims)
				}
			}
			rs := c.rowSize()
			if c.length()%rs != 0 {
				return fmt.Errorf("data.New(%q): %s[%d]: %d values is not a multiple of the example size %d (Dims=%v)",
					name, kind, i, c.length(), rs, c.Dims)
			}
			rows := c.length() / rs
			if n == -1 {
				n = rows
			} else if rows != n {
				return fmt.Errorf("data.New(%q): %s[%d] has %d examples, want %d like the first input", name, kind, i, rows, n)
			}
		}
		return nil
	}
	if err := check("inputs", inputs); err != nil {
		return nil, err
	}
	if err := check("labels", labels); err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("data.New(%q): the dataset has no examples", name)
	}
	return &Dataset{name: name, n: n, inputs: inputs, labels: labels}, nil
}

// Name returns the dataset's label.
func (d *Dataset) Name() string { return d.name }

// Len returns the number of examples.
func (d *Dataset) Len() int { return d.n }

// Inputs returns the input columns (shared, do not modify).
func (d *Dataset) Inputs() []Column { return d.inputs }

// Labels returns the label columns (shared, do not modify).
func (d *Dataset) Labels() []Column { return d.labels }

// gather builds one tensor per column holding the given (valid) rows, in order.
func gather(cols []Column, rows []int) []*tensors.Tensor {
	out := make([]*tensors.Tensor, len(cols))
	for i, c := range cols {
		rs := c.rowSize()
		dims := append([]int{len(rows)}, c.Dims...)
		if c.Int32 != nil {
			out[i] = tensors.FromFlatDataAndDimensions(takeRows(c.Int32, rs, rows), dims...)
		} else {
			out[i] = tensors.FromFlatDataAndDimensions(takeRows(c.Float32, rs, rows), dims...)
		}
	}
	return out
}

// Rows returns the given examples (0-based indices, in order) as one batch.
func (d *Dataset) Rows(rows []int) (inputs, labels []*tensors.Tensor, err error) {
	if len(rows) == 0 {
		return nil, nil, fmt.Errorf("dataset %q: rows: no rows requested", d.name)
	}
	for _, r := range rows {
		if r < 0 || r >= d.n {
			return nil, nil, fmt.Errorf("dataset %q: row %d out of range [0, %d)", d.name, r, d.n)
		}
	}
	return gather(d.inputs, rows), gather(d.labels, rows), nil
}

// All returns the whole dataset as one batch, in the original order.
func (d *Dataset) All() (inputs, labels []*tensors.Tensor) {
	rows := make([]int, d.n)
	for i := range rows {
		rows[i] = i
	}
	return gather(d.inputs, rows), gather(d.labels, rows)
}

// BatchesPerEpoch is how many full batches of batchSize one epoch yields
// (the last partial batch of an epoch is dropped, so every batch has the same shape
// and one compiled step serves the whole run).
func (d *Dataset) BatchesPerEpoch(batchSize int) int {
	if batchSize < 1 {
		return 0
	}
	return d.n / batchSize
}

// CheckBatchSize returns an error unless 1 <= batchSize <= Len().
func (d *Dataset) CheckBatchSize(batchSize int) error {
	if batchSize < 1 || batchSize > d.n {
		return fmt.Errorf("batch size %d out of range: must be in [1, %d] (the size of dataset %q)", batchSize, d.n, d.name)
	}
	return nil
}

// Permutation returns the order of the examples in the given epoch (0-based) for a seed:
// a seeded shuffle, different for each epoch, identical on every run.
func (d *Dataset) Permutation(seed int64, epoch int) []int {
	return newRNG(seed, 0x9E3779B97F4A7C15^uint64(epoch)).Perm(d.n)
}

// Batch returns the k-th batch (0-based, counted across epochs) of a seeded run with
// the given batch size: epoch k/BatchesPerEpoch shuffled by [Dataset.Permutation],
// rows taken in that order. It is a pure function of (seed, batchSize, k).
func (d *Dataset) Batch(seed int64, batchSize, k int) (inputs, labels []*tensors.Tensor, err error) {
	if err := d.CheckBatchSize(batchSize); err != nil {
		return nil, nil, err
	}
	if k < 0 {
		return nil, nil, fmt.Errorf("batch index %d: must be >= 0", k)
	}
	per := d.BatchesPerEpoch(batchSize)
	perm := d.Permutation(seed, k/per)
	start := (k % per) * batchSize
	rows := perm[start : start+batchSize]
	return gather(d.inputs, rows), gather(d.labels, rows), nil
}

// Epochs returns a GoMLX train.Dataset view of d: each call to its Iter yields the next
// epoch of shuffled full batches, so it can also feed GoMLX's own train.Loop.
func (d *Dataset) Epochs(batchSize int, seed int64) (*EpochIterator, error) {
	if err := d.CheckBatchSize(batchSize); err != nil {
		return nil, err
	}
	return &EpochIterator{d: d, batchSize: batchSize, seed: seed}, nil
}

// EpochIterator implements GoMLX's train.Dataset over a [Dataset]: each Iter call is one
// epoch (the first call epoch 0, then 1, ...), in the seeded order of [Dataset.Batch].
type EpochIterator struct {
	d         *Dataset
	batchSize int
	seed      int64
	epoch     int
}

var _ gomlxtrain.Dataset = (*EpochIterator)(nil)

// Name implements train.Dataset.
func (e *EpochIterator) Name() string { return e.d.name }

// Iter implements train.Dataset: it yields the batches of the next epoch.
func (e *EpochIterator) Iter() iter.Seq2[gomlxtrain.Batch, error] {
	epoch := e.epoch
	e.epoch++
	return func(yield func(gomlxtrain.Batch, error) bool) {
		per := e.d.BatchesPerEpoch(e.batchSize)
		for i := range per {
			in, lb, err := e.d.Batch(e.seed, e.batchSize, epoch*per+i)
			if !yield(gomlxtrain.Batch{Inputs: in, Labels: lb}, err) || err != nil {
				return
			}
		}
	}
}
