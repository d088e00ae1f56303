package history

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// lrSweep returns the runs of a learning-rate sweep: same name, optimizer and seed, the
// learning rate (and for one run beta2) apart.
func lrSweep() []*History {
	var hs []*History
	for i, lr := range []float64{1e-3, 1e-2, 0.1} {
		h := New("adam", "adam", 1)
		h.Params = map[string]float64{"lr": lr}
		if i == 2 {
			h.Params["beta2"] = 0.99
		}
		h.Add(Record{Step: 1, Time: 0.1, Evals: 1, Loss: 1 / lr, Metrics: map[string]float64{"accuracy": lr}})
		h.Add(Record{Step: 2, Time: 0.2, Evals: 2, Loss: 2 / lr})
		hs = append(hs, h)
	}
	return hs
}

func TestCSVLearningRateSweep(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCSV(&buf, lrSweep()...); err != nil {
		t.Fatalf("WriteCSV refused a learning-rate sweep: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if want := "name,optimizer,seed,step,time,evals,loss,param:beta2,param:lr,accuracy"; lines[0] != want {
		t.Fatalf("header = %q, want %q", lines[0], want)
	}
	if want := "adam,adam,1,1,0.1,1,1000,,0.001,0.001"; lines[1] != want {
		t.Fatalf("first row = %q, want %q", lines[1], want)
	}
	got, err := ReadCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, lrSweep())
}

func TestJSONLearningRateSweep(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, lrSweep()...); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"params":{"beta2":0.99,"lr":0.1}`) {
		t.Fatalf("params not written: %s", buf.String())
	}
	got, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, lrSweep())
}

// Files written before hyperparameters were recorded still read, as runs without Params.
func TestReadFilesWithoutParams(t *testing.T) {
	hs, err := ReadCSV(strings.NewReader("name,optimizer,seed,step,time,evals,loss,lr\nadam,adam,1,1,0.5,1,2.5,0.001\n"))
	if err != nil || len(hs) != 1 || hs[0].Params != nil || hs[0].Records[0].Metrics["lr"] != 0.001 {
		t.Fatalf("old CSV: %v, %+v", err, deref(hs))
	}
	hs, err = ReadJSON(strings.NewReader(`{"version":1,"runs":[{"name":"a","optimizer":"adam","seed":1,` +
		`"records":[{"step":1,"time":0,"evals":1,"loss":2}]}]}`))
	if err != nil || len(hs) != 1 || hs[0].Params != nil {
		t.Fatalf("old JSON: %v, %+v", err, deref(hs))
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, hs...); err != nil || strings.Contains(buf.String(), "params") {
		t.Fatalf("a run without Params is written with a params field (%v): %s", err, buf.String())
	}
}

func TestParamsValidated(t *testing.T) {
	for name, params := range map[string]map[string]float64{
		"empty name":   {"": 1},
		"not finite":   {"lr": math.Inf(1)},
		"metric clash": nil,
	} {
		h := New("r", "adam", 0)
		h.Params = params
		h.Add(Record{Step: 1})
		if name == "metric clash" {
			h.Records[0].Metrics = map[string]float64{ParamPrefix + "lr": 1}
		}
		if err := h.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %v", name, params)
		}
	}
	for name, in := range map[string]string{
		"bad value":  "name,optimizer,seed,step,time,evals,loss,param:lr\na,adam,1,1,0,1,2,x\n",
		"not finite": "name,optimizer,seed,step,time,evals,loss,param:lr\na,adam,1,1,0,1,2,NaN\n",
		"empty name": "name,optimizer,seed,step,time,evals,loss,param:\na,adam,1,1,0,1,2,1\n",
	} {
		if _, err := ReadCSV(strings.NewReader(in)); err == nil {
			t.Errorf("%s: ReadCSV accepted %q", name, in)
		}
	}
}

func TestCloneCopiesParams(t *testing.T) {
	h := lrSweep()[0]
	c := h.Clone()
	c.Params["lr"] = 5
	if h.Params["lr"] != 1e-3 {
		t.Fatal("Clone shares the Params map")
	}
}
