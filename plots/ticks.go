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
type linearTicks struct{}

// Ticks implements plot.Ticker.
func (linearTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	step := niceStep((hi - lo) / 6)
	first := math.Ceil(lo/step-1e-9) * step
	var ticks []plot.Tick
	for i := 0; ; i++ {
		v := first + float64(i)*step
		if v > hi+step*1e-9 {
			break
		}
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
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

// niceStep returns the smallest of 1, 2, 2.5 or 5 times a power of ten that is >= raw.
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
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
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
			v := p * float64(m)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
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
		return plot.DefaultTicks{}.Ticks(lo, hi)
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
