// Package adan tests the claims of "Adan: Adaptive Nesterov Momentum Algorithm for
// Faster Optimizing Deep Models" (Xie et al., arXiv:2208.06677) on MNIST:
//
//   - "can use half of the training cost (epochs) of SoTA optimizers to achieve higher or
//     comparable performance": for each baseline B (SGD with Nesterov momentum, Adam,
//     AdamW) and each seed, the steps Adan needs to reach B's best validation loss,
//     divided by the steps B needed to reach it. The claim says at most 0.5.
//   - "avoids the extra overhead of computing gradient at the extrapolation point": Adan's
//     time per step divided by Adam's, measured side by side. The claim (time per step
//     close to Adam's) is taken as at most 1.25.
//   - Sanity anchor (not a claim of the paper): an MLP trained with Adam for a few epochs
//     reaches the test accuracy the literature reports for its size (about 98% for
//     784-512-512-10); the rule asks for at least 97.5%.
//
// Protocol, fixed before any run: every optimizer gets its best learning rate from a
// small grid, chosen on a tuning seed (0) that is not among the evaluation seeds
// (1..Seeds), by the lowest final validation loss. Validation examples are held out from
// MNIST's training split; test accuracy is measured on MNIST's test split. Each
// evaluation seed then trains every optimizer at its chosen learning rate (the seed sets
// the initial weights and the batch order). Verdicts come from package verdict: a 95%
// bootstrap interval of the median over seeds, compared with the bound.
package adan

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/experiments"
	"github.com/goptlab/goptlab/experiments/verdict"
	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/train"
)

// Baselines are the optimizers Adan is compared with.
var Baselines = []string{"sgd", "adam", "adamw"}

// Config describes one run of the experiment. Start from [DefaultConfig].
type Config struct {
	Size experiments.Size
	// Seeds is the number of evaluation seeds (1..Seeds); the tuning seed is 0.
	Seeds int
	// Hidden are the hidden widths of the ReLU MLP trained on flat 784-pixel images.
	Hidden []int
	// Steps is the number of optimizer steps of every run (T), BatchSize their batch size.
	Steps, BatchSize int
	// EvalEvery is how often (in steps) the validation loss is measured; steps to a
	// target are counted in these units.
	EvalEvery int
	// TrainExamples, ValExamples and TestExamples size the MNIST splits.
	TrainExamples, ValExamples, TestExamples int
	// LRGrid holds each optimizer's learning rates to choose from (Adan's and the baselines').
	LRGrid map[string][]float64
	// TimingSteps is the number of steps of the side-by-side timing of Adan and Adam per seed.
	TimingSteps int
	// AnchorHidden, AnchorSteps and AnchorLR set the sanity anchor's Adam run (per seed);
	// AnchorSteps = 0 leaves the anchor out.
	AnchorHidden []int
	AnchorSteps  int
	AnchorLR     float64
	// DataDir is the folder of the MNIST files; empty means data.LoadMNIST's default.
	DataDir string `json:"-"`
}

// DefaultConfig returns the configuration of the given size.
func DefaultConfig(size experiments.Size) (Config, error) {
	c := Config{Size: size, Seeds: 5, BatchSize: 128, ValExamples: 10000, TestExamples: 10000,
		AnchorHidden: []int{512, 512}, AnchorLR: 1e-3}
	// Grids of three, a factor ~3 apart, centred where a first run found each optimizer's
	// best on this MLP (at the default size).
	grid := map[string][]float64{
		"sgd":   {0.03, 0.1, 0.3},
		"adam":  {1e-3, 3e-3, 1e-2},
		"adamw": {1e-3, 3e-3, 1e-2},
		"adan":  {3e-3, 1e-2, 3e-2},
	}
	switch size {
	case experiments.Tiny:
		c.Seeds, c.Hidden, c.Steps, c.BatchSize, c.EvalEvery = 2, []int{16}, 40, 32, 10
		c.TrainExamples, c.ValExamples, c.TestExamples = 1000, 500, 500
		c.TimingSteps, c.AnchorHidden, c.AnchorSteps = 20, []int{32}, 40
		for k, v := range grid {
			grid[k] = v[1:]
		}
	case experiments.Default:
		c.Hidden, c.Steps, c.EvalEvery = []int{128}, 800, 20
		c.TrainExamples, c.TimingSteps, c.AnchorSteps = 50000, 400, 2000
	case experiments.Paper:
		c.Hidden, c.Steps, c.EvalEvery = []int{512, 512}, 6000, 50
		c.TrainExamples, c.TimingSteps, c.AnchorSteps = 50000, 2000, 2400
		grid["sgd"] = []float64{0.01, 0.03, 0.1, 0.3, 1}
		grid["adam"] = []float64{1e-4, 3e-4, 1e-3, 3e-3, 1e-2}
		grid["adamw"] = grid["adam"]
		grid["adan"] = []float64{3e-4, 1e-3, 3e-3, 1e-2, 3e-2}
	default:
		_, err := experiments.ParseSize(string(size))
		return Config{}, fmt.Errorf("adan.DefaultConfig: %w", err)
	}
	c.LRGrid = grid
	return c, nil
}

// Validate checks every field and names the first bad one.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("adan.Config."+format, args...)
	}
	switch {
	case c.Seeds < 1 || c.Seeds > 1000:
		return bad("Seeds=%d out of range [1, 1000]", c.Seeds)
	case c.Steps < 1 || c.Steps > 10_000_000:
		return bad("Steps=%d out of range [1, 1e7]", c.Steps)
	case c.BatchSize < 1 || c.BatchSize > c.TrainExamples:
		return bad("BatchSize=%d out of range [1, TrainExamples=%d]", c.BatchSize, c.TrainExamples)
	case c.EvalEvery < 1 || c.EvalEvery > c.Steps:
		return bad("EvalEvery=%d out of range [1, Steps=%d]", c.EvalEvery, c.Steps)
	case c.TimingSteps < 2 || c.TimingSteps > 10_000_000:
		return bad("TimingSteps=%d out of range [2, 1e7]", c.TimingSteps)
	case c.AnchorSteps < 0 || c.AnchorSteps > 10_000_000:
		return bad("AnchorSteps=%d out of range [0, 1e7]", c.AnchorSteps)
	case c.AnchorSteps > 0 && !(c.AnchorLR > 0 && c.AnchorLR < 10):
		return bad("AnchorLR=%g out of range (0, 10)", c.AnchorLR)
	}
	for _, hs := range [][]int{c.Hidden, c.AnchorHidden} {
		for _, h := range hs {
			if h < 1 || h > 1<<16 {
				return bad("Hidden/AnchorHidden width %d out of range [1, 65536]", h)
			}
		}
	}
	for _, name := range append([]string{"adan"}, Baselines...) {
		lrs := c.LRGrid[name]
		if len(lrs) == 0 {
			return bad("LRGrid[%q] is empty: give at least one learning rate", name)
		}
		for _, lr := range lrs {
			if !(lr > 0 && lr < 10) {
				return bad("LRGrid[%q] holds %g: learning rates must be in (0, 10)", name, lr)
			}
		}
	}
	return nil
}

// SeedResult is what one evaluation seed measured for one optimizer.
type SeedResult struct {
	Optimizer string  `json:"optimizer"`
	Seed      int64   `json:"seed"`
	LR        float64 `json:"lr"`
	// BestValLoss is the lowest validation loss of the run, first reached at BestStep.
	BestValLoss   float64 `json:"best_val_loss"`
	BestStep      int     `json:"best_step"`
	FinalValLoss  float64 `json:"final_val_loss"`
	TestAccuracy  float64 `json:"test_accuracy"`
	FinalTestLoss float64 `json:"final_test_loss"`
}

// Target is one baseline's best validation loss on one seed, and the steps each
// optimizer took to reach it.
type Target struct {
	Baseline      string        `json:"baseline"`
	Seed          int64         `json:"seed"`
	ValLoss       float64       `json:"val_loss"`
	BaselineSteps int           `json:"baseline_steps"`
	AdanSteps     verdict.Float `json:"adan_steps"`
}

// Result is what [Run] measured. Everything but Timing is a deterministic function of
// the configuration on a given backend: two runs write the same result.json.
type Result struct {
	Family  string           `json:"family"` // "adan"
	Size    experiments.Size `json:"size"`
	Config  Config           `json:"config"`
	Backend string           `json:"backend"`
	// ChosenLR is each optimizer's learning rate picked on the tuning seed, and Tuning the
	// final validation loss of every (optimizer, learning rate) of the grid.
	ChosenLR map[string]float64            `json:"chosen_lr"`
	Tuning   map[string]map[string]float64 `json:"tuning"`
	Seeds    []SeedResult                  `json:"seeds"`
	// Targets holds, per baseline and seed, the target (the baseline's best validation
	// loss), the baseline's steps to it and Adan's (+Inf when Adan never reached it).
	Targets []Target `json:"targets"`
	// AnchorTestAccuracy is the sanity anchor's test accuracy per seed.
	AnchorTestAccuracy []float64           `json:"anchor_test_accuracy,omitempty"`
	Claims             []experiments.Claim `json:"claims"`
	// Timing holds the wall-clock measurements (they vary from run to run).
	Timing experiments.Timing `json:"-"`
	// Histories are the evaluation runs' histories (they carry wall-clock times).
	Histories []*history.History `json:"-"`
}

// Run runs the experiment. Progress lines (one per training run) go to progress if it is
// not nil. ctx cancels it between and within runs.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	backend, err := mlx.Backend()
	if err != nil {
		return nil, fmt.Errorf("adan: %w", err)
	}
	trainSet, val, test, err := experiments.MNISTSplits(cfg.DataDir, data.LayoutFlat, cfg.TrainExamples, cfg.ValExamples, cfg.TestExamples)
	if err != nil {
		return nil, fmt.Errorf("adan: %w", err)
	}
	e := &runner{ctx: ctx, cfg: cfg, backend: backend, train: trainSet, val: val, test: test, progress: progress}
	res := &Result{Family: "adan", Size: cfg.Size, Config: cfg, Backend: backend.Name(), ChosenLR: map[string]float64{},
		Tuning: map[string]map[string]float64{}}

	// 1. Learning rates, on the tuning seed 0.
	for _, name := range append([]string{"adan"}, Baselines...) {
		res.Tuning[name] = map[string]float64{}
		best := math.Inf(1)
		for _, lr := range cfg.LRGrid[name] {
			r, _, err := e.run(name, lr, 0, cfg.Hidden, cfg.Steps)
			if err != nil {
				return nil, err
			}
			res.Tuning[name][fmt.Sprint(lr)] = r.FinalValLoss
			if r.FinalValLoss < best { // NaN (diverged) never wins
				best, res.ChosenLR[name] = r.FinalValLoss, lr
			}
		}
		if _, ok := res.ChosenLR[name]; !ok {
			return nil, fmt.Errorf("adan: every learning rate of %s's grid %v diverged on the tuning seed", name, cfg.LRGrid[name])
		}
	}

	// 2. Evaluation seeds.
	runs := map[string][]SeedResult{}
	histories := map[string][]*history.History{}
	for seed := int64(1); seed <= int64(cfg.Seeds); seed++ {
		for _, name := range append([]string{"adan"}, Baselines...) {
			r, h, err := e.run(name, res.ChosenLR[name], seed, cfg.Hidden, cfg.Steps)
			if err != nil {
				return nil, err
			}
			res.Seeds = append(res.Seeds, r)
			runs[name] = append(runs[name], r)
			histories[name] = append(histories[name], h)
			res.Histories = append(res.Histories, h)
		}
	}
	for i, b := range Baselines {
		ratios := make([]float64, cfg.Seeds)
		for s := range cfg.Seeds {
			base := runs[b][s]
			reached := stepsTo(histories["adan"][s], base.BestValLoss)
			ratios[s] = reached / float64(base.BestStep)
			res.Targets = append(res.Targets, Target{Baseline: b, Seed: base.Seed, ValLoss: base.BestValLoss,
				BaselineSteps: base.BestStep, AdanSteps: verdict.Float(reached)})
		}
		rule := verdict.Rule{Quantity: fmt.Sprintf("Adan's steps to %s's best validation loss / %s's steps to it", b, b),
			Direction: verdict.AtMost, Bound: 0.5}
		j, err := rule.Judge(ratios, uint64(100+i))
		if err != nil {
			return nil, fmt.Errorf("adan: %w", err)
		}
		res.Claims = append(res.Claims, experiments.Claim{ID: "half-cost-vs-" + b,
			Text: fmt.Sprintf("Adan reaches %s's best validation loss in at most half of %s's steps", b, b), Judgement: j})
	}

	// 3. Sanity anchor.
	if cfg.AnchorSteps > 0 {
		for seed := int64(1); seed <= int64(cfg.Seeds); seed++ {
			r, _, err := e.run("adam", cfg.AnchorLR, seed, cfg.AnchorHidden, cfg.AnchorSteps)
			if err != nil {
				return nil, err
			}
			res.AnchorTestAccuracy = append(res.AnchorTestAccuracy, r.TestAccuracy)
		}
		rule := verdict.Rule{Quantity: fmt.Sprintf("test accuracy of a 784-%v-10 MLP after %d Adam steps", cfg.AnchorHidden, cfg.AnchorSteps),
			Direction: verdict.AtLeast, Bound: 0.975}
		j, err := rule.Judge(res.AnchorTestAccuracy, 99)
		if err != nil {
			return nil, fmt.Errorf("adan: %w", err)
		}
		res.Claims = append(res.Claims, experiments.Claim{ID: "mnist-anchor",
			Text: "sanity anchor: an MLP trained with Adam reaches about 98% MNIST test accuracy", Judgement: j})
	}

	// 4. Time per step, Adan vs Adam, side by side on each seed.
	ratios := make([]float64, cfg.Seeds)
	for s := range cfg.Seeds {
		var per [2]float64
		for i, name := range []string{"adam", "adan"} {
			if per[i], err = e.timePerStep(name, res.ChosenLR[name], int64(s+1)); err != nil {
				return nil, err
			}
		}
		ratios[s] = per[1] / per[0]
	}
	rule := verdict.Rule{Quantity: "Adan's time per step / Adam's", Direction: verdict.AtMost, Bound: 1.25}
	j, err := rule.Judge(ratios, 7)
	if err != nil {
		return nil, fmt.Errorf("adan: %w", err)
	}
	res.Timing.Claims = []experiments.Claim{{ID: "step-time", Text: "Adan's time per step is close to Adam's (no extra gradient)", Judgement: j}}
	res.Timing.WallSeconds = time.Since(start).Seconds()
	return res, nil
}

// stepsTo returns the first recorded step whose validation loss is at most target, or
// +Inf when none is.
func stepsTo(h *history.History, target float64) float64 {
	for _, r := range h.Records {
		if v, ok := r.Metrics["eval_loss"]; ok && v <= target {
			return float64(r.Step)
		}
	}
	return math.Inf(1)
}

type runner struct {
	ctx              context.Context
	cfg              Config
	backend          compute.Backend
	train, val, test *data.Dataset
	progress         io.Writer
}

// run trains one run and measures it: best and final validation loss, test accuracy.
func (e *runner) run(name string, lr float64, seed int64, hidden []int, steps int) (SeedResult, *history.History, error) {
	stepper, err := experiments.FirstOrder(name, lr)
	if err != nil {
		return SeedResult{}, nil, fmt.Errorf("adan: %w", err)
	}
	mlp := models.MLPConfig{Hidden: hidden, Outputs: 10}
	lossFn := models.Classifier(mlp.Fn())
	store := model.NewStore()
	t0 := time.Now()
	h, err := train.Run(e.backend, store, lossFn, e.train, stepper, train.Config{
		Steps: steps, BatchSize: e.cfg.BatchSize, Seed: seed, LogEvery: e.cfg.EvalEvery,
		Name: fmt.Sprintf("%s lr=%g", name, lr), Eval: e.val, Context: e.ctx,
	})
	if err != nil {
		return SeedResult{}, nil, fmt.Errorf("adan: training %s (lr %g, seed %d): %w", name, lr, seed, err)
	}
	r := SeedResult{Optimizer: name, Seed: seed, LR: lr, BestValLoss: math.Inf(1)}
	for _, rec := range h.Records {
		v := rec.Metrics["eval_loss"]
		if v < r.BestValLoss {
			r.BestValLoss, r.BestStep = v, rec.Step
		}
		r.FinalValLoss = v
	}
	if math.IsNaN(r.FinalValLoss) || r.BestStep == 0 {
		r.FinalValLoss = math.NaN()
	}
	ev, err := train.NewEvaluator(e.backend, store, lossFn, map[string]train.MetricFn{"accuracy": models.Accuracy(mlp.Fn())}, 2000)
	if err != nil {
		return SeedResult{}, nil, fmt.Errorf("adan: %w", err)
	}
	defer ev.Finalize()
	m, err := ev.Evaluate(e.test)
	if err != nil {
		return SeedResult{}, nil, fmt.Errorf("adan: testing %s (lr %g, seed %d): %w", name, lr, seed, err)
	}
	r.TestAccuracy, r.FinalTestLoss = m["accuracy"], m["loss"]
	if e.progress != nil {
		fmt.Fprintf(e.progress, "adan: %-5s lr %-6g seed %d, %4d steps: best val loss %.4f at step %d, test accuracy %.4f (%.1fs)\n",
			name, lr, seed, steps, r.BestValLoss, r.BestStep, r.TestAccuracy, time.Since(t0).Seconds())
	}
	return r, h, nil
}

// timePerStep trains name for TimingSteps steps without evaluation and returns the wall
// time per step after the first recorded step (so compilation is not counted).
func (e *runner) timePerStep(name string, lr float64, seed int64) (float64, error) {
	stepper, err := experiments.FirstOrder(name, lr)
	if err != nil {
		return 0, fmt.Errorf("adan: %w", err)
	}
	mlp := models.MLPConfig{Hidden: e.cfg.Hidden, Outputs: 10}
	store := model.NewStore()
	logEvery := max(e.cfg.TimingSteps/2, 1)
	h, err := train.Run(e.backend, store, models.Classifier(mlp.Fn()), e.train, stepper, train.Config{
		Steps: e.cfg.TimingSteps, BatchSize: e.cfg.BatchSize, Seed: seed, LogEvery: logEvery, Context: e.ctx,
	})
	if err != nil {
		return 0, fmt.Errorf("adan: timing %s (seed %d): %w", name, seed, err)
	}
	recs := h.Records
	if len(recs) < 2 {
		return 0, fmt.Errorf("adan: timing %s: %d records, want 2", name, len(recs))
	}
	first, last := recs[0], recs[len(recs)-1]
	return (last.Time - first.Time) / float64(last.Step-first.Step), nil
}

// Verdicts returns every claim of the result, the timing claims last.
func (r *Result) Verdicts() []experiments.Claim {
	return append(slices.Clone(r.Claims), r.Timing.Claims...)
}
