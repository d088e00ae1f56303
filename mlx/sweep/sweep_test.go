package sweep

import (
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/train"
)

func backend(t testing.TB) compute.Backend {
	t.Helper()
	mlx.Output = io.Discard
	b, err := mlx.Backend()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func spirals(t testing.TB) (*data.Dataset, train.LossFn) {
	t.Helper()
	ds, err := data.TwoSpirals(256, 1.5, 0.05, 1)
	if err != nil {
		t.Fatal(err)
	}
	mlp := models.MLPConfig{Hidden: []int{16, 16}, Outputs: 2, Activation: "tanh"}
	return ds, models.Classifier(mlp.Fn())
}

// Each batched run gives the losses of the same configuration trained alone by train.Run.
func TestBatchedMatchesRunsAlone(t *testing.T) {
	be := backend(t)
	ds, lossFn := spirals(t)
	runs := []Run{{Optimizer: "adam", Params: Params{"lr": 0.01}, Seed: 1}, {Optimizer: "adam", Params: Params{"lr": 0.03}, Seed: 2},
		{Optimizer: "sgd", Params: Params{"lr": 0.1}, Seed: 3},
		{Optimizer: "adan", Params: Params{"lr": 0.1, "beta2": 0.9}, Seed: 1}}
	opts := Options{Steps: 20, BatchSize: 32, LogEvery: 1}
	batched, err := Train(be, lossFn, ds, runs, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Sequential = true
	alone, err := Train(be, lossFn, ds, runs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(batched) != len(runs) || len(alone) != len(runs) {
		t.Fatalf("got %d batched and %d sequential histories, want %d", len(batched), len(alone), len(runs))
	}
	maxDiff := 0.0
	for i, r := range runs {
		b, a := batched[i], alone[i]
		if b.Name != a.Name || b.Seed != r.Seed || b.Optimizer != r.Optimizer || b.Params["lr"] != r.Params["lr"] {
			t.Fatalf("run %d: batched history %q/%s/%d/%v, alone %q/%s/%d/%v", i, b.Name, b.Optimizer, b.Seed, b.Params,
				a.Name, a.Optimizer, a.Seed, a.Params)
		}
		if b.Len() != opts.Steps || a.Len() != opts.Steps {
			t.Fatalf("run %d: %d batched and %d sequential records, want %d", i, b.Len(), a.Len(), opts.Steps)
		}
		for j := range b.Records {
			lb, la := b.Records[j].Loss, a.Records[j].Loss
			d := math.Abs(lb-la) / max(math.Abs(la), 1e-30)
			maxDiff = max(maxDiff, d)
			if d > 1e-5 {
				t.Errorf("run %d (%s seed %d) step %d: batched loss %.9g, alone %.9g", i, r.Label(), r.Seed, j+1, lb, la)
			}
		}
	}
	// The runs differ from one another (a batch that trained one run R times would fail above).
	if batched[0].Records[0].Loss == batched[1].Records[0].Loss {
		t.Fatalf("seeds 1 and 2 gave the same first loss: the runs are not independent")
	}
	t.Logf("largest relative difference of a batched loss from the run alone: %.3g", maxDiff)
}

func TestBatchedDivergedRunStops(t *testing.T) {
	be := backend(t)
	ds, lossFn := spirals(t)
	runs := []Run{{Optimizer: "sgd", Params: Params{"lr": 0.05}, Seed: 1}, {Optimizer: "sgd", Params: Params{"lr": 1e38}, Seed: 1}}
	hs, err := Train(be, lossFn, ds, runs, Options{Steps: 30, BatchSize: 32, LogEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	if hs[0].Len() != 3 {
		t.Fatalf("the stable run has %d records, want 3", hs[0].Len())
	}
	last, _ := hs[1].Last()
	if last.Metrics[DivergedMetric] != 1 || !math.IsNaN(last.Loss) && !math.IsInf(last.Loss, 0) || last.Step == 30 {
		t.Fatalf("the diverged run ends with %+v, want a non-finite loss marked diverged before step 30", last)
	}
}

func TestTrainRejectsBadConfigurations(t *testing.T) {
	be := backend(t)
	ds, lossFn := spirals(t)
	cases := map[string]struct {
		runs []Run
		opts Options
		want string
	}{
		"unknown optimizer": {[]Run{{Optimizer: "adamm"}}, Options{Steps: 1}, `unknown optimizer "adamm"`},
		"unknown param":     {[]Run{{Optimizer: "adam", Params: Params{"lr2": 1}}}, Options{Steps: 1}, `unknown hyperparameter "lr2"`},
		"bad value":         {[]Run{{Optimizer: "adam", Params: Params{"beta2": 1}}}, Options{Steps: 1}, "Beta2"},
		"no steps":          {[]Run{{Optimizer: "adam"}}, Options{}, "Steps=0"},
		"no runs":           {nil, Options{Steps: 1}, "no runs"},
		"batch size":        {[]Run{{Optimizer: "adam"}}, Options{Steps: 1, BatchSize: 1000}, "BatchSize"},
	}
	for name, c := range cases {
		_, err := Train(be, lossFn, ds, c.runs, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestHistoriesOfASweepWriteAsCSV(t *testing.T) {
	be := backend(t)
	ds, lossFn := spirals(t)
	var progress []Progress
	hs, err := Train(be, lossFn, ds, Grid("adam", map[string][]float64{"lr": {0.01, 0.1}}, 1), Options{
		Steps: 4, BatchSize: 32, LogEvery: 2,
		Progress: func(p Progress) error { progress = append(progress, p); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(progress) != 2 || progress[1].Step != 4 || progress[1].Runs != 2 || len(progress[1].Current) != 2 {
		t.Fatalf("progress calls: %+v", progress)
	}
	var b strings.Builder
	if err := history.WriteCSV(&b, hs...); err != nil {
		t.Fatalf("a learning-rate sweep does not write as CSV: %v", err)
	}
	back, err := history.ReadCSV(strings.NewReader(b.String()))
	if err != nil || len(back) != 2 || back[1].Params["lr"] != 0.1 {
		t.Fatalf("read back %v: %+v", err, back)
	}
}

// Steps that draw random numbers (AdaHessian's probes, dropout in the loss function) are
// batched too, each run drawing from its own random state: the losses equal those of the
// runs alone.
func TestRunsThatDrawRandomNumbersAreBatched(t *testing.T) {
	be := backend(t)
	ds, lossFn := spirals(t)
	mlp := models.MLPConfig{Hidden: []int{16, 16}, Outputs: 2, Activation: "tanh"}
	classify := models.Classifier(mlp.Fn())
	// dropout drops each input coordinate with probability 0.2 (inverted dropout).
	dropout := func(scope *model.Scope, inputs, labels []*graph.Node) *graph.Node {
		x := inputs[0]
		keep := graph.ConvertDType(graph.LessThan(scope.RandomUniform(x.Graph(), x.Shape()), graph.Scalar(x.Graph(), x.DType(), 0.8)), x.DType())
		return classify(scope, []*graph.Node{graph.DivScalar(graph.Mul(x, keep), 0.8)}, labels)
	}
	cases := []struct {
		name   string
		lossFn train.LossFn
		runs   []Run
	}{
		{"adahessian", lossFn, []Run{{Optimizer: "adahessian", Params: Params{"lr": 0.1}, Seed: 1},
			{Optimizer: "adahessian", Params: Params{"lr": 0.3}, Seed: 2}, {Optimizer: "adahessian", Params: Params{"lr": 0.1}, Seed: 2}}},
		{"dropout", dropout, []Run{{Optimizer: "adam", Params: Params{"lr": 0.01}, Seed: 1}, {Optimizer: "adam", Params: Params{"lr": 0.01}, Seed: 2}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := Options{Steps: 8, BatchSize: 32, LogEvery: 1}
			if _, err := trainBatch(be, c.lossFn, ds, c.runs, opts, 0, len(c.runs), false); !errors.Is(err, errDrawsRandom) {
				t.Fatalf("batching with a shared random state: error %v, want errDrawsRandom", err)
			}
			batched, err := Train(be, c.lossFn, ds, c.runs, opts)
			if err != nil {
				t.Fatal(err)
			}
			opts.Sequential = true
			alone, err := Train(be, c.lossFn, ds, c.runs, opts)
			if err != nil {
				t.Fatal(err)
			}
			for i := range c.runs {
				if batched[i].Len() != opts.Steps || alone[i].Len() != opts.Steps {
					t.Fatalf("run %d: %d batched and %d sequential records, want %d", i, batched[i].Len(), alone[i].Len(), opts.Steps)
				}
				for j := range batched[i].Records {
					lb, la := batched[i].Records[j].Loss, alone[i].Records[j].Loss
					if d := math.Abs(lb-la) / max(math.Abs(la), 1e-30); d > 1e-5 {
						t.Errorf("run %d (%s seed %d) step %d: batched loss %.9g, alone %.9g", i, c.runs[i].Label(), c.runs[i].Seed, j+1, lb, la)
					}
				}
			}
		})
	}
}

func TestTrainStopsWhenCancelled(t *testing.T) {
	be := backend(t)
	ds, lossFn := spirals(t)
	ctx, cancel := context.WithCancel(context.Background())
	hs, err := Train(be, lossFn, ds, Grid("adam", nil, 1, 2), Options{Steps: 50, BatchSize: 32, Context: ctx,
		Progress: func(p Progress) error {
			if p.Step == 5 {
				cancel()
			}
			return nil
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want one wrapping context.Canceled", err)
	}
	if len(hs) != 2 || hs[0].Len() != 5 {
		t.Fatalf("got %d histories, the first with %d records; want 2 stopped after step 5", len(hs), hs[0].Len())
	}
}

// Options.Test evaluates each run's final model on a held-out set: batched and sequential
// sweeps agree with train.Evaluate on the model of the same run trained alone.
func TestTestMetricsOfTheFinalModels(t *testing.T) {
	be := backend(t)
	ds, err := data.TwoSpirals(256, 1.5, 0.05, 1)
	if err != nil {
		t.Fatal(err)
	}
	test, err := data.TwoSpirals(200, 1.5, 0.05, 7)
	if err != nil {
		t.Fatal(err)
	}
	mlp := models.MLPConfig{Hidden: []int{16, 16}, Outputs: 2, Activation: "tanh"}
	lossFn := models.Classifier(mlp.Fn())
	metrics := map[string]train.MetricFn{"accuracy": models.Accuracy(mlp.Fn())}
	runs := []Run{{Optimizer: "adam", Params: Params{"lr": 0.03}, Seed: 1}, {Optimizer: "adam", Params: Params{"lr": 1e-4}, Seed: 2},
		{Optimizer: "sgd", Params: Params{"lr": 1e38}, Seed: 1}} // the last one diverges
	opts := Options{Steps: 40, BatchSize: 32, LogEvery: 10, Test: test, TestMetrics: metrics}

	// The reference: each run alone with train.Run, then train.Evaluate on its model.
	var want []map[string]float64
	for _, r := range runs[:2] {
		stepper, err := Stepper(r.Optimizer, r.Params)
		if err != nil {
			t.Fatal(err)
		}
		store := newStore()
		if _, err := train.Run(be, store, lossFn, ds, stepper, train.Config{Steps: opts.Steps, BatchSize: opts.BatchSize, Seed: r.Seed, LogEvery: opts.LogEvery}); err != nil {
			t.Fatal(err)
		}
		res, err := train.Evaluate(be, store, lossFn, test, metrics, 0)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, res)
	}
	if want[0]["accuracy"] == want[1]["accuracy"] {
		t.Fatalf("both reference runs have test accuracy %g: the test cannot tell the runs apart", want[0]["accuracy"])
	}
	for _, sequential := range []bool{false, true} {
		opts.Sequential = sequential
		hs, err := Train(be, lossFn, ds, runs, opts)
		if err != nil {
			t.Fatalf("sequential=%v: %v", sequential, err)
		}
		for i, w := range want {
			last, _ := hs[i].Last()
			if last.Step != opts.Steps {
				t.Fatalf("sequential=%v run %d: last record at step %d, want %d", sequential, i, last.Step, opts.Steps)
			}
			if got := last.Metrics["test_accuracy"]; got != w["accuracy"] {
				t.Errorf("sequential=%v run %d: test_accuracy %g, train.Evaluate of the run alone %g", sequential, i, got, w["accuracy"])
			}
			if got := last.Metrics["test_loss"]; math.Abs(got-w["loss"]) > 1e-5*math.Abs(w["loss"]) {
				t.Errorf("sequential=%v run %d: test_loss %.9g, train.Evaluate of the run alone %.9g", sequential, i, got, w["loss"])
			}
			for _, r := range hs[i].Records[:hs[i].Len()-1] {
				if _, ok := r.Metrics["test_loss"]; ok {
					t.Errorf("sequential=%v run %d: step %d has test metrics; only the last record should", sequential, i, r.Step)
				}
			}
		}
		last, _ := hs[2].Last()
		if last.Metrics[DivergedMetric] != 1 || len(last.Metrics) != 1 {
			t.Errorf("sequential=%v: the diverged run ends with metrics %v, want only %s", sequential, last.Metrics, DivergedMetric)
		}
	}

	if _, err := Train(be, lossFn, ds, runs, Options{Steps: 1, TestMetrics: metrics}); err == nil || !strings.Contains(err.Error(), "TestMetrics needs Options.Test") {
		t.Errorf("TestMetrics without Test: got error %v", err)
	}
	if _, err := Train(be, lossFn, ds, runs, Options{Steps: 1, Test: test, TestMetrics: map[string]train.MetricFn{"acc": nil}}); err == nil || !strings.Contains(err.Error(), `TestMetrics["acc"] is nil`) {
		t.Errorf("nil metric: got error %v", err)
	}
}
