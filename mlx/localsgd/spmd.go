package localsgd

import (
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"

	. "github.com/gomlx/gomlx/core/graph"

	"github.com/goptlab/goptlab/mlx/train"
)

// MeshAxis is the name of the one axis of the device mesh of the distributed mode
// ([LocalSGD.RunDistributed]): worker k runs on the k-th device of the mesh.
const MeshAxis = "workers"

// ReplicaPath returns the name of the graph parameter (and output) that carries, in the
// distributed mode, a worker's copy of the variable at path: each device feeds its own
// worker's copy, which stays on that device between steps (see [Distributed.Replica]).
func (l *LocalSGD) ReplicaPath(path string) string { return l.prefix + "/replicas" + path }

// WeightPath returns the name of the float64 scalar graph parameter through which each
// device reads its worker's FedAvg weight in the distributed mode (only when
// Config.ShardSizes is set).
func (l *LocalSGD) WeightPath() string { return l.prefix + "/fedavg_weight" }

// spmdPlan holds what the SPMD local step found out, for the SPMD synchronization.
type spmdPlan struct {
	modelVars []*model.Variable
	optVars   []*model.Variable
}

// replicaVars lists the variables with one copy per worker: the model's, then the optimizer's.
func (p *spmdPlan) replicaVars() []*model.Variable {
	return append(append([]*model.Variable(nil), p.modelVars...), p.optVars...)
}

// replicaParams creates the graph parameters of this device's worker's copies of the
// plan's variables (model, then optimizer), named by [LocalSGD.ReplicaPath].
func (l *LocalSGD) replicaParams(g *Graph, plan *spmdPlan) []*Node {
	vars := plan.replicaVars()
	params := make([]*Node, len(vars))
	for i, v := range vars {
		params[i] = Parameter(g, l.ReplicaPath(v.Path()), v.Shape())
	}
	return params
}

// buildSPMDStep builds the program that each device runs for one local step of its
// worker (Graph.SetSPMD: the same program on every device, each with its own batch and
// its own shard of the replica variables). It is BuildStep with one worker per device
// (the same probe, round counter and workerStep): at the start of a round the worker
// starts from the global model (replicated on every device), and its updated model and
// optimizer state are written to its shard of the replica variables; the global model
// does not change. No collective runs here. It returns the worker's data loss (without
// the FedProx term) at the start of the step.
func (l *LocalSGD) buildSPMDStep(scope *model.Scope, lossFn train.LossFn, inputs, labels []*Node) (
	loss *Node, newReplicas []*Node, plan *spmdPlan) {
	if lossFn == nil {
		exceptions.Panicf("localsgd %s: the loss function is nil", l.name)
	}
	g := inputs[0].Graph()

	// Probe, as in BuildStep: find (and create) the model's variables and the optimizer's state.
	st := l.probe(scope, g, lossFn, inputs, labels)
	// Round bookkeeping: the same counter as BuildStep's, replicated on every device.
	rounds := l.rounds(scope.Store(), g)

	// The local step of this device's worker.
	plan = &spmdPlan{modelVars: st.modelVars, optVars: st.optVars}
	replicas := l.replicaParams(g, plan)
	numModel := len(st.modelVars)
	loss, newModel, newOpt := l.workerStep(scope, lossFn, &st, rounds, replicas[:numModel], replicas[numModel:],
		inputs, labels)

	// The worker's results are its new copies; the global model and the optimizer's own
	// variables keep their values.
	for i, v := range st.modelVars {
		v.SetNodeValue(st.globalStart[i])
	}
	for j, v := range st.optVars {
		v.SetNodeValue(st.optStart[j])
	}
	rounds.advance()
	return loss, append(newModel, newOpt...), plan
}

// buildSPMDSync builds the program that ends a round on every device: the FedAvg-weighted
// mean of the workers' models by one all-reduce (sum of w_k*theta_k over the devices),
// then, with an Outer optimizer, DiLoCo's outer step on the trainable variables; every
// device computes the same new global model. With AverageState the optimizer states are
// all-reduced as well, and returned as every worker's new optimizer state (nil
// otherwise). reduced is the number of floats each device sent into the all-reduce.
func (l *LocalSGD) buildSPMDSync(scope *model.Scope, g *Graph, plan *spmdPlan) (reduced *Node, newOpt []*Node) {
	store := scope.Store()
	var weight *Node // This device's FedAvg weight; nil for equal weights.
	if l.cfg.ShardSizes != nil {
		weight = Parameter(g, l.WeightPath(), shapes.Make(dtypes.Float64))
	}
	replicas := l.replicaParams(g, plan)
	count := 0
	roundEnd := Const(g, true)
	for i, v := range plan.modelVars {
		x := replicas[i]
		average := l.allReduceAverage(x, weight)
		count += x.Shape().Size()
		next := average
		if l.cfg.Outer != nil && v.Trainable {
			next = l.outerStep(store, v, v.NodeValue(g), average, roundEnd)
		}
		v.SetNodeValue(next)
	}
	if l.cfg.State == AverageState {
		for _, x := range replicas[len(plan.modelVars):] {
			newOpt = append(newOpt, l.allReduceAverage(x, weight))
			count += x.Shape().Size()
		}
	}
	return Const(g, int64(count)), newOpt
}

// allReduceAverage returns the FedAvg-weighted mean over the devices of x, with the
// same operations as [LocalSGD.average] (each device multiplies by its weight, or the
// sum is divided by K for equal weights; non-float values are averaged in float64 and
// rounded), the sum taken by an all-reduce.
func (l *LocalSGD) allReduceAverage(x, weight *Node) *Node {
	dtype := x.DType()
	isFloat := dtype.IsFloat()
	if !isFloat {
		x = ConvertDType(x, dtypes.Float64)
	}
	if weight != nil {
		x = Mul(x, ConvertDType(weight, x.DType()))
	}
	sum := x
	if l.cfg.Workers > 1 {
		sum = x.Graph().Distributed().AllReduceOne(x, compute.ReduceOpSum)
	}
	if weight == nil && l.cfg.Workers > 1 {
		sum = DivScalar(sum, float64(l.cfg.Workers))
	}
	if !isFloat {
		sum = ConvertDType(Round(sum), dtype)
	}
	return sum
}
