package localsgd

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/goptlab/goptlab/mlx/train"
)

// BuildStep implements [train.Stepper]. Every input and label carries all K workers'
// batches along axis Config.WorkerAxis (default 0) of dimension K; worker k trains on
// the slice k of that axis. It returns the FedAvg-weighted mean of the workers' data losses
// (without the FedProx term), each measured at the start of the worker's local step.
//
// How the step is built:
//
//  1. The loss function and the inner optimizer are first called once at the global
//     model (a probe whose results are unused, so the compilers drop it) to find the
//     model's variables and the optimizer's state variables, creating them if needed.
//  2. For each worker k: the model's variables and the optimizer's state are set
//     (SetNodeValue) to worker k's copies (at the start of a round, the model copy
//     is the global model; with ResetState the optimizer state is its initial value),
//     the loss is evaluated on worker k's batch, the gradient taken (plus
//     mu*(w - w_global) with FedProx), and the inner optimizer applied; the results are
//     written to worker k's copies.
//  3. At the end of a round (every LocalSteps steps), the global model becomes the
//     weighted average of the workers' models (all float model variables, trainable or
//     not), or, with an Outer optimizer, theta_global - LR*step(theta_global - average)
//     for the trainable ones; with AverageState the optimizer states are averaged too.
//
// Float variables that the loss function reads but neither trains nor changes (frozen
// weights, constants) are shared, not copied. Non-float variables that it changes (the
// Store's random-number state) are threaded through the workers in turn, so each
// worker draws different random numbers. The global step counter advances by one per
// step, and every worker's optimizer sees the same step number, as in single-worker
// training (GoMLX's SGD decays its learning rate with it).
//
// It is a graph-building function: it panics on error, like GoMLX's.
func (l *LocalSGD) BuildStep(scope *model.Scope, lossFn train.LossFn, inputs, labels []*Node) *Node {
	workerInputs, workerLabels := l.splitBatch(lossFn, inputs, labels)
	g := inputs[0].Graph()
	store := scope.Store()
	K := l.cfg.Workers

	// 1. Probe: find (and create) the model's variables and the optimizer's state.
	st := l.probe(scope, g, lossFn, workerInputs[0], workerLabels[0])
	rounds := l.rounds(store, g)
	roundEnd := Equal(rounds.phase, Scalar(g, dtypes.Int64, l.cfg.LocalSteps-1))

	// 2. Local steps.
	newModel := make([][]*Node, K)
	newOpt := make([][]*Node, K)
	losses := make([]*Node, K)
	var globalStepAfter *Node
	for k := range K {
		modelCopies := make([]*Node, len(st.modelVars))
		for i, v := range st.modelVars {
			modelCopies[i] = l.workerVar(store, k, v).NodeValue(g)
		}
		optCopies := make([]*Node, len(st.optVars))
		for j, v := range st.optVars {
			optCopies[j] = l.workerVar(store, k, v).NodeValue(g)
		}
		losses[k], newModel[k], newOpt[k] = l.workerStep(scope, lossFn, &st, rounds, modelCopies, optCopies,
			workerInputs[k], workerLabels[k])
		if k == 0 {
			globalStepAfter = st.stepVar.NodeValue(g)
		}
	}

	// 3. End of round: average, outer optimizer, write back.
	for i, v := range st.modelVars {
		values := make([]*Node, K)
		for k := range K {
			values[k] = newModel[k][i]
			l.workerVar(store, k, v).SetNodeValue(newModel[k][i])
		}
		average := l.average(values)
		next := average
		if l.cfg.Outer != nil && v.Trainable {
			next = l.outerStep(store, v, st.globalStart[i], average, roundEnd)
		}
		v.SetNodeValue(Where(roundEnd, next, st.globalStart[i]))
	}
	for j, v := range st.optVars {
		var average *Node
		if l.cfg.State == AverageState {
			values := make([]*Node, K)
			for k := range K {
				values[k] = newOpt[k][j]
			}
			average = l.average(values)
		}
		for k := range K {
			value := newOpt[k][j]
			if average != nil {
				value = Where(roundEnd, average, value)
			}
			l.workerVar(store, k, v).SetNodeValue(value)
		}
		// The optimizer's own variable keeps its initial value: ResetState restarts from it.
		v.SetNodeValue(st.optStart[j])
	}
	st.stepVar.SetNodeValue(globalStepAfter)
	rounds.advance()
	return l.average(losses)
}

// CreateVariables implements [train.VariableCreator]: mlx/train's loop calls it, instead
// of the loss function, to create the model's variables before building the step. It
// evaluates lossFn, the loss of one worker's batch, once on worker 0's part of inputs and
// labels (sliced along Config.WorkerAxis, as in BuildStep) and returns that loss.
//
// It is a graph-building function: it panics on error.
func (l *LocalSGD) CreateVariables(scope *model.Scope, lossFn train.LossFn, inputs, labels []*Node) *Node {
	workerInputs, workerLabels := l.splitBatch(lossFn, inputs, labels)
	return l.callLoss(scope, lossFn, workerInputs[0], workerLabels[0])
}

// splitBatch checks the arguments of BuildStep and CreateVariables and slices the inputs
// and labels into the K workers' parts (see splitWorkers).
func (l *LocalSGD) splitBatch(lossFn train.LossFn, inputs, labels []*Node) (workerInputs, workerLabels [][]*Node) {
	if lossFn == nil {
		exceptions.Panicf("localsgd %s: the loss function is nil", l.name)
	}
	if len(inputs) == 0 {
		exceptions.Panicf("localsgd %s: inputs is empty: it needs at least one input with a leading axis of the %d workers",
			l.name, l.cfg.Workers)
	}
	return l.splitWorkers("inputs", inputs), l.splitWorkers("labels", labels)
}

// roundState is a step graph's view of the Store's counter of local steps (at
// [LocalSGD.StepPath]), which the in-graph and the SPMD steps share.
type roundState struct {
	counterVar *model.Variable
	counter    *Node // Local steps taken before this one.
	phase      *Node // counter mod LocalSteps: 0 starts a round, LocalSteps-1 ends it.
	start      *Node // Whether this step starts a round.
	// optFromStart says whether the workers' optimizer state starts from its initial
	// value: on the first step ever, or at the start of every round with ResetState.
	optFromStart *Node
}

// rounds reads the round counter (creating it if needed) in g.
func (l *LocalSGD) rounds(store *model.Store, g *Graph) roundState {
	r := roundState{counterVar: store.VariableWithValue(l.StepPath(), int64(0)).SetTrainable(false)}
	r.counter = r.counterVar.NodeValue(g)
	r.phase = ModScalar(r.counter, int64(l.cfg.LocalSteps))
	r.start = Equal(r.phase, Scalar(g, dtypes.Int64, 0))
	r.optFromStart = Equal(r.counter, Scalar(g, dtypes.Int64, 0)) // First step ever: copy the initial state.
	if l.cfg.State == ResetState {
		r.optFromStart = r.start
	}
	return r
}

// advance counts this step.
func (r roundState) advance() { r.counterVar.SetNodeValue(AddScalar(r.counter, 1)) }

// workerStep builds one local step of a worker, shared by the in-graph and the SPMD
// steps: it sets the model's variables to the worker's copies modelCopies (the global
// model at the start of a round) and the optimizer's state to optCopies (its initial
// value when rounds.optFromStart), evaluates the loss on the worker's batch, takes the
// gradient (plus mu*(w - w_global) with FedProx) and applies the inner optimizer, the
// global step set to its value at the start of the step. It returns the worker's data
// loss and its new model and optimizer state; the variables are left holding them.
func (l *LocalSGD) workerStep(scope *model.Scope, lossFn train.LossFn, st *probedState, rounds roundState,
	modelCopies, optCopies, inputs, labels []*Node) (loss *Node, newModel, newOpt []*Node) {
	current := make([]*Node, len(st.modelVars))
	for i, v := range st.modelVars {
		current[i] = Where(rounds.start, st.globalStart[i], modelCopies[i])
		v.SetNodeValue(current[i])
	}
	for j, v := range st.optVars {
		v.SetNodeValue(Where(rounds.optFromStart, st.optStart[j], optCopies[j]))
	}
	st.stepVar.SetNodeValue(st.globalStepStart)

	loss = l.callLoss(scope, lossFn, inputs, labels)
	g := loss.Graph()
	trainables := trainableInUse(scope, g)
	grads := gradients(loss, trainables, g)
	if l.cfg.ProxMu > 0 {
		l.addProximal(grads, trainables, st.modelVars, current, st.globalStart)
	}
	l.inner.UpdateGraphWithGradients(scope, grads, loss.DType())

	newModel = make([]*Node, len(st.modelVars))
	for i, v := range st.modelVars {
		newModel[i] = v.NodeValue(g)
	}
	newOpt = make([]*Node, len(st.optVars))
	for j, v := range st.optVars {
		newOpt[j] = v.NodeValue(g)
	}
	return loss, newModel, newOpt
}

// splitWorkers slices each node's leading axis (of dimension K) into the K workers' parts.
func (l *LocalSGD) splitWorkers(what string, nodes []*Node) [][]*Node {
	K := l.cfg.Workers
	parts := make([][]*Node, K)
	for k := range parts {
		parts[k] = make([]*Node, len(nodes))
	}
	for i, x := range nodes {
		if x == nil {
			exceptions.Panicf("localsgd %s: %s[%d] is nil", l.name, what, i)
		}
		axis := l.cfg.WorkerAxis
		if x.Rank() <= axis || x.Shape().Dim(axis) != K {
			exceptions.Panicf("localsgd %s: %s[%d] has shape %s: its axis %d (WorkerAxis) must be the %d workers",
				l.name, what, i, x.Shape(), axis, K)
		}
		for k := range K {
			parts[k][i] = Squeeze(SliceAxis(x, axis, AxisElem(k)), axis)
		}
	}
	return parts
}

// callLoss calls the loss function with a scope whose visited sub-scopes are cleared,
// so that the same model can be built once per worker.
func (l *LocalSGD) callLoss(scope *model.Scope, lossFn train.LossFn, inputs, labels []*Node) *Node {
	loss := lossFn(scope.ResetVisited(), inputs, labels)
	if loss == nil {
		exceptions.Panicf("localsgd %s: the loss function returned nil", l.name)
	}
	if !loss.Shape().IsScalar() || !loss.DType().IsFloat() {
		exceptions.Panicf("localsgd %s: the loss must be a float scalar, got shape %s", l.name, loss.Shape())
	}
	return loss
}

// workerVar returns (creating it if needed) worker k's copy of v. Its zero initial
// value is never used: the first step of a round reads the global value instead.
func (l *LocalSGD) workerVar(store *model.Store, k int, v *model.Variable) *model.Variable {
	return store.VariableWithShape(l.WorkerPath(k, v.Path()), v.Shape(), Zeros).SetTrainable(false)
}

// average returns the FedAvg-weighted mean of the workers' values (non-float values
// are averaged in float64 and rounded).
func (l *LocalSGD) average(values []*Node) *Node {
	dtype := values[0].DType()
	isFloat := dtype.IsFloat()
	equal := l.cfg.ShardSizes == nil
	var sum *Node
	for k, x := range values {
		if !isFloat {
			x = ConvertDType(x, dtypes.Float64)
		}
		if !equal {
			x = MulScalar(x, l.weights[k])
		}
		if sum == nil {
			sum = x
		} else {
			sum = Add(sum, x)
		}
	}
	if equal && len(values) > 1 {
		sum = DivScalar(sum, float64(len(values)))
	}
	if !isFloat {
		sum = ConvertDType(Round(sum), dtype)
	}
	return sum
}

// outerStep applies DiLoCo's outer SGD to the pseudo-gradient global - average, and
// updates the momentum buffer at the end of a round.
func (l *LocalSGD) outerStep(store *model.Store, v *model.Variable, global, average, roundEnd *Node) *Node {
	outer := l.cfg.Outer
	delta := Sub(global, average)
	step := delta
	if outer.Momentum > 0 {
		bufVar := store.VariableWithShape(l.MomentumPath(v.Path()), v.Shape(), Zeros).SetTrainable(false)
		buf := bufVar.NodeValue(global)
		newBuf := Add(MulScalar(buf, outer.Momentum), delta)
		bufVar.SetNodeValue(Where(roundEnd, newBuf, buf))
		if outer.Nesterov {
			step = Add(delta, MulScalar(newBuf, outer.Momentum))
		} else {
			step = newBuf
		}
	}
	return Sub(global, MulScalar(step, outer.LR))
}

// addProximal adds FedProx's gradient mu*(w - w_global) to the gradients of the
// trainable model variables.
func (l *LocalSGD) addProximal(grads []*Node, trainables []*model.Variable, modelVars []*model.Variable,
	current, global []*Node) {
	index := make(map[*model.Variable]int, len(modelVars))
	for i, v := range modelVars {
		index[v] = i
	}
	for t, v := range trainables {
		i, found := index[v]
		if !found {
			continue
		}
		prox := MulScalar(Sub(current[i], global[i]), l.cfg.ProxMu)
		if prox.DType() != grads[t].DType() {
			prox = ConvertDType(prox, grads[t].DType())
		}
		grads[t] = Add(grads[t], prox)
	}
}

func (l *LocalSGD) recordCommunication(modelVars, optVars []*model.Variable) {
	c := Communication{Workers: l.cfg.Workers, State: l.cfg.State}
	for _, v := range modelVars {
		if v.Trainable {
			c.Trainable += v.Shape().Size()
		} else {
			c.ModelState += v.Shape().Size()
		}
		c.Variables = append(c.Variables, v.Path())
	}
	for _, v := range optVars {
		c.Optimizer += v.Shape().Size()
		c.OptimizerVariables = append(c.OptimizerVariables, v.Path())
	}
	l.setCommunication(c)
}

// inUseNodes maps each variable in use by g to its current value node.
func inUseNodes(store *model.Store, g *Graph) map[*model.Variable]*Node {
	nodes := make(map[*model.Variable]*Node)
	for v := range store.IterVariables() {
		if v.InUseByGraph(g) {
			nodes[v] = v.NodeValue(g)
		}
	}
	return nodes
}

// startNode returns the value v had at the start of the step: its value before the
// probe if it was in use then, else the graph parameter that feeds its stored value.
func startNode(g *Graph, v *model.Variable, before map[*model.Variable]*Node) *Node {
	if node, found := before[v]; found {
		return node
	}
	if !v.ChangedInGraph(g) {
		return v.NodeValue(g)
	}
	if p := g.GetParameterByName(v.Path()); p != nil {
		return p
	}
	exceptions.Panicf("localsgd: variable %q was changed in the graph but is not a graph parameter "+
		"(is the Store embedding variables as constants?): its start-of-step value is unknown", v.Path())
	return nil
}

// trainableInUse lists the trainable variables under scope in use by g, in the order
// Scope.BuildTrainableVariablesGradientsGraph and the optimizers use.
func trainableInUse(scope *model.Scope, g *Graph) []*model.Variable {
	var vars []*model.Variable
	for v := range scope.IterVariables() {
		if v.Trainable && v.InUseByGraph(g) {
			vars = append(vars, v)
		}
	}
	return vars
}

// gradients returns the gradient of loss with respect to each variable's current value.
func gradients(loss *Node, vars []*model.Variable, g *Graph) []*Node {
	if len(vars) == 0 {
		exceptions.Panicf("localsgd: there is no trainable variable in use under the scope given to BuildStep")
	}
	nodes := make([]*Node, len(vars))
	for i, v := range vars {
		nodes[i] = v.NodeValue(g)
	}
	return Gradient(loss, nodes...)
}

// probedState is what the first, discarded, loss-plus-optimizer call of a step finds: the
// model's variables and their values at the start of the step, the optimizer's state
// variables and theirs, and the global step.
type probedState struct {
	modelVars       []*model.Variable
	globalStart     []*Node
	stepVar         *model.Variable
	globalStepStart *Node
	optVars         []*model.Variable
	optStart        []*Node
}

// probe calls the loss once to find (and create) the model's variables: the float
// variables the loss trains or changes that were not in use in g before and are not this
// stepper's own; then the inner optimizer once, to find its state: the variables it
// changes, other than the global step. It records what a round would communicate. Both
// calls' results are discarded by the backends as unused.
func (l *LocalSGD) probe(scope *model.Scope, g *Graph, lossFn train.LossFn, inputs, labels []*Node) probedState {
	store := scope.Store()
	var st probedState
	inUseBefore := inUseNodes(store, g)
	loss := l.callLoss(scope, lossFn, inputs, labels)
	for v := range store.IterVariables() {
		if _, found := inUseBefore[v]; found || !v.InUseByGraph(g) || l.isOwn(v.Path()) {
			continue
		}
		if v.DType().IsFloat() && (v.Trainable || v.ChangedInGraph(g)) {
			st.modelVars = append(st.modelVars, v)
		}
	}
	if len(st.modelVars) == 0 {
		exceptions.Panicf("localsgd %s: the loss function used no trainable or changed float variable "+
			"that was not already in use in this graph: nothing to train or average", l.name)
	}
	isModel := make(map[*model.Variable]bool, len(st.modelVars))
	st.globalStart = make([]*Node, len(st.modelVars))
	for i, v := range st.modelVars {
		isModel[v] = true
		st.globalStart[i] = startNode(g, v, nil)
	}

	st.stepVar = optimizer.GetGlobalStepVar(store)
	st.globalStepStart = st.stepVar.NodeValue(g)
	beforeOpt := inUseNodes(store, g)
	l.inner.UpdateGraphWithGradients(scope, gradients(loss, trainableInUse(scope, g), g), loss.DType())
	for v := range store.IterVariables() {
		if v == st.stepVar || isModel[v] || l.isOwn(v.Path()) || !v.InUseByGraph(g) {
			continue
		}
		if node, found := beforeOpt[v]; found && node == v.NodeValue(g) {
			continue // Not changed by the optimizer: shared (the learning rate, say).
		}
		if _, found := beforeOpt[v]; !found && !v.ChangedInGraph(g) {
			continue
		}
		st.optVars = append(st.optVars, v)
	}
	st.optStart = make([]*Node, len(st.optVars))
	for j, v := range st.optVars {
		st.optStart[j] = startNode(g, v, beforeOpt)
	}
	l.recordCommunication(st.modelVars, st.optVars)
	return st
}
