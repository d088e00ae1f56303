// Package localsgd simulates local SGD / federated averaging with K workers inside one
// computation graph, as a train.Stepper: FedAvg (McMahan et al.) with weights by shard
// size, DiLoCo's outer Nesterov optimizer on the pseudo-gradient, and FedProx's
// proximal term.
//
// Every training step takes one local step of each of the K workers on its own batch
// (inputs and labels carry the K batches along a leading axis of dimension K); every
// H-th step ends a round: the whole model state of the workers (every float variable
// the loss function trains or changes, batch-norm running statistics included) is
// averaged with the FedAvg weights n_k/n into the global model, or, with DiLoCo, the
// outer optimizer is applied to theta_global - average. The inner optimizer is any GoMLX
// optimizer with UpdateGraphWithGradients (GoMLX's SGD and Adam, and mlx/optim's).
//
// Inner optimizer state: KeepState (default) keeps one state per worker across rounds,
// ResetState restarts it every round, AverageState averages it like the model. Syncing
// Adam's two moments sends three times the floats of the model alone (DES-LOC: syncing
// all optimizer states means "tripling communication costs"); [Communication] counts it.
//
// With mlx/train's loop: split the dataset with data.ShardIID or data.ShardDirichlet,
// regroup it with [ShardedDataset] (batches [batch, K, ...], so Config.WorkerAxis = 1),
// and give train.Run the loss of one worker's batch (see the package example): LocalSGD
// implements train.VariableCreator, so the loop creates the model's variables on worker
// 0's part of the first batch. Config.Eval, if set, must then be an unsharded dataset:
// the loop evaluates the global model with the loss function on it.
//
// # Layout and cost
//
// The model's variables, at the paths the loss function creates, hold the global model;
// each worker's copy lives in the Store under "/localsgd/worker_<k>" followed by the
// original path (variables, not a leading K axis, because GoMLX has no vmap: a K axis
// would need a loss function written for K stacked models, while copies work with any
// loss function). The loss function is called once per worker with the model's
// variables set (SetNodeValue) to that worker's copy, as the train.LossFn contract
// allows. The start and end of a round are selected in the graph with Where, so one
// compiled graph serves every step. Measured with cmd/bench-localsgd (XLA CPU, 2
// cores, 1.06M-parameter MLP, batch 256 per worker, K=8): one K-worker step costs
// 0.94-1.07 times eight single-worker steps with state kept, and 1.07-1.22 times with
// the state averaged (Adam).
//
// # Several devices (SPMD)
//
// [LocalSGD.RunDistributed] (a loop like mlx/train's Run) and [Distributed] (one step at
// a time) run the K workers one per device where the backend has K devices (XLA CPU
// has 4; GoMLX's pure-Go backend 1, so there only K = 1 runs): each local step is one
// SPMD program (graph.Exec.SPMD over a one-axis mesh) in which device k takes worker
// k's step on its own batch, with the worker's model and optimizer state kept on that
// device; every H steps a second SPMD program takes the FedAvg-weighted mean with one
// all-reduce (each device multiplies by its weight n_k/n, the all-reduce sums) and
// applies DiLoCo's outer step, every device computing the same new global model. The
// all-reduce moves [Communication.PerWorker] floats per device. On XLA CPU it gives
// the in-graph simulation's losses (to 1 float32 ulp) and global model (bit for bit in
// the tests, to 1.2e-7 otherwise). GoMLX's model.Exec.SPMD is not used: in v0.28.8 it
// gives every variable a sharding spec that go-xla rejects in SPMD mode ("mesh not
// found"), so [Distributed] feeds the Store's variables to the programs itself. Each
// device draws its own random numbers (dropout), from a state derived from the Store's
// and the device's index: reproducible from the seed, but not the in-graph simulation's
// numbers (there the workers take turns on one state). XLA CPU's devices share this
// machine's cores: no speed-up is expected (cmd/bench-localsgd times both).
package localsgd
