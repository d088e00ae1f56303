package plots

import (
	"image/color"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/goptlab/goptlab/mlx/history"
)

func seeds(t *testing.T, name, opt string, n int, rate float64) []*history.History {
	var hs []*history.History
	for s := range n {
		hs = append(hs, synth(t, name, opt, int64(s+1), rate*(1+0.15*float64(s-n/2))))
	}
	return hs
}

func TestBand(t *testing.T) {
	hs := append(seeds(t, "adam", "adam", 5, 0.02), seeds(t, "sgd", "sgd", 5, 0.008)...)
	for _, spread := range []Spread{MinMax, Quartiles} {
		f, err := Band(hs, LogY(), SpreadBand(spread), Title("Median over 5 seeds"))
		if err != nil {
			t.Fatal(err)
		}
		name := map[Spread]string{MinMax: "band_minmax", Quartiles: "band_quartiles"}[spread]
		r := render(t, f, name)
		if got := strings.Join(f.Labels(), "|"); got != "adam (n=5)|sgd (n=5)|line: median, band: "+map[Spread]string{MinMax: "min–max", Quartiles: "quartiles"}[spread] {
			t.Errorf("labels = %q", got)
		}
		if f.panels[0].series != 2 {
			t.Errorf("series = %d, want 2 medians", f.panels[0].series)
		}
		// The band is filled with the optimizer colour at low alpha.
		if !hasTranslucentFill(r.svg, StyleFor("adam")) {
			t.Errorf("%s: no translucent band in adam's colour in the SVG", name)
		}
		// Both the line and the (lighter) band are visible in the PNG.
		if n := countColor(r.img, StyleFor("adam")); n < 200 {
			t.Errorf("%s: %d pixels of adam's line colour", name, n)
		}
		light := Style{Color: blendOverWhite(StyleFor("sgd").Color, 0.22)}
		if n := countColor(r.img, light); n < 1000 {
			t.Errorf("%s: %d pixels of sgd's band colour, want a visible band", name, n)
		}
	}
}

func TestBandStatistics(t *testing.T) {
	// Three runs with losses 1, 2, 4 at every step, logged at different steps.
	mk := func(seed int64, v float64, steps ...int) *history.History {
		h := history.New("cfg", "adam", seed)
		for _, s := range steps {
			h.Add(history.Record{Step: s, Loss: v})
		}
		return h
	}
	hs := []*history.History{mk(1, 1, 1, 2, 3, 4), mk(2, 2, 1, 3, 4, 10), mk(3, 4, 2, 4)}
	g, err := summarize("cfg", hs, newConfig(nil))
	if err != nil {
		t.Fatal(err)
	}
	// Common range is [2, 4]: grid points 2, 3, 4.
	if len(g.xs) != 3 || g.xs[0] != 2 || g.xs[2] != 4 {
		t.Fatalf("grid = %v, want [2 3 4]", g.xs)
	}
	for i := range g.xs {
		if g.median[i] != 2 || g.lo[i] != 1 || g.hi[i] != 4 {
			t.Errorf("x=%v: median %v [%v, %v], want 2 [1, 4]", g.xs[i], g.median[i], g.lo[i], g.hi[i])
		}
	}
	g, err = summarize("cfg", hs, newConfig([]Option{SpreadBand(Quartiles)}))
	if err != nil {
		t.Fatal(err)
	}
	if g.lo[0] != 1.5 || g.hi[0] != 3 {
		t.Errorf("quartiles = [%v, %v], want [1.5, 3]", g.lo[0], g.hi[0])
	}
	if got := interpolate([]float64{0, 10}, []float64{0, 5}, 4); got != 2 {
		t.Errorf("interpolate = %v, want 2", got)
	}
}

func TestBandDivergedAndBadInput(t *testing.T) {
	hs := seeds(t, "lion", "lion", 3, 0.01)
	bad := hs[1].Clone()
	for i := 60; i < len(bad.Records); i++ {
		bad.Records[i].Loss = math.NaN()
	}
	hs[1] = bad
	f, err := Band(hs)
	if err != nil {
		t.Fatal(err)
	}
	render(t, f, "band_diverged")
	if got := f.Labels(); got[0] != "lion (n=3, 1 diverged)" {
		t.Errorf("labels = %q", got)
	}
	if _, err := Band(nil); err == nil {
		t.Error("Band(nil): no error")
	}
	// Runs that share no x range are drawn one by one (TestBandRunsWithoutCommonRange).
	a, b := history.New("x", "adam", 1), history.New("x", "adam", 2)
	a.Add(history.Record{Step: 1, Loss: 1})
	b.Add(history.Record{Step: 5, Loss: 1})
	if _, err := Band([]*history.History{a, b}); err != nil {
		t.Errorf("disjoint runs: %v", err)
	}
}

// timedRun returns a run logged at the given wall-clock times, with losses 1/(1+t).
func timedRun(name string, seed int64, times ...float64) *history.History {
	h := history.New(name, name, seed)
	for i, tm := range times {
		h.Add(history.Record{Step: i + 1, Time: tm, Evals: int64(i + 1), Loss: 1 / (1 + tm) * (1 + 0.1*float64(seed))})
	}
	return h
}

// hasSegment reports whether the panel holds a drawn segment from x0 to x1.
func hasSegment(pn *panel, x0, x1 float64) bool {
	for _, seg := range pn.points {
		if len(seg) > 0 && seg[0].X == x0 && seg[len(seg)-1].X == x1 {
			return true
		}
	}
	return false
}

// Under load, runs of one configuration can log at wall-clock times that do not overlap
// (one seed ran after another finished) or overlap in part. Band draws the median and
// band where all runs have values, and each run's own line where they do not, saying so.
func TestBandRunsWithoutCommonRange(t *testing.T) {
	hs := []*history.History{
		// sgd: three runs one after the other, no time in common.
		timedRun("sgd", 1, 0, 1, 2, 3), timedRun("sgd", 2, 10, 11, 12), timedRun("sgd", 3, 20, 21, 22, 23, 24),
		// adam: overlapping in part: all three have values in [8, 10] only.
		timedRun("adam", 1, 0, 2, 4, 6, 8, 10), timedRun("adam", 2, 5, 7, 9, 11, 13, 15), timedRun("adam", 3, 8, 9, 10, 14, 20),
		// lion: the same times: a plain band.
		timedRun("lion", 1, 1, 2, 3), timedRun("lion", 2, 1, 2, 3),
	}
	f, err := Band(hs, XAxis(WallTime))
	if err != nil {
		t.Fatalf("Band: %v", err)
	}
	render(t, f, "band_no_common_range")
	want := []string{
		"sgd (n=3; no wall time common to all runs)", "adam (n=3)", "lion (n=2)",
		"line: median, band: min–max", "thin lines: single runs, where not all have values",
	}
	if got := f.Labels(); !slices.Equal(got, want) {
		t.Errorf("labels = %q, want %q", got, want)
	}
	pn := f.panels[0]
	// Each sgd run is drawn whole.
	for _, r := range [][2]float64{{0, 3}, {10, 12}, {20, 24}} {
		if !hasSegment(pn, r[0], r[1]) {
			t.Errorf("sgd: no line for the run from %v to %v", r[0], r[1])
		}
	}
	// adam: the median spans [8, 10]; the runs' parts outside it are drawn, each joined to
	// the first (last) point inside it.
	if !hasSegment(pn, 8, 10) {
		t.Error("adam: no median line over [8, 10]")
	}
	for _, r := range [][2]float64{{0, 8}, {10, 10}, {5, 9}, {9, 15}, {10, 20}} {
		if r[0] == r[1] {
			continue
		}
		if !hasSegment(pn, r[0], r[1]) {
			t.Errorf("adam: no line for a run's part from %v to %v", r[0], r[1])
		}
	}
	for _, seg := range pn.points {
		if len(seg) == 1 {
			t.Errorf("a one-point part drawn at %v", seg[0])
		}
	}
	// The whole time axis is in view.
	if x := f.Plots()[0].X; x.Min != 0 || x.Max != 24 {
		t.Errorf("x axis [%v, %v], want [0, 24]", x.Min, x.Max)
	}
	// Without any such group, there is no note about thin lines.
	f, err = Band(hs[6:], XAxis(WallTime))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Labels(); len(got) != 2 {
		t.Errorf("lion alone: labels %q", got)
	}
}

// blendOverWhite returns colour c drawn with opacity a over white.
func blendOverWhite(c color.RGBA, a float64) color.RGBA {
	f := func(v uint8) uint8 { return uint8(float64(v)*a + 255*(1-a) + 0.5) }
	return color.RGBA{f(c.R), f(c.G), f(c.B), 255}
}
