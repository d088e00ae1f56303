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
// # Plots for optimizer research
//
// The `plots` package turns training histories (`history.History`, what our training loop
// records) into the figures optimizer research looks at most. Every helper returns a
// `*plots.Figure`: `Display()` shows it inline, and `Save("fig.pdf")` writes SVG, PNG or PDF from
// any Go program. `Display()` sends the figure as SVG (sharp at any zoom), as a PNG at twice the
// screen resolution and as a line of text, in one output: JupyterLab shows the SVG in a notebook
// you ran, and the PNG in one someone shared with you (untrusted, where it does not show SVG);
// HTML exports show the SVG, PDF exports the PNG.
//
// Every figure uses the colour-blind-safe Okabe-Ito palette, and each optimizer keeps the same
// colour in every plot of the notebook. This notebook uses seeded synthetic histories
// (`history.Synthetic`), so it needs no training and gives the same pictures every time.

// %%
import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/plots"
	"github.com/goptlab/goptlab/plots/live"
)

// runs returns one synthetic run per seed of an optimizer whose loss decays at rate per step.
func runs(name, optimizer string, rate float64, seeds int) []*history.History {
	var hs []*history.History
	for s := 1; s <= seeds; s++ {
		h, err := history.Synthetic(history.SyntheticConfig{
			Name: name, Optimizer: optimizer, Seed: int64(s), Steps: 600, LogEvery: 5,
			Loss0: 2.3, Floor: 0.04, Rate: rate * (1 + 0.1*float64(s-3)), Noise: 0.06,
			LR: 1e-3, SecondsPerStep: 0.012, EvalsPerStep: 1,
		})
		if err != nil {
			panic(err)
		}
		hs = append(hs, h)
	}
	return hs
}

// show displays a figure, and stops the cell with the error if there is one.
func show(fig *plots.Figure, err error) {
	if err != nil {
		panic(err)
	}
	if err := fig.Display(); err != nil {
		panic(err)
	}
}

var (
	adam = runs("adam", "adam", 0.012, 5)
	sgd  = runs("sgd", "sgd", 0.005, 5)
	lion = runs("lion", "lion", 0.008, 5)
)

// %% [markdown]
// ## Loss curves
//
// `plots.Curves` draws one line per run. `plots.LogY()` puts the loss on a log axis, where
// exponential decay is a straight line; the legend sits right of the data, so it never hides a curve.

// %%
//gonb:%%
show(plots.Curves([]*history.History{adam[0], sgd[0], lion[0]}, plots.LogY(), plots.Title("Training loss, seed 1")))

// %% [markdown]
// The x axis can be steps (the default), wall-clock time or loss evaluations: an optimizer that
// needs fewer steps but more time per step shows it here.

// %%
//gonb:%%
show(plots.Curves([]*history.History{adam[0], sgd[0], lion[0]}, plots.LogY(), plots.XAxis(plots.WallTime)))

// %% [markdown]
// Any logged metric can be plotted instead of the loss with `plots.Metric`. Runs of the same
// optimizer with different labels (here two learning rates) share its colour and differ in dash pattern;
// runs with the same label (seeds) share one legend entry.

// %%
//gonb:%%
fast := runs("adam lr=3e-3", "adam", 0.02, 2)
show(plots.Curves(append(fast, adam[0]), plots.Metric("accuracy"), plots.Title("Accuracy")))

// %% [markdown]
// ## Median and spread over seeds
//
// `plots.Band` groups runs by label and draws the median over seeds on a shaded band from the
// minimum to the maximum. `plots.SpreadBand(plots.Quartiles)` shades the interquartile range instead.

// %%
//gonb:%%
all := append(append(append([]*history.History{}, adam...), sgd...), lion...)
show(plots.Band(all, plots.LogY(), plots.Title("5 seeds, min–max")))
show(plots.Band(all, plots.LogY(), plots.SpreadBand(plots.Quartiles), plots.Title("5 seeds, quartiles")))

// %% [markdown]
// ## Learning-rate sweeps
//
// `plots.LRSweep` plots the final loss against the learning rate (read from the `lr` metric) on
// a log axis: the median over seeds with min–max error bars. Runs that end in NaN count as
// diverged: a learning rate whose median diverged gets a cross on the top edge.

// %%
//gonb:%%
var sweep []*history.History
for _, opt := range []struct {
	name       string
	best, blow float64
}{{"adam", 1e-3, 2e-2}, {"sgd", 3e-2, 0.5}} {
	for _, lr := range []float64{1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1} {
		for seed := 1; seed <= 3; seed++ {
			d := math.Log10(lr / opt.best)
			final := 0.05 + 0.15*d*d + 0.01*float64(seed)
			if lr > opt.blow {
				final = math.NaN()
			}
			h := history.New(opt.name, opt.name, int64(seed))
			h.Add(history.Record{Step: 1, Loss: 2.3, Metrics: map[string]float64{"lr": lr}})
			h.Add(history.Record{Step: 1000, Loss: final})
			sweep = append(sweep, h)
		}
	}
}
show(plots.LRSweep(sweep, plots.LogY(), plots.Title("Final loss after 1000 steps")))

// %% [markdown]
// ## Benchmark tables as bar charts
//
// `plots.Bars` draws a grouped bar chart with ±1 standard deviation error bars; `plots.FinalBars`
// builds its entries from the final losses of histories, one bar per optimizer.

// %%
//gonb:%%
var entries []plots.BarEntry
for i, bench := range []string{"MNIST MLP", "CIFAR CNN", "Rosenbrock"} {
	scale := []float64{1, 4, 0.3}[i]
	for _, hs := range [][]*history.History{adam, sgd, lion} {
		es, err := plots.FinalBars(bench, hs, "loss")
		if err != nil {
			panic(err)
		}
		for j := range es[0].Values {
			es[0].Values[j] *= scale
		}
		entries = append(entries, es...)
	}
}
show(plots.Bars(entries, plots.YLabel("final loss"), plots.Title("Final loss per benchmark (5 seeds)")))

// %% [markdown]
// ## Histograms
//
// `plots.Histogram` overlays samples on shared bins. With `plots.LogX()` the bins are even in
// log10 of the value, the right view of quantities spread over decades such as Hessian-diagonal
// estimates; values it cannot show (≤ 0 on a log axis, NaN) are counted in the legend, never dropped silently.

// %%
//gonb:%%
rng := rand.New(rand.NewPCG(1, 2))
var w1, w2, diag []float64
for range 5000 {
	w1 = append(w1, 0.1*rng.NormFloat64())
	w2 = append(w2, 0.04*rng.NormFloat64()+0.05)
	diag = append(diag, math.Exp(2*rng.NormFloat64()-3))
}
diag = append(diag, 0, -1e-4, math.NaN())
show(plots.Histogram([]plots.Sample{{Name: "layer 1", Values: w1}, {Name: "layer 2", Values: w2}},
	plots.XLabel("weight"), plots.Title("Weights after training")))
show(plots.Histogram([]plots.Sample{{Name: "hessian diagonal", Values: diag}}, plots.LogX(),
	plots.XLabel("Hutchinson estimate of H_ii"), plots.Title("Hessian diagonal")))

// %% [markdown]
// ## Loss surfaces with trajectories
//
// `plots.Surface` draws a function of two parameters as a heat map with contour lines (log-scaled
// colours by default, which shows Rosenbrock's curved valley) and draws optimizer trajectories over it:
// an open circle at the start, a filled one at the end. `plots.Minimum` marks the minimiser.

// %%
// descend runs gradient descent with momentum beta from (x, y) for steps steps.
func descend(name, optimizer string, grad func(x, y float64) (float64, float64), x, y, lr, beta float64, steps int) plots.Trajectory {
	tr := plots.Trajectory{Name: name, Optimizer: optimizer}
	vx, vy := 0.0, 0.0
	for range steps {
		tr.X, tr.Y = append(tr.X, x), append(tr.Y, y)
		gx, gy := grad(x, y)
		vx, vy = beta*vx+gx, beta*vy+gy
		x, y = x-lr*vx, y-lr*vy
	}
	return append2(tr, x, y)
}

func append2(tr plots.Trajectory, x, y float64) plots.Trajectory {
	tr.X, tr.Y = append(tr.X, x), append(tr.Y, y)
	return tr
}

func rosenbrockGrad(x, y float64) (float64, float64) {
	return -2*(1-x) - 400*x*(y-x*x), 200 * (y - x*x)
}

//gonb:%%
trajs := []plots.Trajectory{
	descend("gd lr=8e-4", "sgd", rosenbrockGrad, -1.5, 2, 8e-4, 0, 3000),
	descend("momentum 0.9", "momentum", rosenbrockGrad, 0.3, 2.6, 1e-4, 0.9, 3000),
}
show(plots.Surface(plots.Rosenbrock, plots.Range{Min: -2, Max: 2}, plots.Range{Min: -1, Max: 3}, trajs,
	plots.Minimum(1, 1), plots.Title("Rosenbrock")))

// %% [markdown]
// On an ill-conditioned quadratic (condition number 10), gradient descent zig-zags across the
// valley, and with a learning rate above 2/λ_max = 0.2 it leaves the plot, which the legend says.
// `plots.LogColor(false)` colours f itself.

// %%
//gonb:%%
quadGrad := func(x, y float64) (float64, float64) { return x, 10 * y }
trajs := []plots.Trajectory{
	descend("gd lr=0.18", "sgd", quadGrad, -4, 1.5, 0.18, 0, 40),
	descend("gd lr=0.21", "adam", quadGrad, -4, 1.5, 0.21, 0, 40),
}
show(plots.Surface(plots.Quadratic(1, 10), plots.Range{Min: -5, Max: 5}, plots.Range{Min: -2, Max: 2}, trajs,
	plots.LogColor(false), plots.Levels(8), plots.Minimum(0, 0), plots.Title("(x² + 10y²)/2")))

// %% [markdown]
// ## Grids of plots
//
// `plots.Grid` lays figures out in columns, each keeping its own axes and legend.

// %%
//gonb:%%
three := []*history.History{adam[0], sgd[0], lion[0]}
loss, err := plots.Curves(three, plots.LogY(), plots.Title("loss"))
if err != nil {
	panic(err)
}
acc, err := plots.Curves(three, plots.Metric("accuracy"), plots.Title("accuracy"))
if err != nil {
	panic(err)
}
evals, err := plots.Curves(three, plots.LogY(), plots.XAxis(plots.Evals), plots.Title("loss per evaluation"))
if err != nil {
	panic(err)
}
lr, err := plots.Curves(three[:1], plots.Metric("lr"), plots.Title("cosine schedule"))
if err != nil {
	panic(err)
}
show(plots.Grid(2, []*plots.Figure{loss, acc, evals, lr}, plots.Title("Adam, SGD and Lion")))

// %% [markdown]
// ## PNG and files
//
// `DisplayPNG` shows the same figure as a PNG only (with its text description), and `Save` writes
// SVG, PNG or PDF according to the file extension.

// %%
//gonb:%%
fig, err := plots.Curves([]*history.History{adam[0], sgd[0]}, plots.LogY(), plots.Title("As PNG"))
if err != nil {
	panic(err)
}
if err := fig.DisplayPNG(); err != nil {
	panic(err)
}
dir, err := os.MkdirTemp("", "plots")
if err != nil {
	panic(err)
}
for _, name := range []string{"loss.svg", "loss.png", "loss.pdf"} {
	if err := fig.Save(filepath.Join(dir, name)); err != nil {
		panic(err)
	}
}
fmt.Println("saved loss.svg, loss.png and loss.pdf")

// %% [markdown]
// ## Bad input is visible, not silent
//
// NaN or ±Inf losses are gaps in the line; a run that ends non-finite gets a cross at its last
// finite point and "(diverged)" in the legend. Values a plot cannot show are an error that says why,
// such as a negative value on a log axis.

// %%
//gonb:%%
h := history.New("unstable", "sgd", 0)
for s := 1; s <= 300; s++ {
	loss := 2 / math.Sqrt(float64(s))
	if s >= 100 && s <= 115 {
		loss = math.NaN()
	}
	if s > 220 {
		loss = math.Inf(1)
	}
	h.Add(history.Record{Step: s, Time: 0.01 * float64(s), Evals: int64(s), Loss: loss})
}
show(plots.Curves([]*history.History{h}, plots.LogY(), plots.Title("Gaps and divergence")))

neg := history.New("negative", "adam", 0)
neg.Add(history.Record{Step: 1, Loss: -0.5})
_, err := plots.Curves([]*history.History{neg}, plots.LogY())
fmt.Println("error:", err)

// %% [markdown]
// ## Saving and loading histories
//
// Histories save to CSV or JSON by file extension (`history.Save`, `history.Load`), with
// `WriteCSV`/`ReadCSV` and `WriteJSON`/`ReadJSON` for any `io.Writer`/`io.Reader`. NaN and
// infinities survive the round trip, and malformed files are rejected with an error.

// %%
//gonb:%%
dir, err := os.MkdirTemp("", "histories")
if err != nil {
	panic(err)
}
for _, name := range []string{"runs.csv", "runs.json"} {
	path := filepath.Join(dir, name)
	if err := history.Save(path, adam[0], sgd[0]); err != nil {
		panic(err)
	}
	back, err := history.Load(path)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %d runs, %d records in the first\n", name, len(back), back[0].Len())
}

// %% [markdown]
// ## Live training view
//
// `live.New` gives a callback for the training loop: `view.Update(h)` after each logged step shows a
// progress bar (step, steps/s, ETA, latest metrics), refreshed at most every 200 ms, and redraws the
// loss plot in place every `live.Every(n)` updates, so the output does not grow. Outside a notebook it
// writes one terminal line, rewritten with a carriage return. Here a simulated loop replays a run.

// %%
//gonb:%%
view := live.New(600, live.Every(40), live.PlotOptions(plots.LogY()), live.Compare(sgd[0]))
h := history.New("adam (live)", "adam", 1)
for _, r := range adam[0].Records {
	h.Add(r)
	if err := view.Update(h); err != nil {
		panic(err)
	}
}
if err := view.Close(); err != nil {
	panic(err)
}

// %% [markdown]
// `live.NewRuns` follows several runs in one table (a row per run: step, loss, elapsed time, ETA and
// state) and one plot with a line per run. `Start` adds a run, shown as "compiling… 3 s" until its first
// step arrives: with `train.Run`, call it just before the run and pass `run.Update` as `Config.OnStep`,
// then `run.Finish(err)` with what `train.Run` returned. Here each simulated run waits a second
// before its first step, as compilation would.

// %%
//gonb:%%
view := live.NewRuns(live.Every(40), live.PlotOptions(plots.LogY()))
for _, past := range [][]*history.History{adam, sgd, lion} {
	run := view.Start(past[0].Name, 600)
	time.Sleep(time.Second) // "compiling"
	h := history.New(past[0].Name, past[0].Optimizer, 1)
	for _, r := range past[0].Records {
		h.Add(r)
		if err := run.Update(h); err != nil {
			panic(err)
		}
	}
	if err := run.Finish(nil); err != nil { // train.Run's error, if any
		panic(err)
	}
}
if err := view.Close(); err != nil {
	panic(err)
}
