package train_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/train"
)

// rawStepper is a Stepper whose BuildStep is the given function.
type rawStepper struct {
	build func(scope *model.Scope, lossFn train.LossFn, inputs, labels []*graph.Node) *graph.Node
}

func (s rawStepper) BuildStep(scope *model.Scope, lossFn train.LossFn, inputs, labels []*graph.Node) *graph.Node {
	return s.build(scope, lossFn, inputs, labels)
}
func (rawStepper) LossEvalsPerStep() int { return 1 }
func (rawStepper) Name() string          { return "raw" }

// TestBrokenUserFunctionsAreErrors gives Run loss functions, steppers and metrics that
// return nil, a non-scalar, an integer, a node of another graph, or panic: each must be an
// error naming the problem (GoMLX v0.28.8 leaves some of these compilations pending, and
// Run then waited for ever in Exec.Finalize). An interrupt (cancelled context) must still work
// after such an error, and Run must leave nothing running.
func TestBrokenUserFunctionsAreErrors(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		// otherGraph returns a scalar node of a graph of its own.
		otherGraph := func() *graph.Node {
			return graph.Const(graph.NewGraph(backend, "other"), float32(1))
		}
		loss := func(f func(in []*graph.Node) *graph.Node) train.LossFn {
			return func(_ *model.Scope, in, _ []*graph.Node) *graph.Node { return f(in) }
		}
		firstOK := func(bad train.LossFn) train.LossFn {
			// linearLoss on the first call (variable creation), bad afterwards (the step).
			calls := 0
			return func(scope *model.Scope, in, lb []*graph.Node) *graph.Node {
				calls++
				if calls == 1 {
					return linearLoss(scope, in, lb)
				}
				return bad(scope, in, lb)
			}
		}
		stepper := func(f func(in []*graph.Node) *graph.Node) train.Stepper {
			return rawStepper{build: func(scope *model.Scope, lossFn train.LossFn, in, lb []*graph.Node) *graph.Node {
				_ = lossFn(scope, in, lb)
				return f(in)
			}}
		}
		nilNode := func([]*graph.Node) *graph.Node { return nil }
		vector := func(in []*graph.Node) *graph.Node { return graph.ReduceSum(in[0], 1) }
		integer := func(in []*graph.Node) *graph.Node { return graph.Scalar(in[0].Graph(), dtypes.Int32, 1) }
		foreign := func([]*graph.Node) *graph.Node { return otherGraph() }
		panics := func([]*graph.Node) *graph.Node { panic("the user's bug") }
		for _, tc := range []struct {
			name    string
			lossFn  train.LossFn
			stepper train.Stepper
			metric  train.MetricFn
			want    string
		}{
			{"nil loss", loss(nilNode), sgd(0.1), nil, "the loss function returned nil"},
			{"vector loss", loss(vector), sgd(0.1), nil, "the loss function returned a node of shape (Float32)[16]"},
			{"int loss", loss(integer), sgd(0.1), nil, "the loss function returned a node of dtype Int32"},
			{"loss of another graph", loss(foreign), sgd(0.1), nil, "the loss function returned a node of another graph"},
			{"panicking loss", loss(panics), sgd(0.1), nil, "the user's bug"},
			{"nil loss in the step", firstOK(loss(nilNode)), sgd(0.1), nil, `train.FirstOrder("sgd"): the loss function returned nil`},
			{"stepper returns nil", linearLoss, stepper(nilNode), nil, `stepper "raw": BuildStep returned nil`},
			{"stepper returns another graph's node", linearLoss, stepper(foreign), nil, `stepper "raw": BuildStep returned a node of another graph`},
			{"stepper returns a vector", linearLoss, stepper(vector), nil, `stepper "raw": BuildStep returned a node of shape`},
			{"metric returns nil", linearLoss, sgd(0.1), nilNode2Metric(), `metric "m" returned nil`},
			{"metric of another graph", linearLoss, sgd(0.1), func(*model.Scope, []*graph.Node, []*graph.Node) *graph.Node { return otherGraph() },
				`metric "m" returned a node of another graph`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cfg := train.Config{Steps: 2, Seed: 1, BatchSize: 16, Context: context.Background()}
				if tc.metric != nil {
					cfg.Eval = data.LinearRegression()
					cfg.EvalMetrics = map[string]train.MetricFn{"m": tc.metric}
				}
				_, err := train.Run(backend, model.NewStore(), tc.lossFn, data.LinearRegression(), tc.stepper, cfg)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got error %v, want one containing %q", err, tc.want)
				}
				// The same Store and a good loss still train afterwards.
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				cfg.Context, cfg.Eval, cfg.EvalMetrics = ctx, nil, nil
				if _, err := train.Run(backend, model.NewStore(), linearLoss, data.LinearRegression(), sgd(0.1), cfg); err == nil ||
					!strings.Contains(err.Error(), "interrupted at step 0") {
					t.Fatalf("a cancelled run after the error: got %v", err)
				}
			})
		}
	})
}

func nilNode2Metric() train.MetricFn {
	return func(*model.Scope, []*graph.Node, []*graph.Node) *graph.Node { return nil }
}
