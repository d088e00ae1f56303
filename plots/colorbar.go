package plots

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// colorBar is a vertical colour scale drawn right of a panel's data area.
type colorBar struct {
	colors   []color.Color // from min to max
	min, max float64
	label    string
	ticks    []plot.Tick
}

const (
	cbGap   = 10 // points between plot and bar
	cbStrip = 11 // width of the coloured strip
)

func (b *colorBar) tickStyle() text.Style {
	return text.Style{Color: color.Black, Font: font.From(sansFont, tickSize), Handler: plot.DefaultTextHandler,
		XAlign: draw.XLeft, YAlign: draw.YCenter}
}

func (b *colorBar) labelStyle() text.Style {
	return text.Style{Color: color.Black, Font: font.From(sansFont, labelSize), Handler: plot.DefaultTextHandler,
		XAlign: draw.XCenter, YAlign: draw.YBottom, Rotation: math.Pi / 2}
}

func (b *colorBar) tickWidth() vg.Length {
	var w vg.Length
	sty := b.tickStyle()
	for _, t := range b.ticks {
		if t.Label != "" {
			w = max(w, sty.Width(t.Label))
		}
	}
	return w
}

// width returns the horizontal space the colour bar takes.
func (b *colorBar) width() vg.Length {
	lh := b.labelStyle().Height(b.label)
	return vg.Points(cbGap+cbStrip+4) + b.tickWidth() + vg.Points(6) + lh + vg.Points(4)
}

// draw draws the bar right of plotC, spanning the data canvas dc vertically.
func (b *colorBar) draw(c, plotC, dc draw.Canvas) {
	x0 := plotC.Max.X + vg.Points(cbGap)
	x1 := x0 + vg.Points(cbStrip)
	n := len(b.colors)
	hgt := dc.Max.Y - dc.Min.Y
	for i, col := range b.colors {
		y0 := dc.Min.Y + hgt*vg.Length(i)/vg.Length(n)
		y1 := dc.Min.Y + hgt*vg.Length(i+1)/vg.Length(n)
		r := vg.Rectangle{Min: vg.Point{X: x0, Y: y0}, Max: vg.Point{X: x1, Y: y1 + 0.3}}
		c.SetColor(col)
		c.Fill(r.Path())
	}
	frame := vg.Rectangle{Min: vg.Point{X: x0, Y: dc.Min.Y}, Max: vg.Point{X: x1, Y: dc.Max.Y}}
	c.SetLineStyle(draw.LineStyle{Color: color.Gray{Y: 90}, Width: vg.Points(0.5)})
	c.Stroke(frame.Path())
	sty := b.tickStyle()
	tickLine := draw.LineStyle{Color: color.Gray{Y: 90}, Width: vg.Points(0.5)}
	for _, t := range b.ticks {
		if t.Value < b.min || t.Value > b.max {
			continue
		}
		y := dc.Min.Y + hgt*vg.Length((t.Value-b.min)/(b.max-b.min))
		l := vg.Points(2)
		if t.Label != "" {
			l = vg.Points(4)
			c.FillText(sty, vg.Point{X: x1 + vg.Points(5), Y: y}, t.Label)
		}
		c.StrokeLine2(tickLine, x1, y, x1+l, y)
	}
	if b.label != "" {
		ls := b.labelStyle()
		// Rotated a quarter turn like a y-axis label: the text's bottom faces right.
		lx := x1 + vg.Points(5) + b.tickWidth() + vg.Points(6) + ls.Height(b.label) - ls.FontExtents().Descent
		c.FillText(ls, vg.Point{X: lx, Y: (dc.Min.Y + dc.Max.Y) / 2}, b.label)
	}
}
