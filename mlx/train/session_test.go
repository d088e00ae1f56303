package train_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/localsgd"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/sweep"
	"github.com/goptlab/goptlab/mlx/train"
	"github.com/goptlab/goptlab/mlx/zo"
)

// sessionRun is one run of a Session test: a stepper (built afresh for Run and for the
// Session) and the run's configuration.
type sessionRun struct {
	stepper func(t *testing.T) train.Stepper
	cfg     train.Config
}

func byName(name string, params sweep.Params) func(t *testing.T) train.Stepper {
	return func(t *testing.T) train.Stepper {
		s, err := sweep.Stepper(name, params)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func zoStepper(lr float64) func(t *testing.T) train.Stepper {
	return func(t *testing.T) train.Stepper {
		s, err := zo.New(zo.Config{LR: lr, Epsilon: 1e-3, Directions: 2, Momentum: 0.9})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// sameHistory fails unless two histories have the same records, bit for bit.
func sameHistory(t *testing.T, what string, want, got *history.History) {
	t.Helper()
	if len(want.Records) != len(got.Records) {
		t.Fatalf("%s: %d records, train.Run gave %d", what, len(got.Records), len(want.Records))
	}
	for i, w := range want.Records {
		g := got.Records[i]
		if g.Step != w.Step || g.Evals != w.Evals || math.Float64bits(g.Loss) != math.Float64bits(w.Loss) {
			t.Fatalf("%s: record %d = step %d loss %v, train.Run gave step %d loss %v", what, i, g.Step, g.Loss, w.Step, w.Loss)
		}
		if len(g.Metrics) != len(w.Metrics) {
			t.Fatalf("%s: record %d has metrics %v, train.Run gave %v", what, i, g.Metrics, w.Metrics)
		}
		for k, v := range w.Metrics {
			if math.Float64bits(g.Metrics[k]) != math.Float64bits(v) {
				t.Fatalf("%s: record %d metric %s = %v, train.Run gave %v", what, i, k, g.Metrics[k], v)
			}
		}
	}
}

// sameVariables fails unless two Stores hold the same variables with the same values.
func sameVariables(t *testing.T, what string, want, got *model.Store) {
	t.Helper()
	n := 0
	for v := range want.IterVariables() {
		n++
		o := got.GetVariable(v.Path())
		if o == nil {
			t.Fatalf("%s: variable %s missing from the Session's Store", what, v.Path())
		}
		wt, gt := v.MustValue(), o.MustValue()
		if !wt.Shape().Equal(gt.Shape()) {
			t.Fatalf("%s: variable %s has shape %s, want %s", what, v.Path(), gt.Shape(), wt.Shape())
		}
		var wb, gb []byte
		wt.ConstBytes(func(b []byte) { wb = append(wb, b...) })
		gt.ConstBytes(func(b []byte) { gb = append(gb, b...) })
		if string(wb) != string(gb) {
			t.Fatalf("%s: variable %s differs from train.Run's", what, v.Path())
		}
	}
	m := 0
	for range got.IterVariables() {
		m++
	}
	if n != m {
		t.Fatalf("%s: the Session's Store has %d variables, train.Run's %d", what, m, n)
	}
}

// checkSession runs each run with train.Run on a fresh Store and in one Session, and
// checks that both give the same histories and final variables, and that the Session
// compiled wantCompiles times.
func checkSession(t *testing.T, backend compute.Backend, lossFn train.LossFn, ds *data.Dataset, runs []sessionRun, wantCompiles int) {
	t.Helper()
	sess, err := train.NewSession(backend, lossFn, ds)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for i, r := range runs {
		store := model.NewStore()
		want, err := train.Run(backend, store, lossFn, ds, r.stepper(t), r.cfg)
		if err != nil {
			t.Fatalf("run %d with train.Run: %v", i, err)
		}
		got, err := sess.Run(r.stepper(t), r.cfg)
		if err != nil {
			t.Fatalf("run %d in the Session: %v", i, err)
		}
		what := fmt.Sprintf("run %d (%s, seed %d)", i, want.Name, r.cfg.Seed)
		sameHistory(t, what, want, got)
		sameVariables(t, what, store, sess.Store())
		store.Finalize()
	}
	if got := sess.Compiles(); got != wantCompiles {
		t.Errorf("the Session compiled %d times for %d runs, want %d", got, len(runs), wantCompiles)
	}
}

func TestSessionRunsEqualRunAndCompileOnce(t *testing.T) {
	spirals, err := data.TwoSpirals(96, 1.5, 0.05, 1)
	if err != nil {
		t.Fatal(err)
	}
	eval, err := data.TwoSpirals(64, 1.5, 0.05, 2)
	if err != nil {
		t.Fatal(err)
	}
	mlp := models.MLPConfig{Hidden: []int{8}, Outputs: 2, Activation: "tanh"}.Fn()
	classifier := models.Classifier(mlp)
	metrics := map[string]train.MetricFn{"accuracy": models.Accuracy(mlp)}
	cfg := func(seed int64) train.Config {
		return train.Config{Steps: 12, BatchSize: 32, Seed: seed, LogEvery: 4, Eval: eval, EvalMetrics: metrics}
	}
	regression := data.LinearRegression()
	linear := models.Regressor(models.MLPConfig{Outputs: 1}.Fn())
	plain := func(seed int64) train.Config { return train.Config{Steps: 10, BatchSize: 16, Seed: seed, LogEvery: 3} }

	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		t.Run("adam over seeds and learning rates", func(t *testing.T) {
			checkSession(t, backend, classifier, spirals, []sessionRun{
				{byName("adam", sweep.Params{"lr": 0.01}), cfg(1)},
				{byName("adam", sweep.Params{"lr": 0.01}), cfg(2)},
				{byName("adam", sweep.Params{"lr": 0.05}), cfg(3)},
			}, 1)
		})
		t.Run("adahessian draws its probes from the seed", func(t *testing.T) {
			checkSession(t, backend, classifier, spirals, []sessionRun{
				{byName("adahessian", sweep.Params{"lr": 0.1}), cfg(1)},
				{byName("adahessian", sweep.Params{"lr": 0.3}), cfg(2)},
			}, 1)
		})
		t.Run("another optimizer or constant compiles again", func(t *testing.T) {
			checkSession(t, backend, classifier, spirals, []sessionRun{
				{byName("adam", sweep.Params{"lr": 0.01}), cfg(1)},
				{byName("adan", sweep.Params{"lr": 0.01}), cfg(1)},
				{byName("adan", sweep.Params{"lr": 0.02}), cfg(2)},
				{byName("adan", sweep.Params{"lr": 0.02, "beta1": 0.5}), cfg(2)},
			}, 3)
		})
		t.Run("another batch size compiles again", func(t *testing.T) {
			other := cfg(2)
			other.BatchSize = 16
			checkSession(t, backend, classifier, spirals, []sessionRun{
				{byName("sgd", sweep.Params{"lr": 0.1}), cfg(1)},
				{byName("sgd", sweep.Params{"lr": 0.1}), other},
			}, 2)
		})
		t.Run("zeroth order with its random state from the seed", func(t *testing.T) {
			checkSession(t, backend, linear, regression, []sessionRun{
				{zoStepper(0.02), plain(1)},
				{zoStepper(0.02), plain(2)},
				{zoStepper(0.05), plain(2)}, // LR is a constant of the ZO step
			}, 2)
		})
	})
	t.Run("local SGD creates its variables itself", func(t *testing.T) {
		backend := mlxtest.Backends(t)[0].Backend
		shards, err := data.ShardIID(spirals.Len(), 2, 1)
		if err != nil {
			t.Fatal(err)
		}
		sharded, err := localsgd.ShardedDataset(spirals, shards)
		if err != nil {
			t.Fatal(err)
		}
		stepper := func(t *testing.T) train.Stepper {
			s, err := localsgd.New(optimizer.Adam().LearningRate(0.01).Done(), localsgd.Config{
				Workers: 2, LocalSteps: 3, ShardSizes: shards.Sizes(), WorkerAxis: 1, Outer: localsgd.DiLoCoOuter()})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		c := func(seed int64) train.Config { return train.Config{Steps: 9, BatchSize: 16, Seed: seed, LogEvery: 3} }
		checkSession(t, backend, classifier, sharded, []sessionRun{{stepper, c(1)}, {stepper, c(2)}}, 1)
	})
}

// noisyStepper is SGD plus a state variable whose initial value the Store's random state
// draws, after the forward pass of a loss that draws random numbers itself.
type noisyStepper struct{ lr float64 }

func (n noisyStepper) BuildStep(scope *model.Scope, lossFn train.LossFn, inputs, labels []*graph.Node) *graph.Node {
	loss := lossFn(scope, inputs, labels)
	g := loss.Graph()
	drawn := scope.In("noisy").VariableWithShape("drawn", shapes.Make(loss.DType(), 2, 2)).SetTrainable(false)
	var vars []*model.Variable
	for v := range scope.Store().IterVariables() {
		if v.Trainable && v.DType().IsFloat() {
			vars = append(vars, v)
		}
	}
	nodes := make([]*graph.Node, len(vars))
	for i, v := range vars {
		nodes[i] = v.NodeValue(g)
	}
	grads := graph.Gradient(loss, nodes...)
	shift := graph.ReduceAllSum(drawn.NodeValue(g))
	for i, v := range vars {
		step := graph.MulScalar(graph.Add(grads[i], graph.MulScalar(shift, 1e-3)), n.lr)
		v.SetNodeValue(graph.Sub(nodes[i], step))
	}
	return loss
}
func (noisyStepper) LossEvalsPerStep() int { return 1 }
func (noisyStepper) Name() string          { return "noisy-sgd" }

func TestSessionInitialisesAfterARandomForwardPass(t *testing.T) {
	base := models.Regressor(models.MLPConfig{Outputs: 1}.Fn())
	// A loss that draws random numbers on every evaluation, training or not.
	noisy := func(scope *model.Scope, inputs, labels []*graph.Node) *graph.Node {
		noise := scope.Store().RandomNormal(inputs[0].Graph(), inputs[0].Shape())
		return base(scope, []*graph.Node{graph.Add(inputs[0], graph.MulScalar(noise, 0.01))}, labels)
	}
	stepper := func(t *testing.T) train.Stepper { return noisyStepper{lr: 0.05} }
	c := func(seed int64) train.Config { return train.Config{Steps: 6, BatchSize: 16, Seed: seed, LogEvery: 2} }
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		checkSession(t, backend, noisy, data.LinearRegression(), []sessionRun{{stepper, c(1)}, {stepper, c(2)}}, 1)
	})
}

func TestSessionRefusesCheckpoints(t *testing.T) {
	backend := mlxtest.Backends(t)[0].Backend
	sess, err := train.NewSession(backend, linearLoss, data.LinearRegression())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	_, err = sess.Run(sgd(0.1), train.Config{Steps: 3, CheckpointDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "does not write checkpoints") {
		t.Fatalf("Run with a CheckpointDir: got %v, want an error saying a Session does not write checkpoints", err)
	}
	if _, err := train.NewSession(nil, linearLoss, data.LinearRegression()); err == nil {
		t.Fatal("NewSession(nil backend): no error")
	}
	if _, err := sess.Run(nil, train.Config{Steps: 3}); err == nil {
		t.Fatal("Run(nil stepper): no error")
	}
	// A cancelled context stops the run, and the next run starts afresh all the same.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sess.Run(sgd(0.1), train.Config{Steps: 3, Context: ctx}); err == nil {
		t.Fatal("Run with a cancelled context: no error")
	}
	want, err := train.Run(backend, model.NewStore(), linearLoss, data.LinearRegression(), sgd(0.1), train.Config{Steps: 3, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	got, err := sess.Run(sgd(0.1), train.Config{Steps: 3, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	sameHistory(t, "after an interrupted run", want, got)
}
