package sweep

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/goptlab/goptlab/mlx/history"
)

// StepsToTarget returns the first recorded step at which the run's loss is at or below
// target, and false if it never is.
func StepsToTarget(h *history.History, target float64) (int, bool) {
	for _, r := range h.Records {
		if r.Loss <= target {
			return r.Step, true
		}
	}
	return 0, false
}

// Row summarises the runs of one configuration (optimizer and hyperparameters) over seeds.
type Row struct {
	// Name is the name of the configuration's first run, or else its optimizer and
	// hyperparameters, e.g. "adam lr=0.01".
	Name      string
	Optimizer string
	Params    Params
	// Seeds is the number of runs; Diverged counts those that diverged ([DivergedMetric]).
	Seeds, Diverged int
	// Final losses over seeds (the last record's loss; +Inf for a diverged run): median,
	// mean and sample standard deviation (NaN for one seed), minimum and maximum.
	Median, Mean, SD, Min, Max float64
	// Reached counts the runs that reached the summary's target loss; StepsMedian is the
	// median number of steps they took (NaN if none did, or without target).
	Reached     int
	StepsMedian float64
	// Test holds, for each metric that [Options.Test] added to the runs' last records
	// (named without the "test_" prefix: "loss", "accuracy", ...), its median over the
	// runs that have it; nil without test metrics.
	Test map[string]float64
}

// Summary is a table of final losses per configuration, in order of first appearance.
type Summary struct {
	// Target is the loss of the steps-to-target column (NaN: no such column).
	Target float64
	Rows   []Row
}

// Summarize groups the histories by optimizer and hyperparameters (history.History.Params)
// and summarises each group's final losses over seeds. With a finite target it also counts
// the steps each run took to reach a loss at or below target ([StepsToTarget]); pass
// math.NaN() for none. Histories without records are left out.
func Summarize(hs []*history.History, target float64) Summary {
	s := Summary{Target: target}
	index := map[string]int{}
	finals := map[int][]float64{}
	steps := map[int][]float64{}
	tests := map[int]map[string][]float64{}
	for _, h := range hs {
		last, ok := h.Last()
		if !ok {
			continue
		}
		key := h.Optimizer + "\x00" + Params(h.Params).String()
		i, ok := index[key]
		if !ok {
			i = len(s.Rows)
			index[key] = i
			name := h.Name
			if name == "" {
				name = Run{Optimizer: h.Optimizer, Params: h.Params}.Label()
			}
			s.Rows = append(s.Rows, Row{Name: name, Optimizer: h.Optimizer, Params: maps.Clone(h.Params)})
		}
		row := &s.Rows[i]
		row.Seeds++
		final := last.Loss
		if last.Metrics[DivergedMetric] == 1 || math.IsNaN(final) {
			row.Diverged++
			final = math.Inf(1)
		}
		finals[i] = append(finals[i], final)
		for name, v := range last.Metrics {
			if metric, ok := strings.CutPrefix(name, TestMetricPrefix); ok {
				if tests[i] == nil {
					tests[i] = map[string][]float64{}
				}
				tests[i][metric] = append(tests[i][metric], v)
			}
		}
		if !math.IsNaN(target) {
			if n, ok := StepsToTarget(h, target); ok {
				row.Reached++
				steps[i] = append(steps[i], float64(n))
			}
		}
	}
	for i := range s.Rows {
		row := &s.Rows[i]
		f := finals[i]
		row.Median, row.Min, row.Max = median(f), slices.Min(f), slices.Max(f)
		row.Mean, row.SD = meanSD(f)
		row.StepsMedian = math.NaN()
		if len(steps[i]) > 0 {
			row.StepsMedian = median(steps[i])
		}
		for metric, vs := range tests[i] {
			if row.Test == nil {
				row.Test = map[string]float64{}
			}
			row.Test[metric] = median(vs)
		}
	}
	return s
}

// Best returns the row with the lowest median final loss, and false for an empty summary.
func (s Summary) Best() (Row, bool) {
	if len(s.Rows) == 0 {
		return Row{}, false
	}
	best := s.Rows[0]
	for _, r := range s.Rows[1:] {
		if r.Median < best.Median {
			best = r
		}
	}
	return best, true
}

// BestBy returns the best row (lowest median final loss) of each optimizer.
func (s Summary) BestBy() map[string]Row {
	out := map[string]Row{}
	for _, r := range s.Rows {
		if b, ok := out[r.Optimizer]; !ok || r.Median < b.Median {
			out[r.Optimizer] = r
		}
	}
	return out
}

// WriteTable writes the summary as an aligned text table: one line per configuration with
// the number of seeds, the median, mean ± sd and min-max of the final loss, and, with a
// target, how many runs reached it and their median number of steps, then the median of
// each test metric (see [Options.Test]) over the runs that have it.
func (s Summary) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "run\tseeds\tmedian\tmean ± sd\tmin - max"
	if !math.IsNaN(s.Target) {
		header += fmt.Sprintf("\tsteps to %.3g", s.Target)
	}
	var testNames []string
	for _, r := range s.Rows {
		for name := range r.Test {
			if !slices.Contains(testNames, name) {
				testNames = append(testNames, name)
			}
		}
	}
	slices.Sort(testNames)
	for _, name := range testNames {
		header += "\ttest " + name
	}
	fmt.Fprintln(tw, header)
	for _, r := range s.Rows {
		seeds := fmt.Sprint(r.Seeds)
		if r.Diverged > 0 {
			seeds += fmt.Sprintf(" (%d diverged)", r.Diverged)
		}
		line := fmt.Sprintf("%s\t%s\t%.4g\t%.4g ± %.2g\t%.4g - %.4g", r.Name, seeds, r.Median, r.Mean, r.SD, r.Min, r.Max)
		if !math.IsNaN(s.Target) {
			if r.Reached == 0 {
				line += "\tnot reached"
			} else {
				line += fmt.Sprintf("\t%g (%d/%d runs)", r.StepsMedian, r.Reached, r.Seeds)
			}
		}
		for _, name := range testNames {
			if v, ok := r.Test[name]; ok {
				line += fmt.Sprintf("\t%.4g", v)
			} else {
				line += "\t-"
			}
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("sweep.Summary.WriteTable: %w", err)
	}
	return nil
}

// String returns the table of [Summary.WriteTable].
func (s Summary) String() string {
	var b strings.Builder
	_ = s.WriteTable(&b) // A strings.Builder does not fail.
	return b.String()
}

func median(x []float64) float64 {
	s := slices.Sorted(slices.Values(x))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// meanSD returns the mean and the sample standard deviation (NaN for fewer than 2 values).
func meanSD(x []float64) (mean, sd float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	if len(x) < 2 {
		return mean, math.NaN()
	}
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss / float64(len(x)-1))
}
