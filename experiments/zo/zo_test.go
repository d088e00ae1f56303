package zoexp

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goptlab/goptlab/experiments"
	"github.com/goptlab/goptlab/experiments/verdict"
)

// smallConfig is the tiny size cut to one seed, one learning rate per method and small problems.
func smallConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := DefaultConfig(experiments.Tiny)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Seeds, cfg.QuadDims, cfg.QuadDirections, cfg.QuadLRGrid = 1, []int{4, 8}, []int{1}, []float64{0.5, 0.25, 0.125}
	cfg.SaddleDim, cfg.SaddleSeeds, cfg.SaddleMaxEvals, cfg.SaddleZeroSteps = 6, 2, 2000, 10
	cfg.Hidden, cfg.BatchSize, cfg.TrainExamples, cfg.ValExamples, cfg.TestExamples = []int{8}, 32, 600, 200, 200
	cfg.PretrainSteps, cfg.Budget, cfg.EvalEvery = 10, 40, 20
	return cfg
}

// TestSameConfigSameResult runs the family twice: result.json must be byte-identical.
func TestSameConfigSameResult(t *testing.T) {
	if testing.Short() {
		t.Skip("trains about 30 small runs")
	}
	cfg := smallConfig(t)
	var files [2][]byte
	for i := range files {
		res, err := Run(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := experiments.WriteFiles(dir, res, res.Timing, res.Histories); err != nil {
			t.Fatal(err)
		}
		if files[i], err = os.ReadFile(filepath.Join(dir, "result.json")); err != nil {
			t.Fatal(err)
		}
		var back Result
		if err := json.Unmarshal(files[i], &back); err != nil {
			t.Fatalf("result.json does not read back: %v", err)
		}
		if back.Family != "zo" || len(back.Claims) != len(cfg.QuadDirections)+1+3+2 {
			t.Fatalf("result.json: family %q, %d claims", back.Family, len(back.Claims))
		}
		for _, c := range back.Claims {
			// One or two seeds are below every rule's minimum: the verdict must say so.
			if c.Judgement.Verdict != verdict.Inconclusive || !strings.Contains(c.Judgement.Why, "seeds") {
				t.Errorf("claim %s with too few seeds: %q (%s)", c.ID, c.Judgement.Verdict, c.Judgement.Why)
			}
		}
		for _, r := range back.Quadratic.Runs {
			if !(r.Evals > 0) || math.IsInf(float64(r.Evals), 1) {
				t.Errorf("quadratic run %+v did not reach the target", r)
			}
		}
		if len(back.Saddle.Runs) != cfg.SaddleSeeds || len(back.FineTune.Runs) != len(Methods)*cfg.Seeds {
			t.Errorf("%d saddle runs, %d fine-tuning runs", len(back.Saddle.Runs), len(back.FineTune.Runs))
		}
		if len(back.FineTune.Memory) != len(Methods)+1 {
			t.Errorf("%d memory rows, want %d", len(back.FineTune.Memory), len(Methods)+1)
		}
		if len(res.Histories) != len(Methods)*cfg.Seeds {
			t.Errorf("%d histories, want %d", len(res.Histories), len(Methods)*cfg.Seeds)
		}
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Errorf("two runs of the same configuration wrote different result.json:\n%s\n---\n%s", files[0], files[1])
	}
}

func TestConfigValidate(t *testing.T) {
	for _, size := range experiments.Sizes {
		cfg, err := DefaultConfig(size)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("DefaultConfig(%s): %v", size, err)
		}
	}
	if _, err := DefaultConfig("huge"); err == nil || !strings.Contains(err.Error(), "huge") {
		t.Errorf("DefaultConfig(huge): err = %v", err)
	}
	for field, mutate := range map[string]func(*Config){
		"Seeds":            func(c *Config) { c.Seeds = 0 },
		"Epsilon":          func(c *Config) { c.Epsilon = math.NaN() },
		"QuadDims":         func(c *Config) { c.QuadDims = []int{100, 10} },
		"QuadDirections":   func(c *Config) { c.QuadDirections = []int{0} },
		"QuadTarget":       func(c *Config) { c.QuadTarget = 1 },
		"QuadLRGrid":       func(c *Config) { c.QuadLRGrid = []float64{2} },
		"QuadEvalsPerDim":  func(c *Config) { c.QuadEvalsPerDim = 0 },
		"SaddleDim":        func(c *Config) { c.SaddleDim = 1 },
		"SaddleSeeds":      func(c *Config) { c.SaddleSeeds = 0 },
		"SaddleDirections": func(c *Config) { c.SaddleDirections = 0 },
		"SaddleLR":         func(c *Config) { c.SaddleLR = 0 },
		"SaddleOffset":     func(c *Config) { c.SaddleOffset = -1 },
		"SaddleEscapeLoss": func(c *Config) { c.SaddleEscapeLoss = -0.3 },
		"SaddleMaxEvals":   func(c *Config) { c.SaddleMaxEvals = 1 },
		"SaddleZeroSteps":  func(c *Config) { c.SaddleZeroSteps = 0 },
		"BatchSize":        func(c *Config) { c.BatchSize = c.TrainExamples + 1 },
		"PretrainClasses":  func(c *Config) { c.PretrainClasses = 10 },
		"PretrainSteps":    func(c *Config) { c.PretrainSteps = 0 },
		"PretrainLR":       func(c *Config) { c.PretrainLR = math.Inf(1) },
		"EvalEvery":        func(c *Config) { c.EvalEvery = 3 },
		"Budget":           func(c *Config) { c.Budget = c.EvalEvery + 2 },
		"Momentum":         func(c *Config) { c.Momentum = 1 },
		"SparseFraction":   func(c *Config) { c.SparseFraction = 0 },
		"LRGrid":           func(c *Config) { c.LRGrid[SGD] = nil },
		"Hidden":           func(c *Config) { c.Hidden = []int{0} },
	} {
		cfg := smallConfig(t)
		mutate(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("bad %s: err = %v", field, err)
		}
	}
}

func TestLogLogSlope(t *testing.T) {
	dims := []int{10, 100, 1000}
	for _, tc := range []struct {
		evals []float64
		want  float64
	}{
		{[]float64{70, 700, 7000}, 1},
		{[]float64{3, 300, 30000}, 2},
		{[]float64{50, 50, 50}, 0},
		// Evaluations 2·ln(1000)·(d+m+1) with m = 16: the large-m flattening the doc mentions.
		{[]float64{27, 117, 1017}, 0.7880},
	} {
		if got := logLogSlope(dims, tc.evals); math.Abs(got-tc.want) > 1e-4 {
			t.Errorf("logLogSlope(%v) = %g, want %g", tc.evals, got, tc.want)
		}
	}
	if got := logLogSlope(dims, []float64{10, math.Inf(1), 1000}); !math.IsInf(got, 1) {
		t.Errorf("a target not reached: slope %g, want +Inf", got)
	}
}

func TestOscillation(t *testing.T) {
	// Second half [2 1 2 1]: differences -1 1 -1, mean -1/3, sample sd sqrt(4/3).
	if got := oscillation([]float64{5, 4, 3, 1, 2, 1, 2, 1}); math.Abs(got-math.Sqrt(4.0/3)) > 1e-12 {
		t.Errorf("oscillation = %g, want %g", got, math.Sqrt(4.0/3))
	}
	if got := oscillation([]float64{9, 8, 7, 6, 5, 4}); math.Abs(got) > 1e-12 {
		t.Errorf("a steady descent oscillates by %g, want 0", got)
	}
	if got := oscillation([]float64{1, 1, 1, math.NaN(), 1, 1}); !math.IsInf(got, 1) {
		t.Errorf("a NaN loss: %g, want +Inf", got)
	}
	if got := oscillation([]float64{1, 2, 3}); got != 0 {
		t.Errorf("too few values: %g, want 0", got)
	}
}

func TestRatio(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range [][3]float64{{1, 2, 0.5}, {inf, 1, inf}, {inf, inf, inf}, {1, inf, 0}, {0, 0, 1}, {1, 0, inf}} {
		if got := ratio(tc[0], tc[1]); got != tc[2] {
			t.Errorf("ratio(%g, %g) = %g, want %g", tc[0], tc[1], got, tc[2])
		}
	}
}

func TestWilson(t *testing.T) {
	z := 1.959963984540054
	for _, tc := range []struct {
		k, n   int
		lo, hi float64
	}{{20, 20, 0.8389, 1}, {10, 20, 0.2993, 0.7007}, {0, 10, 0, 0.2775}} {
		got := wilson(tc.k, tc.n, z)
		if math.Abs(got[0]-tc.lo) > 1e-4 || math.Abs(got[1]-tc.hi) > 1e-4 {
			t.Errorf("wilson(%d, %d) = %v, want [%g, %g]", tc.k, tc.n, got, tc.lo, tc.hi)
		}
	}
}

func TestJudgeFraction(t *testing.T) {
	outcomes := func(yes, n int) []bool {
		out := make([]bool, n)
		for i := range yes {
			out[i] = true
		}
		return out
	}
	for _, tc := range []struct {
		yes, n int
		want   verdict.Verdict
	}{
		{20, 20, verdict.Supports},
		{19, 20, verdict.Inconclusive},
		{10, 20, verdict.DoesNotSupport},
		{4, 4, verdict.Inconclusive}, // too few seeds
	} {
		j, err := judgeFraction("escape fraction", outcomes(tc.yes, tc.n), verdict.AtLeast, 0.9, 1)
		if err != nil {
			t.Fatal(err)
		}
		if j.Verdict != tc.want || math.Abs(float64(j.Summary.Mean)-float64(tc.yes)/float64(tc.n)) > 1e-12 {
			t.Errorf("%d/%d: %s (mean %g, %s), want %s", tc.yes, tc.n, j.Verdict, j.Summary.Mean, j.Why, tc.want)
		}
		if !strings.Contains(j.Stated, "mean") {
			t.Errorf("the stated rule must say the interval is of the mean: %q", j.Stated)
		}
	}
	if _, err := judgeFraction("x", nil, verdict.AtLeast, 0.9, 1); err == nil {
		t.Error("no outcomes: no error")
	}
}

// TestEverySeedMustImprove: a median below 1 with one seed above it is not "supports".
func TestEverySeedMustImprove(t *testing.T) {
	ft := FineTuneResult{}
	for seed := int64(1); seed <= 7; seed++ {
		for _, m := range Methods {
			final := 0.5
			if m == MeZO && seed == 7 {
				final = 1.2
			}
			ft.Runs = append(ft.Runs, FineTuneRun{Method: m, Seed: seed, StartValLoss: 1, FinalValLoss: verdict.Float(final),
				Oscillation: 0.1})
		}
	}
	claims, err := fineTuneClaims(ft, smallConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]verdict.Verdict{}
	for _, c := range claims {
		got[c.ID] = c.Judgement.Verdict
	}
	want := map[string]verdict.Verdict{
		"forward-only-" + MeZO: verdict.Inconclusive, "forward-only-" + MeZOMomentum: verdict.Supports,
		"forward-only-" + SparseMeZO: verdict.Supports, "mezo-vs-sgd": verdict.Supports, "momentum-smooths": verdict.Supports,
	}
	for id, v := range want {
		if got[id] != v {
			t.Errorf("claim %s: %q, want %q", id, got[id], v)
		}
	}
}

func TestParseMemoryLog(t *testing.T) {
	log := `I1130 executable.go:95] Memory usage: On Device: [Code:0 B, Inputs:595.8 KiB, Outputs:198.9 KiB, Aliases:0 B, Temporary:37.1 KiB]; On Host: [Code:0 B, Inputs:0 B, Outputs:0 B, Aliases:0 B, Temporary:0 B]
I1130 executable.go:95] Memory usage: On Device: [Code:0 B, Inputs:0 B, Outputs:44 B, Aliases:0 B, Temporary:0 B]; On Host: [Code:0 B, Inputs:0 B, Outputs:0 B, Aliases:0 B, Temporary:0 B]
`
	r, found, err := parseMemoryLog(log)
	if err != nil || !found {
		t.Fatalf("found %v, err %v", found, err)
	}
	kib := func(x float64) int64 { return int64(x*1024 + 0.5) }
	want := MemoryRow{Source: SourceXLA, Inputs: kib(595.8), Outputs: kib(198.9), Temporary: kib(37.1)}
	want.Peak = want.Inputs + want.Outputs + want.Temporary
	if r != want {
		t.Errorf("parsed %+v, want %+v", r, want)
	}
	if _, found, err := parseMemoryLog("no statistics here"); found || err != nil {
		t.Errorf("no line: found %v, err %v", found, err)
	}
	if _, _, err := parseMemoryLog("Memory usage: On Device: [Code:0 B, Inputs:12 XB, Outputs:0 B, Aliases:0 B, Temporary:0 B]"); err == nil {
		t.Error("an unknown unit: no error")
	}
	for s, want := range map[string]int64{"4 B": 4, "1.5 MiB": 3 << 19, "2.0 GiB": 2 << 30} {
		if got, err := parseSize(s); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
}

// TestJSONFieldNames: every field of result.json is named in lower case (the slopes'
// interval was once written as "Interval"), except the configuration's, which keep their
// Go names as the other families' do.
func TestJSONFieldNames(t *testing.T) {
	b, err := json.Marshal(Result{Quadratic: QuadResult{Slopes: []QuadSlope{{}}, ChosenLR: []QuadLR{{}}, Runs: []QuadRun{{}}},
		Saddle: SaddleResult{Runs: []SaddleRun{{}}}, FineTune: FineTuneResult{Pretrained: []Pretrained{{}}, Runs: []FineTuneRun{{}},
			GapToSGD: []Gap{{}}, Memory: []MemoryRow{{}}}})
	if err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "config" {
					continue
				}
				if k != strings.ToLower(k) {
					t.Errorf("result.json field %q is not lower case", k)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	walk(v)
}
