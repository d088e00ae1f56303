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

// Range is an interval of one axis.
type Range struct{ Min, Max float64 }

// Trajectory is the path of an optimizer through a 2-D parameter space, one point per
// iterate.
type Trajectory struct {
	Name      string // legend label
	Optimizer string // picks the colour; Name if empty
	X, Y      []float64
}

// TrajectoryOf reads the trajectory of run h from its metrics xMetric and yMetric (the
// two parameters, logged at each step).
func TrajectoryOf(h *history.History, xMetric, yMetric string) (Trajectory, error) {
	if h == nil {
		return Trajectory{}, fmt.Errorf("plots.TrajectoryOf: nil history")
	}
	xs, err := h.Column(xMetric)
	if err != nil {
		return Trajectory{}, fmt.Errorf("plots.TrajectoryOf: %w", err)
	}
	ys, err := h.Column(yMetric)
	if err != nil {
		return Trajectory{}, fmt.Errorf("plots.TrajectoryOf: %w", err)
	}
	return Trajectory{Name: h.Label(), Optimizer: optimizerOf(h), X: xs, Y: ys}, nil
}

// Rosenbrock is the Rosenbrock function (1-x)² + 100(y-x²)², with its minimum 0 at (1, 1)
// at the end of a curved, flat-bottomed valley.
func Rosenbrock(x, y float64) float64 {
	return (1-x)*(1-x) + 100*(y-x*x)*(y-x*x)
}

// Quadratic returns f(x, y) = (a x² + b y²)/2, with its minimum 0 at the origin and
// condition number max(a,b)/min(a,b).
func Quadratic(a, b float64) func(x, y float64) float64 {
	return func(x, y float64) float64 { return 0.5 * (a*x*x + b*y*y) }
}

// Surface draws f over the rectangle xr × yr as a heat map with contour lines and a colour
// bar, and draws each trajectory over it: a line through its iterates, an open circle at
// the start and a filled one at the end. The legend gives each trajectory's number of
// steps, and says "(leaves the plot)" if some iterate lies outside the rectangle, or
// "(diverged)" if the last iterate is not finite. NaN and ±Inf values of f, and values beyond
// ±[MaxValue], are left blank. The ranges, the trajectories' finite points and [Minimum]
// must lie within ±MaxValue.
//
// By default the colours and contour levels follow log10 of f (shifted to be positive when
// f has values <= 0), which shows valleys like Rosenbrock's; LogColor(false) uses f itself.
// The colour bar is labelled in values of f.
//
// Options used: [Title], [XLabel] (default "x"), [YLabel] (default "y"), [Size], [Legend],
// [Levels], [LogColor], [Minimum], [Resolution], [Metric] (labels the colour bar; default "f(x, y)").
func Surface(f func(x, y float64) float64, xr, yr Range, trajs []Trajectory, opts ...Option) (*Figure, error) {
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("plots.Surface: %w", err)
	}
	fig, err := surface(f, xr, yr, trajs, c)
	if err != nil {
		return nil, fmt.Errorf("plots.Surface: %w", err)
	}
	return fig, nil
}

// grid is the values of f at the centres of an n×m grid of cells, implementing plotter.GridXYZ.
type grid struct {
	xs, ys []float64
	z      [][]float64 // z[col][row]
}

func (g *grid) Dims() (int, int)       { return len(g.xs), len(g.ys) }
func (g *grid) Z(col, row int) float64 { return g.z[col][row] }
func (g *grid) X(col int) float64      { return g.xs[col] }
func (g *grid) Y(row int) float64      { return g.ys[row] }

// shades is the heat-map palette: light grey for high values to white for low ones, so
// that the Okabe-Ito trajectory colours stand out.
type shades []color.Color

// Colors implements palette.Palette.
func (s shades) Colors() []color.Color { return s }

func newShades(n int) shades {
	out := make(shades, n)
	for i := range out {
		t := float64(i) / float64(n-1)
		// From a faint blue-white at the minimum to a mid grey at the maximum.
		out[i] = color.RGBA{R: uint8(252 - 95*t), G: uint8(253 - 92*t), B: uint8(255 - 85*t), A: 255}
	}
	return out
}

func surface(f func(x, y float64) float64, xr, yr Range, trajs []Trajectory, c *config) (*Figure, error) {
	if f == nil {
		return nil, fmt.Errorf("nil function")
	}
	if c.resolution < 2 || c.resolution > 2000 {
		return nil, fmt.Errorf("resolution %d, want 2 to 2000", c.resolution)
	}
	for _, r := range []struct {
		axis string
		Range
	}{{"x", xr}, {"y", yr}} {
		if !finite(r.Min) || !finite(r.Max) || !(r.Max > r.Min) {
			return nil, fmt.Errorf("%s range [%g, %g] is not a finite, non-empty interval", r.axis, r.Min, r.Max)
		}
		for _, v := range []float64{r.Min, r.Max} {
			if err := checkValue(v, false); err != nil {
				return nil, fmt.Errorf("%s range [%g, %g]: value %s %w", r.axis, r.Min, r.Max, fmtValue(v), err)
			}
		}
	}
	if c.minimum != nil {
		m := c.minimum
		for _, v := range m {
			if err := checkValue(v, false); err != nil {
				return nil, fmt.Errorf("Minimum(%s, %s): value %s %w", fmtValue(m[0]), fmtValue(m[1]), fmtValue(v), err)
			}
		}
	}
	for i, tr := range trajs {
		for _, col := range []struct {
			axis string
			vs   []float64
		}{{"x", tr.X}, {"y", tr.Y}} {
			if err := checkValues(col.vs, fmt.Sprintf("trajectory #%d %q %s", i, tr.Name, col.axis), col.axis, false, divergedHint); err != nil {
				return nil, err
			}
		}
	}
	if c.levels < 0 || c.levels > 200 {
		return nil, fmt.Errorf("levels %d, want 0 to 200", c.levels)
	}
	n := c.resolution
	g := &grid{xs: make([]float64, n), ys: make([]float64, n), z: make([][]float64, n)}
	for i := range n {
		g.xs[i] = xr.Min + (float64(i)+0.5)*(xr.Max-xr.Min)/float64(n)
		g.ys[i] = yr.Min + (float64(i)+0.5)*(yr.Max-yr.Min)/float64(n)
	}
	for _, axis := range []struct {
		name string
		r    Range
		cs   []float64
	}{{"x", xr, g.xs}, {"y", yr, g.ys}} {
		for i := 1; i < n; i++ {
			if !(axis.cs[i] > axis.cs[i-1]) {
				return nil, fmt.Errorf("%s range [%g, %g] is too narrow to split into %d cells at float64 precision (widen it or lower Resolution)", axis.name, axis.r.Min, axis.r.Max, n)
			}
		}
	}
	zmin, zmax := math.Inf(1), math.Inf(-1)
	for i := range n {
		g.z[i] = make([]float64, n)
		for j := range n {
			v := f(g.xs[i], g.ys[j])
			if !finite(v) || math.Abs(v) > MaxValue {
				v = math.NaN()
			} else {
				zmin, zmax = math.Min(zmin, v), math.Max(zmax, v)
			}
			g.z[i][j] = v
		}
	}
	if math.IsInf(zmin, 0) {
		return nil, fmt.Errorf("f has no finite value on the grid")
	}
	if zmin == zmax {
		return nil, fmt.Errorf("f is constant (%g) on the grid: nothing to colour", zmin)
	}
	logColor := c.logColor
	shift := 0.0
	if logColor && zmin <= 0 {
		shift = -zmin + 1e-3*(zmax-zmin)
	}
	toColor := func(v float64) float64 {
		if logColor {
			return math.Log10(v + shift)
		}
		return v
	}
	cg := &grid{xs: g.xs, ys: g.ys, z: make([][]float64, n)}
	for i := range n {
		cg.z[i] = make([]float64, n)
		for j := range n {
			cg.z[i][j] = toColor(g.z[i][j])
		}
	}
	cmin, cmax := toColor(zmin), toColor(zmax)

	p := newPlot(c.title, orDefault(c.xlabel, "x"), orDefault(c.ylabel, "y"))
	p.X.Padding, p.Y.Padding = 0, 0
	pal := newShades(128)
	hm := plotter.NewHeatMap(cg, pal)
	hm.Min, hm.Max = cmin, cmax
	hm.Rasterized = true
	hm.NaN = color.White
	p.Add(hm)
	if c.levels > 0 {
		// The contour lines are traced on the unit square with values scaled to [0, 1]:
		// gonum's tracing panics when coordinates and values are both large (1e150 and
		// 1e300, say). unitContour maps them back onto xr × yr.
		levels := make([]float64, c.levels)
		for i := range levels {
			levels[i] = (float64(i) + 0.5) / float64(c.levels)
		}
		ug := &grid{xs: make([]float64, n), ys: make([]float64, n), z: make([][]float64, n)}
		for i := range n {
			ug.xs[i] = (float64(i) + 0.5) / float64(n)
			ug.ys[i] = (float64(i) + 0.5) / float64(n)
			ug.z[i] = make([]float64, n)
			for j := range n {
				ug.z[i][j] = (cg.z[i][j] - cmin) / (cmax - cmin)
			}
		}
		ct := plotter.NewContour(ug, levels, nil)
		ct.LineStyles = []draw.LineStyle{{Color: color.Gray{Y: 120}, Width: vg.Points(0.5)}}
		p.Add(unitContour{Contour: ct, xr: xr, yr: yr})
	}
	fig, pn := newFigure(c, p)
	cb := &colorBar{min: cmin, max: cmax, label: orDefaultMetric(c.metric)}
	cb.colors = pal.Colors()
	cb.ticks = colorBarTicks(zmin, zmax, shift, logColor, toColor)
	pn.colorBar = cb

	for i, tr := range trajs {
		if len(tr.X) != len(tr.Y) {
			return nil, fmt.Errorf("trajectory %q: %d x values but %d y values", tr.Name, len(tr.X), len(tr.Y))
		}
		if len(tr.X) == 0 {
			return nil, fmt.Errorf("trajectory #%d %q has no points", i, tr.Name)
		}
		st := StyleFor(orDefault(tr.Optimizer, tr.Name))
		if _, err := pn.drawLine(series{label: tr.Name, style: st, xs: tr.X, ys: tr.Y, noDivergence: true}); err != nil {
			return nil, err
		}
		segs := segments(tr.X, tr.Y)
		// A trajectory without finite points also ends non-finite: it counts as diverged.
		note := ""
		last := len(tr.X) - 1
		switch {
		case !finite(tr.X[last]) || !finite(tr.Y[last]):
			note = ", diverged"
		case leavesRange(tr, xr, yr):
			note = ", leaves the plot"
		}
		pn.legend[len(pn.legend)-1].label = fmt.Sprintf("%s (%d steps%s)", tr.Name, last, note)
		if len(segs) > 0 {
			first, end := segs[0][0], segs[len(segs)-1][len(segs[len(segs)-1])-1]
			p.Add(&plotter.Scatter{XYs: plotter.XYs{first}, GlyphStyle: draw.GlyphStyle{Color: st.Color, Radius: vg.Points(3.5), Shape: draw.RingGlyph{}}})
			p.Add(&plotter.Scatter{XYs: plotter.XYs{end}, GlyphStyle: draw.GlyphStyle{Color: st.Color, Radius: vg.Points(3.5), Shape: draw.CircleGlyph{}}})
		}
	}
	if c.minimum != nil {
		m := c.minimum
		star := &starGlyph{}
		p.Add(&plotter.Scatter{XYs: plotter.XYs{{X: m[0], Y: m[1]}}, GlyphStyle: draw.GlyphStyle{Color: color.Black, Radius: vg.Points(5), Shape: star}})
		pn.addLegend(fmt.Sprintf("minimum (%s, %s)", formatTick(m[0]), formatTick(m[1])),
			&plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: color.Black, Radius: vg.Points(5), Shape: star}})
	}
	// The heat map fixes the axes to the rectangle: trajectories outside it are clipped.
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xr.Min, xr.Max, yr.Min, yr.Max
	return fig, nil
}

// unitContour draws contour lines traced on the unit square onto the rectangle xr × yr.
type unitContour struct {
	*plotter.Contour
	xr, yr Range
}

// Plot implements plot.Plotter: it draws the contour on a copy of p whose axes are in
// unit coordinates, (v - r.Min)/(r.Max - r.Min), so that the lines land where the
// rectangle's points would.
func (u unitContour) Plot(c draw.Canvas, p *plot.Plot) {
	q := *p
	unit := func(v float64, r Range) float64 { return (v - r.Min) / (r.Max - r.Min) }
	q.X.Min, q.X.Max = unit(p.X.Min, u.xr), unit(p.X.Max, u.xr)
	q.Y.Min, q.Y.Max = unit(p.Y.Min, u.yr), unit(p.Y.Max, u.yr)
	u.Contour.Plot(c, &q)
}

// DataRange implements plot.DataRanger: the rectangle.
func (u unitContour) DataRange() (xmin, xmax, ymin, ymax float64) {
	return u.xr.Min, u.xr.Max, u.yr.Min, u.yr.Max
}

// leavesRange reports whether a finite point of tr lies outside xr × yr.
func leavesRange(tr Trajectory, xr, yr Range) bool {
	for j := range tr.X {
		x, y := tr.X[j], tr.Y[j]
		if finite(x) && finite(y) && (x < xr.Min || x > xr.Max || y < yr.Min || y > yr.Max) {
			return true
		}
	}
	return false
}

func orDefaultMetric(m string) string {
	if m == history.KeyLoss || m == "" {
		return "f(x, y)"
	}
	return m
}

// colorBarTicks returns ticks at round values of f, placed in colour coordinates.
func colorBarTicks(zmin, zmax, shift float64, logColor bool, toColor func(float64) float64) []plot.Tick {
	var ticks []plot.Tick
	if !logColor {
		for _, t := range (linearTicks{}).Ticks(zmin, zmax) {
			ticks = append(ticks, plot.Tick{Value: toColor(t.Value), Label: t.Label})
		}
		return ticks
	}
	lo := math.Max(zmin+shift, 1e-300)
	for _, t := range (logTicks{}).Ticks(lo, zmax+shift) {
		// t.Value is a round value of f + shift; label it with f's value when shift is 0,
		// otherwise with the rounded value of f.
		label := t.Label
		if label != "" && shift != 0 {
			label = formatTick(t.Value - shift)
		}
		ticks = append(ticks, plot.Tick{Value: math.Log10(t.Value), Label: label})
	}
	return ticks
}

// starGlyph draws an asterisk (a plus and a cross) with a white halo, visible on any background.
type starGlyph struct{}

// DrawGlyph implements draw.GlyphDrawer.
func (starGlyph) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	for _, pass := range []struct {
		col color.Color
		w   vg.Length
	}{{color.White, vg.Points(3.2)}, {sty.Color, vg.Points(1.3)}} {
		c.SetLineStyle(draw.LineStyle{Color: pass.col, Width: pass.w})
		for k := range 4 {
			a := float64(k) * math.Pi / 4
			dx, dy := sty.Radius*vg.Length(math.Cos(a)), sty.Radius*vg.Length(math.Sin(a))
			var path vg.Path
			path.Move(vg.Point{X: pt.X - dx, Y: pt.Y - dy})
			path.Line(vg.Point{X: pt.X + dx, Y: pt.Y + dy})
			c.Stroke(path)
		}
	}
}
