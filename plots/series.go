package plots

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/goptlab/goptlab/mlx/history"
)

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// segments splits the points (xs[i], ys[i]) into runs of finite points: non-finite values
// become gaps.
func segments(xs, ys []float64) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	for i := range xs {
		if finite(xs[i]) && finite(ys[i]) {
			cur = append(cur, plotter.XY{X: xs[i], Y: ys[i]})
			continue
		}
		if len(cur) > 0 {
			out = append(out, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// checkLog returns an error naming what if a finite value of vs is not positive.
func checkLog(vs []float64, axis, what string) error {
	for i, v := range vs {
		if finite(v) && v <= 0 {
			return fmt.Errorf("%s: value %g at index %d cannot go on a log %s axis (use a linear axis, or plot a positive quantity such as loss minus its minimum)", what, v, i, axis)
		}
	}
	return nil
}

// series is one named line in a plot.
type series struct {
	label string
	style Style
	xs    []float64
	ys    []float64
	// noDivergence turns off the cross and "(diverged)" label for a non-finite last value,
	// for plots whose x is not time (e.g. learning rate).
	noDivergence bool
}

// drawLine adds s to the panel as lines with gaps at non-finite values, a dot for each
// isolated finite point, and a cross at the last finite point if the series ends
// non-finite (it diverged). It returns the legend label, with " (diverged)" or
// " (no finite values)" appended when that applies.
func (pn *panel) drawLine(s series) (string, error) {
	if len(s.xs) != len(s.ys) {
		return "", fmt.Errorf("series %q: %d x values but %d y values", s.label, len(s.xs), len(s.ys))
	}
	segs := segments(s.xs, s.ys)
	ls := s.style.lineStyle()
	var thumb plot.Thumbnailer = &plotter.Line{LineStyle: ls}
	for _, seg := range segs {
		pn.points = append(pn.points, seg)
		if len(seg) == 1 {
			sc := &plotter.Scatter{XYs: seg, GlyphStyle: draw.GlyphStyle{Color: s.style.Color, Radius: vg.Points(1.8), Shape: draw.CircleGlyph{}}}
			pn.plot.Add(sc)
			continue
		}
		pn.plot.Add(&plotter.Line{XYs: seg, LineStyle: ls})
	}
	pn.series++
	// Keep the whole x range of the run in view, also where its values are not finite, so
	// that a divergence shows where the run went on.
	for i, x := range s.xs {
		if finite(x) && !finite(s.ys[i]) {
			pn.plot.X.Min = math.Min(pn.plot.X.Min, x)
			pn.plot.X.Max = math.Max(pn.plot.X.Max, x)
		}
	}
	label := s.label
	switch {
	case len(segs) == 0:
		label += " (no finite values)"
	case !s.noDivergence && len(s.ys) > 0 && !finite(s.ys[len(s.ys)-1]):
		last := segs[len(segs)-1]
		pn.plot.Add(&plotter.Scatter{XYs: last[len(last)-1:], GlyphStyle: draw.GlyphStyle{
			Color: s.style.Color, Radius: vg.Points(4.5), Shape: thickCross{}}})
		label += " (diverged)"
	}
	pn.addLegend(label, thumb)
	return label, nil
}

// column returns the x or y column key of h, with an error naming the run.
func column(h *history.History, key string) ([]float64, error) {
	if h == nil {
		return nil, fmt.Errorf("nil history")
	}
	v, err := h.Column(key)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// checkHistories rejects an empty list, nil or empty histories and invalid ones.
func checkHistories(hs []*history.History) error {
	if len(hs) == 0 {
		return fmt.Errorf("no histories to plot")
	}
	for i, h := range hs {
		if h == nil {
			return fmt.Errorf("history #%d is nil", i)
		}
		if len(h.Records) == 0 {
			return fmt.Errorf("history %q has no records", h.Label())
		}
		if err := h.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// yLabel returns the default y label for a metric.
func yLabel(metric string) string {
	switch metric {
	case history.KeyLoss:
		return "training loss"
	case "lr":
		return "learning rate"
	}
	return metric
}

// setLogAxes sets log scales with readable ticks on the axes the config asks for.
func setLogAxes(p *plot.Plot, c *config) {
	if c.logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = logTicks{}
	}
	if c.logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
}

// logTicks labels powers of ten, and also 2 and 5 times them when the axis spans fewer
// than two decades, so that a log axis always has at least two labels.
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi > lo) {
		return nil
	}
	lo10, hi10 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	decades := math.Log10(hi) - math.Log10(lo)
	labelled := []float64{1}
	switch {
	case decades < 0.7:
		labelled = []float64{1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9}
	case decades < 2:
		labelled = []float64{1, 2, 5}
	}
	step := 1.0
	if hi10-lo10 > 8 {
		step = math.Ceil((hi10 - lo10) / 8)
	}
	var ticks []plot.Tick
	for e := lo10; e <= hi10; e++ {
		p := math.Pow(10, e)
		for m := 1; m <= 9; m++ {
			v := p * float64(m)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if slices.Contains(labelled, float64(m)) && (m != 1 || math.Mod(e-lo10, step) == 0) {
				t.Label = formatTick(v)
			}
			ticks = append(ticks, t)
		}
	}
	if countLabels(ticks) < 2 {
		// Within a narrow range: fall back to evenly spaced linear ticks.
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	return ticks
}

func countLabels(ts []plot.Tick) int {
	n := 0
	for _, t := range ts {
		if t.Label != "" {
			n++
		}
	}
	return n
}

// formatTick writes v compactly with at most 6 significant digits: 0.001, 0.5, 20, 1000,
// 2.5e-4, 1e+6 is written 1e6.
func formatTick(v float64) string {
	a := math.Abs(v)
	if a != 0 && (a < 1e-3 || a >= 1e5) {
		s := strconv.FormatFloat(v, 'e', 5, 64) // e.g. 6.00000e-04
		mant, exp, _ := strings.Cut(s, "e")
		if strings.Contains(mant, ".") {
			mant = strings.TrimRight(strings.TrimRight(mant, "0"), ".")
		}
		sign := exp[:1]
		exp = strings.TrimLeft(exp[1:], "0")
		if sign == "+" {
			sign = ""
		}
		return mant + "e" + sign + exp
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// headroom raises the top of the y axis by 5% of its range (a factor 1.3 on a log axis),
// so that the tallest bar or error bar does not touch the frame.
func headroom(p *plot.Plot, logY bool) {
	if logY {
		p.Y.Max *= 1.3
		return
	}
	if p.Y.Max > p.Y.Min {
		p.Y.Max += 0.05 * (p.Y.Max - p.Y.Min)
	}
}
