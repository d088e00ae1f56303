package optim_test

import (
	"testing"

	"github.com/gomlx/compute"
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
