// Package plots draws the figures optimizer research looks at most, from training
// histories ([history.History]): loss and metric curves per optimizer, median-and-band
// curves over seeds, learning-rate sweeps, benchmark bar charts with error bars,
// histograms, loss surfaces with optimizer trajectories, and grids of those.
//
// Every helper returns a [*Figure], which displays inline in a GoNB notebook as SVG
// ([Figure.Display]) or PNG ([Figure.DisplayPNG]), and saves to SVG, PNG or PDF from
// any Go program ([Figure.Save], [Figure.WriteTo]).
//
// All figures share one look: the colour-blind-safe Okabe-Ito palette, one fixed colour
// (and dash pattern) per optimizer name across all plots of a notebook (see [StyleFor]),
// sans-serif fonts at readable sizes, light grid lines, and legends placed outside the
// data area (or, on request, in its emptiest corner).
//
// Bad input is never drawn silently: empty inputs, mismatched lengths and non-positive
// values on a log axis are errors; NaN and ±Inf values in curves are drawn as gaps in the
// line, and runs that end non-finite ("diverged") are marked as such in the legend.
// Finite values must lie within ±[MaxValue] (1e300; on a log axis in [[MinLogValue],
// MaxValue]) and figures be at most [MaxSize] a side, so that gonum/plot's arithmetic
// cannot overflow nor a rendering exhaust memory: beyond that, helpers return an error
// naming the value and the allowed range.
//
// Helpers are configured with functional options ([Title], [LogY], [XAxis], ...); each
// helper documents which options it uses, and ignores the others.
package plots

import "github.com/goptlab/goptlab/mlx/history"

// History is an alias of [history.History], so that notebooks need not import both packages.
type History = history.History
