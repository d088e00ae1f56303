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
// and pass the loss through [LocalSGD.WrapLoss] (see the package example).
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
// # Several devices (SPMD): not implemented
//
// GoMLX v0.28.8 has the pieces: model.Exec.SPMD(mesh) / graph.SetSPMD, sharded
// parameters (Variable.WithShardingSpec), and collectives (g.Distributed().AllReduce).
// Running one worker per device would need (1) the training loop's Exec to be made SPMD
// over a device mesh, which mlx/train's loop does not do; (2) distributed tensors
// (dtensor) as inputs, each device receiving its workers' batches; (3) the worker copies
// stored as one variable with a leading K axis sharded along the mesh (instead of K
// replicated variables), and the average taken with AllReduce. Graph.SetSPMD is marked
// EXPERIMENTAL in GoMLX, and XLA CPU's 4 "devices" share this machine's 2 cores, so no
// speed-up would be measurable here; the in-graph simulation above is the supported mode.
package localsgd
