// Command bench-zo measures the cost of one zeroth-order (MeZO) step against one forward
// pass of the same model, in time and in peak memory.
//
// The model is an MLP (by default 512 -> 1024 -> 512 -> 10, about 1.06M parameters) on a
// batch of 256 examples, on the backend chosen by mlx.Backend (XLA CPU on a machine
// without a GPU; set GOMLX_BACKEND=go for the pure-Go backend).
//
// Time: each mode compiles its executable, runs it a few times to warm up, then reports
// the median of -iters calls. Memory: each mode runs in a child process of its own, which
// reports its peak resident set size (VmHWM in /proc/self/status) after setting up the
// backend, data and model ("base") and after running the mode ("peak"); the growth over
// base is compared with the bytes of one copy of the parameters. RSS includes compiler
// and runtime memory, so small models show mostly noise: raise -hidden to make the
// parameters dominate.
//
// Usage:
//
//	go run ./cmd/bench-zo [-in 512] [-hidden 1024,512] [-batch 256] [-iters 30]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/train"
	"github.com/goptlab/goptlab/mlx/zo"
)

var (
	flagIn     = flag.Int("in", 512, "input features")
	flagHidden = flag.String("hidden", "1024,512", "comma-separated hidden widths")
	flagOut    = flag.Int("out", 10, "outputs")
	flagBatch  = flag.Int("batch", 256, "batch size")
	flagIters  = flag.Int("iters", 30, "timed calls per mode")
	flagMode   = flag.String("mode", "", "internal: run one mode (forward, zo, sgd) and print its figures")
)

// modes measured, in order.
var modes = []string{"forward", "zo", "sgd"}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-zo:", err)
		os.Exit(1)
	}
}

func parseHidden() ([]int, error) {
	var out []int
	for _, s := range strings.Split(*flagHidden, ",") {
		w, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || w < 1 {
			return nil, fmt.Errorf("-hidden=%q: want comma-separated widths >= 1", *flagHidden)
		}
		out = append(out, w)
	}
	return out, nil
}

type result struct {
	median, min time.Duration
	baseKB      int64
	peakKB      int64
}

func run() error {
	if *flagMode != "" {
		return runMode(*flagMode)
	}
	hidden, err := parseHidden()
	if err != nil {
		return err
	}
	cfg := models.MLPConfig{Hidden: hidden, Outputs: *flagOut, Activation: "relu"}
	params := cfg.NumParams(*flagIn)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	results := map[string]result{}
	for _, mode := range modes {
		args := append([]string{"-mode", mode}, os.Args[1:]...)
		cmd := exec.Command(self, args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("mode %s: %w", mode, err)
		}
		var r result
		var med, mn int64
		if _, err := fmt.Sscanf(string(out), "%d %d %d %d", &med, &mn, &r.baseKB, &r.peakKB); err != nil {
			return fmt.Errorf("mode %s: cannot parse %q: %w", mode, out, err)
		}
		r.median, r.min = time.Duration(med), time.Duration(mn)
		results[mode] = r
	}
	choice, _ := mlx.Choose()
	paramMB := float64(params*4) / (1 << 20)
	fmt.Printf("backend: %s\n", choice.Kind)
	fmt.Printf("model: MLP %d -> %v -> %d, %d parameters (%.2f MiB float32), batch %d, %d timed calls per mode\n",
		*flagIn, hidden, *flagOut, params, paramMB, *flagBatch, *flagIters)
	fmt.Printf("%-8s %12s %12s %10s %14s %14s\n", "mode", "median", "min", "x forward", "peak RSS MiB", "growth MiB")
	fwd := results["forward"]
	for _, mode := range modes {
		r := results[mode]
		fmt.Printf("%-8s %12s %12s %10.2f %14.1f %14.1f\n", mode, r.median.Round(time.Microsecond), r.min.Round(time.Microsecond),
			float64(r.median)/float64(fwd.median), float64(r.peakKB)/1024, float64(r.peakKB-r.baseKB)/1024)
	}
	zoR := results["zo"]
	fmt.Printf("ZO step / forward time: %.2fx (target <= 2.5x)\n", float64(zoR.median)/float64(fwd.median))
	extra := float64(zoR.peakKB-zoR.baseKB-(fwd.peakKB-fwd.baseKB)) / 1024
	fmt.Printf("ZO peak growth - forward peak growth: %.1f MiB = %.2f parameter copies (target <= 1)\n", extra, extra/paramMB)
	return nil
}

// vmHWM returns the process's peak resident set size in KiB.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb
		}
	}
	return -1
}

func runMode(mode string) error {
	hidden, err := parseHidden()
	if err != nil {
		return err
	}
	mlx.Output = os.Stderr
	backend, err := mlx.Backend()
	if err != nil {
		return err
	}
	cfg := models.MLPConfig{Hidden: hidden, Outputs: *flagOut, Activation: "relu"}
	ds, _, err := data.TeacherStudent(*flagBatch, *flagIn, 16, *flagOut, 0.1, 1)
	if err != nil {
		return err
	}
	loss := models.Regressor(cfg.Fn())
	store := model.NewStore()
	if err := train.SeedStore(store, 1); err != nil {
		return err
	}
	if _, err := train.Evaluate(backend, store, loss, ds, nil, 0); err != nil { // Creates and initialises the model.
		return err
	}
	inputs, labels := ds.All()
	base := vmHWM()

	var graphFn func(scope *model.Scope, x, y *graph.Node) *graph.Node
	switch mode {
	case "forward":
		graphFn = func(scope *model.Scope, x, y *graph.Node) *graph.Node {
			return loss(scope, []*graph.Node{x}, []*graph.Node{y})
		}
	case "zo", "sgd":
		var stepper train.Stepper
		if mode == "zo" {
			if stepper, err = zo.New(zo.Config{LearningRate: 1e-4, Epsilon: 1e-3, Directions: 1}); err != nil {
				return err
			}
		} else {
			stepper = train.FirstOrder(optimizer.StochasticGradientDescent().WithLearningRate(1e-4).Done(), "sgd")
		}
		graphFn = func(scope *model.Scope, x, y *graph.Node) *graph.Node {
			store.SetTraining(x.Graph(), true)
			return stepper.BuildStep(scope, loss, []*graph.Node{x}, []*graph.Node{y})
		}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	exec, err := model.NewExec(backend, store, graphFn)
	if err != nil {
		return err
	}
	defer exec.Finalize()
	call := func() error {
		outs, err := exec.Call(inputs[0], labels[0])
		if err != nil {
			return err
		}
		for _, o := range outs {
			// Reading the loss waits for the computation to finish.
			if _, err := o.ValueSafe(); err != nil {
				return err
			}
			_ = o.FinalizeAll()
		}
		return nil
	}
	for range 3 {
		if err := call(); err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
	}
	times := make([]time.Duration, *flagIters)
	for i := range times {
		start := time.Now()
		if err := call(); err != nil {
			return err
		}
		times[i] = time.Since(start)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	_ = compute.Backend(backend)
	_ = tensors.Tensor{}
	fmt.Printf("%d %d %d %d\n", int64(times[len(times)/2]), int64(times[0]), base, vmHWM())
	return nil
}
