package train_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/localsgd"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
	"github.com/goptlab/goptlab/mlx/zo"
)

// dropoutMLP is a small MLP classifier with dropout after its hidden layer (mlx/models has
// no dropout): it makes the training step draw from the Store's random state.
func dropoutMLP(hidden int, rate float64) models.Fn {
	return func(scope *model.Scope, x *graph.Node) *graph.Node {
		x = layers.DenseWithBias(scope.In("layer_0"), x, hidden)
		x = graph.Tanh(x)
		x = layers.DropoutStatic(scope, x, rate)
		return layers.DenseWithBias(scope.In("layer_1"), x, 2)
	}
}

// runSetup is one training problem of the resume and reproducibility tests: it returns a
// fresh stepper, its loss function and dataset (steppers keep per-run bookkeeping, so each
// run gets its own).
type runSetup struct {
	name  string
	build func(t testing.TB, seed int64) (train.Stepper, train.LossFn, *data.Dataset)
	batch int
}

// must returns v, panicking on err: for the constructors of test setups, whose
// arguments are constants.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func spirals(t testing.TB) *data.Dataset {
	return must(data.TwoSpirals(48, 1, 0.05, 3))
}

var smallMLP = models.MLPConfig{Hidden: []int{6}, Outputs: 2, Activation: "tanh"}

// firstOrder trains smallMLP with a fresh optimizer from newOpt.
func firstOrder[O optim.Optimizer](newOpt func() (O, error)) func(t testing.TB, seed int64) (train.Stepper, train.LossFn, *data.Dataset) {
	return func(t testing.TB, _ int64) (train.Stepper, train.LossFn, *data.Dataset) {
		opt := must(newOpt())
		return train.FirstOrder(opt, opt.Name()), models.Classifier(smallMLP.Fn()), spirals(t)
	}
}

// localSGD builds local SGD over K Dirichlet shards of the spirals, as in localsgd's example.
func localSGD(K int, outer *localsgd.Outer) func(t testing.TB, seed int64) (train.Stepper, train.LossFn, *data.Dataset) {
	return func(t testing.TB, seed int64) (train.Stepper, train.LossFn, *data.Dataset) {
		ds := spirals(t)
		shards := must(data.ShardDirichlet(ds.Labels()[0].Int32, K, 0.5, seed))
		sharded := must(localsgd.ShardedDataset(ds, shards))
		inner := must(optim.NewAdam(optim.DefaultAdam()))
		st := must(localsgd.New(inner, localsgd.Config{
			Workers: K, LocalSteps: 2, ShardSizes: shards.Sizes(), WorkerAxis: 1, Outer: outer,
		}))
		return st, models.Classifier(smallMLP.Fn()), sharded
	}
}

func resumeSetups() []runSetup {
	sgdCfg := optim.DefaultSGD()
	sgdCfg.LR, sgdCfg.Momentum = 0.1, 0.9
	adamCfg := optim.DefaultAdam()
	adamCfg.LR = 0.01
	adanCfg := optim.DefaultAdan()
	adanCfg.LR = 0.01
	ahCfg := optim.DefaultAdaHessian()
	ahCfg.LR = 0.05
	zoAdamCfg := optim.DefaultAdam()
	zoAdamCfg.LR = 0.01
	return []runSetup{
		{name: "sgd-momentum", build: firstOrder(func() (*optim.SGD, error) { return optim.NewSGD(sgdCfg) }), batch: 16},
		{name: "adam", build: firstOrder(func() (*optim.Adam, error) { return optim.NewAdam(adamCfg) }), batch: 16},
		{name: "adam-dropout", batch: 16, build: func(t testing.TB, _ int64) (train.Stepper, train.LossFn, *data.Dataset) {
			opt := must(optim.NewAdam(adamCfg))
			return train.FirstOrder(opt, "adam"), models.Classifier(dropoutMLP(8, 0.3)), spirals(t)
		}},
		{name: "adan", build: firstOrder(func() (*optim.Adan, error) { return optim.NewAdan(adanCfg) }), batch: 16},
		{name: "adahessian", build: firstOrder(func() (*optim.AdaHessian, error) { return optim.NewAdaHessian(ahCfg) }), batch: 16},
		{name: "sam", batch: 16, build: func(t testing.TB, _ int64) (train.Stepper, train.LossFn, *data.Dataset) {
			sam := must(optim.NewSAM(must(optim.NewAdam(adamCfg)), optim.DefaultSAM()))
			return sam, models.Classifier(smallMLP.Fn()), spirals(t)
		}},
		{name: "zo-sgd", batch: 16, build: func(t testing.TB, _ int64) (train.Stepper, train.LossFn, *data.Dataset) {
			st := must(zo.New(zo.Config{LR: 0.01, Epsilon: 1e-3, Directions: 2, Momentum: 0.5}))
			return st, models.Classifier(smallMLP.Fn()), spirals(t)
		}},
		{name: "zo-adam", batch: 16, build: func(t testing.TB, _ int64) (train.Stepper, train.LossFn, *data.Dataset) {
			st := must(zo.New(zo.Config{Epsilon: 1e-3, Directions: 1, Rule: must(optim.NewAdam(zoAdamCfg))}))
			return st, models.Classifier(smallMLP.Fn()), spirals(t)
		}},
		{name: "fedavg-K2", build: localSGD(2, nil), batch: 4},
		{name: "fedavg-K3", build: localSGD(3, nil), batch: 4},
		{name: "diloco-K4", build: localSGD(4, localsgd.DiLoCoOuter()), batch: 4},
	}
}

// storeBits returns the bits of every float variable of store (model, optimizer state)
// and the raw values of the others (random states, counters), by path.
func storeBits(t testing.TB, store *model.Store) map[string][]uint64 {
	t.Helper()
	out := map[string][]uint64{}
	for v := range store.IterVariables() {
		if !v.HasValue() {
			continue
		}
		value, err := v.Value()
		if err != nil {
			t.Fatalf("reading %s: %v", v.Path(), err)
		}
		var bits []uint64
		value.ConstFlatData(func(flat any) {
			switch x := flat.(type) {
			case []float32:
				for _, f := range x {
					bits = append(bits, uint64(math.Float32bits(f)))
				}
			case []float64:
				for _, f := range x {
					bits = append(bits, math.Float64bits(f))
				}
			case []uint64:
				bits = append(bits, x...)
			case []int64:
				for _, i := range x {
					bits = append(bits, uint64(i))
				}
			case []int32:
				for _, i := range x {
					bits = append(bits, uint64(uint32(i)))
				}
			case []bool:
				for _, b := range x {
					if b {
						bits = append(bits, 1)
					} else {
						bits = append(bits, 0)
					}
				}
			default:
				t.Fatalf("variable %s: unexpected flat type %T", v.Path(), flat)
			}
		})
		out[v.Path()] = bits
	}
	return out
}

func losses(h *history.History) []float64 {
	out := make([]float64, len(h.Records))
	for i, r := range h.Records {
		out[i] = r.Loss
	}
	return out
}

// compareRuns fails the test unless two runs recorded the same losses and left the same
// bits in every variable of their Stores.
func compareRuns(t *testing.T, what string, want, got *history.History, wantStore, gotStore *model.Store) {
	t.Helper()
	wl, gl := losses(want), losses(got)
	if len(wl) != len(gl) {
		t.Fatalf("%s: %d records, uninterrupted %d", what, len(gl), len(wl))
	}
	for j := range wl {
		if math.Float64bits(wl[j]) != math.Float64bits(gl[j]) || want.Records[j].Step != got.Records[j].Step {
			t.Fatalf("%s: record %d differs: losses %v, uninterrupted %v", what, j, gl, wl)
		}
	}
	wb, gb := storeBits(t, wantStore), storeBits(t, gotStore)
	if len(wb) != len(gb) {
		t.Errorf("%s: %d variables, uninterrupted %d", what, len(gb), len(wb))
	}
	for path, w := range wb {
		g, ok := gb[path]
		switch {
		case !ok:
			t.Errorf("%s: variable %s missing", what, path)
		case len(g) != len(w):
			t.Errorf("%s: variable %s has %d values, uninterrupted %d", what, path, len(g), len(w))
		case !slices.Equal(g, w):
			for j := range w {
				if w[j] != g[j] {
					t.Errorf("%s: variable %s[%d] has bits %#x, uninterrupted %#x", what, path, j, g[j], w[j])
					break
				}
			}
		}
	}
}

// copyFile copies src to dst (creating dst's directory).
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestResumeIsBitForBitForEveryStepper trains each stepper N=7 steps uninterrupted, with a
// checkpoint every 2 steps, and copies the checkpoint of step 4 aside while the run goes
// on (what a process killed during step 5 leaves behind). A fresh Store and a fresh stepper
// resume from that copy: every loss and every variable of the Store (model, optimizer
// state, random states, ZO's seed stream, local SGD's worker replicas) must have the same
// bits as the uninterrupted run's.
//
// On the pure-Go backend (cheap: no compilation), each stepper is also interrupted at step 4
// through the loop's own paths, alternately by cancelling Config.Context (the interrupt
// checkpoint) and by a shorter Config.Steps (the final checkpoint), and resumed likewise.
// On XLA every run compiles its step (~1 s each), so the interruption paths are left to
// that cheaper backend and TestCheckpointResumeIsBitForBit.
func TestResumeIsBitForBitForEveryStepper(t *testing.T) {
	const steps, stopAt, seed = 7, 4, 5
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		interruptPaths := strings.HasSuffix(t.Name(), "/go")
		for i, setup := range resumeSetups() {
			t.Run(setup.name, func(t *testing.T) {
				t.Parallel()
				cfg := train.Config{Steps: steps, BatchSize: setup.batch, Seed: seed, CheckpointEvery: 2}
				fullDir, killedDir := t.TempDir(), t.TempDir()
				full := cfg
				full.CheckpointDir = fullDir
				full.OnStep = func(h *history.History) error {
					if h.Records[len(h.Records)-1].Step == stopAt+1 {
						copyFile(t, filepath.Join(fullDir, train.CheckpointFile), filepath.Join(killedDir, train.CheckpointFile))
					}
					return nil
				}
				st, loss, ds := setup.build(t, seed)
				fullStore := model.NewStore()
				want, err := train.Run(backend, fullStore, loss, ds, st, full)
				if err != nil {
					t.Fatal(err)
				}
				if l := losses(want); math.IsNaN(l[len(l)-1]) || l[0] == l[len(l)-1] {
					t.Fatalf("degenerate run: losses %v", l)
				}

				resume := func(what, dir string) {
					st, loss, ds := setup.build(t, seed)
					store := model.NewStore()
					cfg := cfg
					cfg.CheckpointDir = dir
					got, err := train.Run(backend, store, loss, ds, st, cfg)
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					compareRuns(t, what, want, got, fullStore, store)
				}
				resume("resumed after a kill during step 5", killedDir)
				if !interruptPaths {
					return
				}

				interrupted := cfg
				interrupted.CheckpointDir = t.TempDir()
				byContext := i%2 == 0
				if byContext {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					interrupted.Context = ctx
					interrupted.OnStep = func(h *history.History) error {
						if h.Records[len(h.Records)-1].Step == stopAt {
							cancel()
						}
						return nil
					}
				} else {
					interrupted.Steps = stopAt
				}
				st, loss, ds = setup.build(t, seed)
				_, err = train.Run(backend, model.NewStore(), loss, ds, st, interrupted)
				switch {
				case byContext && !errors.Is(err, context.Canceled):
					t.Fatalf("want an interruption error, got %v", err)
				case byContext && !strings.Contains(err.Error(), "interrupted at step 4 of 7") ||
					byContext && !strings.Contains(err.Error(), filepath.Join(interrupted.CheckpointDir, train.CheckpointFile)):
					t.Errorf("interruption error %q does not name the step and the checkpoint", err)
				case !byContext && err != nil:
					t.Fatal(err)
				}
				if byContext {
					resume("resumed after a Context cancel at step 4", interrupted.CheckpointDir)
				} else {
					resume("resumed after a run of 4 steps", interrupted.CheckpointDir)
				}
			})
		}
	})
}

// TestInterruptBeforeTheFirstStepResumes cancels the context before the first step: the
// checkpoint of step 0 (the initialised model, before any stepper state exists) must
// resume bit for bit. ZO-SGD creates its random state lazily from the seed, in the first
// step's graph: the resumed run must derive it from the same seed.
func TestInterruptBeforeTheFirstStepResumes(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		var setup runSetup
		for _, s := range resumeSetups() {
			if s.name == "zo-sgd" {
				setup = s
			}
		}
		cfg := train.Config{Steps: 4, BatchSize: setup.batch, Seed: 8}
		st, loss, ds := setup.build(t, cfg.Seed)
		fullStore := model.NewStore()
		want, err := train.Run(backend, fullStore, loss, ds, st, cfg)
		if err != nil {
			t.Fatal(err)
		}

		cfg.CheckpointDir = t.TempDir()
		interrupted := cfg
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		interrupted.Context = ctx
		st, loss, ds = setup.build(t, cfg.Seed)
		_, err = train.Run(backend, model.NewStore(), loss, ds, st, interrupted)
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted at step 0 of 4") {
			t.Fatalf("want an interruption at step 0, got %v", err)
		}
		st, loss, ds = setup.build(t, cfg.Seed)
		store := model.NewStore()
		got, err := train.Run(backend, store, loss, ds, st, cfg)
		if err != nil {
			t.Fatal(err)
		}
		compareRuns(t, "resumed from step 0", want, got, fullStore, store)
	})
}
