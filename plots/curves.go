package plots

import (
	"fmt"

	"github.com/goptlab/goptlab/mlx/history"
)

// Curves plots one line per run: the loss (or the metric chosen with [Metric]) against
// steps, wall time or loss evaluations ([XAxis]).
//
// Each optimizer has its own colour ([StyleFor]); runs of the same optimizer with different
// labels (e.g. learning rates) get different dash patterns, and runs with the same label
// (e.g. seeds) share one legend entry. NaN and ±Inf values are drawn as gaps; a run whose
// last value is not finite gets a cross at its last finite point and "(diverged)" in the
// legend.
//
// Options used: [Title], [XLabel], [YLabel], [Size], [LogX], [LogY], [XAxis], [Metric], [Legend].
func Curves(hs []*history.History, opts ...Option) (*Figure, error) {
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("plots.Curves: %w", err)
	}
	f, err := curves(hs, c)
	if err != nil {
		return nil, fmt.Errorf("plots.Curves: %w", err)
	}
	return f, nil
}

func curves(hs []*history.History, c *config) (*Figure, error) {
	if err := checkHistories(hs); err != nil {
		return nil, err
	}
	p := newPlot(c.title, orDefault(c.xlabel, c.x.String()), orDefault(c.ylabel, yLabel(c.metric)))
	setLogAxes(p, c)
	f, pn := newFigure(c, p)
	styles := newStyler()
	type entry struct {
		legend         int // index in pn.legend
		runs, diverged int
		noFinite       int
	}
	entries := map[string]*entry{}
	var order []string
	for _, h := range hs {
		xs, ys, err := runColumns(h, c)
		if err != nil {
			return nil, err
		}
		label := h.Label()
		n := len(pn.legend)
		got, err := pn.drawLine(series{label: label, style: styles.style(h), xs: xs, ys: ys})
		if err != nil {
			return nil, err
		}
		e := entries[label]
		if e == nil {
			e = &entry{legend: n}
			entries[label] = e
			order = append(order, label)
		} else {
			pn.legend = pn.legend[:n] // one legend entry per label
		}
		e.runs++
		switch got {
		case label + " (diverged)":
			e.diverged++
		case label + " (no finite values)":
			e.noFinite++
		}
	}
	for _, label := range order {
		e := entries[label]
		text := label
		switch {
		case e.runs == 1:
			text = pn.legend[e.legend].label // already says diverged or no finite values
		case e.diverged+e.noFinite > 0:
			text = fmt.Sprintf("%s (%d runs, %d diverged)", label, e.runs, e.diverged+e.noFinite)
		default:
			text = fmt.Sprintf("%s (%d runs)", label, e.runs)
		}
		pn.legend[e.legend].label = text
	}
	return f, nil
}
