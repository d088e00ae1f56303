package models_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/models"
)

// TestMaxPool2x2EqualsMaxPool compares MaxPool2x2 with graph.MaxPool (window 2), values
// and gradients (of a weighted sum of the output, so every output has its own gradient),
// bit for bit: on random values, on images full of ties (a constant image, values from
// {0, 1, 2}, zeros of both signs) and with infinities; with NaNs, MaxPool2x2 must give NaN
// for the windows that hold one.
func TestMaxPool2x2EqualsMaxPool(t *testing.T) {
	const b, h, w, c = 2, 4, 6, 3
	n := b * h * w * c
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := map[string][]float32{}
	random, ties, constant, zeros, infs, nans := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range n {
		random[i] = float32(rng.NormFloat64())
		ties[i] = float32(rng.IntN(3))
		constant[i] = 0.5
		zeros[i] = float32(math.Copysign(0, float64(rng.IntN(2)*2-1)))
		infs[i] = random[i]
		nans[i] = random[i]
	}
	infs[0], infs[7], infs[30], infs[31] = float32(math.Inf(-1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Inf(-1))
	nans[5], nans[40] = float32(math.NaN()), float32(math.NaN())
	inputs["random"], inputs["ties"], inputs["constant"], inputs["signed zeros"], inputs["infinities"] = random, ties, constant, zeros, infs
	weights := make([]float32, b*(h/2)*(w/2)*c)
	for i := range weights {
		weights[i] = float32(rng.NormFloat64())
	}
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		pool := func(ours bool) *graph.Exec {
			return graph.MustNewExec(backend, func(x, wt *graph.Node) []*graph.Node {
				var y *graph.Node
				if ours {
					y = models.MaxPool2x2(x)
				} else {
					y = graph.MaxPool(x).Window(2).Done()
				}
				return []*graph.Node{y, graph.Gradient(graph.ReduceAllSum(graph.Mul(y, wt)), x)[0]}
			})
		}
		ours, theirs := pool(true), pool(false)
		for name, x := range inputs {
			gotY, gotG := both(ours, x, weights, b, h, w, c)
			wantY, wantG := both(theirs, x, weights, b, h, w, c)
			if name == "signed zeros" {
				// The backends' MaxPool disagree on which zero they return (XLA CPU's the
				// first, as MaxPool2x2, the pure-Go backend's mostly +0): compare as numbers.
				for i := range wantY {
					if gotY[i] != wantY[i] {
						t.Errorf("%s: values %v, MaxPool %v", name, gotY, wantY)
						break
					}
				}
			} else if !sameBits(gotY, wantY) {
				t.Errorf("%s: values %v, MaxPool %v", name, gotY, wantY)
			}
			if !sameBits(gotG, wantG) {
				t.Errorf("%s: gradient %v, MaxPool %v", name, gotG, wantG)
			}
		}
		// A NaN makes its window's output NaN (XLA CPU's MaxPool ignores it), the others
		// are MaxPool's.
		gotY, _ := both(ours, nans, weights, b, h, w, c)
		wantY, _ := both(theirs, nans, weights, b, h, w, c)
		nanOut := map[int]bool{}
		for _, i := range []int{5, 40} { // flat index in [b, h, w, c] -> window's flat index in [b, h/2, w/2, c]
			bi, hi, wi, ci := i/(h*w*c), i/(w*c)%h, i/c%w, i%c
			nanOut[((bi*(h/2)+hi/2)*(w/2)+wi/2)*c+ci] = true
		}
		for i := range wantY {
			if nanOut[i] != math.IsNaN(float64(gotY[i])) || (!nanOut[i] && math.Float32bits(gotY[i]) != math.Float32bits(wantY[i])) {
				t.Errorf("NaN input: output %d is %v (MaxPool's %v), want NaN: %v", i, gotY[i], wantY[i], nanOut[i])
			}
		}
	})
}

func both(e *graph.Exec, x, weights []float32, b, h, w, c int) (y, grad []float32) {
	outs := e.MustExec(tensors.FromFlatDataAndDimensions(x, b, h, w, c), tensors.FromFlatDataAndDimensions(weights, b, h/2, w/2, c))
	return flat(outs[0]), flat(outs[1])
}

func flat(t *tensors.Tensor) []float32 {
	var out []float32
	tensors.MustConstFlatData(t, func(f []float32) { out = append(out, f...) })
	return out
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(math.IsNaN(float64(a[i])) && math.IsNaN(float64(b[i]))) {
			return false
		}
	}
	return true
}
