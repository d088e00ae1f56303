package adahessian

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/experiments"
	"github.com/goptlab/goptlab/experiments/verdict"
	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
)

// smallConfig is the tiny size cut to one learning rate per optimizer and one seed.
func smallConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := DefaultConfig(experiments.Tiny)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Seeds, cfg.Steps, cfg.EvalEvery, cfg.TimingSteps = 1, 30, 10, 6
	cfg.CurvTrainSteps, cfg.CurvExamples, cfg.Probes, cfg.Repeats = 10, 64, []int{1, 2, 4}, 2
	for k, v := range cfg.LRGrid {
		cfg.LRGrid[k] = v[1:2]
	}
	return cfg
}

// TestSameSeedSameResult runs the experiment twice: result.json must be byte-identical.
func TestSameSeedSameResult(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 12 small runs")
	}
	cfg := smallConfig(t)
	var files [2][]byte
	for i := range files {
		res, err := Run(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := experiments.WriteFiles(dir, res, res.Timing, res.Histories); err != nil {
			t.Fatal(err)
		}
		if files[i], err = os.ReadFile(filepath.Join(dir, "result.json")); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"timing.json", "histories.json"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Error(err)
			}
		}
		var back Result
		if err := json.Unmarshal(files[i], &back); err != nil {
			t.Fatalf("result.json does not read back: %v", err)
		}
		// Tuning seed: one run per optimizer; evaluation seed: adahessian, adam, sgd.
		if len(back.Claims) != 5 || len(back.Runs) != 3+3*cfg.Seeds || len(back.Curvature) != cfg.Seeds {
			t.Fatalf("result.json: %d claims, %d runs, %d curvature seeds", len(back.Claims), len(back.Runs), len(back.Curvature))
		}
		for _, c := range back.Verdicts() {
			// One seed is below every rule's minimum: the verdict must say so, not guess.
			if c.Judgement.Verdict != verdict.Inconclusive || !strings.Contains(c.Judgement.Why, "seeds") {
				t.Errorf("claim %s with one seed: %q (%s)", c.ID, c.Judgement.Verdict, c.Judgement.Why)
			}
		}
		for _, r := range back.Runs {
			if r.Diverged || !(r.TestAccuracy > 0.2 && r.TestAccuracy <= 1) || r.BestStep < cfg.EvalEvery {
				t.Errorf("run %+v: the model did not learn", r)
			}
		}
		cs := back.Curvature[0]
		if cs.NumParams != 49*4+4+4*10+10 || len(cs.PlainError) != len(cfg.Probes) || !(cs.ExactNorm > 0) {
			t.Errorf("curvature seed: %+v", cs)
		}
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Errorf("two runs of the same configuration wrote different result.json:\n%s\n---\n%s", files[0], files[1])
	}
}

func TestConfigValidate(t *testing.T) {
	for _, size := range experiments.Sizes {
		cfg, err := DefaultConfig(size)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("DefaultConfig(%s): %v", size, err)
		}
	}
	if _, err := DefaultConfig("huge"); err == nil || !strings.Contains(err.Error(), "huge") {
		t.Errorf("DefaultConfig(huge): err = %v", err)
	}
	for field, mutate := range map[string]func(*Config){
		"Seeds":          func(c *Config) { c.Seeds = 0 },
		"CurvPool":       func(c *Config) { c.CurvPool = 5 },
		"CurvExamples":   func(c *Config) { c.CurvExamples = 0 },
		"CurvTrainSteps": func(c *Config) { c.CurvTrainSteps = 0 },
		"CurvLR":         func(c *Config) { c.CurvLR = math.Inf(1) },
		"Probes":         func(c *Config) { c.Probes = []int{4, 1} },
		"Repeats":        func(c *Config) { c.Repeats = 0 },
		"BlockSize":      func(c *Config) { c.BlockSize = 1 },
		"Steps":          func(c *Config) { c.Steps = -1 },
		"BatchSize":      func(c *Config) { c.BatchSize = c.TrainExamples + 1 },
		"EvalEvery":      func(c *Config) { c.EvalEvery = c.Steps + 1 },
		"Tolerance":      func(c *Config) { c.Tolerance = math.NaN() },
		"TimingSteps":    func(c *Config) { c.TimingSteps = 1 },
		"LRGrid":         func(c *Config) { c.LRGrid["adahessian"] = []float64{math.NaN()} },
		"Hidden":         func(c *Config) { c.Hidden = []int{0} },
	} {
		cfg := smallConfig(t)
		mutate(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("bad %s: err = %v", field, err)
		}
	}
	cfg := smallConfig(t)
	cfg.LRGrid["adam"] = []float64{1e-3, 3e-3}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "same length") {
		t.Errorf("robustness grids of different lengths: err = %v", err)
	}
	cfg = smallConfig(t)
	cfg.Probes = []int{4}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "Probes") {
		t.Errorf("one probe count: err = %v", err)
	}
}

// quadratic is a loss 1/2 p^T A p + c.p of the parameters p = (w [2,3], b [3]), flattened
// row-major in that order; the inputs are ignored (but used, so the graph has them).
func quadratic(a [][]float64, c []float64) func(scope *model.Scope, inputs, labels []*Node) *Node {
	return func(scope *model.Scope, inputs, _ []*Node) *Node {
		g := inputs[0].Graph()
		w := scope.VariableWithValue("w", [][]float32{{0.5, -1, 2}, {1.5, 0.25, -0.75}}).NodeValue(g)
		b := scope.VariableWithValue("b", []float32{0.1, -0.2, 0.3}).NodeValue(g)
		p := Concatenate([]*Node{Reshape(w, -1), b}, 0)
		aNode := ConvertDType(Const(g, a), p.DType())
		cNode := ConvertDType(Const(g, c), p.DType())
		ap := ReduceSum(Mul(aNode, BroadcastToDims(Reshape(p, 1, -1), len(a), len(a))), 1)
		loss := Add(MulScalar(ReduceAllSum(Mul(p, ap)), 0.5), ReduceAllSum(Mul(cNode, p)))
		return Add(loss, MulScalar(ReduceAllSum(inputs[0]), 0))
	}
}

// testMatrix returns a symmetric 9x9 matrix, diagonal only if diagonal is set.
func testMatrix(diagonal bool) [][]float64 {
	a := make([][]float64, 9)
	for i := range a {
		a[i] = make([]float64, 9)
		a[i][i] = 1 + float64(i)
	}
	if !diagonal {
		for i := range a {
			for j := range i {
				v := math.Sin(float64(3*i+7*j)) / 2
				a[i][j], a[j][i] = v, v
			}
		}
	}
	return a
}

func newQuadraticCurvature(t *testing.T, a [][]float64) *Curvature {
	t.Helper()
	backend, err := mlx.Backend()
	if err != nil {
		t.Fatal(err)
	}
	store := model.NewStore()
	if err := store.SetRNGStateFromSeed(3); err != nil {
		t.Fatal(err)
	}
	x := tensors.FromValue([][]float32{{1, 2}})
	y := tensors.FromValue([][]int32{{0}})
	lossFn := quadratic(a, []float64{1, 0, -1, 2, 0, 1, 0, 0, 3})
	// Create the variables, as a training run would.
	if _, err := model.CallOnce(backend, store, func(scope *model.Scope, in []*Node) *Node {
		return lossFn(scope, in[:1], in[1:])
	}, x, y); err != nil {
		t.Fatal(err)
	}
	cv, err := NewCurvature(backend, store, lossFn, []*tensors.Tensor{x}, []*tensors.Tensor{y})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cv.Finalize)
	return cv
}

// TestCurvatureOnQuadratic: on 1/2 p^T A p + c.p, H = A. The exact diagonal must be A's
// diagonal, the Hessian-vector product A v, and the parameters listed as created.
func TestCurvatureOnQuadratic(t *testing.T) {
	a := testMatrix(false)
	cv := newQuadraticCurvature(t, a)
	if cv.NumParams() != 9 {
		t.Fatalf("NumParams = %d, want 9", cv.NumParams())
	}
	params := cv.Params()
	if len(params) != 2 || len(params[0].Dims) != 2 || params[0].Dims[0] != 2 || params[0].Dims[1] != 3 ||
		len(params[1].Dims) != 1 || !strings.Contains(params[0].Name, "w") || !strings.Contains(params[1].Name, "b") {
		t.Fatalf("Params = %+v, want w [2 3] then b [3]", params)
	}
	diag, err := cv.ExactDiagonal()
	if err != nil {
		t.Fatal(err)
	}
	for i := range diag {
		if math.Abs(diag[i]-a[i][i]) > 1e-4 {
			t.Errorf("exact diagonal[%d] = %g, want %g", i, diag[i], a[i][i])
		}
	}
	v := []float64{1, -2, 0.5, 0, 3, -1, 2, 0.25, -0.5}
	hv, err := cv.HVP(v)
	if err != nil {
		t.Fatal(err)
	}
	for i := range hv {
		want := 0.0
		for j := range v {
			want += a[i][j] * v[j]
		}
		if math.Abs(hv[i]-want) > 1e-4 {
			t.Errorf("(Hv)[%d] = %g, want %g", i, hv[i], want)
		}
	}
	if _, err := cv.HVP(v[:3]); err == nil {
		t.Error("HVP of a vector of the wrong length: no error")
	}
	// Hutchinson estimates: z_i (A z)_i = A_ii + sum_{j != i} A_ij z_i z_j with z_i = +-1,
	// so each estimate's error is a signed sum of the off-diagonal entries of its row, and
	// the mean of many estimates approaches the diagonal. Successive calls draw new probes.
	const n = 400
	mean := make([]float64, 9)
	var first []float64
	differs := false
	for k := range n {
		est, err := cv.Hutchinson()
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			first = est
		} else if !differs {
			for i := range est {
				differs = differs || est[i] != first[i]
			}
		}
		for i := range est {
			off := 0.0
			for j := range a {
				if j != i {
					off += math.Abs(a[i][j])
				}
			}
			if math.Abs(est[i]-a[i][i]) > off+1e-4 {
				t.Fatalf("estimate[%d] = %g: further than %g from the diagonal %g", i, est[i], off, a[i][i])
			}
			mean[i] += est[i] / n
		}
	}
	if !differs {
		t.Error("every Hutchinson call returned the same estimate: the probes do not change")
	}
	for i := range mean {
		sd := 0.0
		for j := range a {
			if j != i {
				sd += a[i][j] * a[i][j]
			}
		}
		if math.Abs(mean[i]-a[i][i]) > 5*math.Sqrt(sd/n) {
			t.Errorf("mean of %d estimates [%d] = %g, want %g (sd of the mean %g)", n, i, mean[i], a[i][i], math.Sqrt(sd/n))
		}
	}
}

// TestHutchinsonExactOnDiagonalHessian: with a diagonal Hessian, every Rademacher
// estimate is the exact diagonal (a sharp test of the probes being +-1).
func TestHutchinsonExactOnDiagonalHessian(t *testing.T) {
	a := testMatrix(true)
	cv := newQuadraticCurvature(t, a)
	for range 3 {
		est, err := cv.Hutchinson()
		if err != nil {
			t.Fatal(err)
		}
		for i := range est {
			if math.Abs(est[i]-a[i][i]) > 1e-4 {
				t.Errorf("estimate[%d] = %g, want %g", i, est[i], a[i][i])
			}
		}
	}
}

func TestBlockAverage(t *testing.T) {
	params := []Param{{Name: "w", Dims: []int{5, 2}}, {Name: "b", Dims: []int{2}}}
	// w rows (in) 0..4, columns (out) 0..1: w[r][c] = d[2r+c].
	d := []float64{1, 10, 3, 20, 5, 30, 7, 40, 100, 50, -1, -2}
	got, err := BlockAverage(d, params, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Column 0: rows {0,1} -> (1+3)/2, {2,3} -> (5+7)/2, {4} -> 100. Column 1: 15, 35, 50.
	want := []float64{2, 15, 2, 15, 6, 35, 6, 35, 100, 50, -1, -2}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("BlockAverage = %v, want %v", got, want)
		}
	}
	if d[0] != 1 {
		t.Error("BlockAverage changed its input")
	}
	for _, bad := range [][]float64{d[:11], append(append([]float64{}, d...), 0)} {
		if _, err := BlockAverage(bad, params, 2); err == nil {
			t.Errorf("BlockAverage of %d values for 12 parameters: no error", len(bad))
		}
	}
}

func TestRelativeErrorAndSlope(t *testing.T) {
	if got := RelativeError([]float64{3, 4, 1}, []float64{0, 0, 1}); math.Abs(got-5) > 1e-12 {
		t.Errorf("RelativeError = %g, want 5", got)
	}
	ks := []float64{1, 4, 16, 64}
	ys := make([]float64, len(ks))
	for i, k := range ks {
		ys[i] = 2.5 / math.Sqrt(k)
	}
	if s, err := LogLogSlope(ks, ys); err != nil || math.Abs(s+0.5) > 1e-12 {
		t.Errorf("LogLogSlope of 2.5/sqrt(k) = %g, %v; want -0.5", s, err)
	}
	ys = []float64{1, 0.6, 0.2, 0.15}
	// Least squares by hand: log-x centred at 3 ln 2 (steps of 2 ln 2).
	lx := []float64{-3, -1, 1, 3}
	var my float64
	for _, y := range ys {
		my += math.Log(y) / 4
	}
	var sxy float64
	for i, y := range ys {
		sxy += lx[i] * (math.Log(y) - my)
	}
	want := sxy / 20 / (2 * math.Ln2 / 2)
	if s, err := LogLogSlope(ks, ys); err != nil || math.Abs(s-want) > 1e-12 {
		t.Errorf("LogLogSlope = %g, %v; want %g", s, err, want)
	}
	for _, bad := range [][2][]float64{{{1}, {1}}, {{1, 2}, {1}}, {{1, 2}, {1, 0}}, {{2, 2}, {1, 3}}} {
		if _, err := LogLogSlope(bad[0], bad[1]); err == nil {
			t.Errorf("LogLogSlope(%v, %v): no error", bad[0], bad[1])
		}
	}
}

func TestGoodCount(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	for _, c := range []struct {
		losses []float64
		want   int
	}{
		{[]float64{1.0, 1.04, 1.06, inf, nan}, 2},
		{[]float64{2, 1, 1.05}, 2},
		{[]float64{0.5}, 1},
		{[]float64{inf, nan}, 0},
	} {
		if got := GoodCount(c.losses, 0.05); got != c.want {
			t.Errorf("GoodCount(%v) = %d, want %d", c.losses, got, c.want)
		}
	}
}

func TestStepsRatio(t *testing.T) {
	h := history.New("adahessian", "adahessian", 1)
	for i, v := range []float64{2, 1, 0.5, 0.4} {
		h.Add(history.Record{Step: 10 * (i + 1), Metrics: map[string]float64{"eval_loss": v}})
	}
	for _, c := range []struct {
		best float64
		step int
		want float64
	}{
		{0.5, 60, 0.5},         // reached at step 30 of the baseline's 60
		{0.45, 20, 2},          // 40 / 20
		{0.3, 80, math.Inf(1)}, // never reached
		{math.Inf(1), 0, 0},    // the baseline diverged at once
	} {
		base := RunResult{BestValLoss: verdict.Float(c.best), BestStep: c.step}
		if got := StepsRatio(h, base); got != c.want {
			t.Errorf("StepsRatio to %g (baseline step %d) = %g, want %g", c.best, c.step, got, c.want)
		}
	}
}

func TestPooled(t *testing.T) {
	const n = 2
	x := make([]float32, n*784)
	for i := range n {
		for p := range 784 {
			x[i*784+p] = float32(i*1000 + p)
		}
	}
	ds, err := data.New("px", []data.Column{{Dims: []int{784}, Float32: x}}, []data.Column{{Dims: []int{1}, Int32: []int32{3, 7}}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pooled(ds, n, 14)
	if err != nil {
		t.Fatal(err)
	}
	in, lb := p.Inputs()[0], p.Labels()[0]
	if len(in.Dims) != 1 || in.Dims[0] != 4 || len(in.Float32) != 8 || len(lb.Int32) != 2 || lb.Int32[1] != 7 {
		t.Fatalf("pooled: inputs %v (%d values), labels %v", in.Dims, len(in.Float32), lb.Int32)
	}
	// Top-left 14x14 block of image 0: mean of r*28+c over r, c < 14 = 6.5*28 + 6.5.
	want := []float32{188.5, 202.5, 580.5, 594.5}
	for i, w := range want {
		if in.Float32[i] != w || in.Float32[4+i] != w+1000 {
			t.Fatalf("pooled values %v, want %v then +1000", in.Float32, want)
		}
	}
	if _, err := pooled(ds, 3, 14); err == nil {
		t.Error("pooling more examples than the set has: no error")
	}
}
