package plots

import (
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"sort"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/goptlab/goptlab/mlx/history"
)

// LRSweep plots the final loss (or the final value of the metric chosen with [Metric])
// against the learning rate, on a log x axis, one line per optimizer: the median over
// seeds at each learning rate, with error bars from the minimum to the maximum.
//
// A run's learning rate is its "lr" hyperparameter (history.History.Params, as mlx/sweep
// records it), or else the first value of its "lr" metric ([LRMetric] names another);
// runs are grouped by optimizer ([GroupBy] changes it). Runs whose final value is NaN or
// ±Inf count as diverged: they rank above every finite value in the median, a learning rate
// whose median diverged is drawn as a cross on the top edge, and the legend counts
// diverged runs.
//
// Options used: [Title], [XLabel], [YLabel], [Size], [LogY], [Metric], [Legend],
// [GroupBy], [LRMetric].
func LRSweep(hs []*history.History, opts ...Option) (*Figure, error) {
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("plots.LRSweep: %w", err)
	}
	f, err := lrSweep(hs, c)
	if err != nil {
		return nil, fmt.Errorf("plots.LRSweep: %w", err)
	}
	return f, nil
}

// sweepPoint is the summary of the runs of one group at one learning rate.
type sweepPoint struct {
	lr             float64
	median, lo, hi float64 // lo and hi over finite values; NaN if none
	diverged       int
}

func lrSweep(hs []*history.History, c *config) (*Figure, error) {
	if err := checkHistories(hs); err != nil {
		return nil, err
	}
	keyOf := c.groupBy
	if keyOf == nil {
		keyOf = optimizerOf
	}
	type runVal struct{ lr, final float64 }
	var order []string
	byGroup := map[string][]runVal{}
	groupOpt := map[string]string{}
	for _, h := range hs {
		lr, err := learningRate(h, c.lrMetric)
		if err != nil {
			return nil, err
		}
		ys, err := h.Column(c.metric)
		if err != nil {
			return nil, err
		}
		k := keyOf(h)
		if _, ok := byGroup[k]; !ok {
			order = append(order, k)
			groupOpt[k] = optimizerOf(h)
		}
		byGroup[k] = append(byGroup[k], runVal{lr, ys[len(ys)-1]})
	}

	p := newPlot(c.title, orDefault(c.xlabel, "learning rate"), orDefault(c.ylabel, "final "+yLabel(c.metric)))
	c.logX = true
	setLogAxes(p, c)
	f, pn := newFigure(c, p)
	styles := newStyler()
	anyTop := false
	for _, k := range order {
		vals := byGroup[k]
		slices.SortStableFunc(vals, func(a, b runVal) int { return cmp.Compare(a.lr, b.lr) })
		var pts []sweepPoint
		for i := 0; i < len(vals); {
			j := i
			var finals []float64
			for ; j < len(vals) && vals[j].lr == vals[i].lr; j++ {
				finals = append(finals, vals[j].final)
			}
			pts = append(pts, summarizeFinals(vals[i].lr, finals))
			i = j
		}
		st := styles.styleOf(groupOpt[k], k)
		xs := make([]float64, len(pts))
		ys := make([]float64, len(pts))
		var bars plotter.XYs
		var errs plotter.YErrors
		var top []float64
		diverged, runs := 0, len(vals)
		for i, pt := range pts {
			xs[i], ys[i] = pt.lr, pt.median
			diverged += pt.diverged
			if err := checkValues([]float64{pt.lo, pt.hi, pt.median}, fmt.Sprintf("%s at lr=%g: final %s (lowest, highest, median)", k, pt.lr, c.metric), "y", c.logY, ""); err != nil {
				return nil, err
			}
			if !finite(pt.median) {
				top = append(top, pt.lr)
			}
			if finite(pt.lo) && finite(pt.hi) && finite(pt.median) && pt.hi > pt.lo {
				bars = append(bars, plotter.XY{X: pt.lr, Y: pt.median})
				errs = append(errs, struct{ Low, High float64 }{pt.median - pt.lo, pt.hi - pt.median})
			}
		}
		if len(bars) > 0 {
			p.Add(&plotter.YErrorBars{XYs: bars, YErrors: errs, CapWidth: vg.Points(5),
				LineStyle: draw.LineStyle{Color: st.Color, Width: vg.Points(1)}})
		}
		if _, err := pn.drawLine(series{label: k, style: st, xs: xs, ys: ys, noDivergence: true}); err != nil {
			return nil, err
		}
		var finitePts plotter.XYs
		for i := range xs {
			if finite(ys[i]) {
				finitePts = append(finitePts, plotter.XY{X: xs[i], Y: ys[i]})
			}
		}
		marker := draw.GlyphStyle{Color: st.Color, Radius: vg.Points(2.8), Shape: draw.CircleGlyph{}}
		p.Add(&plotter.Scatter{XYs: finitePts, GlyphStyle: marker})
		e := &pn.legend[len(pn.legend)-1]
		e.thumbs = append(e.thumbs, &plotter.Scatter{GlyphStyle: marker})
		if len(top) > 0 {
			anyTop = true
			p.Add(&topMarks{xs: top, color: st.Color})
			pn.offChart = append(pn.offChart, top...)
			for _, x := range top {
				p.X.Min, p.X.Max = math.Min(p.X.Min, x), math.Max(p.X.Max, x)
			}
		}
		if diverged > 0 {
			e.label = fmt.Sprintf("%s (%d of %d runs diverged)", k, diverged, runs)
		}
	}
	if anyTop {
		pn.addLegend("median diverged", &topMarks{color: color.Gray{Y: 60}})
	}
	return f, nil
}

// learningRate returns h's hyperparameter named metric, or else the first value of the metric in h.
func learningRate(h *history.History, metric string) (float64, error) {
	check := func(v float64) (float64, error) {
		if !finite(v) || v <= 0 {
			return 0, fmt.Errorf("run %q: learning rate %s = %g is not a positive number", h.Label(), metric, v)
		}
		if err := checkValue(v, true); err != nil {
			return 0, fmt.Errorf("run %q: learning rate %s = %s %w", h.Label(), metric, fmtValue(v), err)
		}
		return v, nil
	}
	if v, ok := h.Params[metric]; ok {
		return check(v)
	}
	for _, r := range h.Records {
		if v, ok := r.Metrics[metric]; ok {
			return check(v)
		}
	}
	return 0, fmt.Errorf("run %q has no %q hyperparameter or metric to read its learning rate from (see plots.LRMetric)", h.Label(), metric)
}

// summarizeFinals computes the median of finals, counting non-finite values as +Inf, and
// the range of the finite values.
func summarizeFinals(lr float64, finals []float64) sweepPoint {
	pt := sweepPoint{lr: lr, lo: math.NaN(), hi: math.NaN()}
	sorted := make([]float64, len(finals))
	for i, v := range finals {
		if !finite(v) {
			pt.diverged++
			v = math.Inf(1)
		} else {
			pt.lo = minNaN(pt.lo, v)
			pt.hi = maxNaN(pt.hi, v)
		}
		sorted[i] = v
	}
	sort.Float64s(sorted)
	n := len(sorted)
	if n%2 == 1 {
		pt.median = sorted[n/2]
	} else if math.IsInf(sorted[n/2], 1) {
		pt.median = math.Inf(1)
	} else {
		pt.median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return pt
}

func minNaN(a, b float64) float64 {
	if math.IsNaN(a) {
		return b
	}
	return math.Min(a, b)
}

func maxNaN(a, b float64) float64 {
	if math.IsNaN(a) {
		return b
	}
	return math.Max(a, b)
}
