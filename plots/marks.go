package plots

import (
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// topMarks draws a cross at the top edge of the data area at each x: values that are off
// the chart, such as the final loss of a diverged run.
type topMarks struct {
	xs    []float64
	color color.Color
}

// Plot implements plot.Plotter.
func (m *topMarks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	sty := draw.GlyphStyle{Color: m.color, Radius: vg.Points(4.5), Shape: thickCross{}}
	for _, x := range m.xs {
		c.DrawGlyphNoClip(sty, vg.Point{X: trX(x), Y: c.Max.Y - vg.Points(4.5)})
	}
}

// Thumbnail implements plot.Thumbnailer.
func (m *topMarks) Thumbnail(c *draw.Canvas) {
	sty := draw.GlyphStyle{Color: m.color, Radius: vg.Points(4), Shape: thickCross{}}
	c.DrawGlyphNoClip(sty, c.Center())
}

// thickCross draws an × with strokes 1.5 points wide (draw.CrossGlyph's are 0.5).
type thickCross struct{}

// DrawGlyph implements draw.GlyphDrawer.
func (thickCross) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.SetLineStyle(draw.LineStyle{Color: sty.Color, Width: vg.Points(1.5)})
	r := sty.Radius * 0.7071
	var p vg.Path
	p.Move(vg.Point{X: pt.X - r, Y: pt.Y - r})
	p.Line(vg.Point{X: pt.X + r, Y: pt.Y + r})
	p.Move(vg.Point{X: pt.X - r, Y: pt.Y + r})
	p.Line(vg.Point{X: pt.X + r, Y: pt.Y - r})
	c.Stroke(p)
}
