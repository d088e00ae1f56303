package train

import (
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"
	"github.com/gomlx/gomlx/support/exceptions"
)

// LossFn builds the model and its scalar loss for one batch (graph-building: panics on error).
// It reads the model's variables from scope (v.NodeValue(g)), so calling it again after variables were
// changed with SetNodeValue evaluates the loss at the new point (what ZO and local SGD need).
//
// A Stepper that calls a LossFn more than once in the same graph must pass scope.ResetVisited()
// to each call: GoMLX's Scope.In panics when a sub-scope is entered twice from the same Scope value.
type LossFn func(scope *model.Scope, inputs, labels []*graph.Node) *graph.Node

// Stepper builds one training step. BuildStep is a graph-building function: it updates the trainable
// variables under scope with SetNodeValue and returns the scalar loss measured at the start of the step.
type Stepper interface {
	BuildStep(scope *model.Scope, lossFn LossFn, inputs, labels []*graph.Node) *graph.Node
	// LossEvalsPerStep is how many forward evaluations of the loss one step makes (1 for first-order
	// methods, 2*m for an m-direction two-point ZO estimate); the loop records it in the history.
	LossEvalsPerStep() int
	// Name labels the optimizer in histories and plots, e.g. "adan".
	Name() string
}

// FirstOrder wraps any GoMLX optimizer.Interface (ours in mlx/optim, or GoMLX's own) as a Stepper.
// Its step evaluates the loss once, and the optimizer's UpdateGraph takes the gradients
// (reverse-mode autodiff) and updates the trainable variables.
func FirstOrder(opt optimizer.Interface, name string) Stepper {
	return &firstOrder{opt: opt, name: name}
}

type firstOrder struct {
	opt  optimizer.Interface
	name string
}

// BuildStep implements Stepper.
func (f *firstOrder) BuildStep(scope *model.Scope, lossFn LossFn, inputs, labels []*graph.Node) *graph.Node {
	if f.opt == nil {
		exceptions.Panicf("train.FirstOrder(%q): the optimizer is nil", f.name)
	}
	loss := lossFn(scope, inputs, labels)
	if loss == nil {
		exceptions.Panicf("train.FirstOrder(%q): the loss function returned nil", f.name)
	}
	if !loss.Shape().IsScalar() {
		exceptions.Panicf("train.FirstOrder(%q): the loss must be a scalar, got shape %s", f.name, loss.Shape())
	}
	f.opt.UpdateGraph(scope, loss.Graph(), loss)
	return loss
}

// LossEvalsPerStep implements Stepper: a first-order step evaluates the loss once.
func (f *firstOrder) LossEvalsPerStep() int { return 1 }

// Name implements Stepper.
func (f *firstOrder) Name() string { return f.name }
