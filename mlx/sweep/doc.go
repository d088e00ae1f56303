// Package sweep runs hyperparameter sweeps: optimizers built by name from a map of
// hyperparameters ([Optimizer], [Params]), grids of configurations and seeds ([Grid]),
// a runner that trains them ([Train]) and tables of final losses over seeds ([Summarize]).
//
// # Batched runs
//
// Compiling the training step took 70-85% of each small run's wall time, and every seed
// and learning rate recompiled the same step. [Train] therefore trains R runs in one
// graph, compiled once: run r keeps its own copy of the model under the scope "run_<r>"
// (initialised from its seed as train.Run initialises a fresh Store), its own batches (the
// order of its seed), and its own optimizer instance, hyperparameters and state (under the
// scope "sweep_run_<r>_<optimizer>"), so any hyperparameter, or even the optimizer, may
// differ between the runs of one graph. Each step executes one step of every run. As
// with local SGD's workers, the runs are copies rather than a leading axis of the
// variables: GoMLX has no vmap, and copies work with any loss function. The losses of a
// batched run are those of train.Run with the same configuration, bit for bit on XLA CPU
// in the tests. cmd/bench-sweep measures the speed-up.
//
// Runs are batched per optimizer. Where a step draws random numbers (dropout,
// AdaHessian's probes), each run of a batch keeps a random state of its own, swapped into
// the Store's while the graph of its part of the step is built, so that it draws what it
// would draw alone; Options.Sequential trains the runs one by one instead, in a
// train.Session, which gives each run the history of train.Run and compiles the graphs
// once for runs that differ only in seed and learning rate.
//
// Measured with cmd/bench-sweep (XLA CPU, a 2-core VM at load average 3-5, Adam on the
// two-spirals MLP of notebooks/optimizers.ipynb, 5 seeds x 4 learning rates, 300 steps), in
// two runs: one train.Run per configuration 36.7 s and 36.2 s; Options.Sequential (one
// train.Session) 11.0 s and 11.1 s; batched 4.2 s and 3.6 s (8.8x and 10.1x faster than
// train.Run), with the same losses.
package sweep
