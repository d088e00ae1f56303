package plots

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/goptlab/goptlab/mlx/history"
)

// walk returns a seeded random walk of n steps with one spike up and one down, so that
// its extremes are single points in the middle of a pixel column.
func walk(n int, seed uint64) (xs, ys []float64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	xs, ys = make([]float64, n), make([]float64, n)
	y := 0.0
	for i := range n {
		y += rng.NormFloat64()
		xs[i], ys[i] = float64(i+1), y
	}
	ys[n/3] += 5000
	ys[2*n/3] -= 5000
	return xs, ys
}

func walkRun(name string, n int, seed uint64) *history.History {
	xs, ys := walk(n, seed)
	h := history.New(name, "adam", int64(seed))
	h.Records = make([]history.Record, n)
	for i := range n {
		h.Records[i] = history.Record{Step: int(xs[i]), Time: xs[i] / 100, Evals: int64(xs[i]), Loss: ys[i]}
	}
	return h
}

// A curve of a million points renders to a small SVG, and the line it draws is a subset
// of the data that keeps the first and last points and the exact extremes.
func TestCurveOfAMillionPoints(t *testing.T) {
	const n = 1_000_000
	h := walkRun("adam", n, 7)
	f, err := Curves([]*history.History{h})
	if err != nil {
		t.Fatal(err)
	}
	svg, err := f.SVG()
	if err != nil {
		t.Fatal(err)
	}
	if len(svg) > 500_000 {
		t.Fatalf("SVG of a %d-point curve is %d bytes, want below 500 kB", n, len(svg))
	}
	t.Logf("SVG of a %d-point curve: %d bytes", n, len(svg))

	xs, ys := walk(n, 7)
	data := make(plotter.XYs, n)
	for i := range n {
		data[i] = plotter.XY{X: xs[i], Y: ys[i]}
	}
	p := f.Plots()[0]
	for _, canvas := range []struct {
		name string
		c    draw.Canvas
	}{
		{"svg", draw.New(vgsvg.New(f.Width, f.Height))},
		{"png", draw.New(vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(PNGDPI)))},
	} {
		dc := p.DataCanvas(canvas.c)
		got := thinLine{Line: &plotter.Line{XYs: data}}.thinned(dc, p)
		cols := columns(dc)
		if len(got) > 4*cols+8 {
			t.Errorf("%s: %d points kept for %d pixel columns, want at most 4 per column", canvas.name, len(got), cols)
		}
		checkSubset(t, canvas.name, data, got)
	}
}

// checkSubset checks that got is a subsequence of data with its first and last points and
// its exact lowest and highest values.
func checkSubset(t *testing.T, name string, data, got plotter.XYs) {
	t.Helper()
	if len(got) == 0 || got[0] != data[0] || got[len(got)-1] != data[len(data)-1] {
		t.Errorf("%s: the first and last points are not kept", name)
		return
	}
	j := 0
	for _, pt := range got {
		for j < len(data) && data[j] != pt {
			j++
		}
		if j == len(data) {
			t.Errorf("%s: point %v is not in the data, or out of order", name, pt)
			return
		}
	}
	lo, hi := minMaxY(data)
	glo, ghi := minMaxY(got)
	if glo != lo || ghi != hi {
		t.Errorf("%s: kept points span y [%v, %v], the data [%v, %v]", name, glo, ghi, lo, hi)
	}
}

func minMaxY(pts plotter.XYs) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		lo, hi = math.Min(lo, p.Y), math.Max(hi, p.Y)
	}
	return lo, hi
}

// A line with fewer points than pixel columns, or whose x is not sorted (a trajectory), is
// drawn as it is.
func TestThinLeavesShortAndUnsortedLinesAlone(t *testing.T) {
	xs, ys := walk(300, 3)
	short := make(plotter.XYs, len(xs))
	for i := range xs {
		short[i] = plotter.XY{X: xs[i], Y: ys[i]}
	}
	// A second run stretches the x axis to a million steps: the short line's 300 points
	// all fall in the first pixel column, yet it has fewer points than there are columns.
	long := history.New("sgd", "sgd", 1)
	long.Add(history.Record{Step: 1, Loss: 1})
	long.Add(history.Record{Step: 1_000_000, Loss: 2})
	f, err := Curves([]*history.History{walkRun("adam", 300, 3), long})
	if err != nil {
		t.Fatal(err)
	}
	p := f.Plots()[0]
	dc := p.DataCanvas(draw.New(vgsvg.New(f.Width, f.Height)))
	if got := (thinLine{Line: &plotter.Line{XYs: short}}).thinned(dc, p); !slices.Equal(got, short) {
		t.Errorf("a %d-point line on %d columns was changed to %d points", len(short), columns(dc), len(got))
	}
	// A spiral of many points: x goes back and forth.
	var spiral plotter.XYs
	for i := range 20000 {
		a := float64(i) / 100
		spiral = append(spiral, plotter.XY{X: 1 + 299*(0.5+0.5*math.Cos(a)*a/200), Y: math.Sin(a) * a})
	}
	if got := (thinLine{Line: &plotter.Line{XYs: spiral}}).thinned(dc, p); !slices.Equal(got, spiral) {
		t.Errorf("an unsorted line of %d points was changed to %d points", len(spiral), len(got))
	}
}

// Bands over long runs are thinned too, edge by edge, keeping the exact envelope.
func TestBandOfLongRuns(t *testing.T) {
	const n = 200_000
	var hs []*history.History
	for s := range uint64(3) {
		hs = append(hs, walkRun("adam", n, 10+s))
	}
	f, err := Band(hs)
	if err != nil {
		t.Fatal(err)
	}
	svg, err := f.SVG()
	if err != nil {
		t.Fatal(err)
	}
	if len(svg) > 500_000 {
		t.Fatalf("SVG of a band over 3 runs of %d points is %d bytes, want below 500 kB", n, len(svg))
	}
	t.Logf("SVG of a band over 3 runs of %d points: %d bytes", n, len(svg))
	g, err := summarize("adam", hs, newConfig(nil))
	if err != nil {
		t.Fatal(err)
	}
	p := f.Plots()[0]
	dc := p.DataCanvas(draw.New(vgsvg.New(f.Width, f.Height)))
	ring := bandSegments(g.xs, g.lo, g.hi)[0]
	gUpper, gLower := thinBand{ring: ring}.edges(dc, p)
	if len(gUpper)+len(gLower) > 8*columns(dc)+16 {
		t.Errorf("band edges thinned to %d + %d points for %d columns", len(gUpper), len(gLower), columns(dc))
	}
	k := len(ring) / 2
	upper, lower := ring[:k], slices.Clone(ring[k:])
	slices.Reverse(lower)
	checkSubset(t, "upper edge", upper, gUpper)
	checkSubset(t, "lower edge", lower, gLower)
}
