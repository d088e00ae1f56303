package localsgd

import (
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/train"
)

func sgd(lr float64, decay bool) optimizer.Interface {
	return optimizer.StochasticGradientDescent().WithLearningRate(lr).WithDecay(decay)
}

func adam() optimizer.Interface { return optimizer.Adam().LearningRate(0.01).Done() }

func mustNew(t *testing.T, inner optimizer.Interface, cfg Config) *LocalSGD {
	t.Helper()
	l, err := New(inner, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

func TestNewRejectsBadHyperparameters(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"K=0", Config{Workers: 0, LocalSteps: 1}, "Workers (K) = 0: must be >= 1"},
		{"K<0", Config{Workers: -2, LocalSteps: 1}, "Workers (K) = -2"},
		{"H=0", Config{Workers: 2, LocalSteps: 0}, "LocalSteps (H) = 0: must be >= 1"},
		{"mu<0", Config{Workers: 2, LocalSteps: 1, ProxMu: -0.1}, "ProxMu = -0.1: must be finite and >= 0"},
		{"outer lr<0", Config{Workers: 2, LocalSteps: 1, Outer: &Outer{LR: -0.7}}, "Outer.LR = -0.7: must be finite and > 0"},
		{"outer lr=0", Config{Workers: 2, LocalSteps: 1, Outer: &Outer{LR: 0}}, "Outer.LR = 0"},
		{"momentum=1", Config{Workers: 2, LocalSteps: 1, Outer: &Outer{LR: 1, Momentum: 1}}, "Outer.Momentum = 1: must be in [0, 1)"},
		{"momentum<0", Config{Workers: 2, LocalSteps: 1, Outer: &Outer{LR: 1, Momentum: -0.5}}, "Outer.Momentum = -0.5"},
		{"shard count", Config{Workers: 2, LocalSteps: 1, ShardSizes: []int{3}}, "ShardSizes has 1 entries"},
		{"shard size", Config{Workers: 2, LocalSteps: 1, ShardSizes: []int{3, 0}}, "ShardSizes[1] = 0: must be > 0"},
		{"state", Config{Workers: 2, LocalSteps: 1, State: StateMode(7)}, "State = 7"},
		{"axis", Config{Workers: 2, LocalSteps: 1, WorkerAxis: 2}, "WorkerAxis = 2"},
		{"prefix", Config{Workers: 2, LocalSteps: 1, StorePrefix: "/"}, "StorePrefix"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(sgd(0.1, false), c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New(%+v) error = %v, want one containing %q", c.cfg, err, c.want)
			}
		})
	}
	if _, err := New(nil, Config{Workers: 1, LocalSteps: 1}); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Fatalf("New(nil optimizer) error = %v, want one saying it is nil", err)
	}
	if _, err := New(noGradientsOptimizer{}, Config{Workers: 1, LocalSteps: 1}); err == nil ||
		!strings.Contains(err.Error(), "UpdateGraphWithGradients") {
		t.Fatalf("New(optimizer without UpdateGraphWithGradients) error = %v", err)
	}
}

// noGradientsOptimizer is an optimizer.Interface without UpdateGraphWithGradients.
type noGradientsOptimizer struct{ optimizer.Interface }

func TestNames(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Workers: 8, LocalSteps: 5}, "fedavg(K=8,H=5)"},
		{Config{Workers: 4, LocalSteps: 2, Outer: DiLoCoOuter()}, "diloco(K=4,H=2)"},
		{Config{Workers: 4, LocalSteps: 2, ProxMu: 0.01}, "fedprox(K=4,H=2)"},
		{Config{Workers: 4, LocalSteps: 2, ProxMu: 0.01, Outer: DiLoCoOuter()}, "diloco+prox(K=4,H=2)"},
		{Config{Workers: 4, LocalSteps: 2, Name: "mine"}, "mine"},
	} {
		if got := mustNew(t, sgd(0.1, false), c.cfg).Name(); got != c.want {
			t.Errorf("Name() = %q, want %q", got, c.want)
		}
	}
	if got := mustNew(t, sgd(0.1, false), Config{Workers: 3, LocalSteps: 1}).LossEvalsPerStep(); got != 3 {
		t.Errorf("LossEvalsPerStep() = %d, want 3 (one per worker)", got)
	}
}

// Config returns a copy: changing it, or the Config given to New, leaves the stepper as built.
func TestConfigIsACopy(t *testing.T) {
	cfg := Config{Workers: 2, LocalSteps: 1, ShardSizes: []int{1, 3}, Outer: DiLoCoOuter()}
	l := mustNew(t, sgd(0.1, false), cfg)
	cfg.ShardSizes[0], cfg.Outer.LR = 5, 0.1
	got := l.Config()
	got.ShardSizes[1], got.Outer.Momentum = 7, 0.5
	if c := l.Config(); !slices.Equal(c.ShardSizes, []int{1, 3}) || *c.Outer != *DiLoCoOuter() {
		t.Fatalf("Config() = ShardSizes %v, Outer %+v after changing copies: want [1 3] and %+v",
			c.ShardSizes, *c.Outer, *DiLoCoOuter())
	}
}

// With H = 1 and plain SGD, one round is one step of every worker from the same point,
// and the average of the K updates is one SGD step on the K-times larger batch.
func TestH1WithSGDEqualsLargeBatchSGD(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		const K, steps = 4, 3
		xs, ys := testData(1, steps, K)
		local := newTrainer(t, backend, mustNew(t, sgd(0.1, true), Config{Workers: K, LocalSteps: 1}), mlpLoss(false))
		large := newTrainer(t, backend, train.FirstOrder(sgd(0.1, true), "sgd"), mlpLoss(false))
		for s := range steps {
			lossLocal := local.step(xs[s], ys[s])
			lossLarge := large.step(flattenWorkers(xs[s]), flattenWorkers(ys[s]))
			assertClose(t, "loss", []float64{lossLocal}, []float64{lossLarge}, 1e-5)
		}
		want := large.values("/mlp/")
		if len(want) != 4 {
			t.Fatalf("large-batch model has %d variables, want 4", len(want))
		}
		for path, w := range want {
			assertClose(t, path, local.value(path), w, 1e-5)
		}
		if got := local.value("/global_step"); got[0] != steps {
			t.Errorf("global_step = %v after %d steps, want %d", got[0], steps, steps)
		}
	})
}

// With one worker, local SGD is plain training: at every round boundary the global
// model equals the model trained by the inner optimizer alone (its state kept).
func TestK1IsPlainTraining(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		const H, rounds = 3, 2
		xs, ys := testData(2, H*rounds, 1)
		local := newTrainer(t, backend, mustNew(t, adam(), Config{Workers: 1, LocalSteps: H}), mlpLoss(false))
		plain := newTrainer(t, backend, train.FirstOrder(adam(), "adam"), mlpLoss(false))
		var initial map[string][]float64
		for s := range H * rounds {
			local.step(xs[s], ys[s])
			plain.step(workerSlice(t, xs[s], 0), workerSlice(t, ys[s], 0))
			if s == 0 {
				initial = local.values("/mlp/")
			}
			if s < H-1 {
				// Mid-round the global model has not moved.
				for path, w := range initial {
					assertClose(t, "mid-round "+path, local.value(path), w, 0)
				}
			}
		}
		for path, w := range plain.values("/mlp/") {
			assertClose(t, path, local.value(path), w, 1e-5)
			if maxDiff(w, initial[path]) == 0 {
				t.Errorf("%s did not change during training", path)
			}
		}
	})
}

// The end of a round averages every variable of the model (trainable weights and the
// batch-norm running statistics), with the FedAvg weights of the shard sizes: the
// result equals the weighted average of K independent plain trainings.
func TestAveragingCoversEveryVariable(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		const K, H = 2, 2
		sizes := []int{1, 3}
		xs, ys := testData(3, H, K)
		l := mustNew(t, sgd(0.05, true), Config{Workers: K, LocalSteps: H, ShardSizes: sizes})
		local := newTrainer(t, backend, l, mlpLoss(true))
		for s := range H {
			local.step(xs[s], ys[s])
		}

		want := make(map[string][]float64)
		for k := range K {
			plain := newTrainer(t, backend, train.FirstOrder(sgd(0.05, true), "sgd"), mlpLoss(true))
			for s := range H {
				plain.step(workerSlice(t, xs[s], k), workerSlice(t, ys[s], k))
			}
			for path, v := range plain.values("/mlp/") {
				if want[path] == nil {
					want[path] = make([]float64, len(v))
				}
				for i := range v {
					want[path][i] += v[i] * float64(sizes[k]) / 4
				}
			}
		}
		comm, err := l.Communication()
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for path := range want {
			paths = append(paths, path)
		}
		slices.Sort(paths)
		averaged := slices.Sorted(slices.Values(comm.Variables))
		if !slices.Equal(averaged, paths) {
			t.Fatalf("averaged variables %v, want every model variable %v", averaged, paths)
		}
		if !slices.Contains(paths, "/mlp/bn/mean") {
			t.Fatalf("model variables %v lack the batch-norm running mean", paths)
		}
		for _, path := range paths {
			assertClose(t, path, local.value(path), want[path], 1e-5)
		}
	})
}

// DiLoCo with outer SGD lr 1 and no momentum is FedAvg.
func TestDiLoCoWithOuterLR1IsFedAvg(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		const K, H, rounds = 3, 2, 3
		xs, ys := testData(4, H*rounds, K)
		fedavg := newTrainer(t, backend, mustNew(t, adam(), Config{Workers: K, LocalSteps: H}), mlpLoss(false))
		diloco := newTrainer(t, backend, mustNew(t, adam(),
			Config{Workers: K, LocalSteps: H, Outer: &Outer{LR: 1, Momentum: 0}}), mlpLoss(false))
		for s := range H * rounds {
			fedavg.step(xs[s], ys[s])
			diloco.step(xs[s], ys[s])
		}
		for path, w := range fedavg.values("/mlp/") {
			// Only the rounding of theta - (theta - average) separates them.
			assertClose(t, path, diloco.value(path), w, 1e-6)
		}
	})
}

// DiLoCo's Nesterov outer step after the first round: buf = delta and
// theta_1 = theta_0 - lr*(delta + momentum*buf), with delta = theta_0 - FedAvg's theta_1.
func TestDiLoCoNesterovOuterStep(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		const K, H = 2, 2
		xs, ys := testData(5, H, K)
		l := mustNew(t, adam(), Config{Workers: K, LocalSteps: H, Outer: DiLoCoOuter()})
		diloco := newTrainer(t, backend, l, mlpLoss(false))
		fedavg := newTrainer(t, backend, mustNew(t, adam(), Config{Workers: K, LocalSteps: H}), mlpLoss(false))
		diloco.step(xs[0], ys[0])
		theta0 := diloco.values("/mlp/") // The global model does not move mid-round.
		diloco.step(xs[1], ys[1])
		for s := range H {
			fedavg.step(xs[s], ys[s])
		}
		for path, avg := range fedavg.values("/mlp/") {
			delta := make([]float64, len(avg))
			want := make([]float64, len(avg))
			for i := range avg {
				delta[i] = theta0[path][i] - avg[i]
				want[i] = theta0[path][i] - 0.7*(delta[i]+0.9*delta[i])
			}
			assertClose(t, path, diloco.value(path), want, 1e-5)
			assertClose(t, "momentum of "+path, diloco.value(l.MomentumPath(path)), delta, 1e-5)
		}
	})
}

// FedProx adds mu*(w - w_global) to the gradient: with one worker and SGD,
// w2 = w1 - lr*(g(w1) + mu*(w1 - w0)), where plain SGD gives w1 and w1 - lr*g(w1).
func TestFedProxGradient(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		const lr, mu = 0.1, 0.5
		xs, ys := testData(6, 2, 1)
		prox := newTrainer(t, backend, mustNew(t, sgd(lr, false), Config{Workers: 1, LocalSteps: 2, ProxMu: mu}), mlpLoss(false))
		plain := newTrainer(t, backend, train.FirstOrder(sgd(lr, false), "sgd"), mlpLoss(false))
		prox.step(xs[0], ys[0])
		w0 := prox.values("/mlp/")
		plain.step(workerSlice(t, xs[0], 0), workerSlice(t, ys[0], 0))
		w1 := plain.values("/mlp/")
		plain.step(workerSlice(t, xs[1], 0), workerSlice(t, ys[1], 0))
		prox.step(xs[1], ys[1])
		for path, w2 := range plain.values("/mlp/") {
			want := make([]float64, len(w2))
			for i := range w2 {
				want[i] = w2[i] - lr*mu*(w1[path][i]-w0[path][i])
			}
			assertClose(t, path, prox.value(path), want, 1e-5)
			if maxDiff(want, w2) < 1e-4 {
				t.Errorf("%s: the proximal term made no measurable difference: the test is not sharp", path)
			}
		}
	})
}

// ResetState restarts the optimizer every round: with one worker it equals plain Adam
// whose moments and step counter are zeroed every H steps.
func TestResetStateRestartsTheOptimizer(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		const H, rounds = 2, 2
		xs, ys := testData(7, H*rounds, 1)
		local := newTrainer(t, backend, mustNew(t, adam(), Config{Workers: 1, LocalSteps: H, State: ResetState}), mlpLoss(false))
		kept := newTrainer(t, backend, mustNew(t, adam(), Config{Workers: 1, LocalSteps: H}), mlpLoss(false))
		plain := newTrainer(t, backend, train.FirstOrder(adam(), "adam"), mlpLoss(false))
		for s := range H * rounds {
			if s > 0 && s%H == 0 {
				for v := range plain.store.IterVariables() {
					if strings.HasPrefix(v.Path(), "/AdamOptimizer/") {
						zeros := tensors.FromShape(v.Shape())
						if err := v.SetValue(zeros); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			local.step(xs[s], ys[s])
			kept.step(xs[s], ys[s])
			plain.step(workerSlice(t, xs[s], 0), workerSlice(t, ys[s], 0))
		}
		for path, w := range plain.values("/mlp/") {
			assertClose(t, path, local.value(path), w, 1e-5)
			if maxDiff(kept.value(path), w) < 1e-6 {
				t.Errorf("%s: keeping the state gives the same model as resetting it: the test is not sharp", path)
			}
		}
	})
}

// AverageState averages the optimizer states at the end of a round: every worker's
// Adam moments become the mean of what the workers computed.
func TestAverageStateAveragesTheOptimizer(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		const K = 2
		xs, ys := testData(8, 1, K)
		la := mustNew(t, adam(), Config{Workers: K, LocalSteps: 1, State: AverageState})
		lk := mustNew(t, adam(), Config{Workers: K, LocalSteps: 1})
		averaged := newTrainer(t, backend, la, mlpLoss(false))
		kept := newTrainer(t, backend, lk, mlpLoss(false))
		averaged.step(xs[0], ys[0])
		kept.step(xs[0], ys[0])
		comm, err := la.Communication()
		if err != nil {
			t.Fatal(err)
		}
		moments := 0
		for _, path := range comm.OptimizerVariables {
			if !strings.Contains(path, "_moment") {
				continue
			}
			moments++
			k0, k1 := kept.value(lk.WorkerPath(0, path)), kept.value(lk.WorkerPath(1, path))
			if maxDiff(k0, k1) == 0 {
				t.Fatalf("%s: the workers' moments are equal before averaging: the test is not sharp", path)
			}
			mean := make([]float64, len(k0))
			for i := range k0 {
				mean[i] = (k0[i] + k1[i]) / 2
			}
			for k := range K {
				assertClose(t, "averaged "+path, averaged.value(la.WorkerPath(k, path)), mean, 1e-6)
			}
		}
		if moments != 8 {
			t.Fatalf("found %d Adam moment variables in %v, want 8 (2 per model variable)", moments, comm.OptimizerVariables)
		}
	})
}

// The floats sent per round: the model (trainable + batch-norm statistics), and with
// Adam's state averaged, two moments per parameter and a step counter on top.
func TestCommunicationCounts(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		const K = 3
		l := mustNew(t, adam(), Config{Workers: K, LocalSteps: 2, State: AverageState})
		if _, err := l.Communication(); err == nil {
			t.Fatal("Communication() before any step was built: want an error")
		}
		tr := newTrainer(t, backend, l, mlpLoss(true))
		xs, ys := testData(9, 1, K)
		tr.step(xs[0], ys[0])
		comm, err := l.Communication()
		if err != nil {
			t.Fatal(err)
		}
		trainable := testIn*testHidden + testHidden + testHidden*testOut + testOut + 2*testHidden // + BN scale, offset
		state := 2 * testHidden                                                                   // BN mean and variance
		if comm.Trainable != trainable || comm.ModelState != state {
			t.Fatalf("Trainable=%d ModelState=%d, want %d and %d", comm.Trainable, comm.ModelState, trainable, state)
		}
		if comm.Optimizer != 2*trainable+1 {
			t.Fatalf("Optimizer=%d, want %d (two moments per parameter and a step counter)", comm.Optimizer, 2*trainable+1)
		}
		if comm.PerWorker(false) != trainable+state || comm.Total(true) != K*(3*trainable+state+1) ||
			comm.Sent() != comm.Total(true) {
			t.Fatalf("PerWorker(false)=%d Total(true)=%d Sent()=%d", comm.PerWorker(false), comm.Total(true), comm.Sent())
		}
		var table strings.Builder
		if err := comm.WriteTable(&table); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(table.String(), "model + optimizer state") {
			t.Fatalf("table lacks the optimizer row:\n%s", table.String())
		}
	})
}

// Inputs without the leading axis of the K workers are rejected with a message naming them.
func TestBadInputShape(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		tr := newTrainer(t, backend, mustNew(t, sgd(0.1, false), Config{Workers: 3, LocalSteps: 1}), mlpLoss(false))
		xs, ys := testData(10, 1, 2) // Two workers' batches for K = 3.
		_, err := tr.exec.Exec(xs[0], ys[0])
		if err == nil || !strings.Contains(err.Error(), "inputs[0] has shape") ||
			!strings.Contains(err.Error(), "axis 0 (WorkerAxis) must be the 3 workers") {
			t.Fatalf("error = %v, want one naming inputs[0] and the 3 workers", err)
		}
	})
}
