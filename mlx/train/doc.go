// Package train runs training loops for notebooks and plain Go programs.
//
// A run is described by a [LossFn] (model and loss for one batch), a [Stepper] (the
// optimizer: [FirstOrder] wraps any GoMLX optimizer, package mlx/zo has zeroth-order
// methods), a dataset from package mlx/data and a [Config]. [Run] compiles ONE step
// executable with GoMLX's model.Exec (variables, optimizer state and random states all
// live in the model.Store), runs it, and records a history.History.
//
// One seed ([Config.Seed]) controls all randomness of a run on a fresh Store: the model's
// initialisation (model.ParamInitialSeed and the Store's random state, which also drives
// dropout), the order of the batches, and the perturbations of zeroth-order steppers.
//
// After every step the loop checks, inside the step graph, that the loss and every
// updated variable are finite (one reduction per variable, returned as a small boolean
// vector). A NaN or Inf stops the run with an error naming the step and the variable,
// unless [Config.SkipNonFinite] asks to discard such steps.
//
// With [Config.CheckpointDir] set, the loop saves the Store (model, optimizer state, random
// states) and its step every [Config.CheckpointEvery] steps, at the end, and when it is
// interrupted, writing a temporary file and renaming it; a later Run with the same
// directory resumes from it and continues bit for bit the same trajectory.
package train
