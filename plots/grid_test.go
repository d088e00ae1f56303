package plots

import (
	"strings"
	"testing"
)

func TestGrid(t *testing.T) {
	hs := append(seeds(t, "adam", "adam", 3, 0.02), seeds(t, "sgd", "sgd", 3, 0.008)...)
	a, err := Curves(hs, LogY(), Title("loss"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Band(hs, LogY(), Title("median over seeds"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Curves(hs, Metric("accuracy"), Title("accuracy"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Curves(hs, Metric("lr"), XAxis(WallTime), Title("schedule"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := Grid(2, []*Figure{a, b, c, d}, Title("Adam vs SGD"))
	if err != nil {
		t.Fatal(err)
	}
	r := render(t, g, "grid")
	if len(g.Plots()) != 4 {
		t.Errorf("grid has %d plots, want 4", len(g.Plots()))
	}
	if g.Width != 2*GridCellWidth || g.Height <= 2*GridCellHeight {
		t.Errorf("grid size %v x %v", g.Width, g.Height)
	}
	for _, s := range []string{">Adam vs SGD<", ">loss<", ">median over seeds<", ">accuracy<", ">schedule<", ">wall time (s)<", ">learning rate<"} {
		if !strings.Contains(r.svg, s) {
			t.Errorf("SVG lacks %q", s)
		}
	}
	if got := len(g.Labels()); got != 2+3+2+2 {
		t.Errorf("grid has %d legend labels, want 9", got)
	}
	// A 3-wide grid of 2 figures has 2 columns.
	g2, err := Grid(3, []*Figure{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if g2.cols != 2 || g2.Width != 2*GridCellWidth {
		t.Errorf("cols %d width %v", g2.cols, g2.Width)
	}
	if _, err := Grid(0, []*Figure{a}); err == nil {
		t.Error("cols 0: no error")
	}
	if _, err := Grid(2, nil); err == nil {
		t.Error("no figures: no error")
	}
	if _, err := Grid(2, []*Figure{a, nil}); err == nil {
		t.Error("nil figure: no error")
	}
}

func TestFormatTick(t *testing.T) {
	for v, want := range map[float64]string{
		6.000000000000001e-4: "6e-4", 2.5e-4: "2.5e-4", 1e6: "1e6", 0.5: "0.5", 0.30000000000000004: "0.3",
		100: "100", 0: "0", -1e-5: "-1e-5", 12345: "12345",
	} {
		if got := formatTick(v); got != want {
			t.Errorf("formatTick(%v) = %q, want %q", v, got, want)
		}
	}
}
