package train_test

import (
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/train"
)

// creator is a Stepper that also creates the model's variables itself.
type creator struct {
	train.Stepper
	calls   int  // CreateVariables calls
	nilLoss bool // return a nil loss from CreateVariables
}

// CreateVariables implements train.VariableCreator.
func (c *creator) CreateVariables(scope *model.Scope, lossFn train.LossFn, inputs, labels []*graph.Node) *graph.Node {
	c.calls++
	if c.nilLoss {
		return nil
	}
	return lossFn(scope, inputs, labels)
}

// Run creates the variables through a stepper's CreateVariables, and only on a fresh run.
func TestRunUsesVariableCreator(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds := data.LinearRegression()
		dir := t.TempDir()
		for i, steps := range []int{3, 5} {
			st := &creator{Stepper: sgd(0.1)}
			// The second run resumes from the checkpoint of the first.
			if _, err := train.Run(backend, model.NewStore(), linearLoss, ds, st, train.Config{Steps: steps, Seed: 1, CheckpointDir: dir}); err != nil {
				t.Fatalf("run %d: %v", i, err)
			}
			if want := 1 - i; st.calls != want {
				t.Errorf("run %d: CreateVariables called %d times, want %d", i, st.calls, want)
			}
		}
		_, err := train.Run(backend, model.NewStore(), linearLoss, ds, &creator{Stepper: sgd(0.1), nilLoss: true},
			train.Config{Steps: 1, Seed: 1})
		if err == nil || !strings.Contains(err.Error(), "CreateVariables returned nil") {
			t.Errorf("nil loss from CreateVariables: error = %v", err)
		}
	})
}
