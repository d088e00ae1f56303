package adan

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

// smallConfig is the tiny size cut to one learning rate per optimizer and one seed.
func smallConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := DefaultConfig(experiments.Tiny)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Seeds, cfg.Steps, cfg.TimingSteps, cfg.AnchorSteps = 1, 30, 10, 20
	for k, v := range cfg.LRGrid {
		cfg.LRGrid[k] = v[len(v)-1:]
	}
	return cfg
}

// TestSameSeedSameResult runs the experiment twice: result.json must be byte-identical.
func TestSameSeedSameResult(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 22 small runs")
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
		if len(back.Claims) != len(Baselines)+1 || len(back.Seeds) != 4*cfg.Seeds {
			t.Fatalf("result.json: %d claims, %d seed results", len(back.Claims), len(back.Seeds))
		}
		for _, c := range back.Claims {
			// One seed is below every rule's minimum: the verdict must say so, not guess.
			if c.Judgement.Verdict != verdict.Inconclusive || !strings.Contains(c.Judgement.Why, "seeds") {
				t.Errorf("claim %s with one seed: %q (%s)", c.ID, c.Judgement.Verdict, c.Judgement.Why)
			}
		}
		for _, s := range back.Seeds {
			if !(s.TestAccuracy > 0.2 && s.TestAccuracy <= 1) || math.IsNaN(s.FinalValLoss) || s.BestStep < cfg.EvalEvery {
				t.Errorf("seed result %+v: the model did not learn", s)
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
		"Seeds":     func(c *Config) { c.Seeds = 0 },
		"Steps":     func(c *Config) { c.Steps = -1 },
		"BatchSize": func(c *Config) { c.BatchSize = c.TrainExamples + 1 },
		"EvalEvery": func(c *Config) { c.EvalEvery = c.Steps + 1 },
		"LRGrid":    func(c *Config) { c.LRGrid["adan"] = []float64{math.NaN()} },
		"Hidden":    func(c *Config) { c.Hidden = []int{0} },
		"AnchorLR":  func(c *Config) { c.AnchorLR = 0 },
	} {
		cfg := smallConfig(t)
		mutate(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("bad %s: err = %v", field, err)
		}
	}
}
