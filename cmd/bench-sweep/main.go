// Command bench-sweep measures what batching a sweep's runs into one graph (package
// mlx/sweep) saves: a 5-seed x 4-learning-rate sweep of Adam (or -optimizer: sgd, adan,
// adahessian, whose random probes each batched run draws from its own state) on the two-spirals MLP of
// notebooks/optimizers.ipynb (512 points, 2-32-32-2 tanh, batch 64), trained three ways in
// the same process, side by side: one train.Run per configuration (each compiling its
// graphs), one after the other in one train.Session (sweep.Options.Sequential: graphs
// compiled once and reused), and batched (all runs, or -maxbatch at a time, in one
// compiled graph). It prints each way's wall time, the part spent executing steps (the
// histories' time) and the rest (compilation, initialisation, batches), the speed-ups, and
// checks that the ways gave the same losses.
//
// Usage:
//
//	go run ./cmd/bench-sweep [-optimizer adam] [-steps 300] [-seeds 5] [-maxbatch 0]
//
// It runs on the backend mlx.Backend chooses (XLA CPU here).
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/sweep"
	"github.com/goptlab/goptlab/mlx/train"
)

var (
	flagSteps    = flag.Int("steps", 300, "steps of each run")
	flagSeeds    = flag.Int("seeds", 5, "seeds per learning rate")
	flagMaxBatch = flag.Int("maxbatch", 0, "most runs per batched graph (0: all)")
	flagOpt      = flag.String("optimizer", "adam", "optimizer of the sweep: sgd, adam, adan or adahessian")
)

// lrGrid is each optimizer's grid of learning rates (those of notebooks/optimizers.ipynb).
var lrGrid = map[string][]float64{
	"sgd":        {0.01, 0.03, 0.1, 0.3},
	"adam":       {0.003, 0.01, 0.03, 0.1},
	"adan":       {0.03, 0.1, 0.3, 1},
	"adahessian": {0.03, 0.1, 0.3, 1},
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-sweep:", err)
		os.Exit(1)
	}
}

func run() error {
	backend, err := mlx.Backend()
	if err != nil {
		return err
	}
	ds, err := data.TwoSpirals(512, 1.5, 0.05, 1)
	if err != nil {
		return err
	}
	lossFn := models.Classifier(models.MLPConfig{Hidden: []int{32, 32}, Outputs: 2, Activation: "tanh"}.Fn())
	var seeds []int64
	for s := range *flagSeeds {
		seeds = append(seeds, int64(s+1))
	}
	grid, ok := lrGrid[*flagOpt]
	if !ok {
		return fmt.Errorf("-optimizer %q: want sgd, adam, adan or adahessian", *flagOpt)
	}
	runs := sweep.Grid(*flagOpt, map[string][]float64{"lr": grid}, seeds...)
	fmt.Printf("sweep: %s, %d learning rates x %d seeds = %d runs of %d steps (batch 64, two spirals, 2-32-32-2 tanh MLP)\n",
		*flagOpt, len(grid), len(seeds), len(runs), *flagSteps)

	// One train.Run per configuration, each on a fresh Store: every run compiles its graphs.
	alone := func() ([]*history.History, time.Duration, error) {
		start := time.Now()
		var hs []*history.History
		for _, r := range runs {
			stepper, err := sweep.Stepper(r.Optimizer, r.Params)
			if err != nil {
				return nil, 0, err
			}
			store := model.NewStore()
			h, err := train.Run(backend, store, lossFn, ds, stepper, train.Config{
				Steps: *flagSteps, BatchSize: 64, LogEvery: 10, Seed: r.Seed, Name: r.Label()})
			store.Finalize()
			if err != nil {
				return nil, 0, err
			}
			hs = append(hs, h)
		}
		return hs, time.Since(start), nil
	}
	measure := func(sequential bool) ([]*history.History, time.Duration, error) {
		start := time.Now()
		hs, err := sweep.Train(backend, lossFn, ds, runs, sweep.Options{
			Steps: *flagSteps, BatchSize: 64, LogEvery: 10, Sequential: sequential, MaxBatch: *flagMaxBatch})
		return hs, time.Since(start), err
	}
	// One train.Run per configuration first: any one-time start-up of the backend is
	// charged to it, not hidden.
	aloneH, aloneT, err := alone()
	if err != nil {
		return err
	}
	seqH, seqT, err := measure(true)
	if err != nil {
		return err
	}
	batH, batT, err := measure(false)
	if err != nil {
		return err
	}
	stepsTime := func(hs []*history.History) float64 {
		var total float64
		for _, h := range hs {
			last, _ := h.Last()
			total += last.Time
		}
		return total
	}
	// The runs of a batch share one clock: count it once per batch.
	size := *flagMaxBatch
	if size == 0 {
		size = len(runs)
	}
	var batSteps float64
	for i := 0; i < len(batH); i += size {
		last, _ := batH[i].Last()
		batSteps += last.Time
	}
	row := func(what string, wall time.Duration, steps float64) {
		fmt.Printf("%-44s %8.2f %10.2f %10.2f %9.1fx\n", what, wall.Seconds(), steps, wall.Seconds()-steps, aloneT.Seconds()/wall.Seconds())
	}
	fmt.Printf("%-44s %8s %10s %10s %10s\n", "", "wall s", "steps s", "other s", "speed-up")
	row("one train.Run per configuration", aloneT, stepsTime(aloneH))
	row("sequential, one train.Session (Sequential)", seqT, stepsTime(seqH))
	row(fmt.Sprintf("batched (%d runs per graph)", size), batT, batSteps)

	// Histories must be equal: bit for bit between train.Run and the Session; within
	// float tolerance for the batched runs on the backends whose fusion differs.
	for i := range runs {
		if len(aloneH[i].Records) != len(seqH[i].Records) {
			return fmt.Errorf("run %d: %d records alone, %d in the Session", i, aloneH[i].Len(), seqH[i].Len())
		}
		for j, r := range aloneH[i].Records {
			if math.Float64bits(r.Loss) != math.Float64bits(seqH[i].Records[j].Loss) {
				return fmt.Errorf("run %d step %d: loss %v alone, %v in the Session", i, r.Step, r.Loss, seqH[i].Records[j].Loss)
			}
		}
	}
	fmt.Println("train.Run and the Session: the same losses, bit for bit")
	maxDiff := 0.0
	for i := range runs {
		if aloneH[i].Len() != batH[i].Len() {
			return fmt.Errorf("run %d: %d records alone, %d batched", i, aloneH[i].Len(), batH[i].Len())
		}
		for j, r := range aloneH[i].Records {
			maxDiff = max(maxDiff, math.Abs(r.Loss-batH[i].Records[j].Loss)/max(math.Abs(r.Loss), 1e-30))
		}
	}
	fmt.Printf("largest relative difference between a batched loss and the same run alone: %.3g\n", maxDiff)
	fmt.Print(sweep.Summarize(batH, 0.05))
	return nil
}
