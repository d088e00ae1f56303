// Package train runs training loops for notebooks and plain Go programs.
//
// A run is described by a [LossFn] (model and loss for one batch), a [Stepper] (the
// optimizer: [FirstOrder] wraps any GoMLX optimizer, package mlx/zo has zeroth-order
// methods), a dataset from package mlx/data and a [Config]. [Run] compiles ONE step
// executable with GoMLX's model.Exec (variables, optimizer state and random states all
// live in the model.Store), runs it, and records a history.History.
//
// # Time
//
// A record's Time is the wall-clock time spent executing steps since the run started:
// compilation happens before the clock starts, and evaluation, callbacks and checkpoint
// saves are not counted, so curves against time compare optimizers. The first step still
// carries the backend's one-time start-up (on XLA CPU, about 0.1 s).
//
// # Reproducibility
//
// One seed ([Config.Seed]) controls all randomness of a run on a fresh Store: the model's
// initialisation (model.ParamInitialSeed and the Store's random state, which also drives
// dropout and AdaHessian's Hutchinson probes), the order of the batches, and the
// perturbations of zeroth-order steppers (their own random state, derived from the seed).
// Worker shards of local SGD come from the seed given to data.ShardIID or
// data.ShardDirichlet (pass the run's seed). Same seed, same backend: same bits, in any
// process (tested by running the same trainings in two processes).
//
// # Batches
//
// A dataset of up to 1 GiB is copied to the device once per Run (once per [Session]); each
// step then sends only its batch's row indices (those of data.Dataset.Batch) and gathers the
// rows in its graph. A larger dataset's batches are gathered on the host and copied at
// every step.
//
// # Several steps per execution
//
// Each execution of a compiled graph has a fixed cost, which bounds how fast a small model
// trains one step at a time (for the small MLP below, about 0.15 ms of its 0.18-0.19 ms
// bare step: the difference with 100 steps per execution). [Config.StepsPerExecution]
// = K runs up to K steps in one execution: the step becomes the body of a while loop in the
// graph, which gathers each step's batch on the device from the row indices of the K
// batches, sent at once. Chunks of steps end at every recorded step and checkpoint, so the
// history, checkpoints and resumption are exact to the step, and a non-finite value is
// found by replaying single iterations of the loop from the last good copy (see below).
// On the 2-core reference VM (make bench-peers, K = 100 for a 2-64-64-1 MLP with batch 32,
// K = 10 for a 784-1024-256-10 MLP with batch 256; two runs, load average 1.8-2.6;
// docs/BENCHMARKS.md) the step took 0.16-0.30x the time of a bare one-step execution for
// the small MLP (Adam 0.036 and 0.040 ms, against 0.18 and 0.19 ms bare, 0.21 and 0.24 ms
// with K = 1, 0.13 and 0.21 ms for JAX's jitted step), and 0.80-0.96x for the larger MLP. Convolutions are another matter:
// the small CNN of the benchmark (two 3x3 convolutions) took 8-13x longer per step inside
// the loop, a single convolution layer about 2x: XLA CPU runs them much more slowly in a
// while loop's body. It needs XLA: the pure-Go backend cannot run a gradient inside a while
// loop.
//
// # Non-finite values
//
// The loop checks that the loss and every updated float variable are finite at every step.
// A NaN or Inf stops the run with a [NonFiniteError] naming the first step where one
// appeared and the quantities that were not finite, and leaves in the Store the values
// that step produced, unless [Config.SkipNonFinite] asks to discard such steps. No
// checkpoint is written after it: the error says which checkpoint (the last good one) is
// kept, and a later Run resumes from it.
//
// How it checks depends on how often the loop needs to read the device. With LogEvery 1,
// SkipNonFinite or a stepper that implements [AfterStepper], each step checks its loss and
// its updated variables in its graph (one reduction per variable). Otherwise (LogEvery > 1)
// a step checks only its loss, in its graph, and the loop reads nothing between records:
// at each record, checkpoint, interrupt and at the end it checks every updated variable
// with a second small graph, and keeps a copy of them on the device, made at a good check
// at least 100 steps after the previous copy. When a check fails, it goes back to that copy
// and runs the steps since then again, one by one with the same
// compiled step and the same batches, checking each, to find the first non-finite one; the
// error and the Store are then the same as with LogEvery 1. The copy doubles the device
// memory of the variables the step updates.
//
// # Checkpoints
//
// With [Config.CheckpointDir] set, the loop saves the Store (model, optimizer state, random
// states, a stepper's own variables such as ZO's seed stream or local SGD's worker
// replicas), the step and the history every [Config.CheckpointEvery] steps, at the end,
// and when it is interrupted. A later Run with the same directory resumes from it and
// continues bit for bit the same trajectory as an uninterrupted run on the CPU backends.
// It refuses a checkpoint of another seed, batch size or stepper name; and, unless
// [Config.ResumeAnyway] is set, one written with another dataset (name or number of
// examples) or other stepper settings: the checkpoint records a fingerprint of the
// stepper's configuration (the optimizer's hyperparameters for [FirstOrder], what
// [Configured] returns, or the stepper's fields), and the error lists each setting that
// changed with its old and new values. Config.Steps may
// differ: a run of 100 steps resumed with Steps 200 goes on to 200. State kept outside
// the Store is not saved: a ZO stepper's in-memory Trace, for example, restarts with the
// resumed steps.
//
// A checkpoint is written atomically: to a temporary file in the directory
// (checkpoint.ckpt.*.tmp), synced, then renamed over [CheckpointFile] (and the directory
// synced). A failure or a crash during the write leaves the previous checkpoint intact.
//
// A run holds a lock on its checkpoint directory from start to end (an exclusive flock on
// [LockFile] in it, which holds the run's process id; on platforms without flock there is
// no lock): a second run on the same directory, in this process or another, fails at once
// with an error naming the directory and the process that holds it. The lock ends with the
// run, or with its process if it crashes. Having taken it, Run deletes the temporary files
// left by a crashed run, which no live run can own.
//
// The file format (version 2), all integers little-endian:
//
//	"GOPTCKPT"             8-byte magic number
//	version                uint32 (2)
//	header length H        uint32
//	header                 H bytes, below
//	header checksum        uint32, CRC-32C of the header
//	data                   every variable's values, in header order, raw little-endian
//	data checksum          uint32, CRC-32C of the data
//
// The header holds, as varints (signed: zig-zag) and strings (uvarint length, UTF-8
// bytes): step, seed, batch size, stepper name, dataset name, dataset size, the number of
// lines of the stepper's fingerprint and each line ("path=value"); the number of history
// records, each as step, time (float64 bits), evaluations, loss (float64 bits) and its
// metrics (count, then sorted name and float64 value pairs); the number of variables, each
// as path, trainable flag (one byte), dtype (GoMLX's dtypes.DType number, Bool to
// Complex128), rank and dimensions. Loading checks every count, length, rank, dtype and
// shape against the bytes the file actually has before allocating anything, requires
// the data to fill the file exactly, verifies both checksums, and only then changes the
// Store: a truncated, corrupted or hostile file gives an error, never a panic or an
// allocation beyond a small multiple of its size (FuzzLoadCheckpoint checks this).
// Version 1 files, which lack the dataset size and the fingerprint, still load (only their
// dataset name is compared); gob checkpoints of earlier versions (checkpoint.gob) are
// refused with an error.
//
// # Interrupts
//
// [Config.Context], when set, interrupts the run when cancelled. When it is nil, Run
// itself stops on SIGINT or SIGTERM (signal.NotifyContext), for its own duration only:
// in a notebook, interrupting a cell sends SIGINT to the cell's process, which GoNB kills
// 5 s later. Either way the loop stops after the step in progress (with StepsPerExecution,
// the chunk of steps in progress; a step is never abandoned midway: the cell stops within
// 2 s as long as a chunk and a checkpoint take well under that), saves a checkpoint if
// CheckpointDir is set, and returns the history
// so far with an error wrapping context.Canceled that reads, for example:
//
//	train.Run("adam"): interrupted at step 381 of 10000 (interrupt signal received): the checkpoint
//	of step 381 is in runs/a/checkpoint.ckpt (run again with the same Config to resume): context canceled
//
// After the first signal Run restores the previous signal handling, so a second SIGINT
// acts as it would without Run (by default, it kills the process at once). Signals are
// watched only while Run runs: after it returns, SIGINT and SIGTERM behave as before.
package train
