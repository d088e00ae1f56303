package optim_test

import (
	"math"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/localsgd"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
	"github.com/goptlab/goptlab/mlx/zo"
)

// A chain is what localsgd needs of an inner optimizer.
var _ localsgd.Inner = (*optim.Chain)(nil)

// TestChainTrainsEverywhere trains a small classifier with a chain of transforms through
// train.Run (train.FirstOrder), as the rule of zeroth-order SGD (zo.Config.Rule) and as
// local SGD's inner optimizer, and requires the loss to fall in each.
func TestChainTrainsEverywhere(t *testing.T) {
	ds, err := data.TwoSpirals(128, 1, 0.05, 1)
	if err != nil {
		t.Fatal(err)
	}
	loss := models.Classifier(models.MLPConfig{Hidden: []int{16}, Outputs: 2, Activation: "tanh"}.Fn())
	chain := func(scope string) *optim.Chain {
		c, err := optim.NewChain("clipped-adamw", optim.Common{LR: 0.02, ScopeName: scope},
			optim.ClipByGlobalNorm(1), optim.ScaleByAdam(0.9, 0.999, 1e-8, false), optim.AddDecayedWeights(1e-4), optim.ScaleByLR())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		steppers := map[string]func() (train.Stepper, *data.Dataset){
			"train.FirstOrder": func() (train.Stepper, *data.Dataset) { return train.FirstOrder(chain("c"), "chain"), ds },
			"zo.Rule": func() (train.Stepper, *data.Dataset) {
				z, err := zo.New(zo.Config{Epsilon: 1e-3, Directions: 4, Rule: chain("c")})
				if err != nil {
					t.Fatal(err)
				}
				return z, ds
			},
			"localsgd.Inner": func() (train.Stepper, *data.Dataset) {
				shards, err := data.ShardIID(ds.Len(), 2, 1)
				if err != nil {
					t.Fatal(err)
				}
				sharded, err := localsgd.ShardedDataset(ds, shards)
				if err != nil {
					t.Fatal(err)
				}
				s, err := localsgd.New(chain("c"), localsgd.Config{Workers: 2, LocalSteps: 2, ShardSizes: shards.Sizes(), WorkerAxis: 1})
				if err != nil {
					t.Fatal(err)
				}
				return s, sharded
			},
		}
		for name, mk := range steppers {
			t.Run(name, func(t *testing.T) {
				s, d := mk()
				h, err := train.Run(backend, model.NewStore(), loss, d, s, train.Config{Steps: 60, BatchSize: 32, Seed: 1, LogEvery: 1})
				if err != nil {
					t.Fatal(err)
				}
				first, last := h.Records[0].Loss, h.Records[len(h.Records)-1].Loss
				if !(last < first) {
					t.Errorf("loss went from %g to %g", first, last)
				}
			})
		}
	})
}

// TestChainResumesBitForBit trains a chain whose transforms keep state (Adam's moments,
// gradient accumulation with its counter, lookahead's slow weights, the weights' average)
// for 8 steps in one run, and for 4 + 4 steps resumed from a checkpoint, and requires the
// same bits in every variable: the slots and counters are saved and restored.
func TestChainResumesBitForBit(t *testing.T) {
	ds, err := data.TwoSpirals(64, 1, 0.05, 1)
	if err != nil {
		t.Fatal(err)
	}
	loss := models.Classifier(models.MLPConfig{Hidden: []int{8}, Outputs: 2, Activation: "tanh"}.Fn())
	mk := func() train.Stepper {
		c, err := optim.NewChain("stateful", optim.Common{LR: 0.05, ScopeName: "stateful"},
			optim.Accumulate(3, optim.ScaleByAdam(0.9, 0.999, 1e-8, false), optim.ScaleByLR()),
			optim.Lookahead(2, 0.5), optim.EMAWeights(0.9))
		if err != nil {
			t.Fatal(err)
		}
		return train.FirstOrder(c, "stateful")
	}
	bits := func(store *model.Store) map[string][]uint64 {
		out := map[string][]uint64{}
		for v := range store.IterVariables() {
			val := v.MustValue()
			switch f := val.Value().(type) {
			case int64:
				out[v.Path()] = []uint64{uint64(f)}
			default:
				fl, err := tensorsFloats(val)
				if err != nil {
					continue // random-number state
				}
				for _, x := range fl {
					out[v.Path()] = append(out[v.Path()], math.Float64bits(x))
				}
			}
		}
		return out
	}
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		full := model.NewStore()
		if _, err := train.Run(backend, full, loss, ds, mk(), train.Config{Steps: 8, BatchSize: 16, Seed: 2}); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		cfg := train.Config{Steps: 4, BatchSize: 16, Seed: 2, CheckpointDir: dir, CheckpointEvery: 4}
		if _, err := train.Run(backend, model.NewStore(), loss, ds, mk(), cfg); err != nil {
			t.Fatal(err)
		}
		resumed := model.NewStore()
		cfg.Steps = 8
		if _, err := train.Run(backend, resumed, loss, ds, mk(), cfg); err != nil {
			t.Fatal(err)
		}
		want, got := bits(full), bits(resumed)
		for _, slot := range []string{"/stateful/step", "/stateful/accumulate_step"} {
			if _, ok := want[slot]; !ok {
				t.Errorf("no state variable %s", slot)
			}
		}
		slots := 0
		for path, w := range want {
			g, ok := got[path]
			if !ok {
				t.Errorf("%s missing after the resume", path)
				continue
			}
			if len(path) > 10 && path[:10] == "/stateful/" {
				slots++
			}
			for i := range w {
				if w[i] != g[i] {
					t.Fatalf("%s[%d] differs after the resume", path, i)
				}
			}
		}
		if slots != 3+5*4 { // step, learning_rate, accumulate_step; acc, m, v, slow, ema for 4 variables
			t.Errorf("%d state variables under /stateful, want 23", slots)
		}
	})
}

func tensorsFloats(t *tensors.Tensor) ([]float64, error) {
	if f, err := tensors.CopyFlatData[float64](t); err == nil {
		return f, nil
	}
	f32, err := tensors.CopyFlatData[float32](t)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(f32))
	for i, x := range f32 {
		out[i] = float64(x)
	}
	return out, nil
}
