// Package plots draws the figures optimizer research looks at most, from training
// histories ([history.History]): loss and metric curves per optimizer, median-and-band
// curves over seeds, learning-rate sweeps, benchmark bar charts with error bars,
// histograms, loss surfaces with optimizer trajectories, and grids of those.
//
// Every helper returns a [*Figure], which displays inline in a GoNB notebook
// ([Figure.Display]), and saves to SVG, PNG or PDF from any Go program ([Figure.Save],
// [Figure.Encode]).
//
// # Figures that survive sharing
//
// [Figure.Display] sends one display holding the figure three ways ([Figure.DisplayData]):
// "image/svg+xml", "image/png" at twice the CSS size (width and height in the metadata) and
// "text/plain". Each viewer shows the first form it ranks highest among those it trusts:
//
//   - JupyterLab (and Notebook 7) rank HTML > SVG > PNG > text. A notebook the user ran is
//     trusted: SVG. A notebook from someone else is not: SVG counts as unsafe there and is
//     skipped, so PNG, which is safe. HTML, though, counts as safe and is shown after
//     sanitizing, which removes <svg> elements: a bundle with SVG wrapped in HTML (what
//     GoNB's DisplaySVG sends) shows a blank or garbled figure when shared. Hence no HTML.
//   - nbconvert's HTML export ranks SVG above PNG and writes it as
//     <img src="data:image/svg+xml;base64,...">, which works offline and in sanitized
//     exports too (GoNB wraps SVG in HTML for older nbconvert versions, which did not);
//     its LaTeX and PDF exports take the PNG.
//   - Static viewers that skip SVG (notebook previews on code hosts, some editors) have
//     the PNG; text front ends and screen readers get the text.
//
// [Figure.DisplayPNG] sends the PNG and the text only.
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
