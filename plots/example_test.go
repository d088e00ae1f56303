package plots_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot/vg"

	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/plots"
)

// run returns a seeded synthetic run, for the examples.
func run(name, optimizer string, seed int64, rate float64) *history.History {
	h, err := history.Synthetic(history.SyntheticConfig{
		Name: name, Optimizer: optimizer, Seed: seed, Steps: 300, LogEvery: 10,
		Loss0: 2.3, Floor: 0.05, Rate: rate, Noise: 0.05, LR: 1e-3,
	})
	if err != nil {
		panic(err)
	}
	return h
}

func ExampleCurves() {
	hs := []*history.History{run("adam", "adam", 1, 0.02), run("sgd", "sgd", 1, 0.008)}
	fig, err := plots.Curves(hs, plots.LogY(), plots.Title("Training loss"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// In a notebook: fig.Display(). In a program: save it.
	dir, _ := os.MkdirTemp("", "plots")
	defer os.RemoveAll(dir)
	if err := fig.Save(filepath.Join(dir, "loss.svg")); err != nil {
		fmt.Println(err)
	}
	fmt.Println(fig.Labels())
	// Output:
	// [adam sgd]
}

func ExampleBand() {
	var hs []*history.History
	for seed := int64(1); seed <= 5; seed++ {
		hs = append(hs, run("adam", "adam", seed, 0.02), run("sgd", "sgd", seed, 0.008))
	}
	fig, err := plots.Band(hs, plots.LogY(), plots.SpreadBand(plots.Quartiles))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fig.Labels())
	// Output:
	// [adam (n=5) sgd (n=5) line: median, band: quartiles]
}

func ExampleLRSweep() {
	var hs []*history.History
	for _, lr := range []float64{1e-4, 1e-3, 1e-2, 1e-1} {
		h := history.New("adam", "adam", 0)
		h.Add(history.Record{Step: 1, Loss: 2.3, Metrics: map[string]float64{"lr": lr}})
		final := 0.1 + math.Pow(math.Log10(lr)+3, 2)/10
		if lr == 1e-1 {
			final = math.NaN() // diverged
		}
		h.Add(history.Record{Step: 100, Loss: final})
		hs = append(hs, h)
	}
	fig, err := plots.LRSweep(hs, plots.LogY())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fig.Labels())
	// Output:
	// [adam (1 of 4 runs diverged) median diverged]
}

func ExampleBars() {
	fig, err := plots.Bars([]plots.BarEntry{
		{Group: "MLP", Series: "adam", Values: []float64{0.10, 0.12, 0.11}},
		{Group: "MLP", Series: "sgd", Values: []float64{0.15, 0.17, 0.16}},
		{Group: "CNN", Series: "adam", Values: []float64{0.50, 0.55, 0.52}},
		{Group: "CNN", Series: "sgd", Values: []float64{0.61, 0.66, 0.60}},
	}, plots.YLabel("final loss"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fig.Labels())
	// Output:
	// [adam (mean ± sd, n=3) sgd (mean ± sd, n=3)]
}

func ExampleHistogram() {
	values := []float64{1e-4, 3e-3, 0.02, 0.02, 0.5, 7, 0, math.NaN()}
	fig, err := plots.Histogram([]plots.Sample{{Name: "hessian diagonal", Values: values}},
		plots.LogX(), plots.Bins(10), plots.XLabel("|H_ii|"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fig.Labels())
	// Output:
	// [hessian diagonal (n=6; 1 NaN/Inf, 1 ≤ 0 not shown)]
}

func ExampleSurface() {
	// Gradient descent on Rosenbrock from (-1.5, 2).
	x, y := -1.5, 2.0
	tr := plots.Trajectory{Name: "gd lr=1e-3", Optimizer: "sgd"}
	for range 500 {
		tr.X, tr.Y = append(tr.X, x), append(tr.Y, y)
		gx, gy := -2*(1-x)-400*x*(y-x*x), 200*(y-x*x)
		x, y = x-1e-3*gx, y-1e-3*gy
	}
	fig, err := plots.Surface(plots.Rosenbrock, plots.Range{Min: -2, Max: 2}, plots.Range{Min: -1, Max: 3},
		[]plots.Trajectory{tr}, plots.Minimum(1, 1))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fig.Labels())
	// Output:
	// [gd lr=1e-3 (499 steps) minimum (1, 1)]
}

func ExampleGrid() {
	hs := []*history.History{run("adam", "adam", 1, 0.02), run("sgd", "sgd", 1, 0.008)}
	loss, err := plots.Curves(hs, plots.LogY(), plots.Title("loss"))
	if err != nil {
		fmt.Println(err)
		return
	}
	acc, err := plots.Curves(hs, plots.Metric("accuracy"), plots.XAxis(plots.WallTime), plots.Title("accuracy"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fig, err := plots.Grid(2, []*plots.Figure{loss, acc})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d plots, %.1f x %.1f inches\n", len(fig.Plots()), fig.Width/vg.Inch, fig.Height/vg.Inch)
	// Output:
	// 2 plots, 9.6 x 3.2 inches
}
