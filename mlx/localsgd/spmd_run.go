package localsgd

import (
	"errors"
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/distributed"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/internal/gomlxerr"
	"github.com/goptlab/goptlab/mlx/train"
)

// ErrTooFewDevices is returned (wrapped) by [LocalSGD.RunDistributed] when the backend
// has fewer devices than workers (GoMLX's pure-Go backend has one).
var ErrTooFewDevices = errors.New("the backend has fewer devices than workers")

// Distributed runs local SGD with one worker per device of a backend: the K workers'
// local steps run as one SPMD program (GoMLX's graph.Exec.SPMD over a one-axis device
// mesh of K devices), each device holding its worker's model and optimizer state and
// receiving its worker's batch; every H steps a second SPMD program averages the model
// state with an all-reduce and applies DiLoCo's outer step. It computes what the
// in-graph simulation ([LocalSGD.BuildStep]) computes, with the same Store variables for
// the global model, the round counter, the global step and the outer momentum; the
// workers' copies stay on their devices ([Distributed.Replica]) instead of living in
// the Store at [LocalSGD.WorkerPath].
//
// It uses graph.Exec, not model.Exec: in GoMLX v0.28.8, model.Exec.SPMD gives every
// variable a sharding spec that the XLA backend rejects in SPMD mode ("mesh not found":
// go-xla registers meshes only for AutoSharding), so Distributed feeds the Store's
// variables to the programs itself, one copy per device.
//
// Create it with [LocalSGD.NewDistributed]; [LocalSGD.RunDistributed] wraps it in a
// training loop like mlx/train's Run.
type Distributed struct {
	l       *LocalSGD
	backend compute.Backend
	store   *model.Store
	lossFn  train.LossFn
	mesh    *distributed.DeviceMesh // nil for K = 1.

	numInputs int
	step      *graph.Exec
	sync      *graph.Exec
	plan      *spmdPlan
	// Store variables changed by each program, output after the program's own outputs.
	stepChanged, syncChanged []*model.Variable
	replicaIndex             map[string]int      // Parameter name -> index in replicas[k].
	replicas                 [][]*tensors.Tensor // [device][variable]: the workers' copies.
	copies                   map[*model.Variable]*deviceCopies
	weights                  []*tensors.Tensor // Per device: its FedAvg weight (float64 scalar).
	counter                  int64             // Local steps taken, as the Store's counter at StepPath.
	reduced                  int64             // Floats each device sent through the last all-reduce.
}

// deviceCopies are the per-device copies of a Store variable's value src.
type deviceCopies struct {
	src       *tensors.Tensor
	perDevice []*tensors.Tensor // perDevice[0] is src, the Store's value.
}

// release frees the copies on the devices other than the first (whose copy is the
// Store's value).
func (c *deviceCopies) release() {
	for _, t := range c.perDevice[1:] {
		_ = t.FinalizeAll()
	}
}

// NewDistributed prepares the distributed mode on the first K devices of backend, for
// a model whose variables live in store. lossFn is the loss of one worker's batch. It
// returns an error wrapping [ErrTooFewDevices] if the backend has fewer than K devices.
// With K = 1 it runs an ordinary one-device program.
//
// The programs are compiled at the first [Distributed.Step]. Variables without a value
// then are initialized on one device and copied to the others (as mlx/train's Run,
// [LocalSGD.RunDistributed] first runs the loss once to create the model's variables).
func (l *LocalSGD) NewDistributed(backend compute.Backend, store *model.Store, lossFn train.LossFn) (*Distributed, error) {
	switch {
	case backend == nil:
		return nil, errors.New("localsgd: backend is nil")
	case store == nil:
		return nil, errors.New("localsgd: store is nil (create one with model.NewStore)")
	case lossFn == nil:
		return nil, errors.New("localsgd: lossFn is nil")
	}
	K := l.cfg.Workers
	if n := backend.NumDevices(); n < K {
		return nil, fmt.Errorf("localsgd %s: distributed mode needs one device per worker: backend %q has %d device(s) for K=%d workers: %w",
			l.name, backend.Name(), n, K, ErrTooFewDevices)
	}
	d := &Distributed{l: l, backend: backend, store: store, lossFn: lossFn, counter: -1,
		copies: make(map[*model.Variable]*deviceCopies)}
	if K == 1 {
		return d, nil // One device: an ordinary program, nothing to all-reduce.
	}
	var err error
	if d.mesh, err = distributed.NewDeviceMesh([]int{K}, []string{MeshAxis}); err != nil {
		return nil, fmt.Errorf("localsgd %s: device mesh: %w", l.name, err)
	}
	return d, nil
}

// spmd applies the SPMD strategy over the mesh to e, where there is more than one device.
func (d *Distributed) spmd(e *graph.Exec) *graph.Exec {
	if d.mesh != nil {
		e = e.SPMD(d.mesh)
	}
	return e.SetSideParamsHook(d.sideParams)
}

// changedVars lists the Store variables that g changes, and their new values.
func changedVars(store *model.Store, g *graph.Graph) ([]*model.Variable, []*graph.Node) {
	var vars []*model.Variable
	var values []*graph.Node
	for v := range store.IterVariables() {
		if v.ChangedInGraph(g) {
			vars = append(vars, v)
			values = append(values, v.NodeValue(g))
		}
	}
	return vars, values
}

// build creates the two programs for numInputs inputs (then the labels).
func (d *Distributed) build(numInputs int) error {
	d.numInputs = numInputs
	if err := linkRNGState(d.store); err != nil {
		return err
	}
	scope := d.store.RootScope()
	step, err := graph.NewExec(d.backend, func(args []*graph.Node) []*graph.Node {
		g := args[0].Graph()
		model.SetStore(g, d.store)
		d.store.SetTraining(g, true)
		loss, newReplicas, plan := d.l.buildSPMDStep(scope, d.lossFn, args[:numInputs], args[numInputs:])
		d.plan = plan
		var changed []*graph.Node
		d.stepChanged, changed = changedVars(d.store, g)
		return append(append([]*graph.Node{loss}, newReplicas...), changed...)
	})
	if err != nil {
		return err
	}
	d.step = d.spmd(step).WithName("localsgd.step:" + d.l.name)
	sync, err := graph.NewExec(d.backend, func(g *graph.Graph) []*graph.Node {
		if d.plan == nil {
			panic(errors.New("the synchronization was built before the local step"))
		}
		model.SetStore(g, d.store)
		reduced, newOpt := d.l.buildSPMDSync(scope, g, d.plan)
		var changed []*graph.Node
		d.syncChanged, changed = changedVars(d.store, g)
		return append(append([]*graph.Node{reduced}, newOpt...), changed...)
	})
	if err != nil {
		d.step.Finalize()
		return err
	}
	d.sync = d.spmd(sync).WithName("localsgd.sync:" + d.l.name)
	if d.l.cfg.ShardSizes != nil {
		for _, w := range d.l.weights {
			d.weights = append(d.weights, tensors.FromValue(w))
		}
	}
	return nil
}

// sideParams feeds the parameters the programs created beyond their inputs: each
// device's worker copies, its FedAvg weight, and the Store's variables (a copy per device).
func (d *Distributed) sideParams(g *graph.Graph, buffers []compute.Buffer, donate []bool) error {
	if err := d.store.InitializeVariables(d.backend, nil); err != nil {
		return err
	}
	K := d.l.cfg.Workers
	numParams := g.NumParameters()
	for h := range numParams {
		if buffers[h] != nil {
			continue // An input.
		}
		name := g.GetParameterByHandle(graph.ParameterHandle(h)).GetParameterName()
		perDevice := make([]*tensors.Tensor, K)
		switch {
		case name == d.l.WeightPath():
			perDevice = d.weights
		case d.replicaIndex != nil && d.replicaIndex[name] > 0:
			for k := range K {
				perDevice[k] = d.replicas[k][d.replicaIndex[name]-1]
			}
		default:
			v := d.store.GetVariable(name)
			if v == nil {
				return fmt.Errorf("parameter %q is neither an input, a worker copy nor a Store variable", name)
			}
			copies, err := d.deviceCopies(v)
			if err != nil {
				return err
			}
			perDevice = copies.perDevice
		}
		for k := range K {
			buf, err := perDevice[k].Buffer(d.backend, compute.DeviceNum(k))
			if err != nil {
				return fmt.Errorf("parameter %q on device %d: %w", name, k, err)
			}
			buffers[k*numParams+h] = buf
			donate[k*numParams+h] = false
		}
	}
	return nil
}

// deviceCopies returns one copy per device of v's current value.
func (d *Distributed) deviceCopies(v *model.Variable) (*deviceCopies, error) {
	value, err := v.Value()
	if err != nil {
		return nil, err
	}
	if c := d.copies[v]; c != nil && c.src == value {
		return c, nil
	}
	c := &deviceCopies{src: value, perDevice: make([]*tensors.Tensor, d.l.cfg.Workers)}
	c.perDevice[0] = value
	for k := 1; k < len(c.perDevice); k++ {
		if v.Path() == rngStatePath {
			// Each device draws its own random numbers (dropout masks...), as the workers of
			// the in-graph simulation do; after a step, each keeps its own state (see collect).
			if c.perDevice[k], err = deviceRNGState(value, k); err != nil {
				return nil, fmt.Errorf("random state of device %d: %w", k, err)
			}
			continue
		}
		if c.perDevice[k], err = value.OnDeviceClone(d.backend, compute.DeviceNum(k)); err != nil {
			return nil, fmt.Errorf("copying variable %q to device %d: %w", v.Path(), k, err)
		}
	}
	d.replaceCopies(v, c)
	return c, nil
}

// rngStatePath is the Store's random state, which dropout and GoMLX's other random layers
// draw from.
var rngStatePath = model.JoinPath("/", model.RNGStateVariableName)

// linkRNGState makes sure the Store's random state exists as an ordinary Store variable.
// GoMLX v0.28.8 creates it (when a graph first draws random numbers) without a link to its
// Store, and building an SPMD program that reads such a variable dereferences that nil link
// (model.Variable.paramNode): so the state is created here, as the Store would create it
// (from model.ParamInitialSeed if set), and recreated with CreateVariable, same value.
func linkRNGState(store *model.Store) error {
	v := store.GetVariable(rngStatePath)
	if v == nil || !v.HasValue() {
		if err := store.ResetRNGState(); err != nil {
			return fmt.Errorf("creating the Store's random state: %w", err)
		}
		v = store.GetVariable(rngStatePath)
	}
	value, err := v.Value()
	if err != nil {
		return fmt.Errorf("reading the Store's random state: %w", err)
	}
	words, err := tensors.CopyFlatData[uint64](value)
	if err != nil {
		return fmt.Errorf("reading the Store's random state: %w", err)
	}
	dims := value.Shape().Dimensions // Before DeleteVariable, which frees value.
	if err := store.DeleteVariable(rngStatePath); err != nil {
		return fmt.Errorf("replacing the Store's random state: %w", err)
	}
	nv, err := store.CreateVariable(rngStatePath, tensors.FromFlatDataAndDimensions(words, dims...))
	if err != nil {
		return fmt.Errorf("replacing the Store's random state: %w", err)
	}
	nv.SetTrainable(false)
	return nil
}

// deviceRNGState returns device k's (k >= 1) random state, derived from the Store's state:
// a GoMLX state seeded by a hash of the state's words and k, so that the devices' streams
// are distinct and reproducible from the Store's seed.
func deviceRNGState(state *tensors.Tensor, k int) (*tensors.Tensor, error) {
	words, err := tensors.CopyFlatData[uint64](state)
	if err != nil {
		return nil, err
	}
	h := uint64(k) * 0x9E3779B97F4A7C15
	for _, w := range words {
		h = splitMix64(h ^ w)
	}
	return graph.RNGStateFromSeed(int64(h))
}

// splitMix64 is Steele, Lea and Flood's SplitMix64 finalizer: a bijective 64-bit mix.
func splitMix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// replaceCopies installs c as v's per-device copies, releasing the previous ones
// (but device 0's, which is the Store's value).
func (d *Distributed) replaceCopies(v *model.Variable, c *deviceCopies) {
	if old := d.copies[v]; old != nil {
		old.release()
	}
	d.copies[v] = c
}

// collect reads a program's outputs ([device][output]): numOwn outputs of its own, then
// the new values of the Store variables in changed (every device computes the same).
func (d *Distributed) collect(outs []*tensors.Tensor, numOwn int, changed []*model.Variable) ([][]*tensors.Tensor, error) {
	K := d.l.cfg.Workers
	per := len(outs) / K
	if per != numOwn+len(changed) || len(outs)%K != 0 {
		return nil, fmt.Errorf("the program returned %d outputs: want %d per device on %d devices",
			len(outs), numOwn+len(changed), K)
	}
	own := make([][]*tensors.Tensor, K)
	for k := range K {
		own[k] = outs[k*per : k*per+numOwn]
	}
	for i, v := range changed {
		c := &deviceCopies{perDevice: make([]*tensors.Tensor, K)}
		for k := range K {
			c.perDevice[k] = outs[k*per+numOwn+i]
		}
		c.src = c.perDevice[0]
		if err := v.SetValue(c.src); err != nil {
			return nil, fmt.Errorf("updating variable %q: %w", v.Path(), err)
		}
		d.replaceCopies(v, c)
	}
	return own, nil
}

// Step runs one local step of every worker in parallel, worker k on device k with
// inputs[k] and labels[k] (its batch, without a worker axis), and, when the step ends a
// round, the synchronization. It returns the workers' losses at the start of the step.
func (d *Distributed) Step(inputs, labels [][]*tensors.Tensor) (losses []float64, err error) {
	K := d.l.cfg.Workers
	if len(inputs) != K || len(labels) != K {
		return nil, fmt.Errorf("localsgd %s: got batches for %d and %d workers (inputs, labels): want %d",
			d.l.name, len(inputs), len(labels), K)
	}
	err = gomlxerr.Catch(func() error {
		if d.step == nil {
			if err := d.build(len(inputs[0])); err != nil {
				return err
			}
		}
		args := make([]any, 0, K*(len(inputs[0])+len(labels[0])))
		for k := range K {
			if len(inputs[k]) != d.numInputs {
				return fmt.Errorf("worker %d has %d inputs, want %d", k, len(inputs[k]), d.numInputs)
			}
			for _, t := range inputs[k] {
				args = append(args, t)
			}
			for _, t := range labels[k] {
				args = append(args, t)
			}
		}
		if d.replicas == nil {
			// Compile first: the plan gives the workers' copies, zero until the round's
			// first step replaces them with the global model.
			if _, err := d.step.Compile(argShapes(args)...); err != nil {
				return err
			}
			if err := d.initReplicas(); err != nil {
				return err
			}
		}
		outs, err := d.step.Exec(args...)
		if err != nil {
			return err
		}
		numReplicas := len(d.plan.modelVars) + len(d.plan.optVars)
		own, err := d.collect(outs, 1+numReplicas, d.stepChanged)
		if err != nil {
			return err
		}
		losses = make([]float64, K)
		for k := range K {
			if losses[k], err = gomlxerr.ScalarFloat(own[k][0]); err != nil {
				return fmt.Errorf("reading worker %d's loss: %w", k, err)
			}
			_ = own[k][0].FinalizeAll()
			for r, t := range own[k][1:] {
				_ = d.replicas[k][r].FinalizeAll()
				d.replicas[k][r] = t
			}
		}
		d.counter++
		if d.counter%int64(d.l.cfg.LocalSteps) == 0 {
			return d.synchronize()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("localsgd %s: distributed step: %w", d.l.name, err)
	}
	return losses, nil
}

// synchronize runs the end-of-round program.
func (d *Distributed) synchronize() error {
	outs, err := d.sync.Exec()
	if err != nil {
		return fmt.Errorf("synchronization: %w", err)
	}
	numOpt := 0
	if d.l.cfg.State == AverageState {
		numOpt = len(d.plan.optVars)
	}
	own, err := d.collect(outs, 1+numOpt, d.syncChanged)
	if err != nil {
		return fmt.Errorf("synchronization: %w", err)
	}
	d.reduced = own[0][0].Value().(int64)
	numModel := len(d.plan.modelVars)
	for k := range own {
		_ = own[k][0].FinalizeAll()
		for j, t := range own[k][1:] {
			_ = d.replicas[k][numModel+j].FinalizeAll()
			d.replicas[k][numModel+j] = t
		}
	}
	return nil
}

// initReplicas creates the workers' (zero) copies once the plan is known, and reads the
// round counter.
func (d *Distributed) initReplicas() error {
	vars := d.plan.replicaVars()
	d.replicaIndex = make(map[string]int, len(vars))
	d.replicas = make([][]*tensors.Tensor, d.l.cfg.Workers)
	for k := range d.replicas {
		d.replicas[k] = make([]*tensors.Tensor, len(vars))
		for i, v := range vars {
			d.replicas[k][i] = tensors.FromShape(v.Shape())
		}
	}
	for i, v := range vars {
		d.replicaIndex[d.l.ReplicaPath(v.Path())] = i + 1
	}
	d.counter = 0
	if v := d.store.GetVariable(d.l.StepPath()); v != nil && v.HasValue() {
		value, err := v.Value()
		if err != nil {
			return err
		}
		d.counter = value.Value().(int64)
	}
	return nil
}

// argShapes returns the shapes of the arguments.
func argShapes(args []any) []shapes.Shape {
	out := make([]shapes.Shape, len(args))
	for i, a := range args {
		out[i] = a.(*tensors.Tensor).Shape()
	}
	return out
}

// Replica returns worker k's current copy of the model or optimizer variable at path
// (the state on device k), or an error if there is none.
func (d *Distributed) Replica(k int, path string) (*tensors.Tensor, error) {
	i := d.replicaIndex[d.l.ReplicaPath(path)]
	if i == 0 || k < 0 || k >= len(d.replicas) {
		return nil, fmt.Errorf("localsgd %s: no copy of %q for worker %d", d.l.name, path, k)
	}
	return d.replicas[k][i-1], nil
}

// Loss returns the FedAvg-weighted mean of the workers' losses computed as BuildStep's
// loss is (in the losses' float32 precision, in the same order), so that both modes
// report the same number.
func (d *Distributed) Loss(losses []float64) float64 {
	if d.l.cfg.ShardSizes == nil {
		sum := float32(losses[0])
		for _, x := range losses[1:] {
			sum = float32(sum + float32(x))
		}
		if len(losses) > 1 {
			sum = float32(sum / float32(len(losses)))
		}
		return float64(sum)
	}
	var sum float32
	for k, x := range losses {
		term := float32(float32(x) * float32(d.l.weights[k]))
		if k == 0 {
			sum = term
		} else {
			sum = float32(sum + term)
		}
	}
	return float64(sum)
}

// ReducedPerRound returns the number of floats each device contributed to the last
// round's all-reduce (0 before the first round ended): the model state, plus the
// optimizer state with AverageState, the same as [Communication.PerWorker].
func (d *Distributed) ReducedPerRound() int { return int(d.reduced) }

// Finalize releases the compiled programs and the workers' copies.
func (d *Distributed) Finalize() {
	for _, ts := range d.replicas {
		for _, t := range ts {
			_ = t.FinalizeAll()
		}
	}
	d.replicas = nil
	for _, c := range d.copies {
		c.release()
	}
	d.copies = nil
	if d.step != nil {
		d.step.Finalize()
	}
	if d.sync != nil {
		d.sync.Finalize()
	}
}
