package train_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/train"
)

// TestRunRejectsUnboundedConfig checks the upper bounds of Config's counts (a run of more
// than 2^31-1 steps would write checkpoints that cannot be read back) and the checks of the
// run's and the stepper's names: each error names the field and what it allows.
func TestRunRejectsUnboundedConfig(t *testing.T) {
	backend := mlxtest.Backends(t)[0].Backend
	ds := data.LinearRegression()
	named := func(name string) train.Stepper {
		return train.FirstOrder(optimizer.StochasticGradientDescent().Done(), name)
	}
	for i, tc := range []struct {
		cfg     train.Config
		stepper train.Stepper
		want    string
	}{
		{train.Config{Steps: math.MaxInt}, sgd(0.1), "Config.Steps=9223372036854775807 out of range: must be >= 1 and <= 2147483647 (MaxSteps)"},
		{train.Config{Steps: train.MaxSteps + 1}, sgd(0.1), "Config.Steps=2147483648 out of range"},
		{train.Config{Steps: 1, LogEvery: math.MaxInt}, sgd(0.1), "Config.LogEvery=9223372036854775807 out of range"},
		{train.Config{Steps: 1, CheckpointEvery: math.MaxInt, CheckpointDir: t.TempDir()}, sgd(0.1),
			"Config.CheckpointEvery=9223372036854775807 out of range: must be >= 0 and <= 2147483647"},
		{train.Config{Steps: 1, Name: "  "}, sgd(0.1), `Config.Name="  " is invalid: it is only spaces`},
		{train.Config{Steps: 1, Name: "a\x00"}, sgd(0.1), `Config.Name="a\x00" is invalid: it holds the control character U+0000`},
		{train.Config{Steps: 1}, named("sgd\n"), `the stepper's Name()="sgd\n" is invalid`},
		{train.Config{Steps: 1}, named(strings.Repeat("s", 70_000)), "is invalid: it is 70000 bytes long"},
	} {
		// A cancelled context: a config that is wrongly accepted stops before its first step.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		tc.cfg.Context = ctx
		_, err := train.Run(backend, model.NewStore(), linearLoss, ds, tc.stepper, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("case %d: want an error containing %q, got %v", i, tc.want, err)
		}
	}
}
