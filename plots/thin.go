package plots

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Long lines are thinned when drawn, per pixel column of the data area: of the points
// whose x falls in one column, only the first, the lowest, the highest and the last are
// kept (the M4 scheme of Jugel et al., VLDB 2014). A line through them lights the same
// pixels as the line through all points, so a curve of a million logged steps renders as
// fast and as small as one of a thousand, with every extreme exact. Thinning happens at
// drawing time, on the axes as they are then, so zooming in with [Figure.Plots] still
// shows every point.

// maxColumnWidth is the widest column thinning uses: one pixel at 144 dpi, the default
// [PNGDPI]. Raster canvases of a higher resolution use their own pixel width.
const maxColumnWidth = vg.Length(0.5)

// columnWidth returns the width of one pixel column of canvas c.
func columnWidth(c draw.Canvas) vg.Length {
	if r, ok := c.Canvas.(interface{ DPI() float64 }); ok && r.DPI() > 0 {
		return min(maxColumnWidth, vg.Length(72/r.DPI()))
	}
	return maxColumnWidth
}

// columns returns the number of pixel columns of the data canvas dc.
func columns(dc draw.Canvas) int {
	w := float64((dc.Max.X - dc.Min.X) / columnWidth(dc))
	if !(w >= 1) {
		return 1
	}
	return int(math.Ceil(w))
}

// columnOf returns a function giving the pixel column of an x value on the data canvas dc
// of plot p: 0 to n-1 inside the data area, -1 left of it and n right of it.
func columnOf(dc draw.Canvas, p *plot.Plot) (func(x float64) int, int) {
	trX, _ := p.Transforms(&dc)
	n, w := columns(dc), columnWidth(dc)
	return func(x float64) int {
		col := math.Floor(float64((trX(x) - dc.Min.X) / w))
		switch {
		case col < 0:
			return -1
		case col >= float64(n):
			return n
		case col >= 0:
			return int(col)
		}
		return -1 // NaN: a degenerate axis puts everything in one column
	}, n
}

// thinXY returns the points of pts (sorted by x) that a line needs at the resolution of
// col: of each run of points in one column, the first, the lowest, the highest and the
// last, in their order. pts itself is returned if it has no more points than there are
// columns (n), or if its x values are not sorted (a trajectory, say).
func thinXY(pts plotter.XYs, col func(float64) int, n int) plotter.XYs {
	if len(pts) <= n || !sortedX(pts) {
		return pts
	}
	out := make(plotter.XYs, 0, min(len(pts), 4*(n+2)))
	for start := 0; start < len(pts); {
		c := col(pts[start].X)
		lo, hi, end := start, start, start+1
		for ; end < len(pts) && col(pts[end].X) == c; end++ {
			if pts[end].Y < pts[lo].Y {
				lo = end
			}
			if pts[end].Y > pts[hi].Y {
				hi = end
			}
		}
		last := end - 1
		keep := [4]int{start, min(lo, hi), max(lo, hi), last}
		prev := -1
		for _, i := range keep {
			if i != prev {
				out = append(out, pts[i])
				prev = i
			}
		}
		start = end
	}
	return out
}

func sortedX(pts plotter.XYs) bool {
	for i := 1; i < len(pts); i++ {
		if !(pts[i].X >= pts[i-1].X) {
			return false
		}
	}
	return true
}

// thinLine is a [plotter.Line] drawn thinned (see [thinXY]); its data range and legend
// thumbnail are the line's.
type thinLine struct {
	*plotter.Line
}

// Plot implements plot.Plotter.
func (l thinLine) Plot(c draw.Canvas, p *plot.Plot) {
	line := *l.Line
	line.XYs = l.thinned(c, p)
	line.Plot(c, p)
}

// thinned returns the points of the line to draw on the data canvas c of p.
func (l thinLine) thinned(c draw.Canvas, p *plot.Plot) plotter.XYs {
	col, n := columnOf(c, p)
	return thinXY(l.XYs, col, n)
}

// thinBand is a filled band between two lines, drawn with each edge thinned. Its ring
// holds the upper edge from left to right, then the lower edge from right to left, as
// many points each ([bandSegments]).
type thinBand struct {
	ring  plotter.XYs
	color color.Color
}

// Plot implements plot.Plotter.
func (b thinBand) Plot(c draw.Canvas, p *plot.Plot) {
	upper, lower := b.edges(c, p)
	ring := make(plotter.XYs, 0, len(upper)+len(lower))
	ring = append(ring, upper...)
	for i := len(lower) - 1; i >= 0; i-- {
		ring = append(ring, lower[i])
	}
	poly := plotter.Polygon{XYs: []plotter.XYs{ring}, Color: b.color}
	poly.LineStyle.Width = 0
	poly.Plot(c, p)
}

// edges returns the thinned upper and lower edges of the band, both from left to right.
func (b thinBand) edges(c draw.Canvas, p *plot.Plot) (upper, lower plotter.XYs) {
	k := len(b.ring) / 2
	lower = make(plotter.XYs, len(b.ring)-k)
	for i := range lower {
		lower[i] = b.ring[len(b.ring)-1-i]
	}
	col, n := columnOf(c, p)
	return thinXY(b.ring[:k], col, n), thinXY(lower, col, n)
}

// DataRange implements plot.DataRanger.
func (b thinBand) DataRange() (xmin, xmax, ymin, ymax float64) {
	return plotter.XYRange(b.ring)
}
