package verdict

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	inf := math.Inf(1)
	for _, c := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{1, inf, inf}, inf},
		{[]float64{1, 2, inf, inf}, inf},
		{[]float64{1, 2, 3, inf}, 2.5},
	} {
		if got := Median(c.xs); got != c.want {
			t.Errorf("Median(%v) = %g, want %g", c.xs, got, c.want)
		}
	}
	if got := Median(nil); !math.IsNaN(got) {
		t.Errorf("Median(nil) = %g, want NaN", got)
	}
	if got := Median([]float64{1, math.NaN(), 3}); !math.IsNaN(got) {
		t.Errorf("Median with NaN = %g, want NaN", got)
	}
}

func TestSummarize(t *testing.T) {
	s, err := Summarize([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if err != nil {
		t.Fatal(err)
	}
	// Sample standard deviation of this classic set: sqrt(32/7).
	if s.N != 8 || s.Median != 4.5 || s.Mean != 5 || s.Min != 2 || s.Max != 9 || math.Abs(float64(s.SD)-math.Sqrt(32.0/7)) > 1e-12 {
		t.Errorf("Summarize = %+v", s)
	}
	if _, err := Summarize(nil); err == nil {
		t.Error("Summarize(nil): no error")
	}
	if _, err := Summarize([]float64{1, math.NaN()}); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("Summarize with NaN: err = %v", err)
	}
}

func TestBootstrapMedianIsSeededAndCoversTheMedian(t *testing.T) {
	xs := []float64{0.31, 0.42, 0.38, 0.45, 0.29, 0.40, 0.36}
	a, err := BootstrapMedian(xs, 0.95, 5000, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := BootstrapMedian(xs, 0.95, 5000, 7)
	if a != b {
		t.Errorf("same seed, different intervals: %v vs %v", a, b)
	}
	m := Median(xs)
	if !(float64(a.Lo) <= m && m <= float64(a.Hi)) || a.Lo < 0.29 || a.Hi > 0.45 || a.Lo == a.Hi {
		t.Errorf("interval %v: want a proper interval around the median %g within the data's range", a, m)
	}
	// A wider level gives an interval at least as wide.
	w, _ := BootstrapMedian(xs, 0.5, 5000, 7)
	if w.Lo < a.Lo || w.Hi > a.Hi {
		t.Errorf("50%% interval %v is not inside the 95%% interval %v", w, a)
	}
	for _, bad := range []struct {
		xs        []float64
		level     float64
		resamples int
	}{{nil, 0.95, 1000}, {xs, 0, 1000}, {xs, 1, 1000}, {xs, math.NaN(), 1000}, {xs, 0.95, 10}, {[]float64{math.NaN()}, 0.95, 1000}} {
		if _, err := BootstrapMedian(bad.xs, bad.level, bad.resamples, 1); err == nil {
			t.Errorf("BootstrapMedian(%v, %g, %d): no error", bad.xs, bad.level, bad.resamples)
		}
	}
}

func TestJudge(t *testing.T) {
	rule := Rule{Quantity: "steps ratio", Direction: AtMost, Bound: 0.5}
	inf := math.Inf(1)
	for _, c := range []struct {
		name   string
		rule   Rule
		values []float64
		want   Verdict
	}{
		{"clearly below", rule, []float64{0.30, 0.35, 0.32, 0.40, 0.38}, Supports},
		{"clearly above", rule, []float64{0.8, 0.9, 0.85, 0.7, 0.95}, DoesNotSupport},
		{"never reached", rule, []float64{inf, inf, inf, inf, inf}, DoesNotSupport},
		{"straddles", rule, []float64{0.3, 0.7, 0.4, 0.6, 0.5, 0.45, 0.55}, Inconclusive},
		{"too few seeds", rule, []float64{0.1, 0.1, 0.1}, Inconclusive},
		{"at least, above", Rule{Quantity: "accuracy", Direction: AtLeast, Bound: 0.97}, []float64{0.981, 0.979, 0.982, 0.980, 0.978}, Supports},
		{"at least, below", Rule{Quantity: "accuracy", Direction: AtLeast, Bound: 0.97}, []float64{0.95, 0.96, 0.955, 0.951, 0.949}, DoesNotSupport},
	} {
		j, err := c.rule.Judge(c.values, 1)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if j.Verdict != c.want {
			t.Errorf("%s: verdict %q (%s), want %q", c.name, j.Verdict, j.Why, c.want)
		}
		if !strings.Contains(j.Stated, c.rule.Quantity) || j.Why == "" {
			t.Errorf("%s: stated %q, why %q", c.name, j.Stated, j.Why)
		}
	}
	for _, bad := range []Rule{{}, {Quantity: "x", Direction: "about"}, {Quantity: "x", Direction: AtMost, Bound: math.Inf(1)}, {Quantity: "x", Direction: AtMost, MinSeeds: -1}} {
		if _, err := bad.Judge([]float64{1, 2, 3, 4, 5}, 1); err == nil {
			t.Errorf("rule %+v: no error", bad)
		}
	}
}

func TestJudgementJSONKeepsInfinities(t *testing.T) {
	j, err := Rule{Quantity: "steps", Direction: AtMost, Bound: 100}.Judge([]float64{50, math.Inf(1), math.Inf(1), 80, math.Inf(1)}, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if !strings.Contains(string(b), `"+Inf"`) {
		t.Errorf("JSON lacks +Inf: %s", b)
	}
	var back Judgement
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if !math.IsInf(float64(back.Values[1]), 1) || back.Values[0] != 50 || back.Verdict != j.Verdict || !math.IsNaN(float64(back.Summary.SD)) {
		t.Errorf("round trip: %+v", back)
	}
	var f Float
	if err := json.Unmarshal([]byte(`"lots"`), &f); err == nil {
		t.Error(`Float accepted "lots"`)
	}
}
