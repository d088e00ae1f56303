// Command bench-localsgd measures local SGD's in-graph simulation of K workers
// (package mlx/localsgd) on an MLP of about one million parameters: the time of one
// step of K workers in one graph against K single-worker steps, measured in the same
// run, and the floats each round would send. Where the backend has at least two
// devices (XLA CPU has 4), it also times one round (H steps) of K' = min(K, devices)
// workers run one per device (localsgd.Distributed: an SPMD program per local step and
// an all-reduce per round) against the same round simulated in one graph.
//
// Usage:
//
//	go run ./cmd/bench-localsgd [-workers 8] [-batch 256] [-reps 10] [-inner sgd|adam]
//
// It runs on the backend mlx.Backend chooses (XLA CPU here; set GOMLX_BACKEND=go for
// the pure-Go backend).
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/cmd/internal/benchtime"
	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/localsgd"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/train"
)

var (
	flagWorkers = flag.Int("workers", 8, "K, the number of simulated workers")
	flagBatch   = flag.Int("batch", 256, "batch size per worker")
	flagReps    = flag.Int("reps", 10, "timed repetitions (after one warm-up)")
	flagInner   = flag.String("inner", "sgd", "inner optimizer: sgd or adam")
	flagH       = flag.Int("h", 4, "H, local steps per round")
)

// The MLP: 512 -> 1024 -> 512 -> 10, 1,055,242 parameters.
var mlp = models.MLPConfig{Hidden: []int{1024, 512}, Outputs: 10, Activation: "relu"}

const inputs = 512

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-localsgd:", err)
		os.Exit(1)
	}
}

func inner() (optimizer.Interface, error) {
	switch *flagInner {
	case "sgd":
		return optimizer.StochasticGradientDescent().WithLearningRate(0.01).WithDecay(false), nil
	case "adam":
		return optimizer.Adam().LearningRate(1e-3).Done(), nil
	}
	return nil, fmt.Errorf("-inner=%q: must be sgd or adam", *flagInner)
}

// batch returns seeded random inputs and labels with the given leading dimensions.
func batch(rng *rand.Rand, lead ...int) (x, y *tensors.Tensor) {
	n := 1
	for _, d := range lead {
		n *= d
	}
	xs := make([]float32, n*inputs)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	ys := make([]int32, n)
	for i := range ys {
		ys[i] = int32(rng.IntN(mlp.Outputs))
	}
	return tensors.FromFlatDataAndDimensions(xs, append(slices.Clone(lead), inputs)...),
		tensors.FromFlatDataAndDimensions(ys, append(slices.Clone(lead), 1)...)
}

func newExec(backend compute.Backend, stepper train.Stepper) (*model.Store, *model.Exec, error) {
	store := model.NewStore()
	if err := train.SeedStore(store, 1); err != nil {
		return nil, nil, err
	}
	lossFn := models.Classifier(mlp.Fn())
	exec, err := model.NewExec(backend, store, func(scope *model.Scope, x, y *graph.Node) *graph.Node {
		store.SetTraining(x.Graph(), true)
		return stepper.BuildStep(scope, lossFn, []*graph.Node{x}, []*graph.Node{y})
	})
	return store, exec, err
}

// timeInterleaved warms each function up with one call, then times reps rounds of them
// (benchtime.Interleaved) and returns the median time of each.
func timeInterleaved(reps int, fns ...func() error) ([]time.Duration, error) {
	for _, fn := range fns {
		if err := fn(); err != nil {
			return nil, err
		}
	}
	times, err := benchtime.Interleaved(reps, fns...)
	if err != nil {
		return nil, err
	}
	medians := make([]time.Duration, len(fns))
	for i := range times {
		medians[i] = benchtime.Median(times[i])
	}
	return medians, nil
}

func run() error {
	K, B := *flagWorkers, *flagBatch
	if K < 1 || B < 1 || *flagReps < 1 {
		return fmt.Errorf("-workers=%d, -batch=%d, -reps=%d: all must be >= 1", K, B, *flagReps)
	}
	backend, err := mlx.Backend()
	if err != nil {
		return err
	}
	fmt.Printf("MLP %d -> %v -> %d: %d parameters; K=%d workers, batch %d per worker, inner %s, H=%d, %d interleaved repetitions\n",
		inputs, mlp.Hidden, mlp.Outputs, mlp.NumParams(inputs), K, B, *flagInner, *flagH, *flagReps)
	rng := rand.New(rand.NewPCG(1, 2))

	// K single-worker steps: plain training with the inner optimizer.
	opt, err := inner()
	if err != nil {
		return err
	}
	_, single, err := newExec(backend, train.FirstOrder(opt, *flagInner))
	if err != nil {
		return err
	}
	xs, ys := make([]*tensors.Tensor, K), make([]*tensors.Tensor, K)
	for k := range K {
		xs[k], ys[k] = batch(rng, B)
	}
	fns := []func() error{func() error {
		for k := range K {
			if _, err := single.Exec(xs[k], ys[k]); err != nil {
				return fmt.Errorf("single-worker step: %w", err)
			}
		}
		return nil
	}}

	// One step of K workers in one graph, for each optimizer-state mode.
	modes := []localsgd.StateMode{localsgd.KeepState, localsgd.AverageState}
	steppers := make([]*localsgd.LocalSGD, len(modes))
	x, y := batch(rng, K, B)
	for i, mode := range modes {
		if opt, err = inner(); err != nil {
			return err
		}
		if steppers[i], err = localsgd.New(opt, localsgd.Config{Workers: K, LocalSteps: *flagH, State: mode}); err != nil {
			return err
		}
		_, exec, err := newExec(backend, steppers[i])
		if err != nil {
			return err
		}
		fns = append(fns, func() error {
			if _, err := exec.Exec(x, y); err != nil {
				return fmt.Errorf("local SGD step (state %s): %w", mode, err)
			}
			return nil
		})
	}
	medians, err := timeInterleaved(*flagReps, fns...)
	if err != nil {
		return err
	}
	fmt.Printf("%d single-worker steps (%d executions):          %8.1f ms\n", K, K, ms(medians[0]))
	for i, mode := range modes {
		fmt.Printf("one step of K=%d workers in one graph, state %-7s: %8.1f ms  ratio %.3f (target <= 1.3)\n",
			K, mode, ms(medians[i+1]), float64(medians[i+1])/float64(medians[0]))
	}
	fmt.Println()
	comm, err := steppers[len(modes)-1].Communication()
	if err != nil {
		return err
	}
	if err := comm.WriteTable(os.Stdout); err != nil {
		return err
	}
	return benchDistributed(backend, rng)
}

// benchDistributed times one round of K' = min(K, devices) workers, one per device,
// against the same round in one graph (state kept).
func benchDistributed(backend compute.Backend, rng *rand.Rand) error {
	K, B, H := min(*flagWorkers, backend.NumDevices()), *flagBatch, *flagH
	fmt.Println()
	if K < 2 {
		fmt.Printf("one worker per device: skipped (backend %s has %d device(s))\n", backend.Name(), backend.NumDevices())
		return nil
	}
	newStepper := func() (*localsgd.LocalSGD, error) {
		opt, err := inner()
		if err != nil {
			return nil, err
		}
		return localsgd.New(opt, localsgd.Config{Workers: K, LocalSteps: H})
	}
	simulated, err := newStepper()
	if err != nil {
		return err
	}
	_, exec, err := newExec(backend, simulated)
	if err != nil {
		return err
	}
	x, y := batch(rng, K, B)
	dist, err := newStepper()
	if err != nil {
		return err
	}
	store := model.NewStore()
	if err := train.SeedStore(store, 1); err != nil {
		return err
	}
	d, err := dist.NewDistributed(backend, store, models.Classifier(mlp.Fn()))
	if err != nil {
		return err
	}
	defer d.Finalize()
	xs, ys := make([][]*tensors.Tensor, K), make([][]*tensors.Tensor, K)
	for k := range K {
		xk, yk := batch(rng, B)
		xs[k], ys[k] = []*tensors.Tensor{xk}, []*tensors.Tensor{yk}
	}
	medians, err := timeInterleaved(*flagReps, func() error {
		for range H {
			if _, err := exec.Exec(x, y); err != nil {
				return fmt.Errorf("simulated step: %w", err)
			}
		}
		return nil
	}, func() error {
		for range H {
			if _, err := d.Step(xs, ys); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("one round (H=%d steps) of K=%d workers simulated in one graph: %8.1f ms\n", H, K, ms(medians[0]))
	fmt.Printf("one round (H=%d steps) of K=%d workers on %d devices (SPMD):  %8.1f ms  ratio %.3f\n",
		H, K, K, ms(medians[1]), float64(medians[1])/float64(medians[0]))
	fmt.Printf("all-reduce per round: %d floats per device\n", d.ReducedPerRound())
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
