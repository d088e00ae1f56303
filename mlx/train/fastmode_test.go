package train_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
	"github.com/goptlab/goptlab/mlx/zo"
)

// infStateAt wraps a stepper: at its k-th step it sets a float state variable of its own,
// one the loss never reads, to +Inf (from 0): the loss and the model stay finite, so only
// the check of the updated variables can see it.
type infStateAt struct {
	train.Stepper
	k int
}

func (s infStateAt) BuildStep(scope *model.Scope, lossFn train.LossFn, inputs, labels []*graph.Node) *graph.Node {
	loss := s.Stepper.BuildStep(scope, lossFn, inputs, labels)
	g := loss.Graph()
	st := scope.Store().Scope("/inf_test").WithInitializer(graph.Zeros)
	counter := st.VariableWithShape("steps", shapes.Make(dtypes.Int64)).SetTrainable(false)
	n := graph.AddScalar(counter.NodeValue(g), 1)
	counter.SetNodeValue(n)
	acc := st.VariableWithShape("acc", shapes.Make(dtypes.Float32, 3)).SetTrainable(false)
	inf := graph.Where(graph.Equal(n, graph.Const(g, int64(s.k))),
		graph.Scalar(g, dtypes.Float32, math.Inf(1)), graph.Scalar(g, dtypes.Float32, 0))
	acc.SetNodeValue(graph.Add(acc.NodeValue(g), inf))
	return loss
}

// TestFastModeFindsTheNonFiniteStep runs with LogEvery > 1, where a step checks only its
// loss and the loop checks the variables when it reads the state, going back to its last
// copy of them and replaying the steps to find the first non-finite one. The error (step,
// names), the history and every value left in the Store must be those of the same run with
// LogEvery 1, which checks every step in its graph: for a NaN loss at step 8 (which makes
// the model NaN), and for an optimizer-like variable that alone becomes +Inf at step 8.
func TestFastModeFindsTheNonFiniteStep(t *testing.T) {
	for _, kSteps := range [][2]int{{8, 12}, {230, 240}} {
		t.Run(fmt.Sprintf("step %d", kSteps[0]), func(t *testing.T) { testFastModeFindsTheNonFiniteStep(t, kSteps[0], kSteps[1]) })
	}
}

// testFastModeFindsTheNonFiniteStep is TestFastModeFindsTheNonFiniteStep for a NaN at step k
// of a run of the given steps (at step 230, the replay starts from the copy of step 200).
func testFastModeFindsTheNonFiniteStep(t *testing.T, k, steps int) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds := spirals(t)
		adam := func() train.Stepper {
			cfg := optim.DefaultAdam()
			cfg.LR = 0.01
			return train.FirstOrder(must(optim.NewAdam(cfg)), "adam")
		}
		loss := models.Classifier(smallMLP.Fn())
		cases := []struct {
			name    string
			loss    train.LossFn
			stepper func() train.Stepper
			first   string // NonFiniteError.Variable
			want    string // a name nf.All must hold
		}{
			{"nan loss", nanAtStep(k, loss), adam, "loss", "/layer_0/dense/weights"},
			{"inf state only", loss, func() train.Stepper { return infStateAt{adam(), k} }, "/inf_test/acc", "/inf_test/acc"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				run := func(logEvery int) (*train.NonFiniteError, []float64, map[string][]uint64) {
					store := model.NewStore()
					hist, err := train.Run(backend, store, c.loss, ds, c.stepper(),
						train.Config{Steps: steps, BatchSize: 16, Seed: 3, LogEvery: logEvery})
					var nf *train.NonFiniteError
					if !errors.As(err, &nf) {
						t.Fatalf("LogEvery %d: want a NonFiniteError, got %v", logEvery, err)
					}
					var ls []float64
					for _, r := range hist.Records {
						ls = append(ls, r.Loss)
					}
					return nf, ls, storeBits(t, store)
				}
				want, wantLosses, wantStore := run(1)
				if want.Step != k || want.Variable != c.first || !slices.Contains(want.All, c.want) {
					t.Fatalf("LogEvery 1: %v; want step %d, first %s, naming %s", want, k, c.first, c.want)
				}
				logEverys := []int{2, 3, 5, 20}
				if k > 100 {
					logEverys = []int{20, 50}
				}
				for _, logEvery := range logEverys {
					got, gotLosses, gotStore := run(logEvery)
					if got.Step != want.Step || !slices.Equal(got.All, want.All) {
						t.Errorf("LogEvery %d: %v; LogEvery 1: %v", logEvery, got, want)
					}
					// Records at multiples of LogEvery before step k, with LogEvery 1's losses.
					var expect []float64
					for s := logEvery; s < k; s += logEvery {
						expect = append(expect, wantLosses[s-1])
					}
					if !slices.Equal(gotLosses, expect) {
						t.Errorf("LogEvery %d: losses %v, want %v", logEvery, gotLosses, expect)
					}
					if fmt.Sprint(gotStore) != fmt.Sprint(wantStore) {
						t.Errorf("LogEvery %d: the Store differs from LogEvery 1's after the error:\n%v\nwant\n%v", logEvery, gotStore, wantStore)
					}
				}
			})
		}
	})
}

// TestFastModeKeepsTheTrajectory trains with LogEvery 1 (every step checked in the graph)
// and with larger LogEvery (fast mode), with checkpoints, and an interrupted run resumed:
// the losses at common steps and every variable's bits must be the same.
func TestFastModeKeepsTheTrajectory(t *testing.T) {
	const steps = 9
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds := spirals(t)
		loss := models.Classifier(dropoutMLP(8, 0.3))
		adan := func() train.Stepper { return train.FirstOrder(must(optim.NewAdan(optim.DefaultAdan())), "adan") }
		run := func(cfg train.Config) ([]float64, map[string][]uint64) {
			store := model.NewStore()
			hist, err := train.Run(backend, store, loss, ds, adan(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			ls := make([]float64, steps+1)
			for _, r := range hist.Records {
				ls[r.Step] = r.Loss
			}
			return ls, storeBits(t, store)
		}
		base := train.Config{Steps: steps, BatchSize: 16, Seed: 4}
		wantLosses, wantStore := run(base)
		for _, logEvery := range []int{2, 4} {
			cfg := base
			cfg.LogEvery = logEvery
			cfg.CheckpointDir, cfg.CheckpointEvery = t.TempDir(), 3
			short := cfg
			short.Steps = 5
			run(short)
			gotLosses, gotStore := run(cfg) // resumes from the checkpoint of step 5
			for s := 1; s <= steps; s++ {
				if gotLosses[s] != 0 && gotLosses[s] != wantLosses[s] {
					t.Errorf("LogEvery %d: step %d loss %v, LogEvery 1: %v", logEvery, s, gotLosses[s], wantLosses[s])
				}
			}
			if gotLosses[steps] == 0 {
				t.Errorf("LogEvery %d: no record of the last step", logEvery)
			}
			if fmt.Sprint(gotStore) != fmt.Sprint(wantStore) {
				t.Errorf("LogEvery %d: the Store differs from LogEvery 1's", logEvery)
			}
		}
	})
}

// TestStepsPerExecution runs several steps per execution (a while loop in the graph): on
// XLA its losses must follow the one-step-per-execution run's (the loop's body is compiled
// on its own, so not necessarily to the bit), a run resumed from a checkpoint, its chunks cut elsewhere (by
// checkpoints every 3 steps), must give the uninterrupted run's bits, as must a Session's runs, and a NaN must stop the run in its step, naming the variables.
// The pure-Go backend, and an AfterStepper, must be refused with an error.
func TestStepsPerExecution(t *testing.T) {
	const steps = 20
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds := spirals(t)
		loss := models.Classifier(dropoutMLP(8, 0.3))
		adam := func() train.Stepper { return train.FirstOrder(must(optim.NewAdam(optim.DefaultAdam())), "adam") }
		cfg := train.Config{Steps: steps, BatchSize: 16, Seed: 6, LogEvery: 5, StepsPerExecution: 4}
		if strings.HasSuffix(t.Name(), "/go") {
			_, err := train.Run(backend, model.NewStore(), loss, ds, adam(), cfg)
			if err == nil || !strings.Contains(err.Error(), "needs an XLA backend") {
				t.Fatalf("StepsPerExecution on the pure-Go backend: got %v", err)
			}
			return
		}
		zoStepper := must(zo.New(zo.Config{LR: 0.01, Epsilon: 1e-3, Directions: 1}))
		if _, err := train.Run(backend, model.NewStore(), loss, ds, zoStepper, cfg); err == nil || !strings.Contains(err.Error(), "AfterStep") {
			t.Fatalf("StepsPerExecution with an AfterStepper: got %v", err)
		}
		run := func(cfg train.Config) ([]float64, map[string][]uint64) {
			store := model.NewStore()
			hist, err := train.Run(backend, store, loss, ds, adam(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return losses(hist), storeBits(t, store)
		}
		one := cfg
		one.StepsPerExecution = 1
		oneLosses, _ := run(one)
		fullLosses, fullStore := run(cfg)
		if len(fullLosses) != steps/cfg.LogEvery {
			t.Fatalf("%d records, want %d", len(fullLosses), steps/cfg.LogEvery)
		}
		for i := range oneLosses {
			if d := math.Abs(fullLosses[i] - oneLosses[i]); d > 1e-5*math.Abs(oneLosses[i]) || math.IsNaN(d) {
				t.Errorf("record %d: loss %v with 4 steps per execution, %v with 1", i, fullLosses[i], oneLosses[i])
			}
		}
		resumed := cfg
		resumed.CheckpointDir, resumed.CheckpointEvery = t.TempDir(), 3
		short := resumed
		short.Steps = 10
		run(short)
		gotLosses, gotStore := run(resumed)
		if !slices.Equal(gotLosses, fullLosses) || fmt.Sprint(gotStore) != fmt.Sprint(fullStore) {
			t.Errorf("resumed at step 10: losses %v, uninterrupted %v; same Store: %v", gotLosses, fullLosses,
				fmt.Sprint(gotStore) == fmt.Sprint(fullStore))
		}

		sess := must(train.NewSession(backend, loss, ds))
		defer sess.Close()
		for i := range 2 {
			h, err := sess.Run(adam(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(losses(h), fullLosses) || fmt.Sprint(storeBits(t, sess.Store())) != fmt.Sprint(fullStore) {
				t.Errorf("Session run %d: losses %v, train.Run %v", i, losses(h), fullLosses)
			}
		}
		if sess.Compiles() != 1 {
			t.Errorf("the Session compiled %d times, want 1", sess.Compiles())
		}

		hist, err := train.Run(backend, model.NewStore(), nanAtStep(8, loss), ds, adam(), cfg)
		var nf *train.NonFiniteError
		if !errors.As(err, &nf) || nf.Step != 8 || !slices.Contains(nf.All, "/layer_0/dense/weights") {
			t.Fatalf("NaN at step 8: got %v", err)
		}
		if len(hist.Records) != 1 || hist.Records[0].Step != 5 {
			t.Errorf("NaN at step 8: records %+v, want the one of step 5", hist.Records)
		}
	})
}

// TestHostBatchesEqualDeviceBatches trains with the dataset on the device (batches gathered
// in the graph from row indices) and with batches gathered on the host (a dataset over the
// device limit), with LogEvery 1 and 3: the losses and every variable must have the same
// bits, and StepsPerExecution must be refused for the host path.
func TestHostBatchesEqualDeviceBatches(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds := spirals(t)
		loss := models.Classifier(dropoutMLP(8, 0.3))
		run := func(cfg train.Config) ([]float64, map[string][]uint64, error) {
			store := model.NewStore()
			hist, err := train.Run(backend, store, loss, ds, train.FirstOrder(must(optim.NewAdam(optim.DefaultAdam())), "adam"), cfg)
			if err != nil {
				return nil, nil, err
			}
			return losses(hist), storeBits(t, store), nil
		}
		for _, logEvery := range []int{1, 3} {
			cfg := train.Config{Steps: 9, BatchSize: 16, Seed: 8, LogEvery: logEvery}
			wantLosses, wantStore, err := run(cfg)
			if err != nil {
				t.Fatal(err)
			}
			restore := train.SetDeviceDataLimit(0)
			gotLosses, gotStore, err := run(cfg)
			restore()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(gotLosses, wantLosses) || fmt.Sprint(gotStore) != fmt.Sprint(wantStore) {
				t.Errorf("LogEvery %d: host batches give losses %v, device batches %v (same Store: %v)",
					logEvery, gotLosses, wantLosses, fmt.Sprint(gotStore) == fmt.Sprint(wantStore))
			}
		}
		if strings.HasSuffix(t.Name(), "/go") {
			return
		}
		restore := train.SetDeviceDataLimit(0)
		defer restore()
		_, _, err := run(train.Config{Steps: 4, BatchSize: 16, Seed: 8, LogEvery: 2, StepsPerExecution: 2})
		if err == nil || !strings.Contains(err.Error(), "needs the dataset on the device") {
			t.Fatalf("StepsPerExecution with host batches: got %v", err)
		}
	})
}
