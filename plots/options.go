package plots

import (
	"gonum.org/v1/plot/vg"

	"github.com/goptlab/goptlab/mlx/history"
)

// Option configures a plot helper. Each helper documents the options it uses.
type Option func(*config)

// X is what the horizontal axis of a curve plot measures.
type X int

const (
	// Steps puts optimizer steps on the x axis (the default).
	Steps X = iota
	// WallTime puts wall-clock seconds since the start of the run on the x axis.
	WallTime
	// Evals puts the cumulative number of loss evaluations on the x axis.
	Evals
)

// String returns the axis label of x, with its unit.
func (x X) String() string {
	switch x {
	case WallTime:
		return "wall time (s)"
	case Evals:
		return "loss evaluations"
	default:
		return "step"
	}
}

// noun names what x measures, in a sentence: "step", "wall time", "evaluation count".
func (x X) noun() string {
	switch x {
	case WallTime:
		return "wall time"
	case Evals:
		return "evaluation count"
	default:
		return "step"
	}
}

func (x X) key() string {
	switch x {
	case WallTime:
		return history.KeyTime
	case Evals:
		return history.KeyEvals
	default:
		return history.KeyStep
	}
}

// Spread is the band drawn around the median by [Band].
type Spread int

const (
	// MinMax shades from the minimum to the maximum over seeds (the default).
	MinMax Spread = iota
	// Quartiles shades from the 25th to the 75th percentile over seeds.
	Quartiles
)

// LegendPlacement says where the legend goes.
type LegendPlacement int

const (
	// LegendOutside puts the legend right of the data area, where it cannot cover data (the default).
	LegendOutside LegendPlacement = iota
	// LegendInside puts the legend inside the data area, in the corner that covers the fewest data points.
	LegendInside
	// LegendNone draws no legend.
	LegendNone
)

type config struct {
	title, xlabel, ylabel string
	width, height         vg.Length
	logX, logY            bool
	x                     X
	metric                string
	spread                Spread
	legend                LegendPlacement
	groupBy               func(*history.History) string
	bins                  int
	lrMetric              string
	levels                int
	logColor              bool
	minimum               *[2]float64
	resolution            int
}

func newConfig(opts []Option) *config {
	c := &config{metric: history.KeyLoss, lrMetric: "lr", bins: 40, levels: 12, logColor: true, resolution: 120}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// Title sets the plot title.
func Title(s string) Option { return func(c *config) { c.title = s } }

// XLabel replaces the default x-axis label. Include the unit, e.g. "time (s)".
func XLabel(s string) Option { return func(c *config) { c.xlabel = s } }

// YLabel replaces the default y-axis label. Include the unit, e.g. "loss (nats)".
func YLabel(s string) Option { return func(c *config) { c.ylabel = s } }

// Size sets the figure size; vg has units: Size(16*vg.Centimeter, 9*vg.Centimeter).
// The default is 6.5 x 3.6 inches for one plot; a [Grid] defaults to the sum of its cells;
// a zero side keeps its default. Each side must be positive and at most [MaxSize] (100
// inches): helpers return an error naming the size otherwise.
func Size(width, height vg.Length) Option {
	return func(c *config) { c.width, c.height = width, height }
}

// LogX uses a logarithmic x axis. Non-positive x values are then an error.
func LogX() Option { return func(c *config) { c.logX = true } }

// LogY uses a logarithmic y axis. Non-positive y values are then an error.
func LogY() Option { return func(c *config) { c.logY = true } }

// XAxis chooses what the x axis of curve plots measures: [Steps] (default), [WallTime] or [Evals].
func XAxis(x X) Option { return func(c *config) { c.x = x } }

// Metric plots the named metric instead of the loss ("loss" is the default).
func Metric(name string) Option { return func(c *config) { c.metric = name } }

// SpreadBand chooses the band of [Band]: [MinMax] (default) or [Quartiles].
func SpreadBand(s Spread) Option { return func(c *config) { c.spread = s } }

// Legend chooses where the legend goes: [LegendOutside] (default), [LegendInside] or [LegendNone].
func Legend(p LegendPlacement) Option { return func(c *config) { c.legend = p } }

// GroupBy sets how [Band] and [LRSweep] group runs: runs with the same key are seeds of one
// configuration. [Band] groups by [history.History.Label] by default, [LRSweep] by optimizer.
func GroupBy(key func(*history.History) string) Option {
	return func(c *config) { c.groupBy = key }
}

// Bins sets the number of histogram bins (default 40).
func Bins(n int) Option { return func(c *config) { c.bins = n } }

// LRMetric names the metric that holds a run's learning rate for [LRSweep] (default "lr";
// the value of the first record that has it is used, i.e. the initial or peak rate).
func LRMetric(name string) Option { return func(c *config) { c.lrMetric = name } }

// Levels sets the number of contour lines of [Surface] (default 12).
func Levels(n int) Option { return func(c *config) { c.levels = n } }

// LogColor chooses whether [Surface] colours log10(f - min f + 1e-3·range) (true, the
// default: right for valleys like Rosenbrock's) or f itself (false).
func LogColor(on bool) Option { return func(c *config) { c.logColor = on } }

// Minimum marks the known minimiser (x, y) on a [Surface] with a star.
func Minimum(x, y float64) Option { return func(c *config) { c.minimum = &[2]float64{x, y} } }

// Resolution sets the number of grid cells per axis [Surface] evaluates f on (default 120).
func Resolution(n int) Option { return func(c *config) { c.resolution = n } }

// orDefault returns s, or def if s is empty: an option's value or the helper's default.
func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
