package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/models"
)

// fakeSystem records the calls it gets and takes perStep of pretend time per step.
type fakeSystem struct {
	name    string
	params  int
	perStep time.Duration
	calls   *[]string
}

func (f *fakeSystem) Setup(c CaseSpec, warmup int) (int, error) { return f.params, nil }
func (f *fakeSystem) Run(id string, steps int) (time.Duration, error) {
	*f.calls = append(*f.calls, f.name)
	return time.Duration(steps) * f.perStep, nil
}
func (f *fakeSystem) Drop(id string) error { return nil }
func (f *fakeSystem) Close() error         { return nil }

func TestMeasureRotatesTheOrderOfSystemsEachRound(t *testing.T) {
	var calls []string
	systems := map[string]System{}
	for i, name := range []string{"a", "b", "c"} {
		systems[name] = &fakeSystem{name: name, params: 5, perStep: time.Duration(i+1) * time.Millisecond, calls: &calls}
	}
	c := CaseSpec{ID: "x/adam", Block: 4}
	sec, err := measure("test", []CaseSpec{c}, systems, []string{"a", "b", "c"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c", "b", "c", "a"}; !slices.Equal(calls, want) {
		t.Errorf("call order %v, want %v (rotated by one each round)", calls, want)
	}
	cr := sec.Cases[0]
	if cr.Params != 5 {
		t.Errorf("params %d, want 5", cr.Params)
	}
	if got := cr.Blocks["c"]; !slices.Equal(got, []float64{3, 3}) {
		t.Errorf("c's blocks %v ms per step, want [3 3]", got)
	}
	if got := cr.ratio("c", "a"); got != 3 {
		t.Errorf("ratio c/a = %v, want 3", got)
	}
}

func TestMeasureStopsWhenParameterCountsDiffer(t *testing.T) {
	var calls []string
	systems := map[string]System{
		"a": &fakeSystem{name: "a", params: 4417, calls: &calls},
		"b": &fakeSystem{name: "b", params: 4418, calls: &calls},
	}
	_, err := measure("test", []CaseSpec{{ID: "tiny/adam", Block: 1}}, systems, []string{"a", "b"}, 1)
	if err == nil || !strings.Contains(err.Error(), "parameters") {
		t.Fatalf("err = %v, want one about differing parameter counts", err)
	}
	if len(calls) != 0 {
		t.Errorf("timed %v before the check failed", calls)
	}
}

func TestRatioIsTheMedianOfPerRoundRatios(t *testing.T) {
	c := &CaseResult{Blocks: map[string][]float64{"a": {1, 2, 10}, "b": {1, 1, 1}}}
	// Per-round ratios 1, 2, 10: median 2, while the ratio of medians would be 2 too but
	// the ratio of means would be 13/3.
	if got := c.ratio("a", "b"); got != 2 {
		t.Errorf("ratio = %v, want 2", got)
	}
	c = &CaseResult{Blocks: map[string][]float64{"a": {4, 1}, "b": {2, 2}}}
	if got := c.ratio("a", "b"); got != 1.25 {
		t.Errorf("ratio of two rounds = %v, want the mean of 2 and 0.5, 1.25", got)
	}
	if got := c.ratio("a", "missing"); !math.IsNaN(got) {
		t.Errorf("ratio against a missing system = %v, want NaN", got)
	}
}

func TestParseBenchKernelReadsTheMedians(t *testing.T) {
	// As kernel/bench_kernel.py prints it.
	out := "kernel  cold: start -> 1st output   warm: 2nd cell -> output  backend\n" +
		"     1                      2.81 s                     0.62 s  XLA CPU\n\n" +
		"          median       min       max  target\n" +
		"  cold     2.81s     2.81s     2.81s  < 3 s: met\n" +
		"  warm     0.62s     0.62s     0.62s  < 1 s: met\n"
	cold, warm, err := parseBenchKernel(out)
	if err != nil || cold != 2.81 || warm != 0.62 {
		t.Errorf("parseBenchKernel = %v, %v, %v; want 2.81, 0.62, nil", cold, warm, err)
	}
	if _, _, err := parseBenchKernel("kernel 1: the first cell failed"); err == nil {
		t.Error("parseBenchKernel accepted an output without medians")
	}
}

func TestMarkdownShowsEveryRunAndComparesThem(t *testing.T) {
	run := func(label string, trainRun float64) *Results {
		return &Results{Label: label, Machine: Machine{CPU: "test CPU", Cores: 2}, Versions: map[string]string{"go": "go1"},
			Models: &Section{Rounds: 1, Systems: []string{sysJAX, sysBare, sysTrainRun, sysTorch}, Cases: []*CaseResult{{
				Spec: CaseSpec{ID: "tiny/adam", Block: 100}, Params: 4417,
				Blocks: map[string][]float64{sysJAX: {0.1}, sysBare: {0.2}, sysTrainRun: {trainRun}, sysTorch: {1}},
			}}}}
	}
	md, err := renderMarkdown([]*Results{run("before", 0.4), run("after", 0.21)})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`## Run "before"`, `## Run "after"`, "## Runs side by side",
		"| tiny/adam | train.Run / bare exec | 2.00x | 1.05x |", "| adam | 0.100 (0.100) | 0.200 (0.200) | 0.400 (0.400) | 1.00 (1.00) |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestOurSystemsBuildTheModelsTheWorkersBuild checks, on our side, the parameter counts
// that the workers of bench/peer.py must match (the benchmark compares them at run time):
// the models of mlx/models with the layer sizes of issue 11.
func TestOurSystemsBuildTheModelsTheWorkersBuild(t *testing.T) {
	backend, err := mlx.Backend()
	if err != nil {
		t.Fatal(err)
	}
	cnnParams := (3*3*1*32 + 32) + (3*3*32*64 + 64) + (7*7*64*10 + 10)
	want := map[string]int{
		"tiny": models.MLPConfig{Hidden: []int{64, 64}, Outputs: 1}.NumParams(2),
		"mlp":  784*1024 + 1024 + 1024*256 + 256 + 256*10 + 10,
		"cnn":  cnnParams,
	}
	bare, tr := newBareExec(backend), newTrainRun(backend, false)
	defer func() { _ = bare.Close(); _ = tr.Close() }()
	seen := map[string]bool{}
	for _, c := range modelCases() {
		m, opt, _ := strings.Cut(c.ID, "/")
		if seen[m] || opt != "adam" {
			continue
		}
		seen[m] = true
		c.Block, c.Batch = 2, 4
		for name, s := range map[string]System{"bare": bare, "train.Run": tr} {
			n, err := s.Setup(c, 2)
			if err != nil {
				t.Fatalf("%s: %s: %v", name, c.ID, err)
			}
			if n != want[m] {
				t.Errorf("%s: %s has %d parameters, want %d", name, c.ID, n, want[m])
			}
			if _, err := s.Run(c.ID, c.Block); err != nil {
				t.Errorf("%s: %s: running a block: %v", name, c.ID, err)
			}
			if err := s.Drop(c.ID); err != nil {
				t.Errorf("%s: %s: %v", name, c.ID, err)
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("models covered %v, want tiny, mlp and cnn", seen)
	}
}

func TestMergeIntoKeepsTheSectionsNotMeasuredAgain(t *testing.T) {
	path := t.TempDir() + "/before.json"
	old := &Results{Label: "before", Commit: "abc", WallSeconds: 451, Models: &Section{Name: "models"}, GEMM: []GEMMRow{{N: 1}}}
	if err := writeJSON(path, old); err != nil {
		t.Fatal(err)
	}
	defer func(v string) { *flagOnly = v }(*flagOnly)
	*flagOnly = "gemm"
	res := &Results{Label: "before", Commit: "def", WallSeconds: 56, GEMM: []GEMMRow{{N: 2}}}
	if err := mergeInto(path, res); err != nil {
		t.Fatal(err)
	}
	if res.Models == nil || res.Models.Name != "models" {
		t.Errorf("models section lost: %+v", res.Models)
	}
	if len(res.GEMM) != 1 || res.GEMM[0].N != 2 {
		t.Errorf("GEMM = %+v, want the new measurement", res.GEMM)
	}
	if res.Commit != "abc" || res.WallSeconds != 451 || len(res.Notes) != 1 {
		t.Errorf("commit %q, wall %v, notes %q: want the first run's commit and wall time, and one note", res.Commit, res.WallSeconds, res.Notes)
	}
}
