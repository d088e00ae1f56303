package plots

import (
	"fmt"

	"gonum.org/v1/plot/vg"
)

// Default size of one cell of a [Grid].
const (
	GridCellWidth  = 4.8 * vg.Inch
	GridCellHeight = 3.2 * vg.Inch
)

// Grid lays figures out in a grid of cols columns, row by row, as one figure. Each figure
// keeps its own axes and legend; figures that are themselves grids contribute all their
// cells. The default size is [GridCellWidth] × [GridCellHeight] per cell.
//
// Options used: [Title] (above the whole grid), [Size].
func Grid(cols int, figs []*Figure, opts ...Option) (*Figure, error) {
	c := newConfig(opts)
	if cols < 1 {
		return nil, fmt.Errorf("plots.Grid: cols = %d, want at least 1", cols)
	}
	if len(figs) == 0 {
		return nil, fmt.Errorf("plots.Grid: no figures")
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("plots.Grid: %w", err)
	}
	g := &Figure{cols: cols, title: c.title}
	for i, f := range figs {
		if f == nil {
			return nil, fmt.Errorf("plots.Grid: figure #%d is nil", i)
		}
		g.panels = append(g.panels, f.panels...)
	}
	g.cols = min(cols, len(g.panels))
	rows := (len(g.panels) + g.cols - 1) / g.cols
	g.Width, g.Height = c.width, c.height
	if g.Width == 0 {
		g.Width = vg.Length(g.cols) * GridCellWidth
	}
	if g.Height == 0 {
		g.Height = vg.Length(rows) * GridCellHeight
		if g.title != "" {
			g.Height += 2 * titleSize
		}
	}
	if err := checkSize(g.Width, g.Height); err != nil {
		return nil, fmt.Errorf("plots.Grid: %d cells in %d columns: %w (pass a smaller Size)", len(g.panels), g.cols, err)
	}
	return g, nil
}
