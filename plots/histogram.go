package plots

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Sample is a named set of values for [Histogram], e.g. the weights of one layer or the
// Hessian-diagonal estimates of one optimizer. The name picks the colour, as for optimizers.
type Sample struct {
	Name   string
	Values []float64
}

// Histogram draws the distribution of each sample as a translucent histogram over shared
// bins ([Bins], default 40), so that overlaid samples stay visible.
//
// With [LogX] the bins are equally wide in log10 of the value: the right view of
// quantities spread over orders of magnitude, such as Hessian-diagonal estimates; values
// <= 0 cannot be shown then. NaN and ±Inf values are never binned. What is left out is
// counted in the legend, e.g. "hessian (n=1000; 3 NaN/Inf, 12 ≤ 0 not shown)". Finite
// values must lie within ±[MaxValue] (with LogX, positive ones in [[MinLogValue], MaxValue]).
// [LogY] puts counts on a log axis (empty bins are then not drawn).
//
// Options used: [Title], [XLabel] (default "value"), [YLabel] (default "count"), [Size],
// [LogX], [LogY], [Bins], [Legend].
func Histogram(samples []Sample, opts ...Option) (*Figure, error) {
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("plots.Histogram: %w", err)
	}
	f, err := histogram(samples, c)
	if err != nil {
		return nil, fmt.Errorf("plots.Histogram: %w", err)
	}
	return f, nil
}

func histogram(samples []Sample, c *config) (*Figure, error) {
	if len(samples) == 0 {
		return nil, fmt.Errorf("no samples")
	}
	if c.bins < 1 || c.bins > 10000 {
		return nil, fmt.Errorf("bins = %d, want 1 to 10000", c.bins)
	}
	// Transform (log10 for LogX), filter, and find the common range.
	kept := make([][]float64, len(samples))
	notes := make([]string, len(samples))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, s := range samples {
		nonFinite, nonPositive := 0, 0
		for j, v := range s.Values {
			switch {
			case !finite(v):
				nonFinite++
				continue
			case c.logX && v <= 0:
				nonPositive++
				continue
			}
			if err := checkValue(v, c.logX); err != nil {
				return nil, fmt.Errorf("sample %q: value %s at index %d %w", s.Name, fmtValue(v), j, err)
			}
			if c.logX {
				v = math.Log10(v)
			}
			kept[i] = append(kept[i], v)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
		var dropped []string
		if nonFinite > 0 {
			dropped = append(dropped, fmt.Sprintf("%d NaN/Inf", nonFinite))
		}
		if nonPositive > 0 {
			dropped = append(dropped, fmt.Sprintf("%d ≤ 0", nonPositive))
		}
		notes[i] = fmt.Sprintf("n=%d", len(kept[i]))
		if len(dropped) > 0 {
			notes[i] = fmt.Sprintf("n=%d; %s not shown", len(kept[i]), strings.Join(dropped, ", "))
		}
		if len(kept[i]) == 0 {
			return nil, fmt.Errorf("sample %q has no values to show (%d values, %s)", s.Name, len(s.Values), notes[i])
		}
	}
	if lo == hi {
		// One value: a bin of width 1 around it, or 0.1% of it where 1 is below its resolution.
		d := math.Max(0.5, math.Abs(lo)*1e-3)
		lo, hi = lo-d, hi+d
	}
	width := (hi - lo) / float64(c.bins)
	p := newPlot(c.title, orDefault(c.xlabel, "value"), orDefault(c.ylabel, "count"))
	setLogAxes(p, c)
	f, pn := newFigure(c, p)
	for i, s := range samples {
		st := StyleFor(s.Name)
		counts := make([]float64, c.bins)
		for _, v := range kept[i] {
			b := int((v - lo) / width)
			counts[min(max(b, 0), c.bins-1)]++
		}
		h := &plotter.Histogram{Width: width, FillColor: withAlpha(st.Color, 0.35), LogY: c.logY}
		h.LineStyle = st.lineStyle()
		h.LineStyle.Width = vg.Points(1)
		h.LineStyle.Dashes = nil
		var pts plotter.XYs
		for b, n := range counts {
			if n == 0 {
				continue // nothing to draw (and no place for zero on a log axis)
			}
			bin := plotter.HistogramBin{Min: lo + float64(b)*width, Max: lo + float64(b+1)*width, Weight: n}
			if c.logX {
				bin.Min, bin.Max = math.Pow(10, bin.Min), math.Pow(10, bin.Max)
			}
			h.Bins = append(h.Bins, bin)
			for k := 1; k <= 4; k++ { // the bar's area, for placing an inside legend
				pts = append(pts, plotter.XY{X: (bin.Min + bin.Max) / 2, Y: n * float64(k) / 4})
			}
		}
		p.Add(h)
		pn.points = append(pn.points, pts)
		pn.series++
		pn.addLegend(fmt.Sprintf("%s (%s)", s.Name, notes[i]), h)
	}
	headroom(p, c.logY)
	return f, nil
}
