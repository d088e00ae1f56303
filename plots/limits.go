package plots

import (
	"fmt"
	"math"
	"strconv"

	"gonum.org/v1/plot/vg"
)

// Limits of what plots draws. Beyond them gonum/plot's arithmetic (axis widths, padding,
// tick steps, transforms to the page) overflows, or a rendering takes more memory than a
// notebook has, so helpers return an error naming the value instead.
const (
	// MaxValue is the largest magnitude of a finite value a plot accepts: data, ranges
	// and marked points must lie within ±MaxValue. NaN and ±Inf are not bounded by it:
	// where a helper accepts them, they are drawn as gaps (see each helper).
	MaxValue = 1e300
	// MinLogValue is the smallest value that can go on a log axis: values there must lie
	// in [MinLogValue, MaxValue].
	MinLogValue = 1e-300
	// MaxSize is the largest width or height of a figure: 100 inches (7200 points).
	MaxSize = 100 * vg.Inch
	// MaxPNGPixels is the largest PNG rendering, in pixels (width × height at [PNGDPI]):
	// 50 million pixels take 200 MB to draw.
	MaxPNGPixels = 50_000_000
)

// checkValues returns an error naming what and the index of the first finite value of vs
// that cannot be drawn: beyond ±MaxValue, or, on a log axis, not in [MinLogValue, MaxValue].
// NaN and ±Inf pass: callers draw them as gaps or reject them themselves. A hint, if any,
// follows the out-of-range error.
func checkValues(vs []float64, what, axis string, log bool, hint string) error {
	for i, v := range vs {
		if !finite(v) {
			continue
		}
		if log && v <= 0 {
			return fmt.Errorf("%s: value %g at index %d cannot go on a log %s axis (use a linear axis, or plot a positive quantity such as loss minus its minimum)", what, v, i, axis)
		}
		if err := checkValue(v, log); err != nil {
			if hint != "" {
				return fmt.Errorf("%s: value %s at index %d %w (%s)", what, fmtValue(v), i, err, hint)
			}
			return fmt.Errorf("%s: value %s at index %d %w", what, fmtValue(v), i, err)
		}
	}
	return nil
}

// divergedHint follows errors about the values of runs, where NaN and +Inf are welcome.
const divergedHint = "the values of a diverged run can be NaN or +Inf: they are drawn as gaps"

// checkValue returns an error, phrased to follow "value v", if the finite value v cannot
// be drawn on a linear axis (or, with log, on a log axis).
func checkValue(v float64, log bool) error {
	switch {
	case log && !(v >= MinLogValue && v <= MaxValue):
		return fmt.Errorf("is out of range: values on a log axis must be in [%g, %g]", MinLogValue, MaxValue)
	case !(math.Abs(v) <= MaxValue):
		return fmt.Errorf("is out of range: finite values must lie within ±%g", MaxValue)
	}
	return nil
}

// fmtValue writes v exactly (shortest representation that round-trips), e.g. 9e+307,
// 1.7976931348623157e+308 or NaN.
func fmtValue(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// fmtLength writes a length in points, e.g. "468 pt", "NaN pt".
func fmtLength(l vg.Length) string { return fmtValue(float64(l)) + " pt" }

// checkSize returns an error unless w × h is a figure size that can be rendered: both
// positive, finite and at most [MaxSize].
func checkSize(w, h vg.Length) error {
	for _, side := range []struct {
		name string
		l    vg.Length
	}{{"width", w}, {"height", h}} {
		if !(side.l > 0 && side.l <= MaxSize) {
			return fmt.Errorf("figure %s %s is out of range: it must be positive and at most %s (%g in)",
				side.name, fmtLength(side.l), fmtLength(MaxSize), MaxSize/vg.Inch)
		}
	}
	return nil
}

// checkPNG returns an error if a PNG rendering of w × h at [PNGDPI] would be too large.
func checkPNG(w, h vg.Length) error {
	if PNGDPI < 1 || PNGDPI > 2400 {
		return fmt.Errorf("PNGDPI = %d is out of range: it must be in [1, 2400]", PNGDPI)
	}
	pw, ph := math.Ceil(w.Dots(float64(PNGDPI))), math.Ceil(h.Dots(float64(PNGDPI)))
	if pw*ph > MaxPNGPixels {
		return fmt.Errorf("a PNG of %s x %s at PNGDPI=%d would be %.0fx%.0f pixels, over the limit of %d pixels: lower PNGDPI or the figure size, or save as SVG or PDF",
			fmtLength(w), fmtLength(h), PNGDPI, pw, ph, MaxPNGPixels)
	}
	return nil
}

// checkPixels returns an error if a PNG of w x h pixels, described by what, is over
// [MaxPNGPixels].
func checkPixels(w, h int, what string) error {
	if float64(w)*float64(h) > MaxPNGPixels {
		return fmt.Errorf("%s would be %dx%d pixels, over the limit of %d pixels: lower the figure size, or save as SVG or PDF",
			what, w, h, MaxPNGPixels)
	}
	return nil
}

// validate checks the options every helper shares: the figure size and the choices
// among named constants.
func (c *config) validate() error {
	if c.legend < LegendOutside || c.legend > LegendNone {
		return fmt.Errorf("Legend(%d): unknown placement (want LegendOutside, LegendInside or LegendNone)", c.legend)
	}
	if c.x < Steps || c.x > Evals {
		return fmt.Errorf("XAxis(%d): unknown x axis (want Steps, WallTime or Evals)", c.x)
	}
	if c.spread < MinMax || c.spread > Quartiles {
		return fmt.Errorf("SpreadBand(%d): unknown spread (want MinMax or Quartiles)", c.spread)
	}
	if c.width == 0 && c.height == 0 {
		return nil // the helper's default size
	}
	w, h := c.width, c.height
	if w == 0 {
		w = DefaultWidth
	}
	if h == 0 {
		h = DefaultHeight
	}
	if err := checkSize(w, h); err != nil {
		return fmt.Errorf("Size(%s, %s): %w", fmtLength(c.width), fmtLength(c.height), err)
	}
	return nil
}

// checkStyle returns an error if s cannot be drawn: a dash length that is not in
// [0.25 pt, 1000 pt] (shorter dashes make a rasterizer emit millions of segments; a
// pattern of zeros never ends).
func checkStyle(s Style) error {
	for i, d := range s.Dashes {
		if !(d >= vg.Points(0.25) && d <= vg.Points(1000)) {
			return fmt.Errorf("style: dash length #%d = %s is out of range: dash lengths must be in [0.25 pt, 1000 pt] (see SetStyle)", i, fmtLength(d))
		}
	}
	return nil
}
