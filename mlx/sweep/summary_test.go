package sweep

import (
	"math"
	"strings"
	"testing"

	"github.com/goptlab/goptlab/mlx/history"
)

// run returns a history whose losses are those given, one per step.
func run(opt string, lr float64, seed int64, losses ...float64) *history.History {
	h := history.New("", opt, seed)
	h.Params = map[string]float64{"lr": lr}
	for i, l := range losses {
		h.Add(history.Record{Step: i + 1, Evals: int64(i + 1), Loss: l})
	}
	return h
}

func TestSummarize(t *testing.T) {
	hs := []*history.History{
		run("adam", 0.01, 1, 1, 0.5, 0.2), run("adam", 0.01, 2, 1, 0.3, 0.1), run("adam", 0.01, 3, 1, 0.9, 0.6),
		run("adam", 0.1, 1, 1, math.NaN()),
		run("sgd", 0.01, 1, 2, 1.5),
	}
	hs[3].Records[1].Metrics = map[string]float64{DivergedMetric: 1}
	s := Summarize(hs, 0.3)
	if len(s.Rows) != 3 {
		t.Fatalf("got %d rows, want 3: %+v", len(s.Rows), s.Rows)
	}
	r := s.Rows[0]
	if r.Seeds != 3 || r.Median != 0.2 || math.Abs(r.Mean-0.3) > 1e-12 || r.Min != 0.1 || r.Max != 0.6 {
		t.Fatalf("adam lr=0.01: %+v", r)
	}
	if want := math.Sqrt(((0.2-0.3)*(0.2-0.3) + 0.2*0.2 + 0.3*0.3) / 2); math.Abs(r.SD-want) > 1e-12 {
		t.Fatalf("sd %v, want %v", r.SD, want)
	}
	if r.Reached != 2 || r.StepsMedian != 2.5 {
		t.Fatalf("steps to 0.3: reached %d, median %v; want 2 runs, median of 3 and 2", r.Reached, r.StepsMedian)
	}
	if d := s.Rows[1]; d.Diverged != 1 || !math.IsInf(d.Median, 1) {
		t.Fatalf("diverged row: %+v", d)
	}
	if best, _ := s.Best(); best.Optimizer != "adam" || best.Params["lr"] != 0.01 {
		t.Fatalf("best %+v", best)
	}
	if b := s.BestBy(); b["sgd"].Median != 1.5 || b["adam"].Params["lr"] != 0.01 {
		t.Fatalf("best by optimizer %+v", b)
	}
	table := s.String()
	for _, want := range []string{"adam lr=0.01", "0.3 ± 0.26", "0.1 - 0.6", "2.5 (2/3 runs)", "1 (1 diverged)", "not reached"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if n, ok := StepsToTarget(hs[4], 1); ok {
		t.Fatalf("StepsToTarget found step %d below a loss never reached", n)
	}
}

// Test metrics on the runs' last records are summarised as medians over the runs that have them.
func TestSummarizeTestMetrics(t *testing.T) {
	hs := []*history.History{run("adam", 0.01, 1, 1, 0.5), run("adam", 0.01, 2, 1, 0.4), run("adam", 0.01, 3, 1, 0.3), run("sgd", 0.1, 1, 1, 0.9)}
	for i, acc := range []float64{0.9, 0.7, 0.8} {
		hs[i].Records[1].Metrics = map[string]float64{"test_accuracy": acc, "test_loss": float64(i)}
	}
	s := Summarize(hs, math.NaN())
	if got := s.Rows[0].Test; got["accuracy"] != 0.8 || got["loss"] != 1 || len(got) != 2 {
		t.Fatalf("adam test medians %v, want accuracy 0.8 and loss 1", got)
	}
	if s.Rows[1].Test != nil {
		t.Fatalf("sgd has no test metrics, got %v", s.Rows[1].Test)
	}
	table := s.String()
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if !strings.Contains(lines[0], "test accuracy") || !strings.Contains(lines[0], "test loss") ||
		!strings.Contains(lines[1], "0.8") || !strings.HasSuffix(strings.TrimSpace(lines[2]), "-") {
		t.Fatalf("table:\n%s", table)
	}
}
