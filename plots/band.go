package plots

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"

	"github.com/goptlab/goptlab/mlx/history"
)

// Band plots, for each configuration, the median over seeds as a line over a shaded band:
// minimum to maximum ([MinMax], the default) or first to third quartile ([Quartiles]),
// chosen with [SpreadBand].
//
// Runs are grouped into configurations by [history.History.Label] (change it with
// [GroupBy]); the legend gives each group's size, "(n=5)". The runs of a group are
// compared at the union of their x values inside the x range all of them cover,
// interpolating linearly between logged points. Outside that range, where some runs
// started later or stopped earlier than others (as wall-clock times do when a machine is
// loaded), each run is drawn as a thin line of its own; a group whose runs have no x
// value in common at all (say, seeds run one after another, against [WallTime]) is drawn
// as its runs' thin lines only, and its legend entry says so: "(n=3; no wall time common
// to all runs)". Where any run of a group is NaN or ±Inf the group's median and band have
// a gap, and runs that end non-finite are counted in the legend: "(n=5, 1 diverged)".
//
// Options used: [Title], [XLabel], [YLabel], [Size], [LogX], [LogY], [XAxis], [Metric],
// [Legend], [SpreadBand], [GroupBy].
func Band(hs []*history.History, opts ...Option) (*Figure, error) {
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("plots.Band: %w", err)
	}
	f, err := band(hs, c)
	if err != nil {
		return nil, fmt.Errorf("plots.Band: %w", err)
	}
	return f, nil
}

type bandGroup struct {
	key      string
	style    Style
	runs     int
	diverged int
	xs       []float64
	median   []float64
	lo, hi   []float64
	// shared says whether the runs have a common x range, [from, to]; without one, xs,
	// median, lo and hi are empty.
	shared   bool
	from, to float64
	// runXs and runYs are each run's columns, for the thin lines outside [from, to].
	runXs, runYs [][]float64
}

// singleRuns is the legend line that explains the thin lines of single runs.
const singleRuns = "thin lines: single runs, where not all have values"

func band(hs []*history.History, c *config) (*Figure, error) {
	if err := checkHistories(hs); err != nil {
		return nil, err
	}
	keyOf := c.groupBy
	if keyOf == nil {
		keyOf = (*history.History).Label
	}
	var order []string
	members := map[string][]*history.History{}
	for _, h := range hs {
		k := keyOf(h)
		if _, ok := members[k]; !ok {
			order = append(order, k)
		}
		members[k] = append(members[k], h)
	}
	styles := newStyler()
	var groups []*bandGroup
	for _, k := range order {
		g, err := summarize(k, members[k], c)
		if err != nil {
			return nil, err
		}
		g.style = styles.styleOf(optimizerOf(members[k][0]), k)
		groups = append(groups, g)
	}

	spread := "min–max"
	if c.spread == Quartiles {
		spread = "quartiles"
	}
	p := newPlot(c.title, orDefault(c.xlabel, c.x.String()), orDefault(c.ylabel, yLabel(c.metric)))
	setLogAxes(p, c)
	f, pn := newFigure(c, p)
	fills := make([]*plotter.Polygon, len(groups))
	// Bands first, so that no band covers another group's median line.
	for i, g := range groups {
		fills[i] = &plotter.Polygon{Color: withAlpha(g.style.Color, 0.22)}
		for _, seg := range bandSegments(g.xs, g.lo, g.hi) {
			p.Add(thinBand{ring: seg, color: fills[i].Color})
			pn.points = append(pn.points, seg)
		}
	}
	// Then the single runs' thin lines, where not all runs of a group have values.
	anyShared, anySingle := false, false
	for _, g := range groups {
		anyShared = anyShared || g.shared
		for r := range g.runXs {
			xs, ys := g.runXs[r], g.runYs[r]
			if !g.shared {
				if err := pn.drawUnlabelled(series{label: g.key, style: g.style, xs: xs, ys: ys, thin: true}); err != nil {
					return nil, err
				}
				anySingle = true
				continue
			}
			// The parts before from and after to, each joined to the run's nearest point
			// inside [from, to]; a part of one point (the run starts at from) is no line.
			if i := sort.SearchFloat64s(xs, g.from); i > 0 {
				if err := pn.drawUnlabelled(series{label: g.key, style: g.style, xs: xs[:i+1], ys: ys[:i+1], thin: true, noDivergence: true}); err != nil {
					return nil, err
				}
				anySingle = true
			}
			if j := sort.Search(len(xs), func(i int) bool { return xs[i] > g.to }) - 1; j < len(xs)-1 {
				if err := pn.drawUnlabelled(series{label: g.key, style: g.style, xs: xs[j:], ys: ys[j:], thin: true}); err != nil {
					return nil, err
				}
				anySingle = true
			}
		}
	}
	for i, g := range groups {
		label := fmt.Sprintf("%s (n=%d)", g.key, g.runs)
		if g.diverged > 0 {
			label = fmt.Sprintf("%s (n=%d, %d diverged)", g.key, g.runs, g.diverged)
		}
		if !g.shared {
			label = strings.TrimSuffix(label, ")") + fmt.Sprintf("; no %s common to all runs)", c.x.noun())
			pn.addLegend(label, &plotter.Line{LineStyle: g.style.thinLineStyle()})
			pn.series++
			continue
		}
		if _, err := pn.drawLine(series{label: g.key, style: g.style, xs: g.xs, ys: g.median}); err != nil {
			return nil, err
		}
		e := &pn.legend[len(pn.legend)-1]
		e.label = label
		e.thumbs = append([]plot.Thumbnailer{fills[i]}, e.thumbs...)
	}
	// Last, thumbnail-less legend lines say what line, band and thin lines show.
	if anyShared {
		pn.addLegend("line: median, band: " + spread)
	}
	if anySingle {
		pn.addLegend(singleRuns)
	}
	return f, nil
}

// summarize computes the median and band of one group of runs, over the x range all of
// them cover; if there is none, the group is not shared and has no median.
func summarize(key string, runs []*history.History, c *config) (*bandGroup, error) {
	g := &bandGroup{key: key, runs: len(runs)}
	xss := make([][]float64, len(runs))
	yss := make([][]float64, len(runs))
	lo, hi := math.Inf(-1), math.Inf(1)
	var grid []float64
	for i, h := range runs {
		xs, ys, err := runColumns(h, c)
		if err != nil {
			return nil, err
		}
		if !finite(ys[len(ys)-1]) {
			g.diverged++
		}
		xss[i], yss[i] = xs, ys
		lo = math.Max(lo, xs[0])
		hi = math.Min(hi, xs[len(xs)-1])
		grid = append(grid, xs...)
	}
	g.runXs, g.runYs = xss, yss
	if lo > hi {
		return g, nil // no x value in common
	}
	g.shared, g.from, g.to = true, lo, hi
	slices.Sort(grid)
	grid = slices.Compact(grid)
	vals := make([]float64, len(runs))
	for _, x := range grid {
		if x < lo || x > hi {
			continue
		}
		ok := true
		for i := range runs {
			vals[i] = interpolate(xss[i], yss[i], x)
			ok = ok && finite(vals[i])
		}
		g.xs = append(g.xs, x)
		if !ok {
			g.median = append(g.median, math.NaN())
			g.lo = append(g.lo, math.NaN())
			g.hi = append(g.hi, math.NaN())
			continue
		}
		sort.Float64s(vals)
		g.median = append(g.median, quantile(vals, 0.5))
		if c.spread == Quartiles {
			g.lo = append(g.lo, quantile(vals, 0.25))
			g.hi = append(g.hi, quantile(vals, 0.75))
		} else {
			g.lo = append(g.lo, vals[0])
			g.hi = append(g.hi, vals[len(vals)-1])
		}
	}
	return g, nil
}

// interpolate returns y at x by linear interpolation in the sorted xs; NaN if x is outside
// xs or a neighbour is not finite. Of equal xs, the last one counts.
func interpolate(xs, ys []float64, x float64) float64 {
	i := sort.SearchFloat64s(xs, x) // first index with xs[i] >= x
	if i == len(xs) {
		return math.NaN()
	}
	if xs[i] == x {
		for i+1 < len(xs) && xs[i+1] == x {
			i++
		}
		return ys[i]
	}
	if i == 0 {
		return math.NaN()
	}
	x0, x1, y0, y1 := xs[i-1], xs[i], ys[i-1], ys[i]
	if !finite(y0) || !finite(y1) {
		return math.NaN()
	}
	return y0 + (y1-y0)*(x-x0)/(x1-x0)
}

// quantile returns the q-quantile of sorted values, interpolating linearly (R type 7).
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(math.Floor(pos))
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}

// bandSegments returns one closed polygon ring per run of finite (lo, hi) values.
func bandSegments(xs, lo, hi []float64) []plotter.XYs {
	var out []plotter.XYs
	start := -1
	flush := func(end int) {
		if start < 0 || end-start < 2 {
			start = -1
			return
		}
		ring := make(plotter.XYs, 0, 2*(end-start))
		for j := start; j < end; j++ {
			ring = append(ring, plotter.XY{X: xs[j], Y: hi[j]})
		}
		for j := end - 1; j >= start; j-- {
			ring = append(ring, plotter.XY{X: xs[j], Y: lo[j]})
		}
		out = append(out, ring)
		start = -1
	}
	for j := range xs {
		if finite(lo[j]) && finite(hi[j]) {
			if start < 0 {
				start = j
			}
			continue
		}
		flush(j)
	}
	flush(len(xs))
	return out
}
