package plots

import (
	"fmt"
	"math"

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

// series is one named line in a plot.
type series struct {
	label string
	style Style
	xs    []float64
	ys    []float64
	// noDivergence turns off the cross and "(diverged)" label for a non-finite last value,
	// for plots whose x is not time (e.g. learning rate).
	noDivergence bool
	// thin draws a thin, translucent line: a single run beside a median ([Band]).
	thin bool
}

// drawLine adds s to the panel as lines with gaps at non-finite values (thinned to a few
// points per pixel column when drawn: see [thinXY]), a dot for each isolated finite
// point, and a cross at the last finite point if the series ends non-finite (it
// diverged). It returns the legend label, with " (diverged)" or " (no finite values)"
// appended when that applies.
func (pn *panel) drawLine(s series) (string, error) {
	if len(s.xs) != len(s.ys) {
		return "", fmt.Errorf("series %q: %d x values but %d y values", s.label, len(s.xs), len(s.ys))
	}
	if err := checkStyle(s.style); err != nil {
		return "", fmt.Errorf("series %q: %w", s.label, err)
	}
	segs := segments(s.xs, s.ys)
	ls := s.style.lineStyle()
	if s.thin {
		ls = s.style.thinLineStyle()
	}
	var thumb plot.Thumbnailer = &plotter.Line{LineStyle: ls}
	for _, seg := range segs {
		pn.points = append(pn.points, seg)
		if len(seg) == 1 {
			sc := &plotter.Scatter{XYs: seg, GlyphStyle: draw.GlyphStyle{Color: s.style.Color, Radius: vg.Points(1.8), Shape: draw.CircleGlyph{}}}
			pn.plot.Add(sc)
			continue
		}
		pn.plot.Add(thinLine{&plotter.Line{XYs: seg, LineStyle: ls}})
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

// drawUnlabelled draws s like drawLine, but without a legend entry, and not counted as a
// series: a part of something the legend names otherwise.
func (pn *panel) drawUnlabelled(s series) error {
	if _, err := pn.drawLine(s); err != nil {
		return err
	}
	pn.legend = pn.legend[:len(pn.legend)-1]
	pn.series--
	return nil
}

// runColumns returns the x and y values of run h that c asks for ([XAxis] and [Metric]),
// checking that they can be drawn: within ±MaxValue, and in [MinLogValue, MaxValue] on
// the log axes c asks for.
func runColumns(h *history.History, c *config) (xs, ys []float64, err error) {
	if xs, err = h.Column(c.x.key()); err != nil {
		return nil, nil, err
	}
	if ys, err = h.Column(c.metric); err != nil {
		return nil, nil, err
	}
	if err := checkValues(xs, fmt.Sprintf("run %q %s", h.Label(), c.x.key()), "x", c.logX, ""); err != nil {
		return nil, nil, err
	}
	if err := checkValues(ys, fmt.Sprintf("run %q %s", h.Label(), c.metric), "y", c.logY, divergedHint); err != nil {
		return nil, nil, err
	}
	return xs, ys, nil
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
