package localsgd

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/train"
)

// requireDevices skips the test where the backend has fewer than K devices.
func requireDevices(t *testing.T, backend compute.Backend, K int) {
	t.Helper()
	if n := backend.NumDevices(); n < K {
		t.Skipf("backend %q has %d device(s): the distributed mode needs K=%d (one per worker)", backend.Name(), n, K)
	}
}

// The distributed mode (one worker per device, an all-reduce per round) gives the
// same losses and the same global model as the in-graph simulation through
// mlx/train's Run, for FedAvg (weighted by shard sizes, batch-norm statistics
// averaged too), DiLoCo (Nesterov outer step), and Adam's state averaged.
func TestDistributedMatchesInGraph(t *testing.T) {
	cases := []struct {
		name  string
		K, H  int
		steps int
		bn    bool
		inner func() optimizer.Interface
		cfg   Config
	}{
		{"fedavg-weighted-bn-K2", 2, 3, 9, true, func() optimizer.Interface { return sgd(0.05, true) },
			Config{ShardSizes: []int{1, 3}}},
		{"diloco-adam-K4", 4, 2, 8, false, adam, Config{Outer: DiLoCoOuter()}},
		{"fedavg-adam-average-state-K2", 2, 2, 6, false, adam, Config{State: AverageState}},
		{"fedprox-reset-K4", 4, 2, 6, false, adam, Config{ProxMu: 0.1, State: ResetState, ShardSizes: []int{1, 2, 3, 4}}},
	}
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				requireDevices(t, backend, c.K)
				ds := workerDataset(t, 1, 40, c.K)
				runCfg := train.Config{Steps: c.steps, BatchSize: 5, Seed: 3, LogEvery: 2, Eval: evalDataset(t)}
				cfg := c.cfg
				cfg.Workers, cfg.LocalSteps, cfg.WorkerAxis = c.K, c.H, 1

				inGraph := mustNew(t, c.inner(), cfg)
				storeA := model.NewStore()
				histA, err := train.Run(backend, storeA, mlpLoss(c.bn), ds, inGraph, runCfg)
				if err != nil {
					t.Fatalf("in-graph run: %v", err)
				}
				dist := mustNew(t, c.inner(), cfg)
				storeB := model.NewStore()
				histB, err := dist.RunDistributed(backend, storeB, mlpLoss(c.bn), ds, runCfg)
				if err != nil {
					t.Fatalf("distributed run: %v", err)
				}

				lossA, _ := histA.Column("loss")
				lossB, _ := histB.Column("loss")
				if records := (c.steps + 1) / 2; len(lossA) != records || len(lossB) != records {
					t.Fatalf("histories have %d and %d records, want %d", len(lossA), len(lossB), records)
				}
				// The global model is evaluated alike (Config.Eval).
				evalA, _ := histA.Column("eval_loss")
				evalB, _ := histB.Column("eval_loss")
				if len(evalA) != len(lossA) || len(evalB) != len(evalA) {
					t.Fatalf("eval_loss has %d (in-graph) and %d (distributed) values, want %d", len(evalA), len(evalB), len(lossA))
				}
				assertClose(t, "eval_loss", evalB, evalA, 1e-5)
				lastA, _ := histA.Last()
				lastB, _ := histB.Last()
				if lastB.Evals != lastA.Evals || histB.Name != histA.Name {
					t.Errorf("distributed history %q evals %d, want %q and %d", histB.Name, lastB.Evals, histA.Name, lastA.Evals)
				}
				assertClose(t, "loss", lossB, lossA, 1e-5)
				t.Logf("losses: max |difference| %.3g (bit-for-bit: %v)", maxDiff(lossA, lossB), slices.Equal(lossA, lossB))

				want := storeValues(t, storeA, "/mlp/")
				got := storeValues(t, storeB, "/mlp/")
				if len(want) == 0 || len(got) != len(want) {
					t.Fatalf("distributed model has %d variables, in-graph %d", len(got), len(want))
				}
				worst, bitwise := 0.0, true
				for path, w := range want {
					assertClose(t, path, got[path], w, 1e-5)
					worst = math.Max(worst, maxDiff(got[path], w))
					bitwise = bitwise && slices.Equal(got[path], w)
				}
				t.Logf("final global model: max |difference| %.3g (bit-for-bit: %v)", worst, bitwise)
				if cfg.Outer != nil {
					for path := range want {
						assertClose(t, "momentum "+path, storeValue(t, storeB, dist.MomentumPath(path)),
							storeValue(t, storeA, inGraph.MomentumPath(path)), 1e-5)
					}
				}
				// Steps were counted alike.
				for _, p := range []string{"/global_step", dist.StepPath()} {
					if a, b := storeValue(t, storeA, p), storeValue(t, storeB, p); !slices.Equal(a, b) {
						t.Errorf("%s = %v distributed, %v in-graph", p, b, a)
					}
				}

				commA, err := inGraph.Communication()
				if err != nil {
					t.Fatal(err)
				}
				commB, err := dist.Communication()
				if err != nil {
					t.Fatal(err)
				}
				if commA.Sent() != commB.Sent() || commA.PerWorker(false) != commB.PerWorker(false) {
					t.Errorf("communication distributed %+v, in-graph %+v", commB, commA)
				}
			})
		}
	})
}

// The Distributed stepper counts what its all-reduce moves per round: the model, plus
// the optimizer state when it is averaged; each device starts its worker from the
// global model and ends the round with the same model as the others.
func TestDistributedAllReduceCount(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		const K = 2
		requireDevices(t, backend, K)
		for _, state := range []StateMode{KeepState, AverageState} {
			l := mustNew(t, adam(), Config{Workers: K, LocalSteps: 1, State: state})
			store := model.NewStore()
			if err := train.SeedStore(store, 1); err != nil {
				t.Fatal(err)
			}
			xs, ys := testData(12, 1, K)
			if err := l.createVariables(backend, store, mlpLoss(true), []*tensors.Tensor{xs[0]}, []*tensors.Tensor{ys[0]}); err != nil {
				t.Fatal(err)
			}
			d, err := l.NewDistributed(backend, store, mlpLoss(true))
			if err != nil {
				t.Fatal(err)
			}
			xw, err := l.splitHost("inputs", []*tensors.Tensor{xs[0]})
			if err != nil {
				t.Fatal(err)
			}
			yw, err := l.splitHost("labels", []*tensors.Tensor{ys[0]})
			if err != nil {
				t.Fatal(err)
			}
			losses, err := d.Step(xw, yw)
			if err != nil {
				t.Fatal(err)
			}
			// Every device holds the same new global model after the all-reduce.
			for _, v := range d.plan.modelVars {
				copies := d.copies[v].perDevice
				first := tensors.MustCopyFlatData[float32](copies[0])
				for k, c := range copies[1:] {
					if !slices.Equal(first, tensors.MustCopyFlatData[float32](c)) {
						t.Fatalf("%s: device %d's global model differs from device 0's", v.Path(), k+1)
					}
				}
			}
			d.Finalize()
			if len(losses) != K || losses[0] == losses[1] {
				t.Fatalf("losses %v: want one per worker, different", losses)
			}
			comm, err := l.Communication()
			if err != nil {
				t.Fatal(err)
			}
			if d.ReducedPerRound() != comm.PerWorker(state == AverageState) {
				t.Errorf("state %s: the all-reduce moved %d floats per device, Communication says %d",
					state, d.ReducedPerRound(), comm.PerWorker(state == AverageState))
			}
		}
	})
}

// Without enough devices, RunDistributed says so (ErrTooFewDevices); options it does
// not support are rejected by name.
func TestRunDistributedErrors(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		K := backend.NumDevices() + 1
		ds := workerDataset(t, 2, 10, K)
		l := mustNew(t, sgd(0.1, false), Config{Workers: K, LocalSteps: 1, WorkerAxis: 1})
		_, err := l.RunDistributed(backend, model.NewStore(), mlpLoss(false), ds, train.Config{Steps: 1, BatchSize: 2})
		if !errors.Is(err, ErrTooFewDevices) {
			t.Fatalf("K=%d on %d devices: error = %v, want ErrTooFewDevices", K, backend.NumDevices(), err)
		}
		l = mustNew(t, sgd(0.1, false), Config{Workers: 1, LocalSteps: 1, WorkerAxis: 1})
		for _, c := range []struct {
			cfg  train.Config
			want string
		}{
			{train.Config{Steps: 1, SkipNonFinite: true}, "SkipNonFinite"},
			{train.Config{Steps: 1, CheckpointDir: t.TempDir()}, "checkpoints"},
			{train.Config{Steps: 1, EvalMetrics: map[string]train.MetricFn{"loss2": nil}}, "EvalMetrics needs Config.Eval"},
			{train.Config{Steps: 0}, "Steps=0"},
		} {
			_, err := l.RunDistributed(backend, model.NewStore(), mlpLoss(false), ds, c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("config %+v: error = %v, want one containing %q", c.cfg, err, c.want)
			}
		}
	})
}

// With K = 1 the distributed mode runs on one device (no device needed beyond the
// first) and equals the in-graph simulation on every backend.
func TestDistributedK1(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds := workerDataset(t, 4, 20, 1)
		runCfg := train.Config{Steps: 4, BatchSize: 4, Seed: 1}
		cfg := Config{Workers: 1, LocalSteps: 2, WorkerAxis: 1, Outer: DiLoCoOuter()}
		a, b := mustNew(t, adam(), cfg), mustNew(t, adam(), cfg)
		storeA, storeB := model.NewStore(), model.NewStore()
		histA, err := train.Run(backend, storeA, mlpLoss(false), ds, a, runCfg)
		if err != nil {
			t.Fatal(err)
		}
		histB, err := b.RunDistributed(backend, storeB, mlpLoss(false), ds, runCfg)
		if err != nil {
			t.Fatal(err)
		}
		lossA, _ := histA.Column("loss")
		lossB, _ := histB.Column("loss")
		assertClose(t, "loss", lossB, lossA, 1e-5)
		for path, w := range storeValues(t, storeA, "/mlp/") {
			assertClose(t, path, storeValue(t, storeB, path), w, 1e-5)
		}
	})
}

// evalDataset is a held-out regression set for the loss function itself (no worker axis).
func evalDataset(t *testing.T) *data.Dataset {
	t.Helper()
	xs, ys := testData(99, 1, 1)
	x, y := workerSlice(t, xs[0], 0), workerSlice(t, ys[0], 0)
	ds, err := data.New("eval", []data.Column{{Dims: []int{testIn}, Float32: tensors.MustCopyFlatData[float32](x)}},
		[]data.Column{{Dims: []int{testOut}, Float32: tensors.MustCopyFlatData[float32](y)}})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// dropoutLoss is mlpLoss(false) with dropout (rate 0.5) after the hidden layer: each
// evaluation draws from the Store's random state.
func dropoutLoss(scope *model.Scope, inputs, labels []*Node) *Node {
	x, y := inputs[0], labels[0]
	s := scope.In("mlp")
	w1 := s.In("hidden").WithInitializer(fixedInit(0.1)).VariableWithShape("weights", shapes.Make(x.DType(), testIn, testHidden))
	h := Tanh(Dot(x, w1.NodeValue(x.Graph())).Product())
	h = layers.DropoutStatic(scope, h, 0.5)
	w2 := s.In("output").WithInitializer(fixedInit(2.3)).VariableWithShape("weights", shapes.Make(x.DType(), testHidden, testOut))
	return ReduceAllMean(Square(Sub(Dot(h, w2.NodeValue(x.Graph())).Product(), y)))
}

// In the distributed mode every device draws its own random numbers (dropout masks),
// as the workers of the in-graph simulation do: given the same batch, two workers get
// different losses; and the draws are reproducible from the Store's seed.
func TestDistributedWorkersDrawTheirOwnRandomNumbers(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		const K = 2
		requireDevices(t, backend, K)
		run := func() []float64 {
			l := mustNew(t, optimizer.StochasticGradientDescent().WithLearningRate(0.1).Done(), Config{Workers: K, LocalSteps: 4})
			store := model.NewStore()
			if err := train.SeedStore(store, 3); err != nil {
				t.Fatal(err)
			}
			xs, ys := testData(5, 1, K)
			if err := l.createVariables(backend, store, dropoutLoss, []*tensors.Tensor{xs[0]}, []*tensors.Tensor{ys[0]}); err != nil {
				t.Fatal(err)
			}
			d, err := l.NewDistributed(backend, store, dropoutLoss)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Finalize()
			var all []float64
			for range 2 {
				// The same batch for both workers (a tensor of its own for each device).
				same := [][]*tensors.Tensor{{workerSlice(t, xs[0], 0)}, {workerSlice(t, xs[0], 0)}}
				labels := [][]*tensors.Tensor{{workerSlice(t, ys[0], 0)}, {workerSlice(t, ys[0], 0)}}
				losses, err := d.Step(same, labels)
				if err != nil {
					t.Fatal(err)
				}
				if losses[0] == losses[1] {
					t.Fatalf("the two workers had the same batch and got the same loss %v: the same dropout masks", losses)
				}
				all = append(all, losses...)
			}
			return all
		}
		first, second := run(), run()
		if !slices.Equal(first, second) {
			t.Errorf("two runs from the same seed gave losses %v and %v", first, second)
		}
	})
}
