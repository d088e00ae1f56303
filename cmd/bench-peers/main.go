// Command bench-peers measures our training step against JAX and PyTorch on the same models
// and optimizers, and writes docs/BENCHMARKS.md (run it with `make bench-peers`, which
// first creates the Python environment .bench-venv from bench/requirements.txt).
//
// Systems, all float32 on the CPU with two threads, the loss read back after every step:
//
//	jax       jax.jit of the whole step (optax's Adam and Adan; AdaHessian written in bench/peer.py)
//	bare      GoMLX's model.Exec of our step (mlx/models, mlx/optim), the batch transferred once
//	trainrun  mlx/train.Run, as a notebook calls it (batches gathered from a data set)
//	torch     PyTorch eager (torch.optim.Adam; pytorch_optimizer's Adan and AdaHessian)
//	purego    the bare step on GoMLX's pure-Go backend
//
// Every section interleaves its systems: each round runs one block of steps of every
// case in every system, in an order rotated from round to round, so that other work on the
// machine disturbs all alike; ratios are medians of the ratios within each round. Each
// case's parameter count is checked equal across systems before anything is timed.
//
//	go run ./cmd/bench-peers -label after          # full run (about 8 minutes on 2 cores)
//	go run ./cmd/bench-peers -quick -label quick   # a few rounds, to check the set-up
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/compute"

	"github.com/goptlab/goptlab/mlx"
)

var (
	flagQuick  = flag.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "few rounds and sizes, to check the set-up (default from $BENCH_QUICK=1)")
	flagLabel  = flag.String("label", "after", "name of this run in docs/BENCHMARKS.md: before, after, or any word (a run replaces the earlier one of its label)")
	flagPython = flag.String("python", ".bench-venv/bin/python", "the Python of the bench environment (JAX, PyTorch)")
	flagScript = flag.String("peer", "bench/peer.py", "the worker script")
	flagOut    = flag.String("out", "docs", "folder of BENCHMARKS.md; results go to its bench-peers/ subfolder")
	flagCommit = flag.String("commit", "", "commit to record (default: git rev-parse HEAD, marked when mlx/ has uncommitted changes)")
	flagRoot   = flag.String("root", ".", "repository root of the kernel to time (its .venv, kernel/bench_kernel.py)")
	flagKernel = flag.Bool("kernel", true, "also time notebook kernels (ours and ipykernel with JAX)")
	flagDoc    = flag.Bool("doc", false, "only regenerate BENCHMARKS.md and the plots from the saved runs, measuring nothing")
	flagOnly   = flag.String("only", "", "comma-separated sections to run (models,purego,batch,gemm,kernel); empty: all")
)

// System names, in the order of the tables.
const (
	sysJAX      = "jax"
	sysBare     = "bare"
	sysTrainRun = "trainrun"
	// sysTrainLoop is train.Run with Config.StepsPerExecution = the block length.
	sysTrainLoop = "trainloop"
	sysTorch     = "torch"
	sysPureGo    = "purego"
)

// systemTitle names each system in tables.
var systemTitle = map[string]string{
	sysJAX: "JAX", sysBare: "bare exec", sysTrainRun: "train.Run", sysTrainLoop: "train.Run K", sysTorch: "PyTorch", sysPureGo: "pure Go (bare)",
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-peers:", err)
		os.Exit(1)
	}
}

func sectionOn(name string) bool {
	return *flagOnly == "" || slices.Contains(strings.Split(*flagOnly, ","), name)
}

// plan is what a run measures: the rounds and cases of each section.
type plan struct {
	modelRounds, batchRounds, pureGoRounds, gemmReps, kernels int
	batches, gemmSizes                                        []int
}

func makePlan(quick bool) plan {
	if quick {
		return plan{modelRounds: 2, batchRounds: 1, pureGoRounds: 1, gemmReps: 1, kernels: 1,
			batches: []int{32, 256, 2048}, gemmSizes: []int{1024}}
	}
	return plan{modelRounds: 11, batchRounds: 5, pureGoRounds: 3, gemmReps: 3, kernels: 3,
		batches: []int{32, 64, 128, 256, 512, 1024, 2048}, gemmSizes: []int{1024, 2048, 4096}}
}

// Learning rates: small enough that no system diverges over thousands of steps on random data.
const (
	lrFirstOrder = 1e-3
	lrAdaHessian = 1e-2
)

func lrOf(opt string) float64 {
	if opt == "adahessian" {
		return lrAdaHessian
	}
	return lrFirstOrder
}

// modelCases are the three models of issue 11, each with Adam, Adan and AdaHessian.
func modelCases() []CaseSpec {
	type m struct {
		name  string
		spec  ModelSpec
		loss  string
		batch int
		block int
	}
	ms := []m{
		{"tiny", ModelSpec{Kind: "mlp", Dims: []int{2, 64, 64, 1}}, "mse", 32, 100},
		{"mlp", ModelSpec{Kind: "mlp", Dims: []int{784, 1024, 256, 10}}, "xent", 256, 10},
		{"cnn", ModelSpec{Kind: "cnn", HW: 28, Channels: []int{32, 64}, Classes: 10}, "xent", 64, 4},
	}
	var cases []CaseSpec
	for _, mm := range ms {
		for _, opt := range []string{"adam", "adan", "adahessian"} {
			block := mm.block
			if opt == "adahessian" {
				block = max(2, block/2)
			}
			cases = append(cases, CaseSpec{ID: mm.name + "/" + opt, Model: mm.spec, Loss: mm.loss, Batch: mm.batch,
				Opt: opt, LR: lrOf(opt), Block: block})
		}
	}
	return cases
}

// batchCases are the MLP 784-1024-256-10 with Adam at each batch size.
func batchCases(batches []int) []CaseSpec {
	var cases []CaseSpec
	for _, b := range batches {
		cases = append(cases, CaseSpec{ID: fmt.Sprintf("batch/%d", b), Model: ModelSpec{Kind: "mlp", Dims: []int{784, 1024, 256, 10}},
			Loss: "xent", Batch: b, Opt: "adam", LR: lrFirstOrder, Block: max(2, 4096/b)})
	}
	return cases
}

func pureGoCases() []CaseSpec {
	return []CaseSpec{
		{ID: "purego/tiny", Model: ModelSpec{Kind: "mlp", Dims: []int{2, 64, 64, 1}}, Loss: "mse", Batch: 32, Opt: "adam", LR: lrFirstOrder, Block: 50},
		{ID: "purego/mlp", Model: ModelSpec{Kind: "mlp", Dims: []int{784, 1024, 256, 10}}, Loss: "xent", Batch: 256, Opt: "adam", LR: lrFirstOrder, Block: 2},
	}
}

func run() error {
	if *flagDoc {
		runs, err := loadRuns(filepath.Join(*flagOut, "bench-peers"))
		if err != nil {
			return err
		}
		return writeDoc(*flagOut, runs)
	}
	started := time.Now()
	p := makePlan(*flagQuick)
	res := &Results{Label: *flagLabel, Quick: *flagQuick, Date: started.UTC().Format(time.RFC3339), Commit: commit(),
		Machine: machine(), Versions: goVersions()}
	if n := runtime.NumCPU(); n > 2 {
		fmt.Printf("note: this process may use %d CPUs: XLA and Go size their thread pools from that; run under `taskset -c 0,1` for 2 threads in every system\n", n)
	}
	backend, err := mlx.Backend()
	if err != nil {
		return err
	}
	choice, _ := mlx.Chosen()
	// The plugin's path relative to the repository: the file is committed, and a path of
	// this machine means nothing on another.
	plugin := choice.Plugin
	if rel, err := filepath.Rel(mlx.ProjectRoot(), plugin); err == nil && !strings.HasPrefix(rel, "..") {
		plugin = rel
	} else if plugin != "" {
		plugin = filepath.Base(plugin)
	}
	res.Versions["our backend"] = choice.Kind + " (" + plugin + ")"
	// mlx.Backend sets XLA_FLAGS for its process; the JAX worker inherits them.
	res.Versions["our XLA_FLAGS (JAX's too)"] = os.Getenv("XLA_FLAGS")

	peers := map[string]*peer{}
	defer func() {
		for _, pr := range peers {
			_ = pr.Close()
		}
	}()
	needPeers := sectionOn("models") || sectionOn("batch") || sectionOn("gemm")
	if needPeers {
		for _, name := range []string{sysJAX, sysTorch} {
			pr, err := startPeer(*flagPython, *flagScript, name)
			if err != nil {
				return fmt.Errorf("%w (make bench-peers creates .bench-venv)", err)
			}
			peers[name] = pr
			for k, v := range pr.Info {
				if k != "ok" {
					res.Versions[name+": "+k] = fmt.Sprint(v)
				}
			}
		}
	}
	bare, tr, tl := newBareExec(backend), newTrainRun(backend, false), newTrainRun(backend, true)
	defer func() { _ = bare.Close(); _ = tr.Close(); _ = tl.Close() }()
	systems := map[string]System{sysBare: bare, sysTrainRun: tr, sysTrainLoop: tl}
	for name, pr := range peers {
		systems[name] = pr
	}
	order := []string{sysJAX, sysBare, sysTrainRun, sysTrainLoop, sysTorch}

	if sectionOn("gemm") {
		fmt.Println("\n== float32 GEMM peak")
		if res.GEMM, err = measureGEMM(backend, peers, p); err != nil {
			return err
		}
		printGEMM(os.Stdout, res.GEMM)
	}
	if sectionOn("models") {
		fmt.Println("\n== models x optimizers")
		sec, err := measure("models", modelCases(), systems, order, p.modelRounds)
		if err != nil {
			return err
		}
		res.Models = sec
		printModels(os.Stdout, sec)
	}
	if sectionOn("batch") {
		fmt.Println("\n== step time vs batch size (MLP 784-1024-256-10, Adam)")
		sec, err := measure("batch", batchCases(p.batches), systems, order, p.batchRounds)
		if err != nil {
			return err
		}
		res.Batch = sec
		printBatch(os.Stdout, sec)
	}
	if sectionOn("purego") {
		fmt.Println("\n== pure-Go backend vs XLA CPU (bare exec, Adam)")
		gb, err := mlx.Choice{Kind: mlx.KindGo, Config: "go"}.New()
		if err != nil {
			return fmt.Errorf("pure-Go backend: %w", err)
		}
		pg := newBareExec(gb)
		sec, err := measure("purego", pureGoCases(), map[string]System{sysBare: bare, sysPureGo: pg},
			[]string{sysBare, sysPureGo}, p.pureGoRounds)
		_ = pg.Close()
		if err != nil {
			return err
		}
		res.PureGo = sec
		printPureGo(os.Stdout, sec)
	}
	if *flagKernel && sectionOn("kernel") {
		fmt.Println("\n== notebook kernel latency")
		res.Kernel = measureKernels(*flagRoot, *flagPython, p.kernels)
		printKernel(os.Stdout, res.Kernel)
	}
	res.WallSeconds = time.Since(started).Seconds()
	fmt.Printf("\nwhole run: %.0f s\n", res.WallSeconds)
	return writeResults(*flagOut, res)
}

// measure runs one interleaved section: every case set up in every system (parameter
// counts checked equal), then rounds x cases x systems blocks.
func measure(name string, cases []CaseSpec, systems map[string]System, order []string, rounds int) (*Section, error) {
	sec := &Section{Name: name, Rounds: rounds, Systems: order}
	load := newLoadTracker()
	for _, c := range cases {
		cr := &CaseResult{Spec: c, Blocks: map[string][]float64{}}
		for _, s := range order {
			start := time.Now()
			n, err := systems[s].Setup(c, c.Block)
			if err != nil {
				return nil, fmt.Errorf("%s: setting up %s: %w", s, c.ID, err)
			}
			if cr.Params == 0 {
				cr.Params = n
			} else if n != cr.Params {
				return nil, fmt.Errorf("case %s: %s has %d parameters, %s has %d: the models differ", c.ID, s, n, order[0], cr.Params)
			}
			fmt.Printf("  set up %-18s in %-9s %7.2fs (%d parameters)\n", c.ID, systemTitle[s], time.Since(start).Seconds(), n)
		}
		sec.Cases = append(sec.Cases, cr)
	}
	load.sample()
	for r := range rounds {
		for ci, cr := range sec.Cases {
			for k := range order {
				s := order[(k+r+ci)%len(order)]
				d, err := systems[s].Run(cr.Spec.ID, cr.Spec.Block)
				if err != nil {
					return nil, fmt.Errorf("round %d: %s: %w", r, cr.Spec.ID, err)
				}
				cr.Blocks[s] = append(cr.Blocks[s], d.Seconds()*1e3/float64(cr.Spec.Block))
			}
		}
		load.sample()
		fmt.Printf("  round %d/%d done (load average %.2f)\n", r+1, rounds, load.last)
	}
	for _, cr := range sec.Cases {
		for _, s := range order {
			_ = systems[s].Drop(cr.Spec.ID)
		}
	}
	sec.LoadMin, sec.LoadMax = load.min, load.max
	return sec, nil
}

func measureGEMM(backend compute.Backend, peers map[string]*peer, p plan) ([]GEMMRow, error) {
	var rows []GEMMRow
	load := newLoadTracker()
	for _, n := range p.gemmSizes {
		row := GEMMRow{N: n, GFLOPS: map[string]float64{}}
		flops := 2 * float64(n) * float64(n) * float64(n)
		summed, alone, err := ourGEMM(backend, n, p.gemmReps)
		if err != nil {
			return nil, fmt.Errorf("GEMM %d on our XLA: %w", n, err)
		}
		row.GFLOPS["our XLA (sum of GoMLX Dot in one graph)"] = flops / summed.Seconds() / 1e9
		row.GFLOPS["our XLA (GoMLX Dot, matrix read back)"] = flops / alone.Seconds() / 1e9
		for _, name := range []string{sysJAX, sysTorch} {
			pr, ok := peers[name]
			if !ok {
				continue
			}
			times, err := pr.gemm(n, p.gemmReps)
			if err != nil {
				return nil, fmt.Errorf("GEMM %d: %w", n, err)
			}
			for k, s := range times {
				row.GFLOPS[gemmTitle[k]] = flops / s / 1e9
			}
		}
		load.sample()
		row.Load = load.last
		rows = append(rows, row)
	}
	return rows, nil
}

// gemmTitle names the workers' GEMM results.
var gemmTitle = map[string]string{
	"numpy": "numpy (its OpenBLAS)", "jax_xla": "JAX XLA (jnp.dot)", "jax_xla_sum": "JAX XLA (sum of jnp.dot in one jit)",
	"torch": "PyTorch (torch.mm)",
}

// loadTracker samples the 1-minute load average.
type loadTracker struct{ min, max, last float64 }

func newLoadTracker() *loadTracker {
	t := &loadTracker{min: 1e9, max: -1}
	t.sample()
	return t
}

func (t *loadTracker) sample() {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return
	}
	var l float64
	if _, err := fmt.Sscan(string(b), &l); err != nil {
		return
	}
	t.last, t.min, t.max = l, min(t.min, l), max(t.max, l)
}

func commit() string {
	if *flagCommit != "" {
		return *flagCommit
	}
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--", "mlx").Output(); err == nil && len(st) > 0 {
		c += " with uncommitted changes in mlx/"
	}
	return c
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			m.MemoryGiB = kb / (1 << 20)
		}
	}
	return m
}

func goVersions() map[string]string {
	v := map[string]string{"go": runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/gomlx/gomlx", "github.com/gomlx/go-xla", "github.com/gomlx/compute":
				v[d.Path] = d.Version
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(*flagRoot, "kernel", "constraints.txt")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "xla-cpu-pjrt==") {
				v["xla-cpu-pjrt (our XLA CPU plugin)"] = strings.TrimPrefix(line, "xla-cpu-pjrt==")
			}
		}
	}
	return v
}

// writeResults saves res as OUT/bench-peers/LABEL.json, then regenerates OUT/BENCHMARKS.md
// and the plots from every saved run.
func writeResults(out string, res *Results) error {
	dir := filepath.Join(out, "bench-peers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, res.Label+".json")
	if *flagOnly != "" {
		if err := mergeInto(path, res); err != nil {
			return err
		}
	}
	if err := writeJSON(path, res); err != nil {
		return err
	}
	runs, err := loadRuns(dir)
	if err != nil {
		return err
	}
	return writeDoc(out, runs)
}

// writeDoc regenerates OUT/BENCHMARKS.md and the plots from the saved runs.
func writeDoc(out string, runs []*Results) error {
	dir := filepath.Join(out, "bench-peers")
	for _, r := range runs {
		if r.Batch != nil {
			if err := plotBatch(r, filepath.Join(dir, "batch-"+r.Label+".svg")); err != nil {
				return err
			}
		}
	}
	md, err := renderMarkdown(runs)
	if err != nil {
		return err
	}
	path := filepath.Join(out, "BENCHMARKS.md")
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", path)
	return nil
}

// mergeInto fills the sections that res lacks (a run with -only) from the saved run at
// path, if there is one, so that re-measuring one section keeps the others.
func mergeInto(path string, res *Results) error {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var old Results
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if res.GEMM == nil {
		res.GEMM = old.GEMM
	}
	if res.Models == nil {
		res.Models = old.Models
	}
	if res.Batch == nil {
		res.Batch = old.Batch
	}
	if res.PureGo == nil {
		res.PureGo = old.PureGo
	}
	if res.Kernel == nil {
		res.Kernel = old.Kernel
	}
	res.Commit, res.Date, res.WallSeconds = old.Commit, old.Date, old.WallSeconds
	res.Notes = append(old.Notes, fmt.Sprintf("sections %s measured again on %s", *flagOnly, time.Now().UTC().Format(time.RFC3339)))
	return nil
}

func writeJSON(path string, res *Results) error {
	b, err := json.MarshalIndent(res, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
