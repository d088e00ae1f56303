// Package history records training runs step by step, so that notebooks can plot them
// (package plots), compare optimizers, and save them to CSV or JSON files.
//
// A training loop creates one [History] per run with [New] and calls [History.Add]
// after each logged step. A History is not safe for concurrent use: the goroutine
// that trains owns it, and hands it to callbacks (such as a live plot) synchronously.
package history

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Record is one logged step of a run.
type Record struct {
	Step    int                // optimizer step, 1-based
	Time    float64            // wall-clock seconds since the run started
	Evals   int64              // cumulative forward evaluations of the loss
	Loss    float64            // training loss at this step (NaN allowed: shown as a gap)
	Metrics map[string]float64 // other named metrics, e.g. "accuracy", "lr"
}

// History is the record of one training run.
type History struct {
	Name      string // run label, e.g. "adan lr=1e-3"
	Optimizer string // optimizer name; plots give one colour per optimizer across a notebook
	Seed      int64
	// Params holds the run's hyperparameters by name (e.g. "lr", "beta2"), or nil. With
	// Name, Optimizer and Seed it identifies the run in CSV and JSON files, so the runs of a
	// learning-rate sweep, which share everything else, are told apart.
	Params  map[string]float64
	Records []Record
}

// New returns an empty history for the run called name, trained by optimizer with the given seed.
func New(name, optimizer string, seed int64) *History {
	return &History{Name: name, Optimizer: optimizer, Seed: seed}
}

// Add appends one logged step. The record's Metrics map is copied, so the caller may reuse it.
// Add does not check the record: [History.Validate] does, and plots and writers call it.
func (h *History) Add(r Record) {
	if r.Metrics != nil {
		r.Metrics = maps.Clone(r.Metrics)
	}
	h.Records = append(h.Records, r)
}

// Len returns the number of records.
func (h *History) Len() int { return len(h.Records) }

// Last returns the latest record, and false if the history is empty.
func (h *History) Last() (Record, bool) {
	if len(h.Records) == 0 {
		return Record{}, false
	}
	return h.Records[len(h.Records)-1], true
}

// Clone returns a deep copy of h.
func (h *History) Clone() *History {
	c := *h
	if h.Params != nil {
		c.Params = maps.Clone(h.Params)
	}
	c.Records = make([]Record, len(h.Records))
	for i, r := range h.Records {
		if r.Metrics != nil {
			r.Metrics = maps.Clone(r.Metrics)
		}
		c.Records[i] = r
	}
	return &c
}

// Label returns the name used for the run in legends: Name, or else Optimizer, or else "run".
func (h *History) Label() string {
	switch {
	case h.Name != "":
		return h.Name
	case h.Optimizer != "":
		return h.Optimizer
	default:
		return "run"
	}
}

// Column keys accepted by [History.Column], besides metric names.
const (
	KeyStep  = "step"
	KeyTime  = "time"
	KeyEvals = "evals"
	KeyLoss  = "loss"
)

// Column returns one value per record for key: [KeyStep], [KeyTime], [KeyEvals], [KeyLoss],
// or the name of a metric. Records without that metric give NaN.
// It returns an error if key is neither a built-in column nor a metric of any record.
func (h *History) Column(key string) ([]float64, error) {
	out := make([]float64, len(h.Records))
	found := false
	for i, r := range h.Records {
		switch key {
		case KeyStep:
			out[i] = float64(r.Step)
		case KeyTime:
			out[i] = r.Time
		case KeyEvals:
			out[i] = float64(r.Evals)
		case KeyLoss:
			out[i] = r.Loss
		default:
			v, ok := r.Metrics[key]
			if !ok {
				v = math.NaN()
			}
			found = found || ok
			out[i] = v
		}
	}
	switch key {
	case KeyStep, KeyTime, KeyEvals, KeyLoss:
	default:
		if !found {
			return nil, fmt.Errorf("history %q: no column or metric named %q (metrics: %v)", h.Label(), key, h.MetricNames())
		}
	}
	return out, nil
}

// MetricNames returns the sorted names of all metrics that appear in any record.
func (h *History) MetricNames() []string {
	set := map[string]bool{}
	for _, r := range h.Records {
		for k := range r.Metrics {
			set[k] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Validate checks that the history is well formed: steps are at least 1 and strictly
// increasing, times are finite and non-negative and do not decrease, evaluation counts
// are non-negative and do not decrease, metric names are non-empty, not one of the
// built-in column names and do not start with [ParamPrefix], and hyperparameter names are
// non-empty with finite values. Loss and metric values may be NaN or ±Inf: plots show them
// as gaps.
func (h *History) Validate() error {
	for _, k := range slices.Sorted(maps.Keys(h.Params)) {
		if err := checkParam(k, h.Params[k]); err != nil {
			return fmt.Errorf("history %q: %w", h.Label(), err)
		}
	}
	var prev Record
	for i, r := range h.Records {
		if r.Step < 1 {
			return fmt.Errorf("history %q: record %d: step %d < 1", h.Label(), i, r.Step)
		}
		if i > 0 && r.Step <= prev.Step {
			return fmt.Errorf("history %q: record %d: step %d does not increase (previous %d)", h.Label(), i, r.Step, prev.Step)
		}
		if math.IsNaN(r.Time) || math.IsInf(r.Time, 0) || r.Time < 0 {
			return fmt.Errorf("history %q: record %d (step %d): time %v is not a finite non-negative number", h.Label(), i, r.Step, r.Time)
		}
		if r.Time < prev.Time {
			return fmt.Errorf("history %q: record %d (step %d): time %v decreases (previous %v)", h.Label(), i, r.Step, r.Time, prev.Time)
		}
		if r.Evals < 0 {
			return fmt.Errorf("history %q: record %d (step %d): evals %d < 0", h.Label(), i, r.Step, r.Evals)
		}
		if r.Evals < prev.Evals {
			return fmt.Errorf("history %q: record %d (step %d): evals %d decreases (previous %d)", h.Label(), i, r.Step, r.Evals, prev.Evals)
		}
		for k := range r.Metrics {
			if err := checkMetricName(k); err != nil {
				return fmt.Errorf("history %q: record %d (step %d): %w", h.Label(), i, r.Step, err)
			}
		}
		prev = r
	}
	return nil
}

func checkMetricName(k string) error {
	switch k {
	case "":
		return fmt.Errorf("empty metric name")
	case KeyStep, KeyTime, KeyEvals, KeyLoss, colName, colOptimizer, colSeed:
		return fmt.Errorf("metric name %q is reserved for a built-in column", k)
	}
	if strings.HasPrefix(k, ParamPrefix) {
		return fmt.Errorf("metric name %q starts with %q, which marks hyperparameter columns", k, ParamPrefix)
	}
	return nil
}

// ParamPrefix starts the names of the CSV columns that hold a run's hyperparameters
// ([History.Params]): "param:lr" holds Params["lr"].
const ParamPrefix = "param:"

func checkParam(k string, v float64) error {
	if k == "" {
		return fmt.Errorf("empty hyperparameter name")
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("hyperparameter %q=%v is not finite", k, v)
	}
	return nil
}

// paramsKey returns a canonical text of params ("beta2=0.99,lr=0.01"), to compare runs.
func paramsKey(params map[string]float64) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(params)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(k))
		b.WriteByte('=')
		b.WriteString(formatFloat(params[k]))
	}
	return b.String()
}
