package history

import (
	"bytes"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sample returns two histories covering NaN, ±Inf, missing metrics and several metrics.
func sample() []*History {
	a := New("adam lr=1e-3", "adam", 1)
	a.Add(Record{Step: 1, Time: 0.5, Evals: 1, Loss: 2.5, Metrics: map[string]float64{"lr": 1e-3}})
	a.Add(Record{Step: 2, Time: 1.25, Evals: 2, Loss: math.NaN(), Metrics: map[string]float64{"lr": 1e-3, "accuracy": 0.5}})
	a.Add(Record{Step: 5, Time: 2, Evals: 5, Loss: math.Inf(1)})
	b := New("sgd, \"quoted\"", "sgd", -7)
	b.Add(Record{Step: 1, Time: 0, Evals: 3, Loss: math.Inf(-1), Metrics: map[string]float64{"accuracy": 0.1}})
	b.Add(Record{Step: 2, Time: 0.1, Evals: 6, Loss: 1.0000000000000002})
	return []*History{a, b}
}

// equal compares histories treating NaN as equal to NaN.
func equal(t *testing.T, got, want []*History) {
	t.Helper()
	norm := func(hs []*History) []*History {
		out := make([]*History, len(hs))
		for i, h := range hs {
			c := h.Clone()
			for j := range c.Records {
				r := &c.Records[j]
				if math.IsNaN(r.Loss) {
					r.Loss = -12345
				}
				if len(r.Metrics) == 0 {
					r.Metrics = nil
				}
			}
			out[i] = c
		}
		return out
	}
	if !reflect.DeepEqual(norm(got), norm(want)) {
		t.Fatalf("histories differ:\ngot  %+v\nwant %+v", deref(got), deref(want))
	}
}

func deref(hs []*History) []History {
	out := make([]History, len(hs))
	for i, h := range hs {
		out[i] = *h
	}
	return out
}

func TestAddCopiesMetrics(t *testing.T) {
	h := New("r", "adam", 0)
	m := map[string]float64{"lr": 1}
	h.Add(Record{Step: 1, Metrics: m})
	m["lr"] = 2
	if got := h.Records[0].Metrics["lr"]; got != 1 {
		t.Fatalf("Add kept a reference to the caller's map: lr=%v", got)
	}
}

func TestColumn(t *testing.T) {
	h := sample()[0]
	steps, err := h.Column(KeyStep)
	if err != nil || !reflect.DeepEqual(steps, []float64{1, 2, 5}) {
		t.Fatalf("Column(step) = %v, %v", steps, err)
	}
	acc, err := h.Column("accuracy")
	if err != nil || !math.IsNaN(acc[0]) || acc[1] != 0.5 || !math.IsNaN(acc[2]) {
		t.Fatalf("Column(accuracy) = %v, %v; want [NaN 0.5 NaN]", acc, err)
	}
	if _, err := h.Column("nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("Column(nope) error = %v, want one naming the column", err)
	}
	if got := h.MetricNames(); !reflect.DeepEqual(got, []string{"accuracy", "lr"}) {
		t.Fatalf("MetricNames = %v", got)
	}
}

func TestValidate(t *testing.T) {
	cases := map[string][]Record{
		"step 0":            {{Step: 0}},
		"step repeats":      {{Step: 1}, {Step: 1}},
		"negative time":     {{Step: 1, Time: -1}},
		"NaN time":          {{Step: 1, Time: math.NaN()}},
		"time decreases":    {{Step: 1, Time: 2}, {Step: 2, Time: 1}},
		"evals decrease":    {{Step: 1, Evals: 5}, {Step: 2, Evals: 4}},
		"reserved metric":   {{Step: 1, Metrics: map[string]float64{"loss": 1}}},
		"empty metric name": {{Step: 1, Metrics: map[string]float64{"": 1}}},
	}
	for name, recs := range cases {
		h := &History{Name: name, Records: recs}
		if err := h.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, recs)
		}
	}
	for _, h := range sample() {
		if err := h.Validate(); err != nil {
			t.Errorf("Validate(%q) = %v", h.Name, err)
		}
	}
}

func TestCSVRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCSV(&buf, sample()...); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if lines[0] != "name,optimizer,seed,step,time,evals,loss,accuracy,lr" {
		t.Fatalf("header = %q", lines[0])
	}
	if len(lines) != 1+5 {
		t.Fatalf("got %d lines, want 6:\n%s", len(lines), buf.String())
	}
	got, err := ReadCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, sample())
}

func TestJSONRoundTrip(t *testing.T) {
	hs := append(sample(), New("empty", "lion", 3))
	var buf bytes.Buffer
	if err := WriteJSON(&buf, hs...); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"loss":"NaN"`) || !strings.Contains(buf.String(), `"loss":"+Inf"`) {
		t.Fatalf("non-finite values not encoded as strings: %s", buf.String())
	}
	got, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, hs)
}

func TestCSVRejectsWhatItCannotHold(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCSV(&buf, New("empty", "adam", 0)); err == nil {
		t.Error("WriteCSV accepted a history without records")
	}
	a, b := sample()[0], sample()[0]
	if err := WriteCSV(&buf, a, b); err == nil {
		t.Error("WriteCSV accepted two histories with the same name, optimizer and seed")
	}
	bad := New("bad", "adam", 0)
	bad.Add(Record{Step: 0})
	if err := WriteCSV(&buf, bad); err == nil {
		t.Error("WriteCSV accepted an invalid history")
	}
	if err := WriteJSON(&buf, bad); err == nil {
		t.Error("WriteJSON accepted an invalid history")
	}
}

func TestReadCSVMalformed(t *testing.T) {
	const hdr = "name,optimizer,seed,step,time,evals,loss\n"
	cases := map[string]string{
		"empty":            "",
		"wrong header":     "a,b,c\n",
		"reordered header": "optimizer,name,seed,step,time,evals,loss\n",
		"dup metric":       "name,optimizer,seed,step,time,evals,loss,lr,lr\n",
		"reserved metric":  "name,optimizer,seed,step,time,evals,loss,seed\n",
		"empty metric":     "name,optimizer,seed,step,time,evals,loss,\n",
		"short row":        hdr + "a,adam,1,1,0,1\n",
		"long row":         hdr + "a,adam,1,1,0,1,2,3\n",
		"bad seed":         hdr + "a,adam,x,1,0,1,2\n",
		"bad step":         hdr + "a,adam,1,1.5,0,1,2\n",
		"bad time":         hdr + "a,adam,1,1,t,1,2\n",
		"bad evals":        hdr + "a,adam,1,1,0,-,2\n",
		"bad loss":         hdr + "a,adam,1,1,0,1,loss\n",
		"bad metric":       "name,optimizer,seed,step,time,evals,loss,lr\na,adam,1,1,0,1,2,x\n",
		"step repeats":     hdr + "a,adam,1,1,0,1,2\na,adam,1,1,0,1,2\n",
		"bare quote":       hdr + "a\"b,adam,1,1,0,1,2\n",
		"too many columns": "name,optimizer,seed,step,time,evals,loss" + strings.Repeat(",m", MaxCSVColumns) + "\n",
	}
	for name, in := range cases {
		if hs, err := ReadCSV(strings.NewReader(in)); err == nil {
			t.Errorf("%s: ReadCSV accepted %q, got %d histories", name, in, len(hs))
		}
	}
	// A header alone is valid: no runs.
	if hs, err := ReadCSV(strings.NewReader(hdr)); err != nil || len(hs) != 0 {
		t.Errorf("header only: got %d histories, %v", len(hs), err)
	}
}

func TestReadCSVLineInError(t *testing.T) {
	in := "name,optimizer,seed,step,time,evals,loss\na,adam,1,1,0,1,2\na,adam,1,2,0,1,oops\n"
	_, err := ReadCSV(strings.NewReader(in))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("error = %v, want one naming line 3", err)
	}
}

func TestReadJSONMalformed(t *testing.T) {
	rec := `{"step":1,"time":0,"evals":1,"loss":1}`
	cases := map[string]string{
		"empty":           ``,
		"not json":        `hello`,
		"no version":      `{"runs":[]}`,
		"bad version":     `{"version":2,"runs":[]}`,
		"no runs":         `{"version":1}`,
		"null run":        `{"version":1,"runs":[null]}`,
		"unknown field":   `{"version":1,"runs":[],"extra":1}`,
		"trailing data":   `{"version":1,"runs":[]} {}`,
		"missing step":    `{"version":1,"runs":[{"records":[{"time":0,"evals":1,"loss":1}]}]}`,
		"missing loss":    `{"version":1,"runs":[{"records":[{"step":1,"time":0,"evals":1}]}]}`,
		"null loss":       `{"version":1,"runs":[{"records":[{"step":1,"time":0,"evals":1,"loss":null}]}]}`,
		"bad string":      `{"version":1,"runs":[{"records":[{"step":1,"time":0,"evals":1,"loss":"big"}]}]}`,
		"step repeats":    `{"version":1,"runs":[{"records":[` + rec + `,` + rec + `]}]}`,
		"float step":      `{"version":1,"runs":[{"records":[{"step":1.5,"time":0,"evals":1,"loss":1}]}]}`,
		"huge step":       `{"version":1,"runs":[{"records":[{"step":1e400,"time":0,"evals":1,"loss":1}]}]}`,
		"truncated":       `{"version":1,"runs":[{"records":[` + rec,
		"reserved metric": `{"version":1,"runs":[{"records":[{"step":1,"time":0,"evals":1,"loss":1,"metrics":{"step":1}}]}]}`,
	}
	for name, in := range cases {
		if hs, err := ReadJSON(strings.NewReader(in)); err == nil {
			t.Errorf("%s: ReadJSON accepted %q, got %d histories", name, in, len(hs))
		}
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"runs.csv", "runs.JSON"} {
		path := filepath.Join(dir, name)
		if err := Save(path, sample()...); err != nil {
			t.Fatalf("Save(%s): %v", name, err)
		}
		got, err := Load(path)
		if err != nil {
			t.Fatalf("Load(%s): %v", name, err)
		}
		equal(t, got, sample())
	}
	if err := Save(filepath.Join(dir, "runs.txt"), sample()...); err == nil || !strings.Contains(err.Error(), "unknown extension") {
		t.Errorf("Save of a .txt file: error = %v, want an unknown extension", err)
	}
	if _, err := Load(filepath.Join(dir, "runs.txt")); err == nil || !strings.Contains(err.Error(), "unknown extension") {
		t.Errorf("Load of a .txt file: error = %v, want an unknown extension", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.csv")); err == nil {
		t.Error("Load of a missing file returned no error")
	}
}

func TestSynthetic(t *testing.T) {
	cfg := SyntheticConfig{Name: "adam", Optimizer: "adam", Seed: 3, Steps: 100, LogEvery: 10, Loss0: 2, Floor: 0.1, Rate: 0.05, Noise: 0.05, LR: 1e-3}
	h, err := Synthetic(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	if h.Len() != 10 || h.Records[0].Step != 10 || h.Records[9].Step != 100 {
		t.Fatalf("got %d records, steps %d..%d; want 10 records, steps 10..100", h.Len(), h.Records[0].Step, h.Records[h.Len()-1].Step)
	}
	if first, last := h.Records[0].Loss, h.Records[9].Loss; !(last < first && last > cfg.Floor) {
		t.Fatalf("loss did not decay towards the floor: first %v, last %v", first, last)
	}
	again, _ := Synthetic(cfg)
	equal(t, []*History{again}, []*History{h})
	cfg.Seed = 4
	other, _ := Synthetic(cfg)
	if other.Records[0].Loss == h.Records[0].Loss {
		t.Fatal("different seeds gave the same noise")
	}
	for _, bad := range []SyntheticConfig{{Steps: 0, Loss0: 1, Rate: 1}, {Steps: 1, Loss0: 1, Floor: 2, Rate: 1}, {Steps: 1, Loss0: 1, Rate: 0}} {
		if _, err := Synthetic(bad); err == nil {
			t.Errorf("Synthetic(%+v) returned no error", bad)
		}
	}
}
