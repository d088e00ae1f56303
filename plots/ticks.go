package plots

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
)

// linearTicks labels 4 to 8 round values (1, 2 or 5 times a power of ten apart) on a
// linear axis, with one unlabelled minor tick between labels. gonum/plot's default
// labels as few as two values, which makes curves hard to read off.
//
// It returns a bounded number of finite ticks for any range: ±Inf ends are clamped to
// ±math.MaxFloat64, a width that overflows to +Inf is handled, and a range too narrow for
// round steps (or a single value) is labelled at its ends.
type linearTicks struct{}

// maxLinearTicks bounds the loop of linearTicks, whatever rounding does to its steps.
const maxLinearTicks = 16

// Ticks implements plot.Ticker.
func (linearTicks) Ticks(lo, hi float64) []plot.Tick {
	if math.IsNaN(lo) || math.IsNaN(hi) {
		return nil
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	lo, hi = math.Max(lo, -math.MaxFloat64), math.Min(hi, math.MaxFloat64)
	if lo == hi {
		return []plot.Tick{{Value: lo, Label: formatTick(lo)}}
	}
	raw := (hi - lo) / 6
	if math.IsInf(raw, 0) {
		raw = hi/6 - lo/6 // the width overflows, a sixth of it does not
	}
	step := niceStep(raw)
	// A step below the resolution of the values (or one that underflowed) cannot be
	// added to them: label the ends instead.
	if !(step > 0) || math.IsInf(step, 0) || lo+step == lo || hi-step == hi {
		return []plot.Tick{{Value: lo, Label: formatTick(lo)}, {Value: hi, Label: formatTick(hi)}}
	}
	first := math.Ceil(lo/step-1e-9) * step
	var ticks []plot.Tick
	for i := range maxLinearTicks {
		v := first + float64(i)*step
		if v > hi && v-hi > step*1e-9 { // v-hi, not hi+step*1e-9: that can overflow
			break
		}
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		v = math.Min(v, hi) // v may round just past hi
		ticks = append(ticks, plot.Tick{Value: v, Label: formatTick(v)})
		if m := v + step/2; m <= hi {
			ticks = append(ticks, plot.Tick{Value: m})
		}
	}
	if m := first - step/2; m >= lo {
		ticks = append(ticks, plot.Tick{Value: m})
	}
	return ticks
}

// niceStep returns the smallest of 1, 2, 2.5 or 5 times a power of ten that is >= raw
// (0 if raw is 0 or below the smallest power of ten).
func niceStep(raw float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= raw*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// setLogAxes sets log scales with readable ticks on the axes the config asks for.
func setLogAxes(p *plot.Plot, c *config) {
	if c.logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = logTicks{}
	}
	if c.logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
}

// logTicks labels powers of ten, and also 2 and 5 times them when the axis spans fewer
// than two decades, so that a log axis always has at least two labels.
type logTicks struct{}

// Ticks implements plot.Ticker.
//
// A range that reaches +Inf is clamped to math.MaxFloat64; over 16 decades only powers of
// ten get ticks, so there are at most 633 ticks (the decades of float64).
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	hi = math.Min(hi, math.MaxFloat64)
	if !(lo > 0) || !(hi > lo) {
		return nil
	}
	lo10, hi10 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	decades := math.Log10(hi) - math.Log10(lo)
	labelled := []float64{1}
	switch {
	case decades < 0.7:
		labelled = []float64{1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9}
	case decades < 2:
		labelled = []float64{1, 2, 5}
	}
	step := 1.0
	if hi10-lo10 > 8 {
		step = math.Ceil((hi10 - lo10) / 8)
	}
	var ticks []plot.Tick
	for e := lo10; e <= hi10; e++ {
		p := math.Pow(10, e)
		for m := 1; m <= 9; m++ {
			if m > 1 && hi10-lo10 > 16 {
				break // over 16 decades, minor ticks would merge: one tick per decade
			}
			v := p * float64(m)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) || math.IsInf(v, 0) {
				continue
			}
			t := plot.Tick{Value: v}
			if slices.Contains(labelled, float64(m)) && (m != 1 || math.Mod(e-lo10, step) == 0) {
				t.Label = formatTick(v)
			}
			ticks = append(ticks, t)
		}
	}
	if countLabels(ticks) < 2 {
		// Within a narrow range: fall back to evenly spaced linear ticks.
		return linearTicks{}.Ticks(lo, hi)
	}
	return ticks
}

func countLabels(ts []plot.Tick) int {
	n := 0
	for _, t := range ts {
		if t.Label != "" {
			n++
		}
	}
	return n
}

// formatTick writes v compactly with at most 6 significant digits: 0.001, 0.5, 20, 1000,
// 2.5e-4, 1e+6 is written 1e6.
func formatTick(v float64) string {
	if !finite(v) {
		return fmtValue(v) // NaN, +Inf, -Inf
	}
	a := math.Abs(v)
	if a != 0 && (a < 1e-3 || a >= 1e5) {
		s := strconv.FormatFloat(v, 'e', 5, 64) // e.g. 6.00000e-04
		mant, exp, _ := strings.Cut(s, "e")
		if strings.Contains(mant, ".") {
			mant = strings.TrimRight(strings.TrimRight(mant, "0"), ".")
		}
		sign := exp[:1]
		exp = strings.TrimLeft(exp[1:], "0")
		if sign == "+" {
			sign = ""
		}
		return mant + "e" + sign + exp
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}
