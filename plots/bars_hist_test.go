package plots

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goptlab/goptlab/mlx/history"
)

func TestBars(t *testing.T) {
	entries := []BarEntry{
		{"MNIST MLP", "adam", []float64{0.08, 0.09, 0.085}},
		{"MNIST MLP", "sgd", []float64{0.12, 0.14, 0.13}},
		{"MNIST MLP", "lion", []float64{0.07, 0.09, 0.08}},
		{"CIFAR CNN", "adam", []float64{0.9, 0.95, 0.85}},
		{"CIFAR CNN", "sgd", []float64{1.1, 1.3, 1.2}},
		{"CIFAR CNN", "lion", []float64{0.8, 0.82, 0.84}},
		{"Rosenbrock", "adam", []float64{0.3, 0.35, 0.4}},
		{"Rosenbrock", "sgd", []float64{0.5, 0.45, 0.55}},
		{"Rosenbrock", "lion", []float64{0.25, 0.3, 0.2}},
	}
	f, err := Bars(entries, Title("Final loss per benchmark"), YLabel("final loss"))
	if err != nil {
		t.Fatal(err)
	}
	r := render(t, f, "bars")
	if got := strings.Join(f.Labels(), "|"); got != "adam (mean ± sd, n=3)|sgd (mean ± sd, n=3)|lion (mean ± sd, n=3)" {
		t.Errorf("labels = %q", got)
	}
	for _, g := range []string{"MNIST MLP", "CIFAR CNN", "Rosenbrock"} {
		if !strings.Contains(r.svg, ">"+g+"<") {
			t.Errorf("SVG lacks group label %q", g)
		}
	}
	p := f.Plots()[0]
	if p.Y.Min != 0 || math.Abs(p.Y.Max-1.05*1.3) > 1e-9 {
		t.Errorf("y range = [%v, %v], want [0, 1.365] (sgd's CIFAR mean + sd, plus 5%% headroom)", p.Y.Min, p.Y.Max)
	}
	for _, opt := range []string{"adam", "sgd", "lion"} {
		if n := countColor(r.img, StyleFor(opt)); n < 1000 {
			t.Errorf("%d pixels of %s's bar colour", n, opt)
		}
	}
	if m, sd := meanSD([]float64{1, 2, 3}); m != 2 || sd != 1 {
		t.Errorf("meanSD = %v, %v; want 2, 1", m, sd)
	}
}

func TestBarsBadInput(t *testing.T) {
	cases := map[string][]BarEntry{
		"none":      nil,
		"no values": {{"g", "adam", nil}},
		"NaN":       {{"g", "adam", []float64{1, math.NaN()}}},
		"duplicate": {{"g", "adam", []float64{1}}, {"g", "adam", []float64{2}}},
	}
	for name, es := range cases {
		if _, err := Bars(es); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Bars([]BarEntry{{"g", "adam", []float64{1}}}, LogY()); err == nil {
		t.Error("LogY: no error")
	}
}

func TestFinalBars(t *testing.T) {
	hs := []*history.History{synth(t, "a", "adam", 1, 0.02), synth(t, "a", "adam", 2, 0.02), synth(t, "s", "sgd", 1, 0.01)}
	es, err := FinalBars("bench", hs, "loss")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Series != "adam" || len(es[0].Values) != 2 || es[1].Series != "sgd" || es[0].Group != "bench" {
		t.Fatalf("entries = %+v", es)
	}
	last, _ := hs[2].Last()
	if es[1].Values[0] != last.Loss {
		t.Errorf("sgd final = %v, want %v", es[1].Values[0], last.Loss)
	}
}

func TestHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var w1, w2 []float64
	for range 2000 {
		w1 = append(w1, 0.1*rng.NormFloat64())
		w2 = append(w2, 0.05*rng.NormFloat64()+0.1)
	}
	w2 = append(w2, math.NaN(), math.Inf(1))
	f, err := Histogram([]Sample{{"layer 1", w1}, {"layer 2", w2}}, Bins(30), Title("Weights"))
	if err != nil {
		t.Fatal(err)
	}
	r := render(t, f, "histogram")
	if got := strings.Join(f.Labels(), "|"); got != "layer 1 (n=2000)|layer 2 (n=2000; 2 NaN/Inf not shown)" {
		t.Errorf("labels = %q", got)
	}
	p := f.Plots()[0]
	if p.Y.Min != 0 || p.Y.Max < 100 || p.Y.Max > 2000 {
		t.Errorf("y range = [%v, %v]", p.Y.Min, p.Y.Max)
	}
	if !hasTranslucentFill(r.svg, StyleFor("layer 1")) || !hasTranslucentFill(r.svg, StyleFor("layer 2")) {
		t.Error("histograms are not filled translucently in their colours")
	}
}

func TestHistogramLogX(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var diag []float64
	for range 3000 {
		diag = append(diag, math.Exp(2*rng.NormFloat64()-3)) // log-normal, spans decades
	}
	diag = append(diag, 0, -1e-3)
	f, err := Histogram([]Sample{{"hessian diag", diag}}, LogX(), XLabel("|H_ii| estimate"))
	if err != nil {
		t.Fatal(err)
	}
	render(t, f, "histogram_logx")
	if got := f.Labels()[0]; got != "hessian diag (n=3000; 2 ≤ 0 not shown)" {
		t.Errorf("label = %q", got)
	}
	p := f.Plots()[0]
	if !(p.X.Min > 0 && p.X.Max/p.X.Min > 1e4) {
		t.Errorf("x range = [%v, %v], want positive and spanning decades", p.X.Min, p.X.Max)
	}
	if _, err := Histogram([]Sample{{"neg", []float64{-1, -2}}}, LogX()); err == nil {
		t.Error("all non-positive on LogX: no error")
	}
	if _, err := Histogram(nil); err == nil {
		t.Error("no samples: no error")
	}
	if _, err := Histogram([]Sample{{"x", []float64{1}}}, Bins(0)); err == nil {
		t.Error("zero bins: no error")
	}
	// A constant sample still gets a visible bar.
	f, err = Histogram([]Sample{{"const", []float64{2, 2, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Plots()[0]; math.Abs(p.Y.Max-3.15) > 1e-9 {
		t.Errorf("constant sample: y max %v, want 3 plus 5%% headroom", p.Y.Max)
	}
}
