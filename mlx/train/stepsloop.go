package train

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// goBackendName is what GoMLX's pure-Go backend answers to Name().
const goBackendName = "Go Backend"

// loop reports whether the run runs several steps per execution (Config.StepsPerExecution).
func (r *runner) loop() bool { return r.cfg.StepsPerExecution > 1 }

// checkLoop returns an error if the run cannot run several steps per execution.
func (r *runner) checkLoop() error {
	if !r.loop() {
		return nil
	}
	if r.backend.Name() == goBackendName {
		return fmt.Errorf("Config.StepsPerExecution=%d needs an XLA backend: GoMLX's pure-Go backend cannot run "+
			"a gradient inside a while loop", r.cfg.StepsPerExecution)
	}
	if r.data == nil {
		return fmt.Errorf("Config.StepsPerExecution=%d needs the dataset on the device, and dataset %q (%d bytes) is "+
			"larger than %d bytes", r.cfg.StepsPerExecution, r.ds.Name(), r.datasetBytes(), deviceDataLimit)
	}
	return nil
}

// createStepVariables creates in store the variables a single step creates (optimizer
// state), by building its graph without compiling it: the loop's body, a closure, reads
// every variable from its arguments, and cannot create any.
func (r *runner) createStepVariables(store *model.Store) error {
	if !r.loop() {
		return nil
	}
	argShapes, err := r.singleArgShapes()
	if err != nil {
		return err
	}
	_, err = buildOnly(r.backend, store, argShapes, func(scope *model.Scope, args []*graph.Node) string {
		r.singleStepGraph(scope, args)
		return ""
	})
	if err != nil {
		return fmt.Errorf("creating the step's variables: %w", err)
	}
	return nil
}

// loopArgShapes are the shapes of the loop graph's arguments: the dataset's columns, the
// row indices of each step's batch ([StepsPerExecution, batch size, 1]), the number of
// steps to run (a scalar), and the state.
func (r *runner) loopArgShapes() []shapes.Shape {
	out := shapesOf(r.data)
	return append(out,
		shapes.Make(dtypes.Int32, r.cfg.StepsPerExecution, r.cfg.BatchSize, 1),
		shapes.Make(dtypes.Int32),
		shapes.Make(dtypes.Int32, stateLen))
}

// loopGraph is stepGraph for several steps per execution: a while loop whose body is one
// step. The loop carries a counter, the number of steps, the row indices, the dataset, the
// state, the last loss (as float64) and every variable of the Store; the body gives each
// variable its argument as value, builds the step, and returns the new values.
func (r *runner) loopGraph(scope *model.Scope, args []*graph.Node) (outs []*graph.Node, checked, changed []string) {
	store := scope.Store()
	numInputs, numCols := len(r.ds.Inputs()), len(r.ds.Inputs())+len(r.ds.Labels())
	g := args[0].Graph()
	store.SetTraining(g, true)
	cols, idx, n, state := args[:numCols], args[numCols], args[numCols+1], args[numCols+2]
	var vars []*model.Variable
	for v := range store.IterVariables() {
		vars = append(vars, v)
	}
	// Loop state: counter, n, idx, columns..., state, loss, variables...
	init := []*graph.Node{graph.ScalarZero(g, dtypes.Int32), n, idx}
	init = append(init, cols...)
	stateAt := len(init)
	init = append(init, state, graph.ScalarZero(g, dtypes.Float64))
	varsAt := len(init)
	for _, v := range vars {
		init = append(init, v.NodeValue(g))
	}
	params := func(g *graph.Graph) []*graph.Node {
		ps := make([]*graph.Node, len(init))
		for i, x := range init {
			ps[i] = graph.Parameter(g, fmt.Sprintf("loop_%d", i), x.Shape())
		}
		return ps
	}
	cond := graph.NewClosure(g, func(g *graph.Graph) []*graph.Node {
		ps := params(g)
		return []*graph.Node{graph.LessThan(ps[0], ps[1])}
	})
	body := graph.NewClosure(g, func(g *graph.Graph) []*graph.Node {
		ps := params(g)
		for j, v := range vars {
			v.SetNodeValue(ps[varsAt+j])
		}
		i, zero := ps[0], graph.ScalarZero(g, dtypes.Int32)
		rows := graph.Reshape(graph.DynamicSlice(ps[2], []*graph.Node{i, zero, zero}, []int{1, r.cfg.BatchSize, 1}), r.cfg.BatchSize, 1)
		batch := make([]*graph.Node, numCols)
		for c := range numCols {
			batch[c] = graph.Gather(ps[3+c], rows)
		}
		loss := r.stepper.BuildStep(scope, r.lossFn, batch[:numInputs], batch[numInputs:])
		checkScalarLoss(fmt.Sprintf("stepper %q: BuildStep", r.stepper.Name()), g, loss)
		var updated []changedVar
		for j, v := range vars {
			if v.NodeValue(g) != ps[varsAt+j] {
				updated = append(updated, changedVar{v: v, old: ps[varsAt+j]})
			}
		}
		var stateOut *graph.Node
		stateOut, checked, changed = stepChecks(g, loss, ps[stateAt], updated, r.fastMode(), r.cfg.SkipNonFinite)
		out := append([]*graph.Node{graph.AddScalar(i, 1)}, ps[1:stateAt]...)
		out = append(out, stateOut, graph.ConvertDType(loss, dtypes.Float64))
		for _, v := range vars {
			out = append(out, v.NodeValue(g))
		}
		return out
	})
	res := graph.While(cond, body, init...)
	for j, v := range vars {
		v.SetNodeValue(res[varsAt+j])
	}
	return []*graph.Node{res[stateAt+1], res[stateAt]}, checked, changed
}

// runLoop runs count (<= StepsPerExecution) steps from the k-th (0-based) in one execution.
func (r *runner) runLoop(k, count int) error {
	spe, bs := r.cfg.StepsPerExecution, r.cfg.BatchSize
	idx := make([]int32, spe*bs) // Rows of the steps after count: 0, unused.
	for i := range count {
		for j, row := range r.rows(k + i) {
			idx[i*bs+j] = int32(row)
		}
	}
	extra := []*tensors.Tensor{tensors.FromFlatDataAndDimensions(idx, spe, bs, 1), tensors.FromValue(int32(count))}
	defer finalizeTensors(extra)
	args := make([]any, 0, len(r.data)+3)
	for _, t := range r.data {
		args = append(args, t)
	}
	args = append(args, extra[0], extra[1], r.state)
	return r.execute(fmt.Sprintf("steps %d to %d", k+1, k+count), args)
}
