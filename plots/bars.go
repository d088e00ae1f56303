package plots

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/goptlab/goptlab/mlx/history"
)

// BarEntry is one cell of a benchmark table: the values (one per seed, say) of one series
// (an optimizer) on one group (a benchmark).
type BarEntry struct {
	Group  string    // e.g. the benchmark, "MNIST MLP"
	Series string    // e.g. the optimizer, "adam"; it picks the colour
	Values []float64 // at least one, all finite
}

// Bars draws a grouped bar chart for a benchmark table: one group of bars per Group (in
// order of first appearance), one bar per Series within it, of height the mean of Values,
// with an error bar of ±1 sample standard deviation when there are two values or more.
// The legend names each series and how many values its bars average.
//
// Values must be finite: a NaN (say, a diverged run) is an error naming the cell, since a
// bar cannot show it; leave such runs out and say so in the title.
//
// Options used: [Title], [XLabel], [YLabel] (default "value"), [Size], [Legend].
// [LogY] is an error: bars start at zero.
func Bars(entries []BarEntry, opts ...Option) (*Figure, error) {
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("plots.Bars: %w", err)
	}
	f, err := bars(entries, c)
	if err != nil {
		return nil, fmt.Errorf("plots.Bars: %w", err)
	}
	return f, nil
}

// FinalBars returns one [BarEntry] per optimizer of hs for the benchmark group: the final
// value of metric ("loss" or a metric name) of each of its runs.
func FinalBars(group string, hs []*history.History, metric string) ([]BarEntry, error) {
	if err := checkHistories(hs); err != nil {
		return nil, fmt.Errorf("plots.FinalBars: %w", err)
	}
	var out []BarEntry
	idx := map[string]int{}
	for _, h := range hs {
		ys, err := h.Column(metric)
		if err != nil {
			return nil, fmt.Errorf("plots.FinalBars: %w", err)
		}
		opt := optimizerOf(h)
		i, ok := idx[opt]
		if !ok {
			i = len(out)
			idx[opt] = i
			out = append(out, BarEntry{Group: group, Series: opt})
		}
		out[i].Values = append(out[i].Values, ys[len(ys)-1])
	}
	return out, nil
}

// barStat is one drawn bar.
type barStat struct {
	group, slot int // group index, and position within the group
	mean, sd    float64
	n           int
}

func bars(entries []BarEntry, c *config) (*Figure, error) {
	if len(entries) == 0 {
		return nil, fmt.Errorf("no entries")
	}
	if c.logY {
		return nil, fmt.Errorf("a log y axis is not supported: bars start at zero")
	}
	var groups, seriesNames []string
	gIdx, sIdx := map[string]int{}, map[string]int{}
	seen := map[[2]string]bool{}
	for _, e := range entries {
		if len(e.Values) == 0 {
			return nil, fmt.Errorf("group %q series %q has no values", e.Group, e.Series)
		}
		for i, v := range e.Values {
			if !finite(v) {
				return nil, fmt.Errorf("group %q series %q: value #%d is %v; bars need finite values (leave diverged runs out and say so)", e.Group, e.Series, i, v)
			}
			if err := checkValue(v, false); err != nil {
				return nil, fmt.Errorf("group %q series %q: value #%d = %s %w", e.Group, e.Series, i, fmtValue(v), err)
			}
		}
		if seen[[2]string{e.Group, e.Series}] {
			return nil, fmt.Errorf("group %q series %q appears twice", e.Group, e.Series)
		}
		seen[[2]string{e.Group, e.Series}] = true
		if _, ok := gIdx[e.Group]; !ok {
			gIdx[e.Group] = len(groups)
			groups = append(groups, e.Group)
		}
		if _, ok := sIdx[e.Series]; !ok {
			sIdx[e.Series] = len(seriesNames)
			seriesNames = append(seriesNames, e.Series)
		}
	}
	p := newPlot(c.title, c.xlabel, orDefault(c.ylabel, "value"))
	p.NominalX(groups...)
	p.X.Tick.Label.Font.Size = labelSize
	f, pn := newFigure(c, p)
	bp := &barPlotter{nSeries: len(seriesNames)}
	counts := make([][2]int, len(seriesNames)) // min and max n per series
	for _, e := range entries {
		st := barStat{group: gIdx[e.Group], slot: sIdx[e.Series], n: len(e.Values)}
		st.mean, st.sd = meanSD(e.Values)
		bp.bars = append(bp.bars, st)
		cnt := &counts[st.slot]
		if cnt[0] == 0 || st.n < cnt[0] {
			cnt[0] = st.n
		}
		cnt[1] = max(cnt[1], st.n)
	}
	for _, name := range seriesNames {
		bp.colors = append(bp.colors, StyleFor(name).Color)
	}
	p.Add(bp)
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	headroom(p, false)
	for i, name := range seriesNames {
		label := name
		switch n := counts[i]; {
		case n[0] == n[1] && n[0] > 1:
			label = fmt.Sprintf("%s (mean ± sd, n=%d)", name, n[0])
		case n[0] != n[1]:
			label = fmt.Sprintf("%s (mean ± sd, n=%d–%d)", name, n[0], n[1])
		}
		pn.addLegend(label, &barThumb{color: bp.colors[i]})
		pn.series++
	}
	for _, b := range bp.bars {
		x0, x1 := bp.xRange(b)
		lo, hi := b.mean-b.sd, b.mean+b.sd
		var area plotter.XYs // the bar's area, for placing an inside legend
		for k := 0; k <= 4; k++ {
			for j := 0; j <= 4; j++ {
				area = append(area, plotter.XY{X: x0 + (x1-x0)*float64(j)/4, Y: math.Min(lo, 0) + (hi-math.Min(lo, 0))*float64(k)/4})
			}
		}
		pn.points = append(pn.points, area)
	}
	return f, nil
}

// meanSD returns the mean and sample standard deviation of vs, computed so that they do
// not overflow for values within ±MaxValue: a running mean, and squares of deviations
// scaled by the largest deviation.
func meanSD(vs []float64) (mean, sd float64) {
	for i, v := range vs {
		mean += (v - mean) / float64(i+1)
	}
	if len(vs) < 2 {
		return mean, 0
	}
	var scale float64
	for _, v := range vs {
		scale = math.Max(scale, math.Abs(v-mean))
	}
	if scale == 0 {
		return mean, 0
	}
	var ss float64
	for _, v := range vs {
		d := (v - mean) / scale
		ss += d * d
	}
	return mean, scale * math.Sqrt(ss/float64(len(vs)-1))
}

// barPlotter draws grouped bars with error bars, in data units: group g spans
// [g-0.4, g+0.4], split evenly between the series.
type barPlotter struct {
	nSeries int
	bars    []barStat
	colors  []color.RGBA
}

func (bp *barPlotter) xRange(b barStat) (float64, float64) {
	w := 0.8 / float64(bp.nSeries)
	x0 := float64(b.group) - 0.4 + w*float64(b.slot)
	return x0 + 0.06*w, x0 + 0.94*w
}

// Plot implements plot.Plotter.
func (bp *barPlotter) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	errStyle := draw.LineStyle{Color: color.Gray{Y: 30}, Width: vg.Points(1)}
	for _, b := range bp.bars {
		x0, x1 := bp.xRange(b)
		pts := []vg.Point{{X: trX(x0), Y: trY(0)}, {X: trX(x1), Y: trY(0)}, {X: trX(x1), Y: trY(b.mean)}, {X: trX(x0), Y: trY(b.mean)}}
		c.FillPolygon(bp.colors[b.slot], c.ClipPolygonXY(pts))
		if b.sd > 0 {
			xm := trX((x0 + x1) / 2)
			cap := min(vg.Points(4), (trX(x1)-trX(x0))/3)
			ylo, yhi := trY(b.mean-b.sd), trY(b.mean+b.sd)
			c.StrokeLines(errStyle, c.ClipLinesXY([]vg.Point{{X: xm, Y: ylo}, {X: xm, Y: yhi}})...)
			c.StrokeLines(errStyle, c.ClipLinesXY([]vg.Point{{X: xm - cap, Y: yhi}, {X: xm + cap, Y: yhi}})...)
			c.StrokeLines(errStyle, c.ClipLinesXY([]vg.Point{{X: xm - cap, Y: ylo}, {X: xm + cap, Y: ylo}})...)
		}
	}
}

// DataRange implements plot.DataRanger: it includes zero and the error bars.
func (bp *barPlotter) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = math.Inf(1), math.Inf(-1)
	ymin, ymax = 0, 0
	for _, b := range bp.bars {
		x0, x1 := bp.xRange(b)
		xmin, xmax = math.Min(xmin, x0), math.Max(xmax, x1)
		ymin = math.Min(ymin, b.mean-b.sd)
		ymax = math.Max(ymax, b.mean+b.sd)
	}
	return
}

// barThumb is the legend thumbnail of a bar series: a filled square.
type barThumb struct{ color color.Color }

// Thumbnail implements plot.Thumbnailer.
func (t *barThumb) Thumbnail(c *draw.Canvas) {
	h := c.Max.Y - c.Min.Y
	x := c.Min.X + (c.Max.X-c.Min.X-h)/2
	r := vg.Rectangle{Min: vg.Point{X: x, Y: c.Min.Y}, Max: vg.Point{X: x + h, Y: c.Max.Y}}
	c.SetColor(t.color)
	c.Fill(r.Path())
}
