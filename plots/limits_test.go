package plots

import (
	"math"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"github.com/goptlab/goptlab/mlx/history"
)

// run1 returns a run with the given x (wall time) and loss values.
func run1(name string, xs, ys []float64) *history.History {
	h := history.New(name, "adam", 1)
	for i := range xs {
		h.Add(history.Record{Step: i + 1, Time: xs[i], Evals: int64(i + 1), Loss: ys[i]})
	}
	return h
}

// Finite values too large to plot, sizes too large to render and other input gonum/plot
// cannot draw are errors that name the value and the allowed range, returned by the helper
// before anything is drawn (none of these cases renders).
func TestExtremeInputIsAnError(t *testing.T) {
	huge := run1("huge", []float64{1, 2}, []float64{-9e307, 9e307})
	longTime := run1("long", []float64{0, math.MaxFloat64}, []float64{1, 2})
	tiny := run1("tiny", []float64{1, 2}, []float64{1e-310, 1})
	lr := func(lr, final float64) *history.History {
		h := run1("s", []float64{1}, []float64{final})
		h.Records[0].Metrics = map[string]float64{"lr": lr}
		return h
	}
	valueRange := "within ±1e+300"
	logRange := "[1e-300, 1e+300]"
	sizeRange := "at most 7200 pt"
	ok := run1("ok", []float64{1, 2}, []float64{1, 2})
	okFig, err := Curves([]*history.History{ok})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want []string // in the error message
	}{
		{"Curves ±9e307", func() error { _, err := Curves([]*history.History{huge}); return err }, []string{"-9e+307", valueRange}},
		{"Curves time 0..MaxFloat64", func() error {
			_, err := Curves([]*history.History{longTime}, XAxis(WallTime))
			return err
		}, []string{"1.7976931348623157e+308", valueRange}},
		{"Curves 1e-310 on log y", func() error { _, err := Curves([]*history.History{tiny}, LogY()); return err }, []string{"1e-310", logRange}},
		{"Band ±9e307", func() error { _, err := Band([]*history.History{huge}); return err }, []string{"9e+307", valueRange}},
		{"LRSweep lr 1e-320", func() error { _, err := LRSweep([]*history.History{lr(1e-320, 1)}); return err }, []string{"1e-320", logRange}},
		{"LRSweep final 9e307", func() error { _, err := LRSweep([]*history.History{lr(1e-3, 9e307)}); return err }, []string{"9e+307", valueRange}},
		{"Bars 1e308", func() error {
			_, err := Bars([]BarEntry{{Group: "g", Series: "adam", Values: []float64{1e308, 1e308}}})
			return err
		}, []string{"1e+308", valueRange}},
		{"Histogram ±MaxFloat64", func() error {
			_, err := Histogram([]Sample{{Name: "w", Values: []float64{-math.MaxFloat64, math.MaxFloat64}}})
			return err
		}, []string{"1.7976931348623157e+308", valueRange}},
		{"Histogram LogX 5e-324", func() error {
			_, err := Histogram([]Sample{{Name: "w", Values: []float64{5e-324, 1}}}, LogX())
			return err
		}, []string{"5e-324", logRange}},
		{"Surface range ±1e308", func() error {
			_, err := Surface(Rosenbrock, Range{-1e308, 1e308}, Range{-1, 1}, nil, Resolution(4))
			return err
		}, []string{"1e+308", valueRange}},
		{"Surface range too narrow", func() error {
			_, err := Surface(Rosenbrock, Range{1, 1 + 1e-15}, Range{-1, 1}, nil, Resolution(50))
			return err
		}, []string{"too narrow", "50 cells"}},
		{"Surface Minimum(NaN, +Inf)", func() error {
			_, err := Surface(Rosenbrock, Range{-2, 2}, Range{-1, 3}, nil, Resolution(4), Minimum(math.NaN(), math.Inf(1)))
			return err
		}, []string{"Minimum(NaN, +Inf)", valueRange}},
		{"Surface trajectory 9e307", func() error {
			_, err := Surface(Rosenbrock, Range{-2, 2}, Range{-1, 3}, []Trajectory{{Name: "a", X: []float64{0, 9e307}, Y: []float64{0, 1}}}, Resolution(4))
			return err
		}, []string{"9e+307", valueRange}},
		{"Size(NaN, NaN)", func() error {
			_, err := Curves([]*history.History{ok}, Size(vg.Length(math.NaN()), vg.Length(math.NaN())))
			return err
		}, []string{"NaN", sizeRange}},
		{"Size(1e5, 1e5)", func() error { _, err := Curves([]*history.History{ok}, Size(1e5, 1e5)); return err }, []string{"100000 pt", sizeRange}},
		{"Size(-1, 100)", func() error {
			_, err := Histogram([]Sample{{Name: "w", Values: []float64{1}}}, Size(-1, 100))
			return err
		}, []string{"-1 pt", sizeRange}},
		{"Grid Size(+Inf, 100)", func() error {
			_, err := Grid(1, []*Figure{okFig}, Size(vg.Length(math.Inf(1)), 100))
			return err
		}, []string{"+Inf pt", sizeRange}},
		{"Grid too tall by default", func() error {
			figs := make([]*Figure, 40)
			for i := range figs {
				figs[i] = okFig
			}
			_, err := Grid(1, figs)
			return err
		}, []string{"9216 pt", sizeRange}},
		{"Figure.Width NaN", func() error {
			f := *okFig
			f.Width = vg.Length(math.NaN())
			_, err := f.SVG()
			return err
		}, []string{"NaN", sizeRange}},
		{"Figure 1e5 pt PNG", func() error {
			f := *okFig
			f.Width, f.Height = 1e5, 1e5
			_, err := f.PNG()
			return err
		}, []string{"100000 pt", sizeRange}},
		{"PNG over the pixel limit", func() error {
			f := *okFig
			f.Width, f.Height = 7000, 7000
			_, err := f.PNG()
			return err
		}, []string{"14000x14000 pixels", "PNGDPI"}},
		{"Legend(42)", func() error { _, err := Curves([]*history.History{ok}, Legend(42)); return err }, []string{"Legend(42)", "LegendNone"}},
		{"XAxis(99)", func() error { _, err := Band([]*history.History{ok}, XAxis(99)); return err }, []string{"XAxis(99)", "WallTime"}},
		{"SpreadBand(-3)", func() error { _, err := Band([]*history.History{ok}, SpreadBand(-3)); return err }, []string{"SpreadBand(-3)", "Quartiles"}},
		{"Bins(0)", func() error { _, err := Histogram([]Sample{{Name: "w", Values: []float64{1}}}, Bins(0)); return err }, []string{"bins"}},
		{"zero dash pattern", func() error {
			SetStyle("zero-dashes", Style{Color: OkabeIto[0], Dashes: []vg.Length{0, 0}})
			h := run1("z", []float64{1, 2}, []float64{1, 2})
			h.Optimizer = "zero-dashes"
			_, err := Curves([]*history.History{h})
			return err
		}, []string{"dash", "0.25 pt"}},
	} {
		err := tc.call()
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
	}
}

// Values at the limits are drawn: every helper renders SVG and PNG, with finite ticks.
func TestValuesAtTheLimitsRender(t *testing.T) {
	small := Size(2.5*vg.Inch, 1.8*vg.Inch)
	type fig struct {
		name string
		f    func() (*Figure, error)
	}
	for _, tc := range []fig{
		{"curves ±1e300", func() (*Figure, error) {
			return Curves([]*history.History{run1("a", []float64{0, 1e300}, []float64{-1e300, 1e300})}, small, XAxis(WallTime))
		}},
		{"curves constant 1e300", func() (*Figure, error) {
			return Curves([]*history.History{run1("a", []float64{1, 2}, []float64{1e300, 1e300})}, small)
		}},
		{"curves log 1e-300..1e300", func() (*Figure, error) {
			return Curves([]*history.History{run1("a", []float64{1, 2}, []float64{1e-300, 1e300})}, small, LogY())
		}},
		{"curves log single 1e-300", func() (*Figure, error) {
			return Curves([]*history.History{run1("a", []float64{1}, []float64{1e-300})}, small, LogY())
		}},
		{"curves width below resolution", func() (*Figure, error) {
			return Curves([]*history.History{run1("a", []float64{1, 2}, []float64{1, 1 + 1e-15})}, small)
		}},
		{"bars ±1e300", func() (*Figure, error) {
			return Bars([]BarEntry{{Group: "g", Series: "adam", Values: []float64{1e300, -1e300, 1e300}}}, small)
		}},
		{"histogram ±1e300", func() (*Figure, error) {
			return Histogram([]Sample{{Name: "w", Values: []float64{-1e300, 0, 1e300}}}, small)
		}},
		{"histogram constant 1e300", func() (*Figure, error) {
			return Histogram([]Sample{{Name: "w", Values: []float64{1e300, 1e300}}}, small)
		}},
		{"histogram LogX 1e-300..1e300", func() (*Figure, error) {
			return Histogram([]Sample{{Name: "w", Values: []float64{1e-300, 1e300}}}, small, LogX())
		}},
		{"surface ±1e300, linear colour", func() (*Figure, error) {
			return Surface(func(x, y float64) float64 { return x + y }, Range{-1e300, 1e300}, Range{-1e300, 1e300}, nil, small, Resolution(8), LogColor(false))
		}},
		{"lr sweep 1e-300", func() (*Figure, error) {
			h := run1("s", []float64{1}, []float64{1e300})
			h.Records[0].Metrics = map[string]float64{"lr": 1e-300}
			return LRSweep([]*history.History{h}, small)
		}},
		{"axes set to ±MaxFloat64 through Plots", func() (*Figure, error) {
			f, err := Curves([]*history.History{run1("a", []float64{1, 2}, []float64{1, 2})}, small)
			if err != nil {
				return nil, err
			}
			for _, a := range []*plot.Axis{&f.Plots()[0].X, &f.Plots()[0].Y} {
				a.Min, a.Max = -math.MaxFloat64, math.MaxFloat64 // a width that overflows
			}
			return f, nil
		}},
	} {
		f, err := tc.f()
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if _, err := f.SVG(); err != nil {
			t.Errorf("%s: SVG: %v", tc.name, err)
		}
		if _, err := f.PNG(); err != nil {
			t.Errorf("%s: PNG: %v", tc.name, err)
		}
	}
}

// Tick generation is bounded for any range, including ranges whose width overflows to
// +Inf, infinite, empty, NaN and sub-resolution ones, and every label is printable.
func TestTicksBounded(t *testing.T) {
	const maxLinear, maxLog = 40, 700
	ranges := [][2]float64{
		{-9e307, 9e307}, {0, math.MaxFloat64}, {-math.MaxFloat64, math.MaxFloat64},
		{math.Inf(-1), math.Inf(1)}, {0, math.Inf(1)}, {math.NaN(), 1}, {1, math.NaN()},
		{1, 1}, {1e300, 1e300}, {2, 1}, {0, 1e-320}, {0, 5e-324}, {1, 1 + 1e-15},
		{1e300, 1e300 * (1 + 1e-15)}, {-1, 1}, {5e-324, 1e-323}, {5e-324, math.MaxFloat64},
	}
	for _, r := range ranges {
		lin := linearTicks{}.Ticks(r[0], r[1])
		if len(lin) > maxLinear {
			t.Errorf("linear ticks on [%g, %g]: %d ticks, want at most %d", r[0], r[1], len(lin), maxLinear)
		}
		checkTicks(t, "linear", r, lin)
		lg := logTicks{}.Ticks(r[0], r[1])
		if len(lg) > maxLog {
			t.Errorf("log ticks on [%g, %g]: %d ticks, want at most %d", r[0], r[1], len(lg), maxLog)
		}
		checkTicks(t, "log", r, lg)
	}
	// A wide range still gets several labels.
	if n := countLabels(linearTicks{}.Ticks(-9e307, 9e307)); n < 3 {
		t.Errorf("[-9e307, 9e307]: %d labels, want at least 3", n)
	}
	if n := countLabels(linearTicks{}.Ticks(0, math.MaxFloat64)); n < 3 {
		t.Errorf("[0, MaxFloat64]: %d labels, want at least 3", n)
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64, 5e-324} {
		if s := formatTick(v); s == "" {
			t.Errorf("formatTick(%v) is empty", v)
		}
	}
}

func checkTicks(t *testing.T, kind string, r [2]float64, ticks []plot.Tick) {
	t.Helper()
	for _, tk := range ticks {
		if !finite(tk.Value) {
			t.Errorf("%s ticks on [%g, %g]: tick at %v", kind, r[0], r[1], tk.Value)
			return
		}
	}
}
