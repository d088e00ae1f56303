package localsgdexp

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
	"github.com/goptlab/goptlab/mlx/history"
)

// smallConfig is the tiny size (20 steps, H in {1, 5}) cut to one seed and DiLoCo on IID
// shards only.
func smallConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := DefaultConfig(experiments.Tiny)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Seeds, cfg.LocalSteps, cfg.ClaimH, cfg.CompareH = 1, []int{1, 5}, 5, 5
	cfg.DiLoCoAlphas = []float64{0}
	return cfg
}

// TestSameSeedSameResult runs the experiment twice: result.json must be byte-identical.
func TestSameSeedSameResult(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 18 small runs")
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
		for _, name := range []string{"timing.json", "histories.json"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Error(err)
			}
		}
		var back Result
		if err := json.Unmarshal(files[i], &back); err != nil {
			t.Fatalf("result.json does not read back: %v", err)
		}
		// Per seed: centralized, then IID and Dirichlet(0.1) shards with 2 FedAvg runs each,
		// DiLoCo on the IID shards and FedProx on the skewed ones.
		if wantRuns := cfg.Seeds * (1 + 2*(len(cfg.LocalSteps)+1)); len(back.Runs) != wantRuns {
			t.Errorf("result.json: %d runs, want %d", len(back.Runs), wantRuns)
		}
		if len(back.Claims) != 5 || len(back.Communication) != cfg.Seeds {
			t.Fatalf("result.json: %d claims, %d communication results", len(back.Claims), len(back.Communication))
		}
		for _, c := range back.Claims {
			// One seed is below every rule's minimum: the verdict must say so, not guess.
			if c.Judgement.Verdict != verdict.Inconclusive || !strings.Contains(c.Judgement.Why, "seeds") {
				t.Errorf("claim %s with one seed: %q (%s)", c.ID, c.Judgement.Verdict, c.Judgement.Why)
			}
		}
		for _, r := range back.Runs {
			if !(r.TestAccuracy > 0.2 && r.TestAccuracy <= 1) || !(r.FinalValAccuracy > 0.2) {
				t.Errorf("run %+v: the model did not learn", r)
			}
			if r.Method != Centralized && !(r.Rounds >= 1) {
				t.Errorf("run %+v: rounds to the target %v", r, r.Rounds)
			}
		}
		for _, c := range back.Communication {
			trainable := (784*16 + 16) + (16*10 + 10)
			if !(c.Ratio > 2.9 && c.Ratio < 3.1) || c.Trainable != trainable || c.ModelFloats < trainable {
				t.Errorf("communication %+v: want the 784-16-10 MLP's %d parameters and a ratio near 3", c, trainable)
			}
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
		"Seeds":          func(c *Config) { c.Seeds = 0 },
		"Workers":        func(c *Config) { c.Workers = 0 },
		"BatchSize":      func(c *Config) { c.BatchSize = c.TrainExamples },
		"Steps":          func(c *Config) { c.Steps = -1 },
		"LocalSteps":     func(c *Config) { c.LocalSteps = []int{5} },
		"ClaimH":         func(c *Config) { c.ClaimH = 7 },
		"CompareH":       func(c *Config) { c.CompareH = 3 },
		"SkewAlpha":      func(c *Config) { c.SkewAlpha = 0.3 },
		"Alphas":         func(c *Config) { c.Alphas = append(c.Alphas, -1) },
		"DiLoCoAlphas":   func(c *Config) { c.DiLoCoAlphas = []float64{7} },
		"ProxMu":         func(c *Config) { c.ProxMu = math.Inf(1) },
		"Outer.LR":       func(c *Config) { c.Outer.LR = 0 },
		"Outer.Momentum": func(c *Config) { c.Outer.Momentum = 1 },
		"TargetFraction": func(c *Config) { c.TargetFraction = 1.5 },
		"LRGrid":         func(c *Config) { c.LRGrid = []float64{math.NaN()} },
		"Hidden":         func(c *Config) { c.Hidden = []int{0} },
		"TrainExamples":  func(c *Config) { c.TrainExamples = 1 },
		"ValExamples":    func(c *Config) { c.ValExamples = 0 },
	} {
		cfg := smallConfig(t)
		mutate(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("bad %s: err = %v", field, err)
		}
	}
	// Every H must divide Steps, so that every run ends on a round.
	cfg := smallConfig(t)
	cfg.Steps = 12
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "LocalSteps") {
		t.Errorf("Steps=12 with H=5: err = %v", err)
	}
}

// roundsHistory returns a history logged every H steps with the given validation accuracies.
func roundsHistory(H int, acc, loss []float64) *history.History {
	h := history.New("test", "fedavg", 1)
	for i := range acc {
		m := map[string]float64{"eval_accuracy": acc[i]}
		if loss != nil {
			m["eval_loss"] = loss[i]
		}
		h.Add(history.Record{Step: (i + 1) * H, Metrics: m})
	}
	return h
}

func TestRoundsTo(t *testing.T) {
	acc := []float64{0.5, 0.8, 0.94, 0.95, 0.97}
	for _, c := range []struct {
		H      int
		target float64
		want   float64
	}{
		{1, 0.95, 4},  // reached at the fourth round, exactly at the target
		{20, 0.95, 4}, // rounds, not steps
		{20, 0.5, 1},  // the first round
		{5, 0.96, 5},  // the last round
		{5, 0.98, math.Inf(1)},
	} {
		if got := RoundsTo(roundsHistory(c.H, acc, nil), c.H, c.target); got != c.want {
			t.Errorf("RoundsTo(H=%d, target %g) = %g, want %g", c.H, c.target, got, c.want)
		}
	}
}

func TestRatios(t *testing.T) {
	inf := math.Inf(1)
	for _, c := range []struct{ a, b, want float64 }{
		{100, 4, 25},
		{inf, inf, 1}, // neither reached the target
		{10, inf, 0},  // the local run never reached it
		{inf, 10, inf},
	} {
		if got := Ratio(c.a, c.b); got != c.want {
			t.Errorf("Ratio(%g, %g) = %g, want %g", c.a, c.b, got, c.want)
		}
	}
	for _, c := range []struct{ a, b, want float64 }{
		{0.1, 0.2, 0.5},
		{0, 0, 1},
		{0.1, 0, inf},
		{inf, inf, 1},
	} {
		if got := RiseRatio(c.a, c.b); got != c.want {
			t.Errorf("RiseRatio(%g, %g) = %g, want %g", c.a, c.b, got, c.want)
		}
	}
}

func TestRisePerRound(t *testing.T) {
	for _, c := range []struct {
		losses []float64
		want   float64
	}{
		{nil, 0},
		{[]float64{2, 1, 0.5, 0.4}, 0},             // never rises
		{[]float64{2, 1, 1.5, 0.5}, 0.5 / 4},       // one rise of 0.5 over 4 rounds
		{[]float64{1, 2, 1, 2}, 2.0 / 4},           // oscillation
		{[]float64{1, math.NaN(), 1}, math.Inf(1)}, // diverged
	} {
		if got := RisePerRound(c.losses); math.Abs(got-c.want) > 1e-12 && got != c.want {
			t.Errorf("RisePerRound(%v) = %g, want %g", c.losses, got, c.want)
		}
	}
}

// The claims' values are computed from the runs as the package documentation says.
func TestJudgeFromRuns(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Seeds, cfg.DiLoCoAlphas = 5, []float64{0, 0.1}
	res := &Result{}
	for s := int64(1); s <= 5; s++ {
		add := func(method, shards string, h int, rounds, rise float64) {
			res.Runs = append(res.Runs, RunResult{Method: method, Shards: shards, H: h, Seed: s,
				Rounds: verdict.Float(rounds), ValLossRise: verdict.Float(rise), TestAccuracy: 0.9})
		}
		add(FedAvg, IID, 1, 100+float64(s), 0)
		add(FedAvg, IID, 5, 5, 0)
		add(DiLoCo, IID, 5, 4, 0)
		add(FedAvg, "dirichlet(0.1)", 1, 120, 0)
		add(FedAvg, "dirichlet(0.1)", 5, 15, 0.2)
		add(DiLoCo, "dirichlet(0.1)", 5, math.Inf(1), 0.1)
		add(FedProx, "dirichlet(0.1)", 5, 12, 0.1)
		res.Communication = append(res.Communication, CommResult{Seed: s, ModelFloats: 10, WithOptimizer: 30, Ratio: 3.05})
	}
	claims, err := judge(res, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float64{
		"fedavg-round-reduction":                {101.0 / 5, 102.0 / 5, 103.0 / 5, 104.0 / 5, 105.0 / 5},
		"fedavg-non-iid-robust":                 {3, 3, 3, 3, 3},
		"diloco-vs-averaging-iid":               {0.8, 0.8, 0.8, 0.8, 0.8},
		"diloco-vs-averaging-dirichlet(0.1)":    {math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1)},
		"fedprox-stability":                     {0.5, 0.5, 0.5, 0.5, 0.5},
		"optimizer-state-triples-communication": {0.05, 0.05, 0.05, 0.05, 0.05},
	}
	verdicts := map[string]verdict.Verdict{
		"fedavg-round-reduction":                verdict.Supports,
		"fedavg-non-iid-robust":                 verdict.DoesNotSupport,
		"diloco-vs-averaging-iid":               verdict.Supports,
		"diloco-vs-averaging-dirichlet(0.1)":    verdict.DoesNotSupport,
		"fedprox-stability":                     verdict.Supports,
		"optimizer-state-triples-communication": verdict.Supports,
	}
	if len(claims) != len(want) {
		t.Fatalf("%d claims, want %d", len(claims), len(want))
	}
	for _, c := range claims {
		w, ok := want[c.ID]
		if !ok {
			t.Errorf("unexpected claim %s", c.ID)
			continue
		}
		for i, v := range c.Judgement.Values {
			if math.Abs(float64(v)-w[i]) > 1e-9 && float64(v) != w[i] {
				t.Errorf("claim %s: values %v, want %v", c.ID, c.Judgement.Values, w)
				break
			}
		}
		if c.Judgement.Verdict != verdicts[c.ID] {
			t.Errorf("claim %s: verdict %q, want %q (%s)", c.ID, c.Judgement.Verdict, verdicts[c.ID], c.Judgement.Why)
		}
	}
	cs := cells(res, cfg)
	if len(cs) != 7 {
		t.Fatalf("%d cells, want 7", len(cs))
	}
	if c := cs[1]; c.Method != FedAvg || c.Shards != IID || c.H != 5 || c.MedianRounds != 5 || c.MedianReduction != 103.0/5 {
		t.Errorf("cell fedavg iid H=5: %+v", c)
	}
}
