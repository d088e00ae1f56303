package plots

import (
	"image/color"
	"math"
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
	// Runs that share no x range.
	a, b := history.New("x", "adam", 1), history.New("x", "adam", 2)
	a.Add(history.Record{Step: 1, Loss: 1})
	b.Add(history.Record{Step: 5, Loss: 1})
	if _, err := Band([]*history.History{a, b}); err == nil || !strings.Contains(err.Error(), "share no x range") {
		t.Errorf("disjoint runs: error %v", err)
	}
}

// blendOverWhite returns colour c drawn with opacity a over white.
func blendOverWhite(c color.RGBA, a float64) color.RGBA {
	f := func(v uint8) uint8 { return uint8(float64(v)*a + 255*(1-a) + 0.5) }
	return color.RGBA{f(c.R), f(c.G), f(c.B), 255}
}
