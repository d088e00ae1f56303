// -*- coding: utf-8 -*-
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
// # Zeroth-order SGD (MeZO): dimension, saddles, forward-only fine-tuning, momentum
//
// Zeroth-order (ZO) SGD estimates the gradient from two loss evaluations per random direction z,
// g ≈ (L(θ+εz) − L(θ−εz))/(2ε)·z, with MeZO's seed trick (z regenerated, never stored). This notebook
// tests four claims collected in `CLAIMS.md` with `experiments/zo` (package `zoexp`) on `mlx/zo`,
// by protocols and verdict rules fixed in code before the run (the package documentation states them):
//
// - **(a) dimension dependence** (Sparse MeZO, AdaZeta): on f(x) = ½|x|² from x = (1, …, 1), the function
//   evaluations to reach 10⁻³ of the start, for d ∈ {10, 100, 1000} and m ∈ {1, 4, 16} directions, each
//   (d, m) at its best learning rate from a grid of powers of two (tuning seed 0). Claim: log-log slope
//   against d in [0.75, 1.25] (rule on |slope − 1| ≤ 0.25, per m).
// - **(b) saddle escape** ("the power of two-point estimators"): f = ½(|x₁..d₋₁|² − x_d²) + ¼|x|⁴, d = 100,
//   20 seeds, m = 1, lr 0.01, budget 20000 evaluations; escaped when f ≤ −0.1 (the minimum is −¼).
//   Exactly at 0 the two losses of every direction are equal in exact arithmetic (f is even), so the
//   claim's runs start at a tiny seeded offset 10⁻⁴·ξ; the run from exactly 0 is reported too.
//   Claim: escape fraction ≥ 0.9 (bootstrap interval of the fraction).
// - **(c) forward-only fine-tuning** (MeZO, ZO2): an MLP 784-64-10 pre-trained with Adam (300 steps) on
//   MNIST digits 0-4 only, then fine-tuned on all ten digits with 4000 forward passes each: MeZO,
//   MeZO + momentum (β = 0.9), sparse MeZO (the 20% smallest weights perturbed) and first-order SGD
//   (one forward pass per step; its backward pass is not counted). Claims: every ZO method improves
//   the pre-trained start's validation loss on every seed; MeZO within 2× of SGD's validation loss at the
//   same forward-pass budget (our reading of "comparable"; the ratio is reported whatever the verdict).
//   Peak memory of one step of each method from XLA's compiled memory statistics.
// - **(d) momentum and oscillation** (ZO-AdaMU): the standard deviation of consecutive differences of the
//   validation loss over the second half of the run, MeZO + momentum over MeZO. Claim: at most 1.
//
// Verdicts: "supports" when the 95% bootstrap interval of the median over seeds (5 evaluation seeds;
// for (b), of the fraction over 20 seeds) lies on the claim's side of the bound, "does not support" when it
// lies wholly on the other side, "inconclusive" otherwise. The size comes from `$GOPTLAB_EXPERIMENT_SIZE`
// (`make reproduce SIZE=...`); by hand it is `default`, a few minutes on two idle CPU cores. The result is
// kept between cells with `mlx/cache`, so only the first cell computes.

// %%
import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/goptlab/goptlab/experiments"
	zoexp "github.com/goptlab/goptlab/experiments/zo"
	"github.com/goptlab/goptlab/mlx/cache"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/plots"
)

// must stops the cell with the error's message.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// result runs the family at the size of $GOPTLAB_EXPERIMENT_SIZE (default: default), or loads
// the result a previous cell computed with the same configuration and code.
func result() *zoexp.Result {
	size := must(experiments.SizeFromEnv(experiments.Default))
	cfg := must(zoexp.DefaultConfig(size))
	res, _, err := cache.LoadOrCompute("zo", cfg, func() (*zoexp.Result, error) {
		return zoexp.Run(context.Background(), cfg, os.Stdout)
	})
	return must(res, err)
}

// finite keeps the finite values.
func finite(xs []float64) []float64 {
	return slices.DeleteFunc(slices.Clone(xs), func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) })
}

//gonb:%%
res := result()
if dir := must(experiments.Publish("zo", res, res.Timing, res.Histories)); dir != "" {
	fmt.Println("result files in", dir)
}
fmt.Printf("size %s on %s, computed in %.0f s\n\n", res.Size, res.Backend, res.Timing.WallSeconds)
if err := experiments.WriteVerdicts(os.Stdout, res.Verdicts()); err != nil {
	panic(err)
}

// %% [markdown]
// ## (a) Evaluations to 10⁻³ of the start against the dimension
//
// Each point is the median over the evaluation seeds; the table gives the tuned rate and, for reference,
// the closed form for this quadratic at the best rate, 2·ln(1000)·(d + m + 1) evaluations.

// %%
//gonb:%%
res := result()
q := res.Quadratic
var curves []*history.History
for _, m := range res.Config.QuadDirections {
	h := history.New(fmt.Sprintf("m=%d", m), "zo", 0)
	for _, d := range res.Config.QuadDims {
		var evals []float64
		lr := 0.0
		for _, r := range q.Runs {
			if r.Dim == d && r.Directions == m {
				evals, lr = append(evals, float64(r.Evals)), r.LR
			}
		}
		med := slices.Sorted(slices.Values(evals))[len(evals)/2]
		fmt.Printf("m=%-3d d=%-5d lr %-10g evaluations per seed %v (theory at the best rate: %.0f)\n",
			m, d, lr, evals, 2*math.Log(1/res.Config.QuadTarget)*float64(d+m+1))
		h.Add(history.Record{Step: d, Loss: med})
	}
	curves = append(curves, h)
}
for _, s := range q.Slopes {
	fmt.Printf("m=%-3d log-log slope per seed %.3f: %s, interval %s\n", s.Directions, s.Values, s.Summary, s.Interval)
}
must(plots.Curves(curves, plots.LogX(), plots.LogY(), plots.XLabel("dimension d"),
	plots.YLabel("evaluations to 1e-3 of the start"), plots.Title("ZO-SGD on ½|x|²: evaluations grow with d"))).Display()

// %% [markdown]
// ## (b) Escaping the saddle at 0

// %%
//gonb:%%
res := result()
s := res.Saddle
fmt.Printf("from exactly 0 (seed 1): largest |x_i| after %d steps %g; with the full budget: escaped %v after %g evaluations\n",
	res.Config.SaddleZeroSteps, s.ZeroStartMaxAbs, s.ZeroStart.Escaped, float64(s.ZeroStart.Evals))
var escapes []float64
for _, r := range s.Runs {
	escapes = append(escapes, float64(r.Evals))
}
fmt.Printf("from 1e-4·ξ: escaped %.0f%% of %d seeds (Wilson 95%% interval %.3f-%.3f); evaluations to escape per seed %v\n",
	100*s.Fraction, len(s.Runs), s.Wilson[0], s.Wilson[1], escapes)
must(plots.Bars([]plots.BarEntry{{Group: "saddle", Series: "evaluations to escape", Values: finite(escapes)}},
	plots.YLabel("evaluations until f <= -0.1"), plots.Title("Two-point ZO-SGD leaves the saddle (seeds that escaped)"))).Display()

// %% [markdown]
// ## (c) Fine-tuning with forward passes only, and memory

// %%
//gonb:%%
res := result()
ft := res.FineTune
fmt.Printf("MLP 784-%v-10, %d parameters; chosen learning rates %v\n", res.Config.Hidden, ft.Params, ft.ChosenLR)
for _, p := range ft.Pretrained {
	fmt.Printf("pre-trained seed %d (digits < %d): validation loss %.4f on all digits, test accuracy %.4f\n",
		p.Seed, res.Config.PretrainClasses, p.ValLoss, p.TestAccuracy)
}
must(plots.Band(res.Histories, plots.Metric("eval_loss"), plots.XAxis(plots.Evals), plots.LogY(),
	plots.XLabel("forward passes"), plots.Title("Validation loss while fine-tuning on all digits (median, range over seeds)"))).Display()
var losses, accs []plots.BarEntry
for _, m := range zoexp.Methods {
	var l, a []float64
	for _, r := range ft.Runs {
		if r.Method == m {
			l, a = append(l, float64(r.FinalValLoss)), append(a, float64(r.TestAccuracy))
		}
	}
	fmt.Printf("%-13s final validation loss per seed %.4f, test accuracy %.4f\n", m, l, a)
	losses = append(losses, plots.BarEntry{Group: "final validation loss", Series: m, Values: finite(l)})
	accs = append(accs, plots.BarEntry{Group: "test accuracy", Series: m, Values: finite(a)})
}
for _, r := range ft.Runs {
	if r.ThirdBudgetValLoss != nil {
		fmt.Printf("sgd seed %d at a third of the budget (equal compute if backward = 2 forward): validation loss %.4f\n",
			r.Seed, float64(*r.ThirdBudgetValLoss))
	}
}
for _, g := range ft.GapToSGD {
	fmt.Printf("%-13s final validation loss / SGD's: %s, interval %s\n", g.Method, g.Summary, g.Interval)
}
must(plots.Grid(2, []*plots.Figure{
	must(plots.Bars(losses, plots.YLabel("validation loss"), plots.Title("After the same forward passes"))),
	must(plots.Bars(accs, plots.YLabel("MNIST test accuracy"), plots.Title("Test accuracy"))),
})).Display()
var mem []plots.BarEntry
for _, m := range ft.Memory {
	fmt.Printf("%-13s peak %8d bytes (inputs %d, outputs %d, temporaries %d), %.2f parameter copies beyond a forward pass (%s)\n",
		m.Method, m.Peak, m.Inputs, m.Outputs, m.Temporary, m.BeyondForwardCopies, m.Source)
	mem = append(mem, plots.BarEntry{Group: "one step", Series: m.Method, Values: []float64{float64(m.Peak) / 1024}})
}
must(plots.Bars(mem, plots.YLabel("peak memory of one step (KiB)"), plots.Title("Memory: parameters, state, batch, outputs, temporaries"))).Display()

// %% [markdown]
// ## (d) Does momentum smooth MeZO's loss curve?

// %%
//gonb:%%
res := result()
var osc []plots.BarEntry
for _, m := range []string{zoexp.MeZO, zoexp.MeZOMomentum} {
	var o []float64
	for _, r := range res.FineTune.Runs {
		if r.Method == m {
			o = append(o, float64(r.Oscillation))
		}
	}
	fmt.Printf("%-13s std of consecutive validation-loss differences (second half) per seed %.4g\n", m, o)
	osc = append(osc, plots.BarEntry{Group: "oscillation", Series: m, Values: finite(o)})
}
must(plots.Bars(osc, plots.YLabel("std of consecutive differences"), plots.Title("Validation-loss oscillation, second half of the run"))).Display()

// %% [markdown]
// **What this run shows** (default size, 5 evaluation seeds; the numbers are those printed above, and the
// result is deterministic on a given backend).
//
// - **(a) supports**, for every m: the evaluations to 10⁻³ of the start grow about linearly in d. The per-seed
//   log-log slopes have medians 0.978 (m = 1; 95% interval 0.940-1.012), 0.996 (m = 4; 0.909-1.024) and
//   0.868 (m = 16; 0.811-0.897), so |slope − 1| stays under 0.25. At d = 1000 every m needs 13,360-14,280
//   evaluations, close to the closed form 2·ln(1000)·(d + m + 1) ≈ 13,850-14,050, and the tuned rate falls as
//   m/d (2⁻¹⁰ for m = 1). More directions per step buy nothing per evaluation; m = 16 flattens the slope only
//   because at d = 10 its m term dominates.
// - **(b) supports**: all 20 seeds escape the saddle (the bootstrap interval of the fraction is [1, 1]; the
//   Wilson 95% interval, 0.839-1, is wider, as 20 seeds allow), after a median 1892 evaluations (1650-2502) of
//   the 20000 allowed, from an offset of norm about 10⁻³. From exactly 0 the estimator never moves: after 200
//   steps every coordinate is still exactly 0 and no escape happens within 20000 evaluations, because f is even
//   and the two losses of each direction come out bit for bit equal.
// - **(c) supports the forward-only claim, not the "comparable" one.** Every ZO method improves the pre-trained
//   start on every seed: the validation loss on all ten digits falls from 4.76-5.30 to medians of 0.141 of it
//   (MeZO), 0.130 (with momentum) and 0.106 (sparse MeZO), and test accuracy rises from 0.50 to 0.70-0.74,
//   0.71-0.76 and 0.77-0.81. At the same 4000 forward passes SGD reaches 0.071-0.085 and 0.973-0.976 test
//   accuracy: MeZO's validation loss is 9.18× SGD's (95% interval 7.92-9.99), far from the 2× the rule allows,
//   so **mezo-vs-sgd does not support**. Counting SGD's backward pass as two forward passes (SGD's loss at a
//   third of the budget, 0.089-0.108) still leaves a factor of about 7. Sparse MeZO narrows the gap to 6.5×,
//   momentum to 8.8×. SGD's and sparse MeZO's best rates (0.3 and 0.01) are at the top of their grids.
// - **Memory** (measured from XLA's compiled statistics, one step with a batch of 128): a forward pass needs
//   643,403 bytes (parameters 199 KiB, batch 392 KiB, temporaries 37 KiB); a MeZO step 847,258 bytes, one
//   parameter copy more (1.00; sparse MeZO the same: its mask is computed, not stored); an SGD step 884,941
//   bytes (1.19 copies); MeZO with momentum 1,222,144 bytes (2.84 copies: the buffer in and out). For this
//   small MLP the activations SGD keeps for its backward pass are small next to the parameters, so MeZO saves
//   only 4% over SGD here; the saving grows with batch × width × depth.
// - **(d) inconclusive**: momentum does not measurably change the oscillation. The ratio of the standard
//   deviations of consecutive validation-loss differences, with momentum over without, has median 1.18 (95%
//   interval 0.69-1.47; 0.012-0.030 with momentum against 0.016-0.020 without). At its tuned rate (3·10⁻⁴ with
//   β = 0.9, an effective step of 3·10⁻³, MeZO's own tuned rate) momentum averages directions but moves as far.
