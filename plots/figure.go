package plots

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Default figure size of a single plot.
const (
	DefaultWidth  = 6.5 * vg.Inch
	DefaultHeight = 3.6 * vg.Inch
)

// Figure is a finished plot, or a grid of plots, ready to display or save.
// Width and Height may be changed before rendering.
type Figure struct {
	Width, Height vg.Length
	cols          int
	panels        []*panel
	title         string // above all panels, for grids
}

// panel is one plot with its legend, placed by us rather than by gonum/plot, and an
// optional colour bar.
type panel struct {
	plot      *plot.Plot
	legend    []legendEntry
	placement LegendPlacement
	points    []plotter.XYs // data points, to find the emptiest corner for an inside legend
	series    int           // number of data series drawn
	offChart  []float64     // x of values marked on the top edge (diverged)
	colorBar  *colorBar
}

type legendEntry struct {
	label  string
	thumbs []plot.Thumbnailer
}

func newFigure(c *config, p *plot.Plot) (*Figure, *panel) {
	pn := &panel{plot: p, placement: c.legend}
	f := &Figure{Width: c.width, Height: c.height, cols: 1, panels: []*panel{pn}}
	if f.Width == 0 {
		f.Width = DefaultWidth
	}
	if f.Height == 0 {
		f.Height = DefaultHeight
	}
	return f, pn
}

// Plots returns the underlying gonum plots, one per panel in row-major order, for
// adjustments the options do not cover (changes apply to later renderings).
func (f *Figure) Plots() []*plot.Plot {
	out := make([]*plot.Plot, len(f.panels))
	for i, p := range f.panels {
		out[i] = p.plot
	}
	return out
}

// Labels returns the legend labels of all panels, in drawing order.
func (f *Figure) Labels() []string {
	var out []string
	for _, p := range f.panels {
		for _, e := range p.legend {
			out = append(out, e.label)
		}
	}
	return out
}

// Draw draws the figure into the canvas c.
func (f *Figure) Draw(c draw.Canvas) {
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	if f.title != "" {
		sty := plot.New().Title.TextStyle
		sty.Font = font.From(sansFont, titleSize)
		sty.YAlign = draw.YTop
		c.FillText(sty, vg.Point{X: c.Center().X, Y: c.Max.Y - vg.Points(4)}, f.title)
		c = draw.Crop(c, 0, 0, 0, -(sty.Height(f.title) + vg.Points(8)))
	}
	rows := (len(f.panels) + f.cols - 1) / f.cols
	tiles := draw.Tiles{Rows: rows, Cols: f.cols, PadX: vg.Points(10), PadY: vg.Points(10),
		PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(6)}
	for i, p := range f.panels {
		p.draw(tiles.At(c, i%f.cols, i/f.cols))
	}
}

func (p *panel) addLegend(label string, thumbs ...plot.Thumbnailer) {
	p.legend = append(p.legend, legendEntry{label: label, thumbs: thumbs})
}

func (p *panel) gonumLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = font.From(sansFont, legendSize)
	l.ThumbnailWidth = vg.Points(22)
	l.Padding = vg.Points(2)
	l.Left, l.Top = true, true
	for _, e := range p.legend {
		l.Add(e.label, e.thumbs...)
	}
	return l
}

// fontFallbackSlack widens the room kept for legend text: sizes are measured with Liberation
// Sans (metric-compatible with Arial, the SVG's first fallback), but a viewer with neither
// draws the SVG's text with its own sans-serif (often DejaVu Sans, about 10% wider).
const fontFallbackSlack = 1.12

// legendSize returns the width and height the legend takes.
func (p *panel) legendSize(l *plot.Legend) (w, h vg.Length) {
	em := l.TextStyle.Rectangle(" ").Max.X
	for i, e := range p.legend {
		w = max(w, l.ThumbnailWidth+em+l.TextStyle.Width(e.label)*fontFallbackSlack)
		h += l.TextStyle.Rectangle(e.label).Max.Y
		if i > 0 {
			h += l.Padding
		}
	}
	return w, h
}

// widenDegenerateAxis gives an axis whose data is a single value (one logged step) a range
// around it that gonum can draw. gonum widens such a range by ±1, which on a log axis
// would reach zero or below and panic, and which changes nothing for values beyond 2^53
// (a range of zero width, hence NaN positions): a log axis gets half a decade each way, a
// linear one around a large value 0.1% each way.
func widenDegenerateAxis(a *plot.Axis) {
	if a.Min != a.Max || !finite(a.Min) {
		return
	}
	if _, isLog := a.Scale.(plot.LogScale); isLog {
		if a.Min > 0 && a.Min/math.Sqrt(10) > 0 {
			a.Min, a.Max = a.Min/math.Sqrt(10), a.Max*math.Sqrt(10)
		}
		return
	}
	if a.Min-1 == a.Min {
		d := math.Abs(a.Min) * 1e-3
		a.Min, a.Max = a.Min-d, a.Max+d
	}
}

const legendGap = 8 // points between the data area and an outside legend

func (p *panel) draw(c draw.Canvas) {
	hasLegend := p.placement != LegendNone && len(p.legend) > 0
	l := p.gonumLegend()
	lw, lh := p.legendSize(&l)
	placement := p.placement
	below := false // an outside legend too wide to sit right of the plot goes below it
	if placement == LegendOutside && lw > 0.36*(c.Max.X-c.Min.X) {
		below = lh < 0.3*(c.Max.Y-c.Min.Y)
		if !below {
			placement = LegendInside
		}
	}
	plotC := c
	if hasLegend && placement == LegendOutside {
		if below {
			plotC = draw.Crop(c, 0, 0, lh+vg.Points(legendGap), 0)
		} else {
			plotC = draw.Crop(c, 0, -(lw + vg.Points(legendGap)), 0, 0)
		}
	}
	if p.colorBar != nil {
		plotC = draw.Crop(plotC, 0, -p.colorBar.width(), 0, 0)
	}
	widenDegenerateAxis(&p.plot.X)
	widenDegenerateAxis(&p.plot.Y)
	p.plot.Draw(plotC)
	dc := p.plot.DataCanvas(plotC)
	if p.colorBar != nil {
		p.colorBar.draw(c, plotC, dc)
	}
	if !hasLegend {
		return
	}
	var lc draw.Canvas
	switch placement {
	case LegendOutside:
		if below {
			lc = draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
				Min: vg.Point{X: dc.Min.X, Y: c.Min.Y}, Max: vg.Point{X: c.Max.X, Y: c.Min.Y + lh}}}
			break
		}
		minX := c.Max.X - lw
		lc = draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: minX, Y: dc.Min.Y}, Max: vg.Point{X: c.Max.X, Y: dc.Max.Y}}}
	case LegendInside:
		r := p.emptiestCorner(dc, lw, lh)
		pad := vg.Points(3)
		bg := vg.Rectangle{Min: vg.Point{X: r.Min.X - pad, Y: r.Min.Y - pad}, Max: vg.Point{X: r.Max.X + pad, Y: r.Max.Y + pad}}
		c.SetColor(color.NRGBA{R: 255, G: 255, B: 255, A: 220})
		c.Fill(bg.Path())
		c.SetLineStyle(draw.LineStyle{Color: color.Gray{Y: 200}, Width: vg.Points(0.5)})
		c.Stroke(bg.Path())
		lc = draw.Canvas{Canvas: c.Canvas, Rectangle: r}
	}
	l.Draw(lc)
}

// emptiestCorner returns the rectangle of size (w, h) in one corner of the data canvas dc
// that covers the fewest data points (ties: top right, top left, bottom right, bottom left).
func (p *panel) emptiestCorner(dc draw.Canvas, w, h vg.Length) vg.Rectangle {
	m := vg.Points(6)
	corners := []vg.Rectangle{
		{Min: vg.Point{X: dc.Max.X - m - w, Y: dc.Max.Y - m - h}, Max: vg.Point{X: dc.Max.X - m, Y: dc.Max.Y - m}},
		{Min: vg.Point{X: dc.Min.X + m, Y: dc.Max.Y - m - h}, Max: vg.Point{X: dc.Min.X + m + w, Y: dc.Max.Y - m}},
		{Min: vg.Point{X: dc.Max.X - m - w, Y: dc.Min.Y + m}, Max: vg.Point{X: dc.Max.X - m, Y: dc.Min.Y + m + h}},
		{Min: vg.Point{X: dc.Min.X + m, Y: dc.Min.Y + m}, Max: vg.Point{X: dc.Min.X + m + w, Y: dc.Min.Y + m + h}},
	}
	trX, trY := p.plot.Transforms(&dc)
	best, bestCount := 0, math.MaxInt
	for i, r := range corners {
		n := 0
		for _, xys := range p.points {
			for j, pt := range xys {
				v := vg.Point{X: trX(pt.X), Y: trY(pt.Y)}
				if inRect(r, v) {
					n++
				}
				// Count crossings of line segments through the rectangle too, by sampling.
				if j > 0 {
					prev := vg.Point{X: trX(xys[j-1].X), Y: trY(xys[j-1].Y)}
					for k := 1; k < 4; k++ {
						t := vg.Length(k) / 4
						if inRect(r, vg.Point{X: prev.X + t*(v.X-prev.X), Y: prev.Y + t*(v.Y-prev.Y)}) {
							n++
						}
					}
				}
			}
		}
		if n < bestCount {
			best, bestCount = i, n
		}
	}
	return corners[best]
}

func inRect(r vg.Rectangle, p vg.Point) bool {
	return p.X >= r.Min.X && p.X <= r.Max.X && p.Y >= r.Min.Y && p.Y <= r.Max.Y
}
