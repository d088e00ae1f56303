package sweep

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/internal/gomlxerr"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
)

func newStore() *model.Store { return model.NewStore() }

func nan() float64 { return math.NaN() }

// runScope is the scope under which run i of a batch keeps its copy of the model.
func runScope(i int) string { return fmt.Sprintf("run_%d", i) }

// errDrawsRandom says that a step draws random numbers: Train then builds the batch again
// with a random state per run (batch.ownRNG).
var errDrawsRandom = errors.New("the step draws random numbers (dropout in the loss function, or an optimizer " +
	"such as AdaHessian): batched runs would share one random state, unlike runs alone")

// rngStatePath is the path of the Store's random-number state.
var rngStatePath = model.JoinPath("/", model.RNGStateVariableName)

// batch is one graph training several runs.
type batch struct {
	runs    []Run
	opts    []optim.Optimizer
	lossFn  train.LossFn
	store   *model.Store
	numIn   int
	numLab  int
	exec    *model.Exec
	history []*history.History
	// ownRNG gives each run its own random state (variable /sweep/rng_<i>), which the step
	// swaps into the Store's random state while it builds the run's part: needed when the
	// step draws random numbers (dropout, AdaHessian's probes), so that each run draws what
	// it would draw alone.
	ownRNG bool
}

// trainBatch trains runs together in one graph (see [Train]); done and total count the
// runs of the sweep for Progress.
// With ownRNG, each run draws from its own random state (see batch.ownRNG); without it,
// a step that draws random numbers fails with errDrawsRandom.
func trainBatch(backend compute.Backend, lossFn train.LossFn, ds *data.Dataset, runs []Run, o Options, done, total int, ownRNG bool) ([]*history.History, error) {
	b := &batch{runs: runs, lossFn: lossFn, store: model.NewStore(), numIn: len(ds.Inputs()), numLab: len(ds.Labels()), ownRNG: ownRNG}
	for i, r := range runs {
		h := history.New(r.Label(), r.Optimizer, r.Seed)
		h.Params = maps.Clone(r.Params)
		b.history = append(b.history, h)
		opt, err := newOptimizer(r.Optimizer, r.Params, fmt.Sprintf("sweep_%s_%s", runScope(i), r.Optimizer))
		if err != nil {
			return nil, err
		}
		b.opts = append(b.opts, opt)
	}
	if err := b.build(backend, ds, o.BatchSize); err != nil {
		return nil, err
	}
	defer b.exec.Finalize()

	R := len(runs)
	stopped := make([]bool, R) // diverged runs
	var elapsed time.Duration
	for step := 1; step <= o.Steps; step++ {
		if err := o.Context.Err(); err != nil {
			return b.history, fmt.Errorf("interrupted at step %d of %d: %w", step-1, o.Steps, err)
		}
		args, err := b.batchArgs(ds, o.BatchSize, step-1)
		if err != nil {
			return b.history, fmt.Errorf("step %d: %w", step, err)
		}
		start := time.Now()
		losses, err := b.step(args)
		elapsed += time.Since(start)
		for _, a := range args {
			_ = a.(*tensors.Tensor).FinalizeAll()
		}
		if err != nil {
			return b.history, fmt.Errorf("step %d: %w", step, err)
		}
		logged := step%o.LogEvery == 0 || step == o.Steps
		for i, loss := range losses {
			if stopped[i] {
				continue
			}
			rec := history.Record{Step: step, Time: elapsed.Seconds(), Evals: int64(step), Loss: loss}
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				stopped[i] = true
				rec.Metrics = map[string]float64{DivergedMetric: 1}
				b.history[i].Add(rec)
				continue
			}
			if logged {
				b.history[i].Add(rec)
			}
		}
		if step == o.Steps {
			for i, h := range b.history {
				if err := addTestMetrics(backend, b.store, runScope(i), lossFn, h, o); err != nil {
					return b.history, err
				}
			}
		}
		if logged && o.Progress != nil {
			if err := o.Progress(Progress{Runs: total, Done: done, Step: step, Steps: o.Steps, Current: b.history}); err != nil {
				return b.history, fmt.Errorf("step %d: Progress: %w", step, err)
			}
		}
	}
	return b.history, nil
}

// seedStates returns, for each run, the Store random state that train.SeedStore gives a
// fresh Store for the run's seed, from which train.Run initialises the model.
func (b *batch) seedStates() ([]*tensors.Tensor, error) {
	states := make([]*tensors.Tensor, len(b.runs))
	for i, r := range b.runs {
		fresh := model.NewStore()
		if err := train.SeedStore(fresh, r.Seed); err != nil {
			return nil, err
		}
		v := fresh.GetVariable(rngStatePath)
		if v == nil {
			return nil, fmt.Errorf("seeding a Store with %d created no random state at %s", r.Seed, rngStatePath)
		}
		t, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("reading the random state of seed %d: %w", r.Seed, err)
		}
		states[i] = t
	}
	return states, nil
}

// seedMarker creates, just before run i's model is built, a variable whose initializer
// sets the Store's random state to state. GoMLX initialises new variables in one graph, in
// the order they were created, each drawing from the random state left by the previous
// ones: so run i's variables draw exactly what they would draw in a fresh Store seeded
// with the run's seed, in which train.Run creates them.
func (b *batch) seedMarker(i int, state *tensors.Tensor) {
	b.store.VariableWithShape(fmt.Sprintf("/sweep/seed_%d", i), shapes.Make(dtypes.Float32),
		func(g *graph.Graph, shape shapes.Shape) *graph.Node {
			b.store.GetVariable(rngStatePath).SetNodeValue(graph.ConstTensor(g, state))
			return graph.Zeros(g, shape)
		}).SetTrainable(false)
}

// swapInRunRNG prepares run i's part of the step for its own random state. It first
// creates the run's model variables with a call of the loss function whose results are not
// used, then the variable /sweep/rng_<i>: variables are initialised in the order they were
// created, so this one starts from the random state left by the initialisation of the
// run's model. It makes that variable the Store's random state for the rest of run i's
// part, advanced on the first step by the draws of one more call of the loss function: the
// draws of the call with which train.Run creates the variables before its first step. It
// returns the scope for the real call of the loss function, the run's random-state
// variable and the shared random state to restore afterwards.
func (b *batch) swapInRunRNG(g *graph.Graph, i int, sub *model.Scope, in, lab []*graph.Node, globalStep *graph.Node) (*model.Scope, *model.Variable, *graph.Node) {
	rng := b.store.GetVariable(rngStatePath)
	shared := rng.NodeValue(g)
	_ = b.lossFn(sub, in, lab)
	runRNG := b.store.VariableWithShape(fmt.Sprintf("/sweep/rng_%d", i), shared.Shape(),
		func(g *graph.Graph, _ shapes.Shape) *graph.Node {
			return b.store.GetVariable(rngStatePath).NodeValue(g)
		})
	runRNG.SetTrainable(false)
	start := runRNG.NodeValue(g)
	rng.SetNodeValue(start)
	_ = b.lossFn(sub.ResetVisited(), in, lab)
	first := graph.Equal(globalStep, graph.ZerosLike(globalStep))
	rng.SetNodeValue(graph.Where(first, rng.NodeValue(g), start))
	return sub.ResetVisited(), runRNG, shared
}

// build creates and compiles the batched step: its arguments are the inputs and labels of
// run 0, then of run 1, ...; its output the vector of the runs' losses.
func (b *batch) build(backend compute.Backend, ds *data.Dataset, batchSize int) error {
	perRun := b.numIn + b.numLab
	states, err := b.seedStates()
	if err != nil {
		return err
	}
	if _, err := b.store.CreateVariable(rngStatePath, states[0]); err != nil {
		return err
	}
	b.store.GetVariable(rngStatePath).SetTrainable(false)
	err = gomlxerr.Catch(func() error {
		exec, err := model.NewExec(backend, b.store, func(scope *model.Scope, args []*graph.Node) *graph.Node {
			g := args[0].Graph()
			b.store.SetTraining(g, true)
			// Every run's optimizer sees the global step a run alone would see.
			stepVar := optimizer.GetGlobalStepVar(b.store)
			globalStep := stepVar.NodeValue(g)
			var stepAfter *graph.Node
			losses := make([]*graph.Node, len(b.runs))
			for i := range b.runs {
				in := args[i*perRun : i*perRun+b.numIn]
				lab := args[i*perRun+b.numIn : (i+1)*perRun]
				sub := scope.In("%s", runScope(i))
				b.seedMarker(i, states[i])
				stepVar.SetNodeValue(globalStep)
				var runRNG *model.Variable
				var sharedRNG *graph.Node
				if b.ownRNG {
					sub, runRNG, sharedRNG = b.swapInRunRNG(g, i, sub, in, lab, globalStep)
				}
				loss := b.lossFn(sub, in, lab)
				if loss == nil || !loss.Shape().IsScalar() || !loss.DType().IsFloat() {
					panic(fmt.Errorf("the loss function must return a float scalar, got %v", loss))
				}
				if i > 0 {
					loss = graph.ConvertDType(loss, losses[0].DType())
				}
				b.opts[i].UpdateGraph(sub, g, loss)
				if runRNG != nil {
					rng := b.store.GetVariable(rngStatePath)
					runRNG.SetNodeValue(rng.NodeValue(g))
					rng.SetNodeValue(sharedRNG)
				}
				losses[i] = loss
				if i == 0 {
					stepAfter = stepVar.NodeValue(g)
				}
			}
			stepVar.SetNodeValue(stepAfter)
			if v := b.store.GetVariable(rngStatePath); !b.ownRNG && v != nil && v.InUseByGraph(g) {
				panic(errDrawsRandom)
			}
			return graph.Stack(losses, 0)
		})
		if err != nil {
			return err
		}
		b.exec = exec.WithName(fmt.Sprintf("sweep.Train:%d runs", len(b.runs)))
		return nil
	})
	if err != nil {
		return fmt.Errorf("building the batched step of %d runs: %w", len(b.runs), err)
	}
	// Compile before the clock starts, as train.Run does.
	args, err := b.batchArgs(ds, batchSize, 0)
	if err != nil {
		return err
	}
	argShapes := make([]shapes.Shape, len(args))
	for i, a := range args {
		argShapes[i] = a.(*tensors.Tensor).Shape()
		_ = a.(*tensors.Tensor).FinalizeAll()
	}
	if err := gomlxerr.Catch(func() error { _, err := b.exec.Compile(argShapes...); return err }); err != nil {
		b.exec.Finalize()
		return fmt.Errorf("compiling the batched step of %d runs: %w", len(b.runs), err)
	}
	// Initialise the runs' models (see seedMarker) now, rather than in the first timed step.
	if err := gomlxerr.Catch(func() error { return b.store.InitializeVariables(backend, nil) }); err != nil {
		b.exec.Finalize()
		return fmt.Errorf("initialising the models of %d runs: %w", len(b.runs), err)
	}
	return nil
}

// batchArgs returns the step's arguments: the batch k of every run, each in its seed's order.
func (b *batch) batchArgs(ds *data.Dataset, batchSize, k int) ([]any, error) {
	var args []any
	for _, r := range b.runs {
		inputs, labels, err := ds.Batch(r.Seed, batchSize, k)
		if err != nil {
			for _, a := range args {
				_ = a.(*tensors.Tensor).FinalizeAll()
			}
			return nil, err
		}
		args = append(args, tensorArgs(inputs, labels)...)
	}
	return args, nil
}

// step executes one batched step and returns each run's loss.
func (b *batch) step(args []any) ([]float64, error) {
	var losses []float64
	err := gomlxerr.Catch(func() error {
		outs, err := b.exec.Call(args...)
		if err != nil {
			return err
		}
		defer finalizeAll(outs)
		if len(outs) != 1 {
			return fmt.Errorf("the batched step returned %d outputs, want 1", len(outs))
		}
		switch v := outs[0].Value().(type) {
		case []float32:
			for _, x := range v {
				losses = append(losses, float64(x))
			}
		case []float64:
			losses = v
		default:
			return fmt.Errorf("unexpected loss output of shape %s", outs[0].Shape())
		}
		return nil
	})
	return losses, err
}

func tensorArgs(inputs, labels []*tensors.Tensor) []any {
	args := make([]any, 0, len(inputs)+len(labels))
	for _, t := range inputs {
		args = append(args, t)
	}
	for _, t := range labels {
		args = append(args, t)
	}
	return args
}

func finalizeAll(ts []*tensors.Tensor) {
	for _, t := range ts {
		if t != nil {
			_ = t.FinalizeAll()
		}
	}
}
