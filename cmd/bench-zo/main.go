// Command bench-zo measures the cost of zeroth-order (MeZO) steps against one forward pass
// of the same model, in time and in memory, all in one run.
//
// The model is an MLP (by default 512 -> 1024 -> 512 -> 10, about 1.06M parameters) on a
// batch of 256 examples, on the backend chosen by mlx.Backend (XLA CPU on a machine
// without a GPU; set GOMLX_BACKEND=go for the pure-Go backend). Modes: the forward pass
// (the loss), ZO-SGD with m=1 and m=4 directions (MeZO's Gaussian directions), ZO-SGD m=1
// with Rademacher directions, and first-order SGD (forward + backward + update).
//
// Time: every mode is compiled and warmed up in one process, then the modes are called in
// turn, interleaved, -iters times, so that load from other processes hits them alike; the
// table gives each mode's median and its ratio to the forward pass's median.
//
// Memory, two measures, in copies of the parameters (float32 bytes of all trainable
// variables):
//   - XLA: the executable's own buffer assignment (XLA only; read from the assignment XLA
//     dumps with --xla_dump_to, in exact bytes): its temporary and output allocations. This
//     is the memory a call needs beyond its inputs (parameters, data), independent of the
//     allocator. (No output aliases a donated input: GoMLX donates the variables' buffers
//     at run time, but go-xla v0.4.5 declares no input/output aliasing to the compiler, so
//     every step's new parameters take one copy of their own.)
//   - RSS: each mode runs again in a child process of its own, with glibc's mmap threshold
//     fixed at 128 KiB (so large buffers are unmapped when freed); after compiling and one
//     call, the peak RSS (VmHWM) is reset (/proc/self/clear_refs) and the growth of the
//     peak over the RSS of that moment, during 10 more calls, is reported: the transient
//     memory of a call (temporaries and outputs), as the operating system sees it. It is
//     indicative only: it moves from run to run with what the allocators keep cached (the
//     buffers of the parameters a step gives back can be reused for its outputs).
//
// Usage:
//
//	go run ./cmd/bench-zo [-in 512] [-hidden 1024,512] [-batch 256] [-iters 100]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/cmd/internal/benchtime"
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
	flagIters  = flag.Int("iters", 100, "timed calls per mode")
	flagMode   = flag.String("mode", "", "internal: run one mode in this process and print its memory figures")
)

// modes measured, in order.
var modes = []string{"forward", "zo-m1", "zo-m4", "zo-m1-rademacher", "sgd"}

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

// setup is one mode's executable and its call.
type setup struct {
	call     func() error
	finalize func()
}

// xlaExtraBytes returns, for the largest executable whose buffer assignment XLA dumped in
// dir (the mode's; small helper executables, such as variable initialisers, are compiled
// too), the bytes of its output and temporary allocations: the memory a call needs beyond
// its inputs, exactly as XLA allocates it (-1 if nothing was dumped). The sizes in the
// dump are exact, unlike the rounded ones go-xla logs.
func xlaExtraBytes(dir string) (int64, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*buffer-assignment.txt"))
	if err != nil {
		return -1, err
	}
	best, bestTotal := int64(-1), int64(-1)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return -1, err
		}
		var extra, total int64
		for _, m := range allocationRE.FindAllStringSubmatch(string(data), -1) {
			size, _ := strconv.ParseInt(m[1], 10, 64)
			total += size
			kind := m[2]
			if strings.Contains(kind, "preallocated-temp") ||
				(strings.Contains(kind, "maybe-live-out") && !strings.Contains(kind, "parameter")) {
				extra += size
			}
		}
		if total > bestTotal {
			best, bestTotal = extra, total
		}
	}
	return best, nil
}

var allocationRE = regexp.MustCompile(`(?m)^allocation \d+: size (\d+), (.*):$`)

// bench is a model, initialised, with its data.
type bench struct {
	backend       compute.Backend
	store         *model.Store
	loss          train.LossFn
	inputs, label *tensors.Tensor
}

// newBench sets up the data and a fresh, initialised model.
func newBench(backend compute.Backend) (*bench, error) {
	hidden, err := parseHidden()
	if err != nil {
		return nil, err
	}
	cfg := models.MLPConfig{Hidden: hidden, Outputs: *flagOut, Activation: "relu"}
	ds, _, err := data.TeacherStudent(*flagBatch, *flagIn, 16, *flagOut, 0.1, 1)
	if err != nil {
		return nil, err
	}
	loss := models.Regressor(cfg.Fn())
	store := model.NewStore()
	if err := train.SeedStore(store, 1); err != nil {
		return nil, err
	}
	if _, err := train.Evaluate(backend, store, loss, ds, nil, 0); err != nil { // Creates and initialises the model.
		return nil, err
	}
	inputs, labels := ds.All()
	return &bench{backend: backend, store: store, loss: loss, inputs: inputs[0], label: labels[0]}, nil
}

// prepare compiles the executable of one mode on b's model (which its steps then change).
func (b *bench) prepare(mode string) (*setup, error) {
	store, loss, backend := b.store, b.loss, b.backend
	var err error
	var graphFn func(scope *model.Scope, x, y *graph.Node) *graph.Node
	var stepper train.Stepper
	switch mode {
	case "forward":
		graphFn = func(scope *model.Scope, x, y *graph.Node) *graph.Node {
			return loss(scope, []*graph.Node{x}, []*graph.Node{y})
		}
	case "zo-m1", "zo-m4", "zo-m1-rademacher":
		c := zo.Config{LR: 1e-4, Epsilon: 1e-3, Directions: 1}
		if mode == "zo-m4" {
			c.Directions = 4
		}
		if mode == "zo-m1-rademacher" {
			c.Distribution = zo.Rademacher
		}
		if stepper, err = zo.New(c); err != nil {
			return nil, err
		}
	case "sgd":
		stepper = train.FirstOrder(optimizer.StochasticGradientDescent().WithLearningRate(1e-4).Done(), "sgd")
	default:
		return nil, fmt.Errorf("unknown mode %q", mode)
	}
	if stepper != nil {
		graphFn = func(scope *model.Scope, x, y *graph.Node) *graph.Node {
			store.SetTraining(x.Graph(), true)
			return stepper.BuildStep(scope, loss, []*graph.Node{x}, []*graph.Node{y})
		}
	}
	exec, err := model.NewExec(backend, store, graphFn)
	if err != nil {
		return nil, err
	}
	call := func() error {
		outs, err := exec.Call(b.inputs, b.label)
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
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
	return &setup{call: call, finalize: exec.Finalize}, nil
}

type memResult struct {
	xlaBytes       int64 // outputs - aliases + temporaries, -1 if unknown
	rssGrowthKB    int64
	baseKB, peakKB int64
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
	paramBytes := float64(params * 4)

	// Memory: one child process per mode.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	mem := map[string]memResult{}
	for _, mode := range modes {
		args := append([]string{"-mode", mode}, os.Args[1:]...)
		cmd := exec.Command(self, args...)
		// Fixing glibc's mmap threshold makes every large buffer its own mapping, returned to
		// the system when freed: the RSS then follows the live buffers.
		dumpDir, err := os.MkdirTemp("", "bench-zo-xla-dump-")
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(dumpDir) }()
		cmd.Env = append(os.Environ(), "MALLOC_MMAP_THRESHOLD_=131072", "BENCH_ZO_XLA_DUMP="+dumpDir,
			"XLA_FLAGS="+strings.TrimSpace(os.Getenv("XLA_FLAGS")+" --xla_dump_to="+dumpDir))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("mode %s: %w", mode, err)
		}
		var r memResult
		if _, err := fmt.Sscanf(string(out), "%d %d %d", &r.xlaBytes, &r.baseKB, &r.peakKB); err != nil {
			return fmt.Errorf("mode %s: cannot parse %q: %w", mode, out, err)
		}
		r.rssGrowthKB = r.peakKB - r.baseKB
		mem[mode] = r
	}

	// Time: all modes in this process, interleaved.
	mlx.Output = os.Stderr
	backend, err := mlx.Backend()
	if err != nil {
		return err
	}
	setups := map[string]*setup{}
	for _, mode := range modes {
		b, err := newBench(backend)
		if err != nil {
			return err
		}
		s, err := b.prepare(mode)
		if err != nil {
			return err
		}
		defer s.finalize()
		for range 3 {
			if err := s.call(); err != nil {
				return err
			}
		}
		setups[mode] = s
	}
	fns := make([]func() error, len(modes))
	for i, mode := range modes {
		fns[i] = setups[mode].call
	}
	timed, err := benchtime.Interleaved(*flagIters, fns...)
	if err != nil {
		return err
	}
	times := map[string][]time.Duration{}
	for i, mode := range modes {
		times[mode] = timed[i]
	}
	median := benchtime.Median

	choice, _ := mlx.Choose()
	fmt.Printf("backend: %s\n", choice.Kind)
	fmt.Printf("XLA_FLAGS: %q (mlx adds --xla_cpu_prefer_vector_width=512 on amd64 unless set)\n", os.Getenv("XLA_FLAGS"))
	fmt.Printf("model: MLP %d -> %v -> %d, %d parameters (%.2f MiB float32 = 1 copy), batch %d, %d interleaved calls per mode\n",
		*flagIn, hidden, *flagOut, params, paramBytes/(1<<20), *flagBatch, *flagIters)
	fmt.Printf("%-18s %10s %10s %10s %14s %14s\n", "mode", "median", "min", "x forward", "XLA extra", "RSS growth")
	fwd := median(times["forward"])
	copies := func(b float64) string { return fmt.Sprintf("%.2f copies", b/paramBytes) }
	for _, mode := range modes {
		ts := times[mode]
		m := mem[mode]
		xla := "n/a"
		if m.xlaBytes >= 0 {
			xla = copies(float64(m.xlaBytes))
		}
		fmt.Printf("%-18s %10s %10s %10.2f %14s %14s\n", mode, median(ts).Round(time.Microsecond),
			slices.Min(ts).Round(time.Microsecond), float64(median(ts))/float64(fwd), xla, copies(float64(m.rssGrowthKB)*1024))
	}
	zoT := median(times["zo-m1"])
	// The same ratio round by round (each round times every mode once, back to back), which
	// cancels slow changes in the machine's load; its quartiles show the spread.
	ratios := make([]float64, *flagIters)
	for i := range ratios {
		ratios[i] = float64(times["zo-m1"][i]) / float64(times["forward"][i])
	}
	sort.Float64s(ratios)
	q := func(f float64) float64 { return ratios[int(f*float64(len(ratios)-1))] }
	fmt.Printf("ZO-SGD (m=1) / forward time: %.2fx (target <= 2.5x); per round: median %.2fx, quartiles %.2fx-%.2fx\n",
		float64(zoT)/float64(fwd), q(0.5), q(0.25), q(0.75))
	if f, z := mem["forward"], mem["zo-m1"]; f.xlaBytes >= 0 && z.xlaBytes >= 0 {
		d := z.xlaBytes - f.xlaBytes
		fmt.Printf("ZO-SGD (m=1) memory beyond inference, XLA accounting: %.4f copies (target <= 1): %d bytes = one copy %+d bytes\n",
			float64(d)/paramBytes, d, d-int64(paramBytes))
		fmt.Printf("  (the step's other outputs, beside the new parameters: RNG state, seeds, projected gradient, loss, output table)\n")
	}
	f, z := mem["forward"], mem["zo-m1"]
	fmt.Printf("ZO-SGD (m=1) memory beyond inference, RSS growth: %s (indicative only: it varies from run to run with\n"+
		"  what the allocators keep cached, e.g. the parameter buffers a step gives back; the XLA figure is exact)\n",
		copies(float64(z.rssGrowthKB-f.rssGrowthKB)*1024))
	return nil
}

// procStatus returns a field of /proc/self/status in KiB.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb
		}
	}
	return -1
}

// runMode runs one mode in this (child) process and prints: XLA extra bytes, base RSS KiB, peak RSS KiB.
func runMode(mode string) error {
	mlx.Output = os.Stderr
	backend, err := mlx.Backend()
	if err != nil {
		return err
	}
	// The model and data are set up (and the backend started) before base is taken.
	b, err := newBench(backend)
	if err != nil {
		return err
	}
	// Only the executables compiled for the mode count.
	dumpDir := os.Getenv("BENCH_ZO_XLA_DUMP")
	if dumpDir != "" {
		old, _ := filepath.Glob(filepath.Join(dumpDir, "*"))
		for _, f := range old {
			_ = os.RemoveAll(f)
		}
	}
	s, err := b.prepare(mode)
	if err != nil {
		return err
	}
	defer s.finalize()
	if err := s.call(); err != nil { // Compiles the executable.
		return err
	}
	xlaBytes := int64(-1)
	if dumpDir != "" {
		if xlaBytes, err = xlaExtraBytes(dumpDir); err != nil {
			return err
		}
	}
	base := procStatus("VmRSS")
	// Forget the compiler's peak: from here on, VmHWM is the peak while running.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return err
	}
	for range 10 {
		if err := s.call(); err != nil {
			return err
		}
	}
	fmt.Printf("%d %d %d\n", xlaBytes, base, procStatus("VmHWM"))
	return nil
}
