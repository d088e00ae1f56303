package history

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Built-in CSV columns, in the order they are written. Metric columns follow, sorted by name.
const (
	colName      = "name"
	colOptimizer = "optimizer"
	colSeed      = "seed"
)

var csvFixedColumns = []string{colName, colOptimizer, colSeed, KeyStep, KeyTime, KeyEvals, KeyLoss}

// runKey identifies a history in a CSV table: its rows share name, optimizer, seed and
// hyperparameters (as paramsKey writes them).
type runKey struct {
	name, optimizer string
	seed            int64
	params          string
}

// MaxCSVColumns bounds the number of columns ReadCSV accepts, so that a malformed header
// cannot make it allocate without bound.
const MaxCSVColumns = 4096

// WriteCSV writes the histories to w as one CSV table in long form: a header line, then one
// row per record with the columns name, optimizer, seed, step, time, evals, loss, one
// column "param:<name>" per hyperparameter of any history ([History.Params], sorted by
// name; repeated on every row of a run, empty where a run lacks it), and one column per
// metric (sorted by name; empty where a record lacks the metric). Non-finite values are
// written as NaN, +Inf and -Inf.
//
// CSV cannot hold a history without records, nor tell apart two histories with the same
// name, optimizer, seed and hyperparameters: WriteCSV returns an error for both (JSON can
// hold them).
func WriteCSV(w io.Writer, hs ...*History) error {
	metricSet := map[string]bool{}
	paramSet := map[string]bool{}
	seen := map[runKey]bool{}
	for i, h := range hs {
		if h == nil {
			return fmt.Errorf("history.WriteCSV: history #%d is nil", i)
		}
		if err := h.Validate(); err != nil {
			return fmt.Errorf("history.WriteCSV: %w", err)
		}
		if len(h.Records) == 0 {
			return fmt.Errorf("history.WriteCSV: history %q has no records, which CSV cannot represent (use JSON)", h.Label())
		}
		k := runKey{h.Name, h.Optimizer, h.Seed, paramsKey(h.Params)}
		if seen[k] {
			return fmt.Errorf("history.WriteCSV: two histories share name %q, optimizer %q, seed %d and hyperparameters {%s}, "+
				"which CSV cannot tell apart", h.Name, h.Optimizer, h.Seed, k.params)
		}
		seen[k] = true
		for p := range h.Params {
			paramSet[p] = true
		}
		for _, m := range h.MetricNames() {
			metricSet[m] = true
		}
	}
	metrics := slices.Sorted(maps.Keys(metricSet))
	params := slices.Sorted(maps.Keys(paramSet))

	cw := csv.NewWriter(w)
	header := slices.Clone(csvFixedColumns)
	for _, p := range params {
		header = append(header, ParamPrefix+p)
	}
	header = append(header, metrics...)
	firstMetric := len(csvFixedColumns) + len(params)
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("history.WriteCSV: writing header: %w", err)
	}
	row := make([]string, len(header))
	for _, h := range hs {
		for _, r := range h.Records {
			row[0] = h.Name
			row[1] = h.Optimizer
			row[2] = strconv.FormatInt(h.Seed, 10)
			row[3] = strconv.Itoa(r.Step)
			row[4] = formatFloat(r.Time)
			row[5] = strconv.FormatInt(r.Evals, 10)
			row[6] = formatFloat(r.Loss)
			for j, p := range params {
				if v, ok := h.Params[p]; ok {
					row[len(csvFixedColumns)+j] = formatFloat(v)
				} else {
					row[len(csvFixedColumns)+j] = ""
				}
			}
			for j, m := range metrics {
				if v, ok := r.Metrics[m]; ok {
					row[firstMetric+j] = formatFloat(v)
				} else {
					row[firstMetric+j] = ""
				}
			}
			if err := cw.Write(row); err != nil {
				return fmt.Errorf("history.WriteCSV: writing %q step %d: %w", h.Label(), r.Step, err)
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("history.WriteCSV: %w", err)
	}
	return nil
}

// formatFloat writes v in the shortest form that parses back to the same value.
func formatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// ReadCSV reads histories written by [WriteCSV]. The header must start with the columns
// name, optimizer, seed, step, time, evals, loss; further columns named "param:<name>" are
// hyperparameters ([History.Params]; an empty cell: the run lacks it), any others are
// metrics. Rows are grouped into histories by (name, optimizer, seed, hyperparameters), in
// order of first appearance. Files written before hyperparameters were recorded, which
// have no "param:" column, read as histories without Params.
// Malformed input (wrong header, wrong number of fields, unparsable numbers, steps that do
// not increase, ...) gives an error naming the line.
func ReadCSV(r io.Reader) ([]*History, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("history.ReadCSV: empty input, expected a header line")
		}
		return nil, fmt.Errorf("history.ReadCSV: reading header: %w", err)
	}
	if len(header) > MaxCSVColumns {
		return nil, fmt.Errorf("history.ReadCSV: header has %d columns, more than the limit of %d", len(header), MaxCSVColumns)
	}
	if len(header) < len(csvFixedColumns) || !slices.Equal(header[:len(csvFixedColumns)], csvFixedColumns) {
		return nil, fmt.Errorf("history.ReadCSV: header must start with %v, got %q", csvFixedColumns, header)
	}
	extra := slices.Clone(header[len(csvFixedColumns):])
	// isParam[j] says whether extra column j is a hyperparameter; names[j] is its metric or
	// hyperparameter name.
	isParam := make([]bool, len(extra))
	names := make([]string, len(extra))
	for i, m := range extra {
		if p, ok := strings.CutPrefix(m, ParamPrefix); ok {
			if p == "" {
				return nil, fmt.Errorf("history.ReadCSV: header column %d: empty hyperparameter name", len(csvFixedColumns)+i+1)
			}
			isParam[i], names[i] = true, p
		} else if err := checkMetricName(m); err != nil {
			return nil, fmt.Errorf("history.ReadCSV: header column %d: %w", len(csvFixedColumns)+i+1, err)
		} else {
			names[i] = m
		}
		if slices.Contains(extra[:i], m) {
			return nil, fmt.Errorf("history.ReadCSV: header: duplicate column %q", m)
		}
	}

	index := map[runKey]*History{}
	var out []*History
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("history.ReadCSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		seed, err := strconv.ParseInt(row[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("history.ReadCSV: line %d: seed: %w", line, err)
		}
		step, err := strconv.Atoi(row[3])
		if err != nil {
			return nil, fmt.Errorf("history.ReadCSV: line %d: step: %w", line, err)
		}
		rec := Record{Step: step}
		if rec.Time, err = strconv.ParseFloat(row[4], 64); err != nil {
			return nil, fmt.Errorf("history.ReadCSV: line %d: time: %w", line, err)
		}
		if rec.Evals, err = strconv.ParseInt(row[5], 10, 64); err != nil {
			return nil, fmt.Errorf("history.ReadCSV: line %d: evals: %w", line, err)
		}
		if rec.Loss, err = strconv.ParseFloat(row[6], 64); err != nil {
			return nil, fmt.Errorf("history.ReadCSV: line %d: loss: %w", line, err)
		}
		var params map[string]float64
		for j, m := range names {
			s := row[len(csvFixedColumns)+j]
			if s == "" {
				continue
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				what := "metric"
				if isParam[j] {
					what = "hyperparameter"
				}
				return nil, fmt.Errorf("history.ReadCSV: line %d: %s %q: %w", line, what, m, err)
			}
			if isParam[j] {
				if err := checkParam(m, v); err != nil {
					return nil, fmt.Errorf("history.ReadCSV: line %d: %w", line, err)
				}
				if params == nil {
					params = map[string]float64{}
				}
				params[m] = v
				continue
			}
			if rec.Metrics == nil {
				rec.Metrics = map[string]float64{}
			}
			rec.Metrics[m] = v
		}
		k := runKey{row[0], row[1], seed, paramsKey(params)}
		h := index[k]
		if h == nil {
			h = New(row[0], row[1], seed)
			h.Params = params
			index[k] = h
			out = append(out, h)
		}
		h.Records = append(h.Records, rec)
		// Check the new record against the previous one now, so the error names its line.
		if err := (&History{Name: h.Name, Optimizer: h.Optimizer, Records: h.Records[max(0, len(h.Records)-2):]}).Validate(); err != nil {
			return nil, fmt.Errorf("history.ReadCSV: line %d: %w", line, err)
		}
	}
	return out, nil
}
