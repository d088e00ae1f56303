package plots

import (
	"math"
	"strings"
	"testing"

	"gonum.org/v1/plot"

	"github.com/goptlab/goptlab/mlx/history"
)

// sweepRuns returns runs of optimizer opt at several learning rates and seeds whose final
// loss is a parabola in log10(lr) with its minimum at best; rates above diverge are NaN.
func sweepRuns(t *testing.T, opt string, best, diverge float64) []*history.History {
	var hs []*history.History
	for _, lr := range []float64{1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1} {
		for seed := range 3 {
			d := math.Log10(lr) - math.Log10(best)
			final := 0.05 + 0.2*d*d + 0.01*float64(seed)
			if lr > diverge {
				final = math.NaN()
			}
			h := history.New(opt, opt, int64(seed))
			h.Add(history.Record{Step: 1, Loss: 2.3, Metrics: map[string]float64{"lr": lr}})
			h.Add(history.Record{Step: 100, Loss: final})
			hs = append(hs, h)
		}
	}
	return hs
}

func TestLRSweep(t *testing.T) {
	hs := append(sweepRuns(t, "adam", 1e-3, 5e-2), sweepRuns(t, "sgd", 3e-2, 1)...)
	f, err := LRSweep(hs, LogY(), Title("Learning-rate sweep"))
	if err != nil {
		t.Fatal(err)
	}
	r := render(t, f, "lr_sweep")
	if got := strings.Join(f.Labels(), "|"); got != "adam (3 of 21 runs diverged)|sgd|median diverged" {
		t.Errorf("labels = %q", got)
	}
	p := f.Plots()[0]
	if p.X.Min != 1e-4 || p.X.Max != 1e-1 {
		t.Errorf("x range = [%v, %v], want [1e-4, 1e-1]", p.X.Min, p.X.Max)
	}
	if p.X.Label.Text != "learning rate" || p.Y.Label.Text != "final training loss" {
		t.Errorf("axis labels %q, %q", p.X.Label.Text, p.Y.Label.Text)
	}
	if _, ok := p.X.Scale.(plot.LogScale); !ok {
		t.Errorf("x scale is %T, want a log scale", p.X.Scale)
	}
	if n := countColor(r.img, StyleFor("adam")); n < 200 {
		t.Errorf("%d pixels of adam's colour", n)
	}
	for _, tick := range []string{"1e-4", "0.001", "0.01", "0.1"} {
		if !strings.Contains(r.svg, ">"+tick+"<") {
			t.Errorf("SVG lacks the tick label %s", tick)
		}
	}
	// adam's median diverged at lr=0.1 only: one cross on the top edge.
	tops := f.panels[0].offChart
	if len(tops) != 1 || tops[0] != 0.1 {
		t.Errorf("top-edge marks at %v, want [0.1]", tops)
	}
}

func TestSummarizeFinals(t *testing.T) {
	pt := summarizeFinals(0.1, []float64{3, math.NaN(), 1})
	if pt.median != 3 || pt.lo != 1 || pt.hi != 3 || pt.diverged != 1 {
		t.Errorf("got %+v, want median 3 (NaN ranks highest), range [1, 3], 1 diverged", pt)
	}
	pt = summarizeFinals(0.1, []float64{math.Inf(1), math.NaN()})
	if !math.IsInf(pt.median, 1) || !math.IsNaN(pt.lo) {
		t.Errorf("all diverged: got %+v", pt)
	}
	pt = summarizeFinals(0.1, []float64{1, 2, 4, 8})
	if pt.median != 3 {
		t.Errorf("median of 1 2 4 8 = %v, want 3", pt.median)
	}
}

func TestLRSweepBadInput(t *testing.T) {
	noLR := history.New("a", "adam", 0)
	noLR.Add(history.Record{Step: 1, Loss: 1})
	if _, err := LRSweep([]*history.History{noLR}); err == nil || !strings.Contains(err.Error(), `"lr"`) {
		t.Errorf("missing lr: error %v", err)
	}
	negLR := history.New("a", "adam", 0)
	negLR.Add(history.Record{Step: 1, Loss: 1, Metrics: map[string]float64{"lr": -1}})
	if _, err := LRSweep([]*history.History{negLR}); err == nil {
		t.Error("negative lr: no error")
	}
	negLoss := history.New("a", "adam", 0)
	negLoss.Add(history.Record{Step: 1, Loss: -1, Metrics: map[string]float64{"lr": 1}})
	if _, err := LRSweep([]*history.History{negLoss}, LogY()); err == nil {
		t.Error("negative final loss on log y: no error")
	}
}

// TestLRSweepReadsParams: runs that carry their learning rate as a hyperparameter (as
// mlx/sweep records it) plot like runs that carry it as a metric, and the hyperparameter
// wins over a metric of the same name.
func TestLRSweepReadsParams(t *testing.T) {
	fromMetric := sweepRuns(t, "adam", 1e-3, 1)
	var fromParams []*history.History
	for _, h := range fromMetric {
		c := h.Clone()
		c.Params = map[string]float64{"lr": h.Records[0].Metrics["lr"]}
		c.Records[0].Metrics = map[string]float64{"lr": 42} // ignored: the hyperparameter wins
		fromParams = append(fromParams, c)
	}
	for i, h := range fromParams {
		lr, err := learningRate(h, "lr")
		if err != nil || lr != fromMetric[i].Records[0].Metrics["lr"] {
			t.Fatalf("run %d: learning rate %g, %v", i, lr, err)
		}
	}
	if _, err := LRSweep(fromParams); err != nil {
		t.Fatal(err)
	}
	bad := fromParams[0].Clone()
	bad.Params["lr"] = -1
	if _, err := LRSweep([]*history.History{bad}); err == nil || !strings.Contains(err.Error(), "not a positive number") {
		t.Errorf("negative lr hyperparameter: err = %v", err)
	}
}
