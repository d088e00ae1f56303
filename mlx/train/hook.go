package train

import (
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// AfterStepper is optionally implemented by a [Stepper] that looks at the Store after each
// executed step, e.g. to record the random seeds and projected gradients of a
// zeroth-order step. [Run] calls AfterStep after every step, with the 1-based step number
// and whether the step's update was discarded (Config.SkipNonFinite); an error stops the run.
type AfterStepper interface {
	AfterStep(store *model.Store, step int, skipped bool) error
}

// VariableCreator is optionally implemented by a [Stepper] whose batches are not batches
// of the loss function, e.g. local SGD's, which carry the batches of K workers along one
// axis. Before building the step of a fresh run, [Run] creates the model's variables by
// evaluating the loss once, forward only, on the run's first batch: with a stepper that
// implements VariableCreator it calls CreateVariables instead of lossFn itself.
//
// CreateVariables is a graph-building function (it panics on error): it calls lossFn at
// least once, with scope and batches of the shapes the loss function expects (for local
// SGD, worker 0's part of inputs and labels), and returns the scalar loss of one such
// call (the graph's output, otherwise unused). It must not change the model's variables
// other than by creating them: what the loss changes when evaluated (the Store's random
// state) is kept, as when Run calls lossFn directly.
type VariableCreator interface {
	CreateVariables(scope *model.Scope, lossFn LossFn, inputs, labels []*graph.Node) *graph.Node
}
