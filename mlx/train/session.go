package train

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
)

// Session trains one loss function on one dataset several times (over seeds, learning
// rates, optimizers), compiling its graphs once where it can: on XLA CPU compiling a small
// model's forward pass and training step takes about a second, often more than the
// training itself.
//
// Each [Session.Run] gives the history [Run] gives for the same stepper and Config on a
// fresh Store, bit for bit (the tests check it for first-order optimizers, AdaHessian's
// random probes, zeroth-order steppers and local SGD). It reuses the graphs the previous
// run compiled when the new run's graphs are the same: same batch shapes, and the same
// computation, which they are when runs differ only in the seed or in what the optimizers
// of mlx/optim keep in variables (their learning rate). Otherwise it compiles, as Run
// does. To tell, it builds the new run's graphs without compiling them (a few
// milliseconds) on a scratch Store, which also gives the initial values of the run's
// variables, and compares them node by node, constants included, with the compiled ones.
//
// The model of the last run stays in [Session.Store] until the next Run. A Session does not
// write checkpoints (Config.CheckpointDir must be empty: use Run for resumable runs). It is
// not safe for concurrent use. Close releases what it compiled.
type Session struct {
	backend compute.Backend
	lossFn  LossFn
	ds      *data.Dataset

	store    *model.Store
	compiled *compiledRun
	compiles int
	// data is the dataset on the device (see runner.deviceData), copied there by the
	// first run; dataDone tells that this was done (data is nil for a large dataset).
	data     []*tensors.Tensor
	dataDone bool
}

// compiledRun is what a Session keeps of the run that compiled its graphs.
type compiledRun struct {
	forward, step *guardedExec
	// forwardPrint and stepPrint identify the compiled graphs (see graphPrint).
	forwardPrint, stepPrint string
	// created lists the variables of the Store after createVariables, then all of them.
	created, all []variableSignature
	checked      []string
	changed      []string
	batchSize    int
	// check is the run's finite check of the variables (fast mode), once compiled.
	check *guardedExec
}

// finalize releases the compiled graphs.
func (c *compiledRun) finalize() {
	if c.forward != nil {
		c.forward.finalize()
	}
	if c.step != nil {
		c.step.finalize()
	}
	if c.check != nil {
		c.check.finalize()
	}
}

// variableSignature is a variable's path and shape.
type variableSignature struct {
	path  string
	shape string
}

// NewSession prepares training runs of lossFn on ds.
func NewSession(backend compute.Backend, lossFn LossFn, ds *data.Dataset) (*Session, error) {
	switch {
	case backend == nil:
		return nil, errors.New("train.NewSession: backend is nil")
	case lossFn == nil:
		return nil, errors.New("train.NewSession: lossFn is nil")
	case ds == nil:
		return nil, errors.New("train.NewSession: dataset is nil")
	}
	return &Session{backend: backend, lossFn: lossFn, ds: ds}, nil
}

// Store returns the Store of the last run (its trained model), or nil before the first
// run. The next Run overwrites it.
func (s *Session) Store() *model.Store { return s.store }

// Compiles returns how many times the Session compiled a training step: 1 when every run
// so far reused the first run's graphs.
func (s *Session) Compiles() int { return s.compiles }

// Close releases the compiled graphs, the last run's Store and the dataset's copy on the
// device. The Session can still run after Close: it compiles again.
func (s *Session) Close() {
	s.release()
	finalizeTensors(s.data)
	s.data, s.dataDone = nil, false
}

// release releases the compiled graphs and the last run's Store.
func (s *Session) release() {
	if s.compiled != nil {
		s.compiled.finalize()
		s.compiled = nil
	}
	if s.store != nil {
		s.store.Finalize()
		s.store = nil
	}
}

// Run trains a fresh model with stepper for cfg, as [Run] does on a new Store, and returns
// its history. On error it returns the history recorded so far along with the error.
func (s *Session) Run(stepper Stepper, cfg Config) (*history.History, error) {
	if stepper == nil {
		return nil, errors.New("train.Session.Run: stepper is nil")
	}
	cfg, err := cfg.validate(s.ds, stepper)
	if err != nil {
		return nil, fmt.Errorf("train.Session.Run: %w", err)
	}
	if cfg.CheckpointDir != "" {
		return nil, fmt.Errorf("train.Session.Run: Config.CheckpointDir=%q: a Session does not write checkpoints (use train.Run)", cfg.CheckpointDir)
	}
	cfg, stop := withInterrupts(cfg)
	defer stop()
	name := runName(cfg, stepper)
	r := &runner{backend: s.backend, lossFn: s.lossFn, ds: s.ds, stepper: stepper, cfg: cfg,
		hist: history.New(name, stepper.Name(), cfg.Seed)}
	if !s.dataDone {
		if s.data, err = r.deviceData(); err != nil {
			return r.hist, fmt.Errorf("train.Session.Run(%q): %w", name, err)
		}
		s.dataDone = true
	}
	r.data = s.data
	if err := r.checkLoop(); err != nil {
		return r.hist, fmt.Errorf("train.Session.Run(%q): %w", name, err)
	}
	if err := s.prepare(r); err != nil {
		return r.hist, fmt.Errorf("train.Session.Run(%q): %w", name, err)
	}
	err = r.train(0, -1)
	if s.compiled != nil && s.compiled.check == nil {
		// The finite check the run compiled serves the next runs of these graphs.
		s.compiled.check = r.check
	}
	if err != nil {
		return r.hist, fmt.Errorf("train.Session.Run(%q): %w", name, err)
	}
	return r.hist, nil
}

// prepare gives r a Store holding the run's initial variables and a compiled step: the
// Session's, reset for the run, when the run's graphs equal the compiled ones; else new ones.
func (s *Session) prepare(r *runner) error {
	ok, err := s.reuse(r)
	if err != nil || ok {
		return err
	}
	// Compile afresh, as Run does.
	s.release()
	s.store = model.NewStore()
	r.store = s.store
	if err := SeedStore(r.store, r.cfg.Seed); err != nil {
		return err
	}
	c := &compiledRun{batchSize: r.cfg.BatchSize}
	if c.forward, err = r.createVariables(0); err != nil {
		return err
	}
	c.created = signatures(r.store)
	if err := r.buildStep(); err != nil {
		c.finalize()
		return err
	}
	c.step = r.exec
	if err := r.compileStep(); err != nil {
		c.finalize()
		return err
	}
	// Initialise the stepper's variables now, as a reused run does (values are the same as
	// when the first step initialises them: nothing runs in between).
	if err := catch("initialising the stepper's variables", func() error {
		return r.store.InitializeVariables(r.backend, nil)
	}); err != nil {
		c.finalize()
		return err
	}
	s.compiles++
	c.all = signatures(r.store)
	c.forwardPrint, c.stepPrint, c.checked, c.changed = r.forwardPrint, r.stepPrint, r.checked, r.changed
	s.compiled = c
	return nil
}

// reuse prepares the run on the Session's Store with the compiled graphs if the run's
// graphs are the same, and reports whether it did. Its scratch Store replays what Run does
// to a fresh Store (seed, variables created by the forward pass, then by the step), with
// each initialisation at the same point, so the variables get the values Run gives them.
func (s *Session) reuse(r *runner) (bool, error) {
	c := s.compiled
	if c == nil || c.forwardPrint == "" || c.stepPrint == "" || c.batchSize != r.cfg.BatchSize {
		return false, nil
	}
	scratch := model.NewStore()
	defer scratch.Finalize()
	if err := SeedStore(scratch, r.cfg.Seed); err != nil {
		return false, err
	}
	inputs, labels, err := r.ds.Batch(r.cfg.Seed, r.cfg.BatchSize, 0)
	if err != nil {
		return false, err
	}
	defer finalizeTensors(inputs, labels)
	argShapes := shapesOf(inputs, labels)

	// The forward pass of createVariables.
	print, err := buildOnly(r.backend, scratch, argShapes, func(scope *model.Scope, args []*graph.Node) string {
		loss := r.forwardGraph(scope, args)
		return graphPrint(scratch, loss.Graph(), loss)
	})
	if err != nil {
		return false, fmt.Errorf("creating the model's variables: %w", err)
	}
	if print != c.forwardPrint || !slices.Equal(signatures(scratch), c.created) {
		return false, nil
	}
	if err := catch("initialising the model's variables", func() error {
		return scratch.InitializeVariables(r.backend, nil)
	}); err != nil {
		return false, err
	}
	// The step, built with this run's stepper on the scratch Store.
	if err := r.createStepVariables(scratch); err != nil {
		return false, err
	}
	stepShapes, err := r.stepArgShapes()
	if err != nil {
		return false, err
	}
	var checked []string
	print, err = buildOnly(r.backend, scratch, stepShapes, func(scope *model.Scope, args []*graph.Node) string {
		outs, names, _ := r.stepGraph(scope, args)
		checked = names
		return graphPrint(scratch, outs[0].Graph(), outs...)
	})
	if err != nil {
		return false, fmt.Errorf("building the training step: %w", err)
	}
	if print != c.stepPrint || !slices.Equal(signatures(scratch), c.all) || !slices.Equal(checked, c.checked) {
		return false, nil
	}

	// Same graphs: give the Session's Store the run's initial values.
	store := s.store
	if err := copyValues(scratch, store, c.created); err != nil {
		return false, err
	}
	store.SetParam(model.ParamInitialSeed, r.cfg.Seed)
	if c.forward != nil {
		// The forward pass changes variables: run it, as Run does.
		if err := catch("creating the model's variables", func() error {
			outs, err := c.forward.call(batchArgs(inputs, labels)...)
			finalizeTensors(outs)
			return err
		}); err != nil {
			return false, err
		}
	}
	// Variables the step creates are initialised from the state the forward pass left.
	if err := copyValues(store, scratch, c.created); err != nil {
		return false, err
	}
	if err := catch("initialising the stepper's variables", func() error {
		return scratch.InitializeVariables(r.backend, nil)
	}); err != nil {
		return false, err
	}
	// Every variable: the initialisation also advances the random state.
	if err := copyValues(scratch, store, c.all); err != nil {
		return false, err
	}
	r.store, r.exec, r.checked, r.changed, r.check = store, c.step, c.checked, c.changed, c.check
	return true, nil
}

// errBuilt ends a graph function of buildOnly once the graph is built.
var errBuilt = errors.New("train: graph built, not to be compiled")

// buildOnly builds a graph with fn on store, for arguments of the given shapes, without
// compiling it (variables fn uses are created in store), and returns what fn returns.
func buildOnly(backend compute.Backend, store *model.Store, argShapes []shapes.Shape, fn func(scope *model.Scope, args []*graph.Node) string) (string, error) {
	var out string
	err := catch("building the graph", func() error {
		exec, err := model.NewExec(backend, store, func(scope *model.Scope, args []*graph.Node) *graph.Node {
			out = fn(scope, args)
			panic(errBuilt)
		})
		if err != nil {
			return err
		}
		// guardedExec: a panic that GoMLX does not catch must not leave Finalize waiting.
		ge := &guardedExec{exec: exec}
		defer ge.finalize()
		return ge.compile(argShapes...)
	})
	if errors.Is(err, errBuilt) {
		return out, nil
	}
	if err == nil {
		err = errors.New("the graph was compiled")
	}
	return "", err
}

// graphPrint identifies the computation of graph g with the given outputs (and the
// variables it updates in store): a hash of every node (operation, parameters, inputs,
// shapes, constant values). It is "" when g has a constant too large for GoMLX to keep its
// value (graph.MinConstValueSizeToKeep), which cannot be compared.
func graphPrint(store *model.Store, g *graph.Graph, outs ...*graph.Node) string {
	h := sha256.New()
	for _, n := range g.Nodes() {
		if n.Type() == graph.NodeTypeConstant && n.ConstantValue() == nil {
			return ""
		}
		fmt.Fprintln(h, n.String())
	}
	for _, o := range outs {
		fmt.Fprintln(h, "output", o.Id())
	}
	for v := range store.IterVariables() {
		if v.ChangedInGraph(g) {
			fmt.Fprintln(h, "update", v.Path(), v.NodeValue(g).Id())
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// signatures lists the variables of store, in creation order.
func signatures(store *model.Store) []variableSignature {
	var out []variableSignature
	for v := range store.IterVariables() {
		out = append(out, variableSignature{path: v.Path(), shape: v.Shape().String()})
	}
	return out
}

// copyValues sets each variable of vars in to a copy of its namesake's value in from.
func copyValues(from, to *model.Store, vars []variableSignature) error {
	for _, sig := range vars {
		src, dst := from.GetVariable(sig.path), to.GetVariable(sig.path)
		if src == nil || dst == nil {
			return fmt.Errorf("variable %q is missing", sig.path)
		}
		t, err := src.Value()
		if err != nil {
			return fmt.Errorf("variable %q: %w", sig.path, err)
		}
		c, err := t.Clone()
		if err != nil {
			return fmt.Errorf("copying variable %q: %w", sig.path, err)
		}
		if err := dst.SetValue(c); err != nil {
			return fmt.Errorf("variable %q: %w", sig.path, err)
		}
	}
	return nil
}

// shapesOf returns the shapes of the tensors of each list, in order.
func shapesOf(lists ...[]*tensors.Tensor) []shapes.Shape {
	var out []shapes.Shape
	for _, l := range lists {
		for _, t := range l {
			out = append(out, t.Shape())
		}
	}
	return out
}
