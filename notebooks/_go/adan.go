// ---
// jupyter:
//   jupytext:
//     text_representation:
//       extension: .go
//       format_name: percent
//       format_version: '1.3'
//       jupytext_version: 1.19.6
//   kernelspec:
//     display_name: Go (GoMLX)
//     language: go
//     name: goptlab
// ---

// %% [markdown]
// # Adan on MNIST: half the steps of Adam, AdamW and SGD?
//
// Adan (Xie et al., [arXiv:2208.06677](https://arxiv.org/abs/2208.06677)) claims it "can use half of the
// training cost (epochs) of SoTA optimizers to achieve higher or comparable performance", and that it
// "avoids the extra overhead of computing gradient at the extrapolation point". This notebook tests both
// on MNIST with `experiments/adan`, by a protocol and verdict rules fixed in code before the run:
//
// - a ReLU MLP on flat 784-pixel images; 50000 training images, 10000 held out from MNIST's training
//   split for validation, and MNIST's 10000 test images for test accuracy;
// - each optimizer (Adan; SGD with Nesterov momentum 0.9, Adam, AdamW as baselines) gets its best
//   learning rate of a small grid, chosen on a tuning seed (0) that is not among the evaluation seeds;
// - on each evaluation seed (1-5: initial weights and batch order), every optimizer trains for the same
//   number of steps; for each baseline B, the *target* is B's best validation loss, and the measured value
//   is Adan's steps to reach it divided by B's steps to reach it (the claim: at most 0.5);
// - Adan's time per step over Adam's, measured side by side on each seed (the claim: at most 1.25);
// - a sanity anchor: a 784-512-512-10 MLP trained with Adam must reach about 98% test accuracy.
//
// Each verdict is "supports" when the 95% bootstrap interval of the median over seeds lies on the claim's
// side of the bound, "does not support" when it lies wholly on the other side, "inconclusive" otherwise.
// The size comes from `$GOPTLAB_EXPERIMENT_SIZE` (`make reproduce SIZE=...`); by hand it is `default`,
// which takes a few minutes on two CPU cores.

// %%
import (
	"context"
	"fmt"
	"math"
	"os"

	"github.com/goptlab/goptlab/experiments"
	"github.com/goptlab/goptlab/experiments/adan"
	"github.com/goptlab/goptlab/plots"
)

// must stops the cell with the error's message.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

//gonb:%%
size := must(experiments.SizeFromEnv(experiments.Default))
cfg := must(adan.DefaultConfig(size))
fmt.Printf("size %s: MLP 784-%v-10, %d steps of batch %d, %d seeds, learning-rate grids %v\n",
	size, cfg.Hidden, cfg.Steps, cfg.BatchSize, cfg.Seeds, cfg.LRGrid)
res := must(adan.Run(context.Background(), cfg, os.Stdout))
if dir := must(experiments.Publish("adan", res, res.Timing, res.Histories)); dir != "" {
	fmt.Println("result files in", dir)
}
fmt.Println("\nchosen learning rates:", res.ChosenLR)
fmt.Println()
if err := experiments.WriteVerdicts(os.Stdout, res.Verdicts()); err != nil {
	panic(err)
}

// Validation loss of every evaluation run: median over seeds, band from min to max.
must(plots.Band(res.Histories, plots.Metric("eval_loss"), plots.LogY(),
	plots.Title("Validation loss, median and range over seeds"))).Display()

// Steps to each baseline's best validation loss: the baseline's own, and Adan's.
var entries []plots.BarEntry
never := 0
for _, b := range adan.Baselines {
	var own, adanSteps []float64
	for _, t := range res.Targets {
		if t.Baseline != b {
			continue
		}
		own = append(own, float64(t.BaselineSteps))
		if s := float64(t.AdanSteps); !math.IsInf(s, 1) {
			adanSteps = append(adanSteps, s)
		} else {
			never++
		}
	}
	entries = append(entries, plots.BarEntry{Group: b + "'s best", Series: b, Values: own})
	if len(adanSteps) > 0 {
		entries = append(entries, plots.BarEntry{Group: b + "'s best", Series: "adan", Values: adanSteps})
	}
}
must(plots.Bars(entries, plots.YLabel("steps to reach it"),
	plots.Title(fmt.Sprintf("Steps to each baseline's best validation loss (Adan never reached it in %d runs)", never)))).Display()

var acc []plots.BarEntry
for _, name := range append([]string{"adan"}, adan.Baselines...) {
	var a []float64
	for _, s := range res.Seeds {
		if s.Optimizer == name {
			a = append(a, s.TestAccuracy)
		}
	}
	acc = append(acc, plots.BarEntry{Group: "test accuracy", Series: name, Values: a})
	fmt.Printf("%-6s lr %-6g test accuracy per seed: %.4f\n", name, res.ChosenLR[name], a)
}
must(plots.Bars(acc, plots.YLabel("MNIST test accuracy"), plots.Title("Test accuracy after the same number of steps"))).Display()
fmt.Printf("sanity anchor (Adam, 784-%v-10, %d steps), test accuracy per seed: %.4f\n", cfg.AnchorHidden, cfg.AnchorSteps, res.AnchorTestAccuracy)

// %% [markdown]
// **What this run shows** (default size, XLA CPU; the numbers above are seeded, and the same on every run on
// one backend, except the step times). Adan does **not** reach the baselines' best validation losses in half
// their steps on this MNIST MLP: at the time of writing its median ratio was about 0.9 of SGD's steps, 0.9 of
// Adam's and 1.0 of AdamW's, with every bootstrap interval above the claimed 0.5 (between about 0.6 and 1.1), so
// the three verdicts are "does not support". Adan does reach the lowest validation losses of the four (about
// 0.091-0.097, against 0.097-0.113 for the baselines) and the highest median test accuracy (about 97.0%, against
// 96.5-96.9%) at their best learning rates: the claim's direction holds here, not its factor. The sanity anchor
// holds: the 784-512-512-10 MLP trained with Adam for 2000 steps (about five epochs) reaches about 97.7-98.1% test
// accuracy (median about 97.9%), as the literature reports for its size. The step-time ratio is measured on the
// machine that runs the notebook: on a 2-core machine shared with other jobs its interval is wide and the verdict
// inconclusive; `go run ./cmd/bench-optim` measures step costs on a larger MLP with interleaved runs. One small MLP
// and 800 steps illustrate the claim; they do not settle it (`make reproduce SIZE=paper` runs a 784-512-512-10
// MLP for 6000 steps). If a verdict in the table above differs from this text, the table is the result.
