package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// JSONFormatVersion is the version number written in, and required of, JSON history files.
const JSONFormatVersion = 1

// jsonFile is the JSON layout of a list of histories.
type jsonFile struct {
	Version *int       `json:"version"`
	Runs    []*jsonRun `json:"runs"`
}

type jsonRun struct {
	Name      string               `json:"name"`
	Optimizer string               `json:"optimizer"`
	Seed      int64                `json:"seed"`
	Params    map[string]jsonFloat `json:"params,omitempty"`
	Records   []jsonRecord         `json:"records"`
}

type jsonRecord struct {
	Step    *int                 `json:"step"`
	Time    *jsonFloat           `json:"time"`
	Evals   *int64               `json:"evals"`
	Loss    *jsonFloat           `json:"loss"`
	Metrics map[string]jsonFloat `json:"metrics,omitempty"`
}

// jsonFloat is a float64 that encodes NaN and ±Inf as the strings "NaN", "+Inf" and "-Inf",
// since JSON numbers cannot hold them.
type jsonFloat float64

// MarshalJSON implements json.Marshaler.
func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte(strconv.Quote(formatFloat(v))), nil
	}
	return []byte(strconv.FormatFloat(v, 'g', -1, 64)), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "NaN":
			*f = jsonFloat(math.NaN())
		case "+Inf", "Inf":
			*f = jsonFloat(math.Inf(1))
		case "-Inf":
			*f = jsonFloat(math.Inf(-1))
		default:
			return fmt.Errorf("invalid number string %q (only \"NaN\", \"+Inf\" and \"-Inf\" are allowed)", s)
		}
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		return fmt.Errorf("null is not a number")
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = jsonFloat(v)
	return nil
}

// WriteJSON writes the histories to w as one JSON object:
//
//	{"version":1,"runs":[{"name":"...","optimizer":"...","seed":1,"params":{"lr":0.01},
//	  "records":[{"step":1,"time":0.01,"evals":1,"loss":2.5,"metrics":{"lr":0.001}}, ...]}]}
//
// NaN and ±Inf values are written as the strings "NaN", "+Inf" and "-Inf". "params" (the
// run's hyperparameters, [History.Params]) is left out when the run has none, so files
// without it, written before it existed, read the same.
func WriteJSON(w io.Writer, hs ...*History) error {
	v := JSONFormatVersion
	f := jsonFile{Version: &v, Runs: make([]*jsonRun, len(hs))}
	for i, h := range hs {
		if h == nil {
			return fmt.Errorf("history.WriteJSON: history #%d is nil", i)
		}
		if err := h.Validate(); err != nil {
			return fmt.Errorf("history.WriteJSON: %w", err)
		}
		run := &jsonRun{Name: h.Name, Optimizer: h.Optimizer, Seed: h.Seed, Records: make([]jsonRecord, len(h.Records))}
		if len(h.Params) > 0 {
			run.Params = make(map[string]jsonFloat, len(h.Params))
			for k, v := range h.Params {
				run.Params[k] = jsonFloat(v)
			}
		}
		for j, r := range h.Records {
			step, t, evals, loss := r.Step, jsonFloat(r.Time), r.Evals, jsonFloat(r.Loss)
			jr := jsonRecord{Step: &step, Time: &t, Evals: &evals, Loss: &loss}
			if len(r.Metrics) > 0 {
				jr.Metrics = make(map[string]jsonFloat, len(r.Metrics))
				for k, v := range r.Metrics {
					jr.Metrics[k] = jsonFloat(v)
				}
			}
			run.Records[j] = jr
		}
		f.Runs[i] = run
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(&f); err != nil {
		return fmt.Errorf("history.WriteJSON: %w", err)
	}
	return nil
}

// ReadJSON reads histories written by [WriteJSON]. Unknown fields, missing required fields
// (version, runs, and step, time, evals and loss of every record), trailing data and
// histories that fail [History.Validate] give an error.
func ReadJSON(r io.Reader) ([]*History, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var f jsonFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("history.ReadJSON: empty input")
		}
		return nil, fmt.Errorf("history.ReadJSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("history.ReadJSON: unexpected data after the JSON object")
	}
	if f.Version == nil {
		return nil, fmt.Errorf("history.ReadJSON: missing \"version\" field")
	}
	if *f.Version != JSONFormatVersion {
		return nil, fmt.Errorf("history.ReadJSON: unsupported version %d (want %d)", *f.Version, JSONFormatVersion)
	}
	if f.Runs == nil {
		return nil, fmt.Errorf("history.ReadJSON: missing \"runs\" field")
	}
	out := make([]*History, len(f.Runs))
	for i, run := range f.Runs {
		if run == nil {
			return nil, fmt.Errorf("history.ReadJSON: run #%d is null", i)
		}
		h := New(run.Name, run.Optimizer, run.Seed)
		if len(run.Params) > 0 {
			h.Params = make(map[string]float64, len(run.Params))
			for k, v := range run.Params {
				h.Params[k] = float64(v)
			}
		}
		h.Records = make([]Record, len(run.Records))
		for j, jr := range run.Records {
			switch {
			case jr.Step == nil:
				return nil, fmt.Errorf("history.ReadJSON: run %q record #%d: missing \"step\"", h.Label(), j)
			case jr.Time == nil:
				return nil, fmt.Errorf("history.ReadJSON: run %q record #%d: missing \"time\"", h.Label(), j)
			case jr.Evals == nil:
				return nil, fmt.Errorf("history.ReadJSON: run %q record #%d: missing \"evals\"", h.Label(), j)
			case jr.Loss == nil:
				return nil, fmt.Errorf("history.ReadJSON: run %q record #%d: missing \"loss\"", h.Label(), j)
			}
			rec := Record{Step: *jr.Step, Time: float64(*jr.Time), Evals: *jr.Evals, Loss: float64(*jr.Loss)}
			if len(jr.Metrics) > 0 {
				rec.Metrics = make(map[string]float64, len(jr.Metrics))
				for k, v := range jr.Metrics {
					rec.Metrics[k] = float64(v)
				}
			}
			h.Records[j] = rec
		}
		if err := h.Validate(); err != nil {
			return nil, fmt.Errorf("history.ReadJSON: run #%d: %w", i, err)
		}
		out[i] = h
	}
	return out, nil
}
