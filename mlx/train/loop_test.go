package train_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/train"
)

var linearLoss = models.Regressor(models.MLPConfig{Outputs: 1}.Fn())

func sgd(lr float64) train.Stepper {
	return train.FirstOrder(optimizer.StochasticGradientDescent().WithLearningRate(lr).Done(), "sgd")
}

// weights returns the flat float32 values of every trainable variable, by path.
func weights(t *testing.T, store *model.Store) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for v := range store.IterVariables() {
		if !v.Trainable {
			continue
		}
		value, err := v.Value()
		if err != nil {
			t.Fatalf("reading %s: %v", v.Path(), err)
		}
		flat, ok := value.Value().([][]float32)
		if ok {
			var all []float32
			for _, row := range flat {
				all = append(all, row...)
			}
			out[v.Path()] = all
			continue
		}
		if vec, ok := value.Value().([]float32); ok {
			out[v.Path()] = vec
			continue
		}
		t.Fatalf("unexpected value type for %s: %T", v.Path(), value.Value())
	}
	return out
}

func TestRunFitsLinearRegression(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds := data.LinearRegression()
		store := model.NewStore()
		var calls int
		hist, err := train.Run(backend, store, linearLoss, ds, sgd(0.3), train.Config{
			Steps: 300, Seed: 1, LogEvery: 10,
			OnStep: func(h *history.History) error { calls++; return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(hist.Records) != 30 || calls != 30 {
			t.Fatalf("got %d records and %d OnStep calls, want 30 and 30", len(hist.Records), calls)
		}
		first, last := hist.Records[0], hist.Records[len(hist.Records)-1]
		if last.Step != 300 || last.Evals != 300 || hist.Optimizer != "sgd" || hist.Seed != 1 {
			t.Fatalf("bad last record %+v / history %q %q %d", last, hist.Name, hist.Optimizer, hist.Seed)
		}
		if !(last.Loss < 1e-6) || !(first.Loss > 100*last.Loss) {
			t.Fatalf("loss went from %g to %g, want < 1e-6", first.Loss, last.Loss)
		}
		w := weights(t, store)["/layer_0/dense/weights"]
		for i, want := range data.LinearTrueWeights {
			if math.Abs(float64(w[i])-want) > 1e-3 {
				t.Errorf("weight %d = %g, want %g", i, w[i], want)
			}
		}
	})
}

func TestRunIsSeeded(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds, err := data.TwoSpirals(64, 1, 0.05, 3)
		if err != nil {
			t.Fatal(err)
		}
		loss := models.Classifier(models.MLPConfig{Hidden: []int{8}, Outputs: 2, Activation: "tanh"}.Fn())
		run := func(seed int64) []float64 {
			hist, err := train.Run(backend, model.NewStore(), loss, ds, sgd(0.05), train.Config{Steps: 8, BatchSize: 16, Seed: seed})
			if err != nil {
				t.Fatal(err)
			}
			var out []float64
			for _, r := range hist.Records {
				out = append(out, r.Loss)
			}
			return out
		}
		a, b, c := run(7), run(7), run(8)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("same seed, different loss at step %d: %v vs %v", i+1, a, b)
			}
		}
		if a[0] == c[0] {
			t.Fatalf("different seeds gave the same first loss %g", a[0])
		}
	})
}

func TestRunStopsOnNonFinite(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds := data.LinearRegression()
		// An infinite learning rate makes the weights non-finite in step 1, whose loss (measured
		// before the update) is finite: the error must name the variable.
		hist, err := train.Run(backend, model.NewStore(), linearLoss, ds, sgd(math.Inf(1)), train.Config{Steps: 50, Seed: 1})
		var nf *train.NonFiniteError
		if !errors.As(err, &nf) {
			t.Fatalf("want a NonFiniteError, got %v", err)
		}
		if nf.Step != 1 || !strings.HasPrefix(nf.Variable, "/layer_0/dense/") {
			t.Fatalf("unexpected error %v (step %d, variable %q)", err, nf.Step, nf.Variable)
		}
		if !strings.Contains(err.Error(), "step 1:") || !strings.Contains(err.Error(), nf.Variable) || len(hist.Records) != 0 {
			t.Fatalf("error %q / %d records for failing step %d", err, len(hist.Records), nf.Step)
		}

		store := model.NewStore()
		hist, err = train.Run(backend, store, linearLoss, ds, sgd(1e18), train.Config{Steps: 50, Seed: 1, SkipNonFinite: true})
		if err != nil {
			t.Fatal(err)
		}
		skipped := 0
		for _, r := range hist.Records {
			skipped += int(r.Metrics["skipped"])
		}
		if skipped == 0 {
			t.Fatal("no step was recorded as skipped")
		}
		for path, vs := range weights(t, store) {
			for _, v := range vs {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("variable %s is not finite after skipping: %v", path, vs)
				}
			}
		}
	})
}

func TestEvaluateAccuracy(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds, err := data.TwoSpirals(200, 0.5, 0, 5)
		if err != nil {
			t.Fatal(err)
		}
		fn := models.MLPConfig{Hidden: []int{32, 32}, Outputs: 2, Activation: "tanh"}.Fn()
		opt := train.FirstOrder(optimizer.Adam().LearningRate(0.02).Done(), "adam")
		store := model.NewStore()
		hist, err := train.Run(backend, store, models.Classifier(fn), ds, opt, train.Config{
			Steps: 200, BatchSize: 50, Seed: 2, LogEvery: 100,
			Eval: ds, EvalMetrics: map[string]train.MetricFn{"accuracy": models.Accuracy(fn)},
		})
		if err != nil {
			t.Fatal(err)
		}
		last, _ := hist.Last()
		res, err := train.Evaluate(backend, store, models.Classifier(fn), ds,
			map[string]train.MetricFn{"accuracy": models.Accuracy(fn)}, 64)
		if err != nil {
			t.Fatal(err)
		}
		if res["accuracy"] < 0.9 {
			t.Fatalf("accuracy %g after training, want >= 0.9 (history %+v)", res["accuracy"], hist.Records)
		}
		if math.Abs(res["accuracy"]-last.Metrics["eval_accuracy"]) > 1e-6 ||
			math.Abs(res["loss"]-last.Metrics["eval_loss"]) > 1e-4*math.Max(1, res["loss"]) {
			t.Fatalf("Evaluate %v disagrees with the recorded eval metrics %v", res, last.Metrics)
		}
	})
}

func TestCheckpointResumeIsBitForBit(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds, err := data.TwoSpirals(64, 1, 0.05, 3)
		if err != nil {
			t.Fatal(err)
		}
		loss := models.Classifier(models.MLPConfig{Hidden: []int{8}, Outputs: 2}.Fn())
		adam := func() train.Stepper { return train.FirstOrder(optimizer.Adam().LearningRate(0.01).Done(), "adam") }
		cfg := train.Config{Steps: 12, BatchSize: 16, Seed: 11, CheckpointEvery: 5}

		cfg.CheckpointDir = t.TempDir()
		full := model.NewStore()
		want, err := train.Run(backend, full, loss, ds, adam(), cfg)
		if err != nil {
			t.Fatal(err)
		}

		cfg.CheckpointDir = t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		interrupted := cfg
		interrupted.Context = ctx
		interrupted.OnStep = func(h *history.History) error {
			if h.Records[len(h.Records)-1].Step == 7 {
				cancel()
			}
			return nil
		}
		if _, err := train.Run(backend, model.NewStore(), loss, ds, adam(), interrupted); !errors.Is(err, context.Canceled) {
			t.Fatalf("want an interruption error, got %v", err)
		}
		resumed := model.NewStore()
		got, err := train.Run(backend, resumed, loss, ds, adam(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		compareRuns(t, "resumed after an interruption at step 7", want, got, full, resumed)
		// A second Run with the finished checkpoint does nothing and returns the saved history.
		again, err := train.Run(backend, model.NewStore(), loss, ds, adam(), cfg)
		if err != nil || len(again.Records) != len(want.Records) {
			t.Fatalf("re-running a finished run: %d records, error %v", len(again.Records), err)
		}
		// A checkpoint of another run is refused.
		other := cfg
		other.Seed = 12
		if _, err := train.Run(backend, model.NewStore(), loss, ds, adam(), other); err == nil || !strings.Contains(err.Error(), "another run") {
			t.Fatalf("want an error for a checkpoint of another run, got %v", err)
		}
	})
}

func TestRunRejectsBadConfig(t *testing.T) {
	backend := mlxtest.Backends(t)[0].Backend
	ds := data.LinearRegression()
	for _, tc := range []struct {
		cfg  train.Config
		want string
	}{
		{train.Config{Steps: 0}, "Steps=0"},
		{train.Config{Steps: 1, BatchSize: 1000}, "BatchSize"},
		{train.Config{Steps: 1, LogEvery: -1}, "LogEvery=-1"},
		{train.Config{Steps: 1, CheckpointEvery: 2}, "CheckpointDir"},
	} {
		_, err := train.Run(backend, model.NewStore(), linearLoss, ds, sgd(0.1), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %+v: want an error mentioning %q, got %v", tc.cfg, tc.want, err)
		}
	}
	if _, err := train.Run(backend, model.NewStore(), linearLoss, ds, nil, train.Config{Steps: 1}); err == nil {
		t.Error("nil stepper accepted")
	}
	// A graph-building panic becomes an error with context.
	bad := models.Regressor(models.MLPConfig{Outputs: 2}.Fn()) // labels are [n, 1]
	if _, err := train.Run(backend, model.NewStore(), bad, ds, sgd(0.1), train.Config{Steps: 1}); err == nil ||
		!strings.Contains(err.Error(), "creating the model's variables") {
		t.Errorf("want a shape error with context, got %v", err)
	}
}
