package plots

import (
	"math"
	"strings"
	"testing"

	"github.com/goptlab/goptlab/mlx/history"
)

func TestCurves(t *testing.T) {
	hs := []*history.History{
		synth(t, "adam", "adam", 1, 0.02),
		synth(t, "sgd", "sgd", 1, 0.008),
		synth(t, "lion", "lion", 1, 0.012),
	}
	f, err := Curves(hs, LogY(), Title("Training loss"))
	if err != nil {
		t.Fatal(err)
	}
	r := render(t, f, "curves")
	if got := f.Labels(); strings.Join(got, "|") != "adam|sgd|lion" {
		t.Errorf("legend labels = %q, want adam, sgd, lion", got)
	}
	if pn := f.panels[0]; pn.series != 3 {
		t.Errorf("series = %d, want 3", pn.series)
	}
	for _, name := range []string{"adam", "sgd", "lion", "Training loss", "training loss", "step"} {
		if !strings.Contains(r.svg, ">"+name+"<") {
			t.Errorf("SVG lacks text %q", name)
		}
	}
	for _, opt := range []string{"adam", "sgd", "lion"} {
		if n := countColor(r.img, StyleFor(opt)); n < 200 {
			t.Errorf("PNG has %d pixels of %s's colour, want a visible line", n, opt)
		}
	}
	p := f.Plots()[0]
	if p.X.Min != 5 || p.X.Max != 500 {
		t.Errorf("x range = [%v, %v], want [5, 500]", p.X.Min, p.X.Max)
	}
	if !(p.Y.Min > 0.05 && p.Y.Max < 2.3*1.5) {
		t.Errorf("y range = [%v, %v], want within the loss range", p.Y.Min, p.Y.Max)
	}
}

func TestCurvesXAxes(t *testing.T) {
	h := synth(t, "adam", "adam", 1, 0.02)
	last, _ := h.Last()
	for _, tc := range []struct {
		x     X
		max   float64
		label string
	}{{Steps, 500, "step"}, {WallTime, last.Time, "wall time (s)"}, {Evals, 1000, "loss evaluations"}} {
		f, err := Curves([]*history.History{h}, XAxis(tc.x))
		if err != nil {
			t.Fatal(err)
		}
		p := f.Plots()[0]
		if p.X.Max != tc.max || p.X.Label.Text != tc.label {
			t.Errorf("XAxis(%v): x max %v label %q, want %v %q", tc.x, p.X.Max, p.X.Label.Text, tc.max, tc.label)
		}
	}
}

func TestCurvesMetricAndVariants(t *testing.T) {
	hs := []*history.History{
		synth(t, "adam lr=1e-3", "adam", 1, 0.02),
		synth(t, "adam lr=1e-2", "adam", 1, 0.03),
		synth(t, "adam lr=1e-2", "adam", 2, 0.03), // a second seed: same legend entry
	}
	f, err := Curves(hs, Metric("accuracy"))
	if err != nil {
		t.Fatal(err)
	}
	r := render(t, f, "curves_variants")
	if got := f.Labels(); strings.Join(got, "|") != "adam lr=1e-3|adam lr=1e-2 (2 runs)" {
		t.Errorf("labels = %q", got)
	}
	if f.Plots()[0].Y.Label.Text != "accuracy" {
		t.Errorf("y label = %q", f.Plots()[0].Y.Label.Text)
	}
	// Same colour, different dashes.
	if !strings.Contains(r.svg, "stroke-dasharray") {
		t.Error("the second adam variant is not dashed")
	}
	if _, err := Curves(hs, Metric("nope")); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown metric: error %v", err)
	}
}

func TestCurvesGapsAndDivergence(t *testing.T) {
	h := history.New("unstable", "sgd", 0)
	for i := 1; i <= 40; i++ {
		loss := 1 / float64(i)
		switch {
		case i == 10 || i == 11:
			loss = math.NaN() // a gap
		case i == 20:
			loss = math.NaN() // isolated point at 19... and 21 starts a new segment
		case i > 30:
			loss = math.Inf(1) // diverged
		}
		h.Add(history.Record{Step: i, Time: float64(i), Evals: int64(i), Loss: loss})
	}
	f, err := Curves([]*history.History{h}, LogY())
	if err != nil {
		t.Fatal(err)
	}
	render(t, f, "curves_gaps")
	if got := f.Labels(); len(got) != 1 || got[0] != "unstable (diverged)" {
		t.Errorf("labels = %q, want [unstable (diverged)]", got)
	}
	pn := f.panels[0]
	if len(pn.points) != 3 {
		t.Errorf("got %d line segments, want 3 (gaps at steps 10-11 and 20)", len(pn.points))
	}
	allNaN := history.New("nan", "adam", 0)
	allNaN.Add(history.Record{Step: 1, Loss: math.NaN()})
	f, err = Curves([]*history.History{allNaN})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Labels(); got[0] != "nan (no finite values)" {
		t.Errorf("labels = %q", got)
	}
}

func TestCurvesBadInput(t *testing.T) {
	neg := history.New("neg", "adam", 0)
	neg.Add(history.Record{Step: 1, Loss: -1})
	bad := history.New("bad", "adam", 0)
	bad.Add(history.Record{Step: 2})
	bad.Add(history.Record{Step: 1})
	cases := map[string]struct {
		hs   []*history.History
		opts []Option
	}{
		"no histories":      {nil, nil},
		"nil history":       {[]*history.History{nil}, nil},
		"empty history":     {[]*history.History{history.New("e", "adam", 0)}, nil},
		"negative on log y": {[]*history.History{neg}, []Option{LogY()}},
		"invalid history":   {[]*history.History{bad}, nil},
	}
	for name, tc := range cases {
		if _, err := Curves(tc.hs, tc.opts...); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "plots.Curves: ") {
			t.Errorf("%s: error %q lacks context", name, err)
		}
	}
	// On a linear axis a negative loss is fine.
	if _, err := Curves([]*history.History{neg}); err != nil {
		t.Errorf("negative loss on a linear axis: %v", err)
	}
}

// A run with a single logged step (a live view's first frame) on a log axis: gonum widens a
// one-value range by ±1, which reaches zero; the helper must widen it within the log scale.
func TestCurvesSingleRecordOnLogAxis(t *testing.T) {
	h := history.New("a", "adam", 1)
	h.Add(history.Record{Step: 10, Time: 0.1, Evals: 10, Loss: 0.7})
	fig, err := Curves([]*history.History{h}, LogY())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fig.SVG(); err != nil {
		t.Fatal(err)
	}
	y := fig.Plots()[0].Y
	if !(y.Min > 0 && y.Min < 0.7 && y.Max > 0.7) {
		t.Errorf("y axis range [%g, %g] should be positive and contain 0.7", y.Min, y.Max)
	}
}
