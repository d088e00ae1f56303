package train

import (
	"fmt"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// guardedExec is a model.Exec whose compilation may fail with a panic that GoMLX does not
// recover: GoMLX v0.28.8 catches panics of the graph function, but not those of the
// checks it makes on the function's outputs (a nil output, a node of another graph, ...).
// Such a panic leaves the compilation pending for ever, and Exec.Finalize then waits for it
// without end. guardedExec turns the panic into an error and skips Finalize afterwards
// (what the broken Exec holds is left to the garbage collector).
type guardedExec struct {
	exec  *model.Exec
	stuck bool
}

// call runs the executable (compiling it for the arguments' shapes if needed).
func (e *guardedExec) call(args ...any) (outs []*tensors.Tensor, err error) {
	defer e.recoverStuck(&err)
	return e.exec.Call(args...)
}

// compile compiles the executable for the given argument shapes.
func (e *guardedExec) compile(argShapes ...shapes.Shape) (err error) {
	defer e.recoverStuck(&err)
	_, err = e.exec.Compile(argShapes...)
	return err
}

func (e *guardedExec) recoverStuck(err *error) {
	if r := recover(); r != nil {
		e.stuck = true
		if re, ok := r.(error); ok {
			*err = fmt.Errorf("compiling the graph: %w", re)
		} else {
			*err = fmt.Errorf("compiling the graph: %v", r)
		}
	}
}

// finalize releases the compiled graphs, unless a compilation panicked (see guardedExec).
func (e *guardedExec) finalize() {
	if !e.stuck {
		e.exec.Finalize()
	}
}

// checkScalarLoss panics (graph-building convention) unless loss is a scalar float node
// of graph g (a loss or a metric); what names its producer in the message, e.g. "the loss function".
func checkScalarLoss(what string, g *graph.Graph, loss *graph.Node) {
	switch {
	case loss == nil:
		panic(fmt.Errorf("%s returned nil instead of a scalar node", what))
	case loss.Graph() != g:
		panic(fmt.Errorf("%s returned a node of another graph (%q, not %q): a node kept from an earlier graph cannot be reused",
			what, loss.Graph().Name(), g.Name()))
	case !loss.Shape().IsScalar():
		panic(fmt.Errorf("%s returned a node of shape %s: it must be a scalar (reduce it, e.g. with graph.ReduceAllMean)",
			what, loss.Shape()))
	case !loss.DType().IsFloat():
		panic(fmt.Errorf("%s returned a node of dtype %s: it must be a float scalar", what, loss.DType()))
	}
}
