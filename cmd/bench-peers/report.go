package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/plots"
)

// Results is one run of the benchmark, saved as docs/bench-peers/LABEL.json.
type Results struct {
	Label       string            `json:"label"`
	Quick       bool              `json:"quick"`
	Date        string            `json:"date"`
	Commit      string            `json:"commit"`
	Machine     Machine           `json:"machine"`
	Versions    map[string]string `json:"versions"`
	GEMM        []GEMMRow         `json:"gemm,omitempty"`
	Models      *Section          `json:"models,omitempty"`
	Batch       *Section          `json:"batch,omitempty"`
	PureGo      *Section          `json:"purego,omitempty"`
	Kernel      []KernelRow       `json:"kernel,omitempty"`
	WallSeconds float64           `json:"wall_seconds"`
	// Notes say what was measured again later (-only) and when.
	Notes []string `json:"notes,omitempty"`
}

// Machine describes the computer of a run.
type Machine struct {
	CPU       string  `json:"cpu"`
	Cores     int     `json:"cores"`
	MemoryGiB float64 `json:"memory_gib"`
	OS        string  `json:"os"`
}

// Section is one interleaved measurement: its cases' per-block step times by system.
type Section struct {
	Name    string        `json:"name"`
	Rounds  int           `json:"rounds"`
	Systems []string      `json:"systems"`
	Cases   []*CaseResult `json:"cases"`
	// LoadMin and LoadMax bound the 1-minute load average sampled after each round.
	LoadMin float64 `json:"load_min"`
	LoadMax float64 `json:"load_max"`
}

// CaseResult holds one case's times: Blocks[system][round] is the mean step time (ms) of
// that round's block.
type CaseResult struct {
	Spec   CaseSpec             `json:"spec"`
	Params int                  `json:"params"`
	Blocks map[string][]float64 `json:"blocks_ms"`
}

// GEMMRow is the float32 matrix product speed at one size, by library.
type GEMMRow struct {
	N      int                `json:"n"`
	GFLOPS map[string]float64 `json:"gflops"`
	Load   float64            `json:"load"`
}

// KernelRow is a notebook kernel's latency: cold (start to the first cell's output) and
// warm (a changed cell to its output), medians over Kernels fresh kernels.
type KernelRow struct {
	System  string  `json:"system"`
	ColdS   float64 `json:"cold_s"`
	WarmS   float64 `json:"warm_s"`
	Kernels int     `json:"kernels"`
	Load    float64 `json:"load"`
	Note    string  `json:"note,omitempty"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratio is the median over rounds of a's step time over b's in the same round (NaN when
// either is missing).
func (c *CaseResult) ratio(a, b string) float64 {
	as, bs := c.Blocks[a], c.Blocks[b]
	n := min(len(as), len(bs))
	rs := make([]float64, 0, n)
	for i := range n {
		rs = append(rs, as[i]/bs[i])
	}
	return median(rs)
}

func (c *CaseResult) ms(s string) float64 { return median(c.Blocks[s]) }

// cell is a system's median step time and, in parentheses, its minimum over rounds (the
// least disturbed block on a busy machine).
func (c *CaseResult) cell(s string) string {
	if len(c.Blocks[s]) == 0 {
		return "-"
	}
	return fmtMS(c.ms(s)) + " (" + fmtMS(slices.Min(c.Blocks[s])) + ")"
}

func fmtMS(x float64) string {
	switch {
	case math.IsNaN(x):
		return "-"
	case x < 1:
		return fmt.Sprintf("%.3f", x)
	case x < 100:
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%.0f", x)
}

func fmtRatio(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", x)
}

// table writes a Markdown table.
func table(w io.Writer, head []string, rows [][]string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	seps := make([]string, len(head))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(seps, " | "))
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
}

var modelTitle = map[string]string{
	"tiny": "tiny MLP 2-64-64-1, batch 32, MSE",
	"mlp":  "MLP 784-1024-256-10, batch 256, softmax cross-entropy",
	"cnn":  "small CNN (conv3x3 32 -> pool -> conv3x3 64 -> pool -> dense 10), 28x28x1, batch 64, softmax cross-entropy",
}

// ratioCols are the ratio columns of the model tables: a over b.
var ratioCols = [][2]string{
	{sysBare, sysJAX}, {sysTrainRun, sysBare}, {sysTrainRun, sysJAX}, {sysTrainLoop, sysBare}, {sysTrainLoop, sysJAX},
	{sysTorch, sysJAX}, {sysBare, sysTorch}, {sysTrainRun, sysTorch}, {sysTrainLoop, sysTorch},
}

func printModels(w io.Writer, sec *Section) {
	fmt.Fprintf(w, "ms per step: median over %d rounds of each block's mean (in parentheses: the minimum); ratios are medians of the per-round ratios. Load average (1 min) during the section: %.2f-%.2f.\n",
		sec.Rounds, sec.LoadMin, sec.LoadMax)
	var model string
	var rows [][]string
	head := []string{"optimizer"}
	for _, s := range sec.Systems {
		head = append(head, systemTitle[s]+" ms")
	}
	for _, rc := range ratioCols {
		head = append(head, systemTitle[rc[0]]+" / "+systemTitle[rc[1]])
	}
	flush := func() {
		if rows != nil {
			table(w, head, rows)
			rows = nil
		}
	}
	for _, c := range sec.Cases {
		m, opt, _ := strings.Cut(c.Spec.ID, "/")
		if m != model {
			flush()
			model = m
			fmt.Fprintf(w, "\n**%s** (%d parameters, blocks of %d steps)\n\n", modelTitle[m], c.Params, c.Spec.Block)
		}
		row := []string{opt}
		for _, s := range sec.Systems {
			row = append(row, c.cell(s))
		}
		for _, rc := range ratioCols {
			row = append(row, fmtRatio(c.ratio(rc[0], rc[1])))
		}
		rows = append(rows, row)
	}
	flush()
}

func printBatch(w io.Writer, sec *Section) {
	fmt.Fprintf(w, "MLP 784-1024-256-10, Adam, softmax cross-entropy: ms per step, median over %d rounds (minimum); ratios are medians of per-round ratios. Load average (1 min): %.2f-%.2f.\n\n",
		sec.Rounds, sec.LoadMin, sec.LoadMax)
	head := []string{"batch"}
	for _, s := range sec.Systems {
		head = append(head, systemTitle[s]+" ms")
	}
	head = append(head, "bare / JAX", "train.Run / JAX", "train.Run K / JAX", "PyTorch / JAX")
	var rows [][]string
	for _, c := range sec.Cases {
		row := []string{strconv.Itoa(c.Spec.Batch)}
		for _, s := range sec.Systems {
			row = append(row, c.cell(s))
		}
		row = append(row, fmtRatio(c.ratio(sysBare, sysJAX)), fmtRatio(c.ratio(sysTrainRun, sysJAX)), fmtRatio(c.ratio(sysTrainLoop, sysJAX)),
			fmtRatio(c.ratio(sysTorch, sysJAX)))
		rows = append(rows, row)
	}
	table(w, head, rows)
}

func printPureGo(w io.Writer, sec *Section) {
	fmt.Fprintf(w, "Bare exec of the Adam step, ms per step, median over %d rounds (minimum). Load average (1 min): %.2f-%.2f.\n\n",
		sec.Rounds, sec.LoadMin, sec.LoadMax)
	var rows [][]string
	for _, c := range sec.Cases {
		_, m, _ := strings.Cut(c.Spec.ID, "/")
		rows = append(rows, []string{modelTitle[m], c.cell(sysBare), c.cell(sysPureGo), fmtRatio(c.ratio(sysPureGo, sysBare))})
	}
	table(w, []string{"model", "XLA CPU ms", "pure Go ms", "pure Go / XLA CPU"}, rows)
}

func printGEMM(w io.Writer, rows []GEMMRow) {
	if len(rows) == 0 {
		return
	}
	var libs []string
	for k := range rows[0].GFLOPS {
		libs = append(libs, k)
	}
	slices.Sort(libs)
	head := append([]string{"n"}, libs...)
	head = append(head, "load (1 min)")
	var out [][]string
	for _, r := range rows {
		row := []string{strconv.Itoa(r.N)}
		for _, l := range libs {
			row = append(row, fmt.Sprintf("%.0f", r.GFLOPS[l]))
		}
		out = append(out, append(row, fmt.Sprintf("%.2f", r.Load)))
	}
	fmt.Fprintln(w, "Float32 n x n matrix product, GFLOP/s (2n^3 / best time):")
	fmt.Fprintln(w)
	table(w, head, out)
}

func printKernel(w io.Writer, rows []KernelRow) {
	var out [][]string
	for _, r := range rows {
		if r.Note != "" && r.Kernels == 0 {
			out = append(out, []string{r.System, "-", "-", "0", "-", r.Note})
			continue
		}
		out = append(out, []string{r.System, fmt.Sprintf("%.2f", r.ColdS), fmt.Sprintf("%.2f", r.WarmS), strconv.Itoa(r.Kernels),
			fmt.Sprintf("%.2f", r.Load), r.Note})
	}
	table(w, []string{"kernel", "cold s (start -> first output)", "warm s (changed cell -> output)", "kernels", "load (1 min)", "note"}, out)
}

var kernelLine = regexp.MustCompile(`(?m)^\s*(cold|warm)\s+([0-9.]+)s\s`)

// parseBenchKernel reads the medians that kernel/bench_kernel.py prints.
func parseBenchKernel(out string) (cold, warm float64, err error) {
	got := map[string]float64{}
	for _, m := range kernelLine.FindAllStringSubmatch(out, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return 0, 0, err
		}
		got[m[1]] = v
	}
	c, okc := got["cold"]
	w, okw := got["warm"]
	if !okc || !okw {
		return 0, 0, fmt.Errorf("no cold and warm medians in bench_kernel.py's output")
	}
	return c, w, nil
}

// measureKernels times our kernel with kernel/bench_kernel.py (the project's .venv) and an
// ipykernel running JAX with bench/kernel_latency.py (the bench venv). A kernel that cannot
// be timed gets a row saying why.
func measureKernels(root, python string, n int) []KernelRow {
	var rows []KernelRow
	load := newLoadTracker()
	ours := KernelRow{System: "ours: Go (GoMLX), cell imports mlx and runs one training step"}
	cmd := exec.Command(filepath.Join(root, ".venv", "bin", "python"), filepath.Join(root, "kernel", "bench_kernel.py"), "--kernels", strconv.Itoa(n))
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err == nil {
		ours.ColdS, ours.WarmS, err = parseBenchKernel(string(out))
	}
	if err != nil {
		ours.Note = fmt.Sprintf("not measured: %v (run make setup first)", err)
		fmt.Fprintln(os.Stderr, string(out))
	} else {
		ours.Kernels = n
	}
	load.sample()
	ours.Load = load.last
	rows = append(rows, ours)

	ipy := KernelRow{System: "ipykernel + JAX, cell imports jax and optax and runs one jitted training step"}
	cmd = exec.Command(python, filepath.Join(filepath.Dir(*flagScript), "kernel_latency.py"), "--kernels", strconv.Itoa(n))
	cmd.Env = append(os.Environ(), peerEnv...)
	cmd.Stderr = os.Stderr
	out, err = cmd.Output()
	if err == nil {
		var r struct{ Cold, Warm float64 }
		if err = json.Unmarshal(out, &r); err == nil {
			ipy.ColdS, ipy.WarmS, ipy.Kernels = r.Cold, r.Warm, n
		}
	}
	if err != nil {
		ipy.Note = fmt.Sprintf("not measured: %v", err)
	}
	load.sample()
	ipy.Load = load.last
	return append(rows, ipy)
}

// loadRuns reads the saved runs of dir, "before" first, then "after", then the others by name.
func loadRuns(dir string) ([]*Results, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var runs []*Results
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r Results
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		runs = append(runs, &r)
	}
	rank := func(l string) int {
		switch l {
		case "before":
			return 0
		case "after":
			return 1
		}
		return 2
	}
	slices.SortStableFunc(runs, func(a, b *Results) int {
		if d := rank(a.Label) - rank(b.Label); d != 0 {
			return d
		}
		return strings.Compare(a.Label, b.Label)
	})
	return runs, nil
}

// plotBatch draws step time against batch size, log-log, one curve per system.
func plotBatch(r *Results, path string) error {
	var hs []*history.History
	for _, s := range r.Batch.Systems {
		h := history.New(systemTitle[s], systemTitle[s], 0)
		for _, c := range r.Batch.Cases {
			h.Add(history.Record{Step: c.Spec.Batch, Loss: c.ms(s)})
		}
		hs = append(hs, h)
	}
	fig, err := plots.Curves(hs, plots.LogX(), plots.LogY(), plots.XLabel("batch size"), plots.YLabel("ms per step (median)"),
		plots.Title(fmt.Sprintf("MLP 784-1024-256-10, Adam, float32, 2 threads (%s)", r.Label)))
	if err != nil {
		return fmt.Errorf("plotting %s: %w", path, err)
	}
	return fig.Save(path)
}
