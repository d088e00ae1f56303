package data

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// newRNG returns the package's host random generator for a seed and a stream: each
// generator, the batch order and the sharding functions use their own stream.
func newRNG(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

// TwoSpirals returns the two-spirals classification problem: n points in the plane
// (inputs: float32 [n, 2]) on two interleaved spirals of `turns` turns, with Gaussian
// noise of standard deviation noise added to each coordinate; labels are the spiral,
// int32 [n, 1] in {0, 1}, alternating (example i has class i%2). Radii are in [0, 1].
func TwoSpirals(n int, turns, noise float64, seed int64) (*Dataset, error) {
	if n < 2 {
		return nil, fmt.Errorf("data.TwoSpirals: n=%d out of range: must be >= 2", n)
	}
	if !(turns > 0) || math.IsInf(turns, 0) {
		return nil, fmt.Errorf("data.TwoSpirals: turns=%g out of range: must be in (0, +Inf)", turns)
	}
	if !(noise >= 0) || math.IsInf(noise, 0) {
		return nil, fmt.Errorf("data.TwoSpirals: noise=%g out of range: must be in [0, +Inf)", noise)
	}
	rng := newRNG(seed, 1)
	x := make([]float32, 0, 2*n)
	y := make([]int32, 0, n)
	for i := range n {
		class := i % 2
		r := math.Sqrt(rng.Float64()) // denser towards the outside, as in the classic benchmark
		t := r * turns * 2 * math.Pi
		angle := t + float64(class)*math.Pi
		px := r*math.Cos(angle) + noise*rng.NormFloat64()
		py := r*math.Sin(angle) + noise*rng.NormFloat64()
		x = append(x, float32(px), float32(py))
		y = append(y, int32(class))
	}
	return New(fmt.Sprintf("two-spirals(n=%d)", n),
		[]Column{{Dims: []int{2}, Float32: x}},
		[]Column{{Dims: []int{1}, Int32: y}})
}

// Teacher is the random one-hidden-layer tanh network that labels a [TeacherStudent] dataset:
// y = tanh(x·W1 + B1)·W2 + B2.
type Teacher struct {
	In, Hidden, Out int
	W1              []float64 // [In, Hidden] row-major
	B1              []float64 // [Hidden]
	W2              []float64 // [Hidden, Out] row-major
	B2              []float64 // [Out]
}

// Predict returns the teacher's output for one input of length In.
func (t *Teacher) Predict(x []float64) []float64 {
	h := make([]float64, t.Hidden)
	for j := range t.Hidden {
		s := t.B1[j]
		for i := range t.In {
			s += x[i] * t.W1[i*t.Hidden+j]
		}
		h[j] = math.Tanh(s)
	}
	out := make([]float64, t.Out)
	for k := range t.Out {
		s := t.B2[k]
		for j := range t.Hidden {
			s += h[j] * t.W2[j*t.Out+k]
		}
		out[k] = s
	}
	return out
}

// TeacherStudent returns a regression problem labelled by a random teacher network:
// inputs x ~ N(0, I) float32 [n, in], labels float32 [n, out] = teacher(x) + noise·N(0, I).
// The teacher (returned too) has `hidden` tanh units, weights W1 ~ N(0, 1/in),
// W2 ~ N(0, 1/hidden) and biases ~ N(0, 0.1²). A student with at least `hidden` tanh
// units can reach a mean squared error equal to noise².
func TeacherStudent(n, in, hidden, out int, noise float64, seed int64) (*Dataset, *Teacher, error) {
	for _, p := range []struct {
		name  string
		value int
	}{{"n", n}, {"in", in}, {"hidden", hidden}, {"out", out}} {
		if p.value < 1 {
			return nil, nil, fmt.Errorf("data.TeacherStudent: %s=%d out of range: must be >= 1", p.name, p.value)
		}
	}
	if !(noise >= 0) || math.IsInf(noise, 0) {
		return nil, nil, fmt.Errorf("data.TeacherStudent: noise=%g out of range: must be in [0, +Inf)", noise)
	}
	rng := newRNG(seed, 2)
	normals := func(count int, std float64) []float64 {
		v := make([]float64, count)
		for i := range v {
			v[i] = std * rng.NormFloat64()
		}
		return v
	}
	t := &Teacher{In: in, Hidden: hidden, Out: out}
	t.W1 = normals(in*hidden, 1/math.Sqrt(float64(in)))
	t.B1 = normals(hidden, 0.1)
	t.W2 = normals(hidden*out, 1/math.Sqrt(float64(hidden)))
	t.B2 = normals(out, 0.1)
	xs := make([]float32, 0, n*in)
	ys := make([]float32, 0, n*out)
	x := make([]float64, in)
	for range n {
		for i := range x {
			x[i] = rng.NormFloat64()
			xs = append(xs, float32(x[i]))
		}
		for _, v := range t.Predict(x) {
			ys = append(ys, float32(v+noise*rng.NormFloat64()))
		}
	}
	ds, err := New(fmt.Sprintf("teacher-student(n=%d,in=%d,hidden=%d,out=%d)", n, in, hidden, out),
		[]Column{{Dims: []int{in}, Float32: xs}},
		[]Column{{Dims: []int{out}, Float32: ys}})
	return ds, t, err
}

// Linear regression constants of [LinearRegression].
var (
	// LinearTrueWeights are the weights that generate the labels of [LinearRegression].
	LinearTrueWeights = []float64{1.5, -2, 0.5}
	// LinearTrueBias is the bias that generates the labels of [LinearRegression].
	LinearTrueBias = 0.25
)

// LinearRegressionSize is the number of examples of [LinearRegression].
const LinearRegressionSize = 32

// LinearRegression returns a small fixed, noise-free linear-regression problem:
// 32 inputs float32 [32, 3] drawn once from N(0, I) with a fixed seed, and labels
// float32 [32, 1] = x·LinearTrueWeights + LinearTrueBias. A linear model reaches
// zero loss exactly at the true weights. It is the same on every call.
func LinearRegression() *Dataset {
	rng := newRNG(20240601, 3)
	d := len(LinearTrueWeights)
	xs := make([]float32, 0, LinearRegressionSize*d)
	ys := make([]float32, 0, LinearRegressionSize)
	for range LinearRegressionSize {
		// Labels are computed from the float32-rounded inputs, so the optimum is exact in float32 terms.
		s := LinearTrueBias
		for j := range d {
			v := float32(rng.NormFloat64())
			xs = append(xs, v)
			s += float64(v) * LinearTrueWeights[j]
		}
		ys = append(ys, float32(s))
	}
	// The columns are consistent by construction, so New's checks are not needed.
	return &Dataset{name: "linear-regression", n: LinearRegressionSize,
		inputs: []Column{{Dims: []int{d}, Float32: xs}},
		labels: []Column{{Dims: []int{1}, Float32: ys}}}
}
