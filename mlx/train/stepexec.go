package train

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/internal/gomlxerr"
)

// The step graph carries a small int32 vector, its state, from one execution to the next
// (it stays on the device): the loop reads it only when it needs to know how the steps
// went, not after every step. Its entries:
const (
	// stateBad is 1 when the latest step (in fast mode: any step since the state was
	// created) had a non-finite loss or, in checked mode, a non-finite updated variable.
	stateBad = iota
	// stateLossBad is 1 when that step's loss was not finite.
	stateLossBad
	stateLen
)

// deviceDataLimit is the largest dataset, in bytes, that a run copies to the device once
// to gather each batch there (from indices, a few bytes a step) instead of gathering
// batches on the host and copying each one. A variable for the tests.
var deviceDataLimit int64 = 1 << 30

// datasetBytes is the size of the dataset's columns.
func (r *runner) datasetBytes() int64 {
	var n int64
	for _, cols := range [][]data.Column{r.ds.Inputs(), r.ds.Labels()} {
		for _, c := range cols {
			n += 4 * int64(len(c.Float32)+len(c.Int32))
		}
	}
	return n
}

// deviceData returns the dataset's columns (inputs, then labels) as tensors moved to the
// backend's device, or nil when the dataset is larger than deviceDataLimit (batches are
// then gathered on the host).
func (r *runner) deviceData() ([]*tensors.Tensor, error) {
	if r.datasetBytes() > deviceDataLimit {
		return nil, nil
	}
	inputs, labels := r.ds.All()
	all := append(inputs, labels...)
	for i, t := range all {
		if err := t.ToDevice(r.backend, 0); err != nil {
			finalizeTensors(all)
			return nil, fmt.Errorf("copying column %d of dataset %q to the device: %w", i, r.ds.Name(), err)
		}
	}
	return all, nil
}

// stepArgShapes are the shapes of the step graph's arguments (see stepGraph).
func (r *runner) stepArgShapes() ([]shapes.Shape, error) {
	if r.loop() {
		return r.loopArgShapes(), nil
	}
	return r.singleArgShapes()
}

// singleArgShapes are the shapes of the arguments of one step: the dataset's columns and a
// batch's row indices (device-resident data), or a batch's columns; then the state.
func (r *runner) singleArgShapes() ([]shapes.Shape, error) {
	var out []shapes.Shape
	if r.data != nil {
		out = append(shapesOf(r.data), shapes.Make(dtypes.Int32, r.cfg.BatchSize, 1))
	} else {
		inputs, labels, err := r.ds.Batch(r.cfg.Seed, r.cfg.BatchSize, 0)
		if err != nil {
			return nil, err
		}
		out = shapesOf(inputs, labels)
		finalizeTensors(inputs, labels)
	}
	return append(out, shapes.Make(dtypes.Int32, stateLen)), nil
}

// rows returns the dataset rows of the k-th batch of the run (0-based): those of
// Dataset.Batch, from the epoch's permutation kept between steps (Dataset.Batch draws it
// again for every batch: O(dataset size) per step).
func (r *runner) rows(k int) []int {
	per := r.ds.BatchesPerEpoch(r.cfg.BatchSize)
	if epoch := k / per; r.perm == nil || r.permEpoch != epoch {
		r.perm, r.permEpoch = r.ds.Permutation(r.cfg.Seed, epoch), epoch
	}
	start := (k % per) * r.cfg.BatchSize
	return r.perm[start : start+r.cfg.BatchSize]
}

// batch returns the k-th batch of the run, gathered on the host.
func (r *runner) batch(k int) (inputs, labels []*tensors.Tensor, err error) {
	return r.ds.Rows(r.rows(k))
}

// runSteps runs count steps from the k-th (0-based) of the run, and keeps the outputs of
// the last one (the loss and the state) without reading them.
func (r *runner) runSteps(k, count int) error {
	if r.loop() {
		return r.runLoop(k, count)
	}
	for i := range count {
		if err := r.runStep(k + i); err != nil {
			return err
		}
	}
	return nil
}

// runStep runs the k-th step (0-based) of the run, one step per execution.
func (r *runner) runStep(k int) error {
	var args []any
	var batch []*tensors.Tensor
	if r.data != nil {
		rows := r.rows(k)
		idx := make([]int32, len(rows))
		for i, row := range rows {
			idx[i] = int32(row)
		}
		batch = []*tensors.Tensor{tensors.FromFlatDataAndDimensions(idx, len(idx), 1)}
		for _, t := range r.data {
			args = append(args, t)
		}
	} else {
		inputs, labels, err := r.batch(k)
		if err != nil {
			return err
		}
		batch = append(inputs, labels...)
	}
	defer finalizeTensors(batch)
	for _, t := range batch {
		args = append(args, t)
	}
	args = append(args, r.state)
	return r.execute(fmt.Sprintf("step %d", k+1), args)
}

// execute runs the step executable on args and keeps its outputs, the loss and the state,
// in place of the previous ones; what names the steps in errors.
func (r *runner) execute(what string, args []any) error {
	return catch(what, func() error {
		outs, err := r.exec.call(args...)
		if err != nil {
			return err
		}
		if len(outs) != 2 {
			finalizeTensors(outs)
			return fmt.Errorf("the step returned %d outputs, want 2", len(outs))
		}
		finalizeTensors([]*tensors.Tensor{r.loss, r.state})
		r.loss, r.state = outs[0], outs[1]
		return nil
	})
}

// newState returns the state of a run that has run no step yet.
func newState() *tensors.Tensor {
	return tensors.FromValue(make([]int32, stateLen))
}

// fastMode tells how the run checks for non-finite values. In checked mode each step
// checks, in its graph, its loss and every float variable it updates; the loop reads the
// result after every step that Config.SkipNonFinite or an AfterStepper needs to know about
// (with LogEvery 1: every step). In fast mode (no SkipNonFinite, no AfterStepper,
// LogEvery > 1) a step checks only its loss, and the loop checks the variables when it
// reads the state (every LogEvery steps, at checkpoints, at the end, on interrupt), with
// a second small graph; it keeps a copy of the variables the step updates from a good
// read (at most every snapshotEvery steps), so that on a non-finite value it can go back there and replay the steps one
// by one, with the same compiled step, to find the first non-finite one.
func (r *runner) fastMode() bool {
	_, after := r.stepper.(AfterStepper)
	return !r.cfg.SkipNonFinite && !after && r.cfg.LogEvery > 1
}

// syncEvery reports whether the loop reads the state after every step.
func (r *runner) syncEvery() bool {
	_, after := r.stepper.(AfterStepper)
	return after || (!r.fastMode() && !r.cfg.SkipNonFinite)
}

// readState reads the state of the latest step.
func (r *runner) readState() ([]int32, error) {
	var state []int32
	err := catch("reading the state of the step", func() error {
		v, ok := r.state.Value().([]int32)
		if !ok || len(v) != stateLen {
			return fmt.Errorf("unexpected step state %s", r.state.Shape())
		}
		state = v
		return nil
	})
	return state, err
}

// sync reads the state after step (1-based) of the run: it returns whether that step was
// skipped (Config.SkipNonFinite), or the NonFiniteError of the first non-finite step.
func (r *runner) sync(step int) (skipped bool, err error) {
	state, err := r.readState()
	if err != nil {
		return false, err
	}
	if !r.fastMode() {
		switch {
		case state[stateBad] == 0:
			return false, nil
		case r.cfg.SkipNonFinite:
			return true, nil
		}
		// The loop reads the state after every step: the Store holds the step's values.
		bad, err := r.nonFiniteVariables()
		if err != nil {
			return false, err
		}
		return false, nonFiniteError(step, state[stateLossBad] != 0, bad)
	}
	bad := []string{}
	if state[stateBad] == 0 {
		if bad, err = r.checkVariables(); err != nil {
			return false, err
		}
	}
	if state[stateBad] != 0 || len(bad) > 0 {
		return false, r.replay(step)
	}
	if step-r.snapStep < snapshotEvery {
		// The last copy is older but as good: a replay starts further back.
		return false, nil
	}
	return false, r.snapshot(step)
}

// snapshotEvery is the fewest steps between two copies of the variables in fast mode: a
// copy costs about what reading them does, so it is not made at every record of a run that
// records often; a replay then starts from further back (it runs at most this many steps
// more, only when a step went non-finite).
const snapshotEvery = 100

// nonFiniteError builds the error of a non-finite step.
func nonFiniteError(step int, lossBad bool, vars []string) error {
	var all []string
	if lossBad {
		all = append(all, "loss")
	}
	all = append(all, vars...)
	if len(all) == 0 {
		all = []string{"an updated variable"}
	}
	return &NonFiniteError{Step: step, Variable: all[0], All: all}
}

// lastLoss reads the loss of the latest step.
func (r *runner) lastLoss() (float64, error) {
	loss, err := gomlxerr.ScalarFloat(r.loss)
	if err != nil {
		return loss, fmt.Errorf("reading the loss: %w", err)
	}
	return loss, nil
}

// nonFiniteVariables lists the checked variables (r.checked after "loss") that hold a
// non-finite value, reading them on the host.
func (r *runner) nonFiniteVariables() ([]string, error) {
	var bad []string
	for _, path := range r.checked[1:] {
		v := r.store.GetVariable(path)
		if v == nil {
			continue
		}
		t, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("reading variable %q: %w", path, err)
		}
		if !allFinite(t) {
			bad = append(bad, path)
		}
	}
	return bad, nil
}

// checkVariables lists the checked variables that hold a non-finite value, with a graph
// that reads them on the device (compiled at its first use).
func (r *runner) checkVariables() ([]string, error) {
	paths := r.checked[1:]
	if len(paths) == 0 {
		return nil, nil
	}
	if r.check == nil {
		err := catch("building the finite check", func() error {
			exec, err := model.NewExec(r.backend, r.store, func(scope *model.Scope, g *graph.Graph) *graph.Node {
				flags := make([]*graph.Node, len(paths))
				for i, path := range paths {
					v := scope.Store().GetVariable(path)
					if v == nil {
						panic(fmt.Errorf("variable %q is missing", path))
					}
					flags[i] = graph.LogicalAll(graph.IsFinite(v.NodeValue(g)))
				}
				return graph.Stack(flags, 0)
			})
			if err != nil {
				return err
			}
			r.check = &guardedExec{exec: exec.WithName("train.Run:finite")}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var bad []string
	err := catch("checking the variables", func() error {
		outs, err := r.check.call()
		if err != nil {
			return err
		}
		defer finalizeTensors(outs)
		flags, ok := outs[0].Value().([]bool)
		if !ok || len(flags) != len(paths) {
			return fmt.Errorf("unexpected finite check output %s", outs[0].Shape())
		}
		for i, f := range flags {
			if !f {
				bad = append(bad, paths[i])
			}
		}
		return nil
	})
	return bad, err
}

// snapshot keeps a copy of the variables the step updates, as they are after step (fast
// mode): the point a replay starts from.
func (r *runner) snapshot(step int) error {
	snap := make(map[string]*tensors.Tensor, len(r.changed))
	for _, path := range r.changed {
		v := r.store.GetVariable(path)
		if v == nil {
			continue
		}
		err := catch(fmt.Sprintf("copying variable %q", path), func() error {
			t, err := v.Value()
			if err != nil {
				return err
			}
			var c *tensors.Tensor
			if t.IsOnDevice(0) {
				c, err = t.OnDeviceClone(r.backend, 0)
			} else {
				c, err = t.Clone()
			}
			snap[path] = c
			return err
		})
		if err != nil {
			finalizeSnapshot(snap)
			return err
		}
	}
	finalizeSnapshot(r.snap)
	r.snap, r.snapStep = snap, step
	return nil
}

func finalizeSnapshot(snap map[string]*tensors.Tensor) {
	for _, t := range snap {
		if t != nil {
			_ = t.FinalizeAll()
		}
	}
}

// replay finds the first non-finite step after the snapshot, knowing that the steps up to
// step (1-based) produced one: it restores the snapshot and runs the steps again one by one,
// checking each, and returns the NonFiniteError of the first non-finite one, whose values
// the Store then holds. The replayed steps are the same computation (same compiled step,
// same batches, same random states), so they give the same values.
func (r *runner) replay(step int) error {
	if r.snap == nil {
		return fmt.Errorf("step %d: non-finite values, and no copy of the variables to find the step from", step)
	}
	for path, t := range r.snap {
		v := r.store.GetVariable(path)
		if v == nil {
			continue
		}
		if err := v.SetValue(t); err != nil {
			return fmt.Errorf("restoring variable %q to find the non-finite step: %w", path, err)
		}
	}
	from := r.snapStep
	r.snap = nil
	finalizeTensors([]*tensors.Tensor{r.state})
	r.state = newState()
	for k := from; k < step; k++ {
		if err := r.runSteps(k, 1); err != nil {
			return err
		}
		state, err := r.readState()
		if err != nil {
			return err
		}
		bad, err := r.checkVariables()
		if err != nil {
			return err
		}
		if state[stateBad] != 0 || len(bad) > 0 {
			return nonFiniteError(k+1, state[stateLossBad] != 0, bad)
		}
	}
	return fmt.Errorf("steps %d to %d gave non-finite values, but replaying them from step %d found none "+
		"(is the loss or the stepper not deterministic?)", from+1, step, from)
}

// allFinite reports whether every value of a float tensor is finite.
func allFinite(t *tensors.Tensor) bool {
	finite := true
	t.MustConstFlatData(func(flat any) {
		switch xs := flat.(type) {
		case []float32:
			for _, x := range xs {
				finite = finite && !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0)
			}
		case []float64:
			for _, x := range xs {
				finite = finite && !math.IsNaN(x) && !math.IsInf(x, 0)
			}
		case []float16.Float16:
			for _, x := range xs {
				f := float64(x.Float32())
				finite = finite && !math.IsNaN(f) && !math.IsInf(f, 0)
			}
		case []bfloat16.BFloat16:
			for _, x := range xs {
				f := float64(x.Float32())
				finite = finite && !math.IsNaN(f) && !math.IsInf(f, 0)
			}
		}
	})
	return finite
}

// changedVar is a variable a step updates, with its value at the start of the step (nil
// when the step does not read it).
type changedVar struct {
	v   *model.Variable
	old *graph.Node
}

// changedVars lists the variables of store the step graph g updates.
func changedVars(store *model.Store, g *graph.Graph) []changedVar {
	var out []changedVar
	for v := range store.IterVariables() {
		if v.ChangedInGraph(g) {
			out = append(out, changedVar{v: v, old: g.GetParameterByName(v.Path())})
		}
	}
	return out
}

// stepChecks builds the step's new state from the old one (see stateBad), and returns it
// with the names of the quantities checked ("loss", then the paths of the float variables
// the step updates) and the paths of every variable the step updates. In checked mode it
// checks the loss and every updated float variable, and, with skip, makes every updated
// float variable keep its old value when any of them is not finite; in fast mode it
// checks the loss only, and the flags stay set once set.
func stepChecks(g *graph.Graph, loss, state *graph.Node, vars []changedVar, fast, skip bool) (stateOut *graph.Node, checked, changed []string) {
	lossOK := graph.LogicalAll(graph.IsFinite(loss))
	ok := lossOK
	checked = []string{"loss"}
	var floats []changedVar
	for _, cv := range vars {
		v := cv.v
		changed = append(changed, v.Path())
		if v.DType().IsFloat() {
			floats = append(floats, cv)
			checked = append(checked, v.Path())
			if !fast {
				ok = graph.LogicalAnd(ok, graph.LogicalAll(graph.IsFinite(v.NodeValue(g))))
			}
		}
	}
	entry := func(i int) *graph.Node { return graph.Reshape(graph.Slice(state, graph.AxisElem(i))) }
	flag := func(b *graph.Node) *graph.Node { return graph.ConvertDType(graph.LogicalNot(b), dtypes.Int32) }
	if fast {
		return graph.Stack([]*graph.Node{
			graph.Max(entry(stateBad), flag(ok)),
			graph.Max(entry(stateLossBad), flag(lossOK)),
		}, 0), checked, changed
	}
	if skip {
		for _, cv := range floats {
			if cv.old == nil {
				panic(fmt.Errorf("cannot find the input value of variable %q to discard a non-finite step", cv.v.Path()))
			}
			cv.v.SetNodeValue(graph.Where(ok, cv.v.NodeValue(g), cv.old))
		}
	}
	return graph.Stack([]*graph.Node{flag(ok), flag(lossOK)}, 0), checked, changed
}
