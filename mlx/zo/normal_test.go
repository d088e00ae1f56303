package zo

// Statistical tests of the direction generator (normal.go). The generator is home-made, so
// these tests are what vouches for it: with about 10^6 samples per (seed, variable) and
// 4·10^6 pooled per backend, every check is at 5 standard errors (or, for Kolmogorov-Smirnov,
// at the 10^-3 critical value), which is loose enough never to fail on a correct generator
// and tight enough to catch, for instance, a 1% error in the variance (14 standard errors
// pooled), a missing sign, a shared radius between the two Box-Muller outputs, or a keying
// defect that makes two variables or two seeds correlated. The seeds are fixed, so the tests
// are deterministic.

import (
	"math"
	"sort"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/goptlab/goptlab/mlx/mlxtest"
)

// statSeeds are the seeds of the statistical tests: arbitrary, all-zero, all-ones, and
// two that differ from the first in one bit (related keys).
var statSeeds = []Seed{
	{0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB},
	{0, 0, 0},
	{math.MaxUint64, math.MaxUint64, math.MaxUint64},
	{0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EA},
}

// statShapes are the variables sampled per seed: one large even, one large odd (the two
// Box-Muller outputs of the last pair are not both used), one matrix, and small ones.
var statShapes = []shapes.Shape{
	shapes.Make(dtypes.Float32, 1<<19),
	shapes.Make(dtypes.Float32, 300001),
	shapes.Make(dtypes.Float32, 500, 400),
	shapes.Make(dtypes.Float32, 1),
	shapes.Make(dtypes.Float32, 7),
}

// sampleFlat returns z for statShapes (or shapesList) from seed, as float64 slices.
func sampleFlat(t *testing.T, backend compute.Backend, seed Seed, shapesList []shapes.Shape, dist Distribution) [][]float64 {
	t.Helper()
	zs, err := SampleZ(backend, seed, shapesList, dist)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float64, len(zs))
	for i, z := range zs {
		if !z.Shape().Equal(shapesList[i]) {
			t.Fatalf("z[%d] has shape %s, want %s", i, z.Shape(), shapesList[i])
		}
		flat := make([]float64, z.Shape().Size())
		switch shapesList[i].DType {
		case dtypes.Float32:
			tensors.MustConstFlatData(z, func(f []float32) {
				for j, x := range f {
					flat[j] = float64(x)
				}
			})
		case dtypes.Float64:
			tensors.MustConstFlatData(z, func(f []float64) { copy(flat, f) })
		default:
			t.Fatalf("unexpected dtype %s", shapesList[i].DType)
		}
		out[i] = flat
	}
	return out
}

// normalCDF is Φ(x).
func normalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// ksStatistic is the Kolmogorov-Smirnov statistic of xs against N(0, 1) (sorts a copy).
func ksStatistic(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := float64(len(s))
	d := 0.0
	for i, x := range s {
		f := normalCDF(x)
		d = max(d, f-float64(i)/n, float64(i+1)/n-f)
	}
	return d
}

// ksCritical is the asymptotic critical value of the KS statistic at level alpha for n samples.
func ksCritical(alpha float64, n int) float64 {
	return math.Sqrt(-math.Log(alpha/2)/2) / math.Sqrt(float64(n))
}

// correlation is the sample correlation of x and y (equal lengths), with the known means
// and variances of N(0, 1) (mean 0, variance 1) when squares is false, and of (x², y²)
// standardised by N(0, 1)'s (mean 1, variance 2) when squares is true: under independence
// its standard error is 1/sqrt(n) either way.
func correlation(x, y []float64, squares bool) float64 {
	s := 0.0
	for i := range x {
		if squares {
			s += (x[i]*x[i] - 1) * (y[i]*y[i] - 1) / 2
		} else {
			s += x[i] * y[i]
		}
	}
	return s / float64(len(x))
}

// checkNormal checks the moments, KS statistic and tail frequencies of xs against N(0, 1).
func checkNormal(t *testing.T, name string, xs []float64) {
	t.Helper()
	n := float64(len(xs))
	var m1, m2, m3, m4 float64
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			t.Fatalf("%s: non-finite value %g", name, x)
		}
		x2 := x * x
		m1 += x
		m2 += x2
		m3 += x2 * x
		m4 += x2 * x2
	}
	m1, m2, m3, m4 = m1/n, m2/n, m3/n, m4/n
	// Standard errors of the sample moments E[z^k] of N(0, 1): sqrt(Var(z^k)/n), with
	// Var(z) = 1, Var(z²) = 2, Var(z³) = 15, Var(z⁴) = 105 - 9 = 96.
	for _, c := range []struct {
		what      string
		got, want float64
		variance  float64
	}{
		{"mean", m1, 0, 1}, {"E[z²]", m2, 1, 2}, {"E[z³]", m3, 0, 15}, {"E[z⁴]", m4, 3, 96},
	} {
		se := math.Sqrt(c.variance / n)
		if math.Abs(c.got-c.want) > 5*se {
			t.Errorf("%s: %s = %.5f, want %g ± %.5f (5 standard errors, n=%d)", name, c.what, c.got, c.want, 5*se, len(xs))
		}
	}
	if d, crit := ksStatistic(xs), ksCritical(1e-3, len(xs)); d > crit {
		t.Errorf("%s: Kolmogorov-Smirnov statistic %.5f above the 1e-3 critical value %.5f (n=%d)", name, d, crit, len(xs))
	}
}

// checkTails compares the frequencies of |z| > k with the exact normal probabilities.
func checkTails(t *testing.T, name string, xs []float64) {
	t.Helper()
	n := float64(len(xs))
	maxAbs := 0.0
	for _, x := range xs {
		maxAbs = max(maxAbs, math.Abs(x))
	}
	for _, k := range []float64{1, 2, 3, 4, 5} {
		count := 0
		for _, x := range xs {
			if math.Abs(x) > k {
				count++
			}
		}
		p := math.Erfc(k / math.Sqrt2)
		want, se := n*p, math.Sqrt(n*p*(1-p))
		// 5 standard errors, and at least ±4 counts for the far tail (Poisson with a small mean).
		if tol := max(5*se, 4); math.Abs(float64(count)-want) > tol {
			t.Errorf("%s: %d of %d samples with |z| > %g, want %.1f ± %.1f", name, count, len(xs), k, want, tol)
		}
	}
	// The generator's tail ends at sqrt(2·33·ln 2) ≈ 6.76 (u >= 2^-33).
	if maxAbs > 6.77 {
		t.Errorf("%s: max |z| = %g, beyond the generator's bound 6.76", name, maxAbs)
	}
}

func checkUncorrelated(t *testing.T, name string, x, y []float64) {
	t.Helper()
	n := min(len(x), len(y))
	x, y = x[:n], y[:n]
	tol := 5 / math.Sqrt(float64(n))
	for _, squares := range []bool{false, true} {
		if r := correlation(x, y, squares); math.Abs(r) > tol {
			what := "z"
			if squares {
				what = "z²"
			}
			t.Errorf("%s: correlation of %s = %.5f, want 0 ± %.5f (n=%d)", name, what, r, tol, n)
		}
	}
}

func TestGaussianDirectionsAreStandardNormal(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		var pooled []float64
		var first [][]float64
		for si, seed := range statSeeds {
			zs := sampleFlat(t, backend, seed, statShapes, Gaussian)
			if si == 0 {
				first = zs
			}
			for vi, z := range zs {
				pooled = append(pooled, z...)
				if len(z) < 1000 {
					continue
				}
				name := shapeName(si, vi)
				checkNormal(t, name, z)
				// Consecutive entries, entries two apart, and entries ⌊n/2⌋ and ⌈n/2⌉ apart
				// (the possible partners of a Box-Muller pair, whatever the layout).
				half, pairs := len(z)/2, (len(z)+1)/2
				checkUncorrelated(t, name+" lag 1", z[:len(z)-1], z[1:])
				checkUncorrelated(t, name+" lag 2", z[:len(z)-2], z[2:])
				checkUncorrelated(t, name+" lag n/2", z[:half], z[half:])
				checkUncorrelated(t, name+" lag ⌈n/2⌉", z[:len(z)-pairs], z[pairs:])
				// Even against odd entries (the two outputs of one pair, if interleaved).
				even, odd := make([]float64, half), make([]float64, half)
				for i := range half {
					even[i], odd[i] = z[2*i], z[2*i+1]
				}
				checkUncorrelated(t, name+" even/odd", even, odd)
			}
			// Two variables of one step.
			checkUncorrelated(t, shapeName(si, 0)+" vs variable 1", zs[0], zs[1])
			checkUncorrelated(t, shapeName(si, 1)+" vs variable 2", zs[1], zs[2])
			if si > 0 {
				// Two seeds (the last one differs from the first in one bit).
				checkUncorrelated(t, shapeName(si, 0)+" vs seed 0", zs[0], first[0])
				checkUncorrelated(t, shapeName(si, 2)+" vs seed 0", zs[2], first[2])
			}
		}
		checkNormal(t, "pooled", pooled)
		checkTails(t, "pooled", pooled)
	})
}

func shapeName(seedIndex, varIndex int) string {
	return "seed " + string(rune('0'+seedIndex)) + " variable " + string(rune('0'+varIndex))
}

func TestRademacherDirections(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		var first [][]float64
		for si, seed := range statSeeds[:3] {
			zs := sampleFlat(t, backend, seed, statShapes[:3], Rademacher)
			if si == 0 {
				first = zs
			}
			for vi, z := range zs {
				name := shapeName(si, vi)
				plus := 0
				for i, x := range z {
					switch x {
					case 1:
						plus++
					case -1:
					default:
						t.Fatalf("%s: z[%d] = %g, want ±1", name, i, x)
					}
				}
				n := float64(len(z))
				if tol := 5 * 0.5 * math.Sqrt(n); math.Abs(float64(plus)-n/2) > tol {
					t.Errorf("%s: %d of %d entries are +1, want %.0f ± %.0f", name, plus, len(z), n/2, tol)
				}
				checkUncorrelated(t, name+" lag 1", z[:len(z)-1], z[1:])
			}
			checkUncorrelated(t, shapeName(si, 0)+" vs variable 1", zs[0], zs[1])
			if si > 0 {
				checkUncorrelated(t, shapeName(si, 0)+" vs seed 0", zs[0], first[0])
			}
		}
	})
}

// TestDirectionsAgreeAcrossBackendsAndDTypes: a seed gives the same z on every backend (up
// to the contraction of multiply-adds into FMAs), and a float64 variable gets the float32
// values converted.
func TestDirectionsAgreeAcrossBackendsAndDTypes(t *testing.T) {
	shapesList := []shapes.Shape{shapes.Make(dtypes.Float32, 4097), shapes.Make(dtypes.Float64, 33, 3)}
	var ref [][]float64
	for _, nb := range mlxtest.Backends(t) {
		zs := sampleFlat(t, nb.Backend, statSeeds[0], shapesList, Gaussian)
		z32 := sampleFlat(t, nb.Backend, statSeeds[0], []shapes.Shape{shapesList[0], shapes.Make(dtypes.Float32, 33, 3)}, Gaussian)
		for i, x := range zs[1] {
			if x != z32[1][i] {
				t.Fatalf("%s: float64 z[%d] = %.17g, float32 z = %.9g", nb.Name, i, x, z32[1][i])
			}
		}
		if ref == nil {
			ref = zs
			continue
		}
		for v := range zs {
			for i, x := range zs[v] {
				if d := math.Abs(x - ref[v][i]); d > 1e-5*(1+math.Abs(x)) {
					t.Fatalf("%s: variable %d z[%d] = %.9g, first backend %.9g", nb.Name, v, i, x, ref[v][i])
				}
			}
		}
	}
}

// evalFloat32 evaluates fn elementwise on xs.
func evalFloat32(t *testing.T, backend compute.Backend, fn func(x *graph.Node) *graph.Node, xs []float32) []float32 {
	t.Helper()
	out, err := graph.ExecOnce(backend, fn, xs)
	if err != nil {
		t.Fatal(err)
	}
	return out.Value().([]float32)
}

// TestLogPolynomial measures log32 against math.Log over its whole input range in the
// generator, u ∈ [2^-33, 1]: a float32 grid of every 251st bit pattern, plus every float32 of
// the 10^4 just below 1 and around the range-reduction boundary √½.
func TestLogPolynomial(t *testing.T) {
	lo, hi := math.Float32bits(0x1p-33), math.Float32bits(1)
	var xs []float32
	for b := lo; b < hi; b += 251 {
		xs = append(xs, math.Float32frombits(b))
	}
	for b := hi - 10000; b <= hi; b++ {
		xs = append(xs, math.Float32frombits(b))
	}
	for b := math.Float32bits(float32(math.Sqrt2/2)) - 5000; b < math.Float32bits(float32(math.Sqrt2/2))+5000; b++ {
		xs = append(xs, math.Float32frombits(b))
	}
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		got := evalFloat32(t, backend, log32, xs)
		maxAbs, maxRel := 0.0, 0.0
		for i, x := range xs {
			want := math.Log(float64(x))
			d := math.Abs(float64(got[i]) - want)
			maxAbs = max(maxAbs, d)
			if want != 0 {
				maxRel = max(maxRel, d/math.Abs(want))
			} else if got[i] != 0 {
				t.Errorf("log32(1) = %g, want 0", got[i])
			}
		}
		t.Logf("log32 on [2^-33, 1], %d points: max abs error %.3g, max rel error %.3g (2^-23 = %.3g)",
			len(xs), maxAbs, maxRel, 0x1p-23)
		// The documented bounds (see log32).
		if maxAbs > 1.5e-6 || maxRel > 1.5e-7 {
			t.Errorf("log32: max abs error %.3g (bound 1.5e-6), max rel error %.3g (bound 1.5e-7)", maxAbs, maxRel)
		}
	})
}

// TestSqrtNewton measures sqrt32 against math.Sqrt on its inputs in the generator,
// -2 ln u ∈ [0, 46]: every 61st float32 bit pattern from 2^-40 to 46, plus 0, -0 and
// values below the clamp (2^-100), which must give a result that rounds z to 0.
func TestSqrtNewton(t *testing.T) {
	var xs []float32
	for b := math.Float32bits(0x1p-40); b <= math.Float32bits(46); b += 61 {
		xs = append(xs, math.Float32frombits(b))
	}
	specials := []float32{0, float32(math.Copysign(0, -1)), 0x1p-120, 0x1p-100}
	xs = append(xs, specials...)
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		got := evalFloat32(t, backend, sqrt32, xs)
		maxRel := 0.0
		for i, x := range xs[:len(xs)-len(specials)] {
			want := math.Sqrt(float64(x))
			maxRel = max(maxRel, math.Abs(float64(got[i])-want)/want)
		}
		for i := len(xs) - len(specials); i < len(xs); i++ {
			if g := got[i]; math.IsNaN(float64(g)) || g < 0 || g > 0x1p-49 {
				t.Errorf("sqrt32(%g) = %g, want a value in [0, 2^-49]", xs[i], g)
			}
		}
		t.Logf("sqrt32 on [2^-40, 46], %d points: max rel error %.3g (2^-23 = %.3g)", len(xs), maxRel, 0x1p-23)
		if maxRel > 3e-7 {
			t.Errorf("sqrt32: max rel error %.3g, bound 3e-7", maxRel)
		}
	})
}

// TestCosPolynomial measures cosQuarter32 against math.Cos on its inputs in the generator,
// a = π/2·f for f = k·2^-23, k = 0..2^23-1 (every 7th k, plus the last).
func TestCosPolynomial(t *testing.T) {
	var fs []float32
	for k := 0; k < 1<<23; k += 7 {
		fs = append(fs, float32(k)*0x1p-23)
	}
	fs = append(fs, 1-0x1p-23)
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		got := evalFloat32(t, backend, func(f *graph.Node) *graph.Node {
			return cosQuarter32(graph.MulScalar(f, math.Pi/2))
		}, fs)
		maxAbs := 0.0
		for i, f := range fs {
			a := float64(float32(float64(f) * math.Pi / 2)) // The float32 angle the graph computes.
			maxAbs = max(maxAbs, math.Abs(float64(got[i])-math.Cos(a)))
			if got[i] < 0 || got[i] > 1 {
				t.Errorf("cos(%g) = %g, out of [0, 1]", a, got[i])
			}
		}
		t.Logf("cosQuarter32 on [0, π/2], %d points: max abs error %.3g (2^-24 = %.3g)", len(fs), maxAbs, 0x1p-24)
		if maxAbs > 2.5e-7 {
			t.Errorf("cosQuarter32: max abs error %.3g, bound 2.5e-7", maxAbs)
		}
	})
}

// TestRandomMaskFraction: each entry is in a RandomMask with probability fraction, the
// subsets of two variables are independent, and fraction 1 keeps everything.
func TestRandomMaskFraction(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		const fraction = 0.3
		shape := shapes.Make(dtypes.Float32, 1000, 300)
		out, err := graph.ExecOnceN(backend, func(x *graph.Node) []*graph.Node {
			m := RandomMask(fraction, 7).(randomMask)
			all := RandomMask(1, 7).(randomMask)
			return []*graph.Node{m.build(0, x), m.build(1, x), all.build(0, x)}
		}, tensors.FromShape(shape))
		if err != nil {
			t.Fatal(err)
		}
		var masks [3][]float32
		for i := range masks {
			masks[i] = make([]float32, shape.Size())
			tensors.MustConstFlatData(out[i], func(f []float32) { copy(masks[i], f) })
		}
		n := float64(shape.Size())
		tol := 5 * math.Sqrt(n*fraction*(1-fraction))
		both := 0.0
		for v := range 2 {
			count := 0.0
			for i, x := range masks[v] {
				if x != 0 && x != 1 {
					t.Fatalf("mask value %g", x)
				}
				count += float64(x)
				if v == 0 {
					both += float64(x * masks[1][i])
				}
			}
			if math.Abs(count-n*fraction) > tol {
				t.Errorf("variable %d: %g of %g entries selected, want %g ± %g", v, count, n, n*fraction, tol)
			}
		}
		// Independent subsets: P(both) = fraction².
		if p := fraction * fraction; math.Abs(both-n*p) > 5*math.Sqrt(n*p*(1-p)) {
			t.Errorf("%g entries in both variables' subsets, want %g", both, n*p)
		}
		for _, x := range masks[2] {
			if x != 1 {
				t.Fatal("RandomMask(1) left out an entry")
			}
		}
	})
}
