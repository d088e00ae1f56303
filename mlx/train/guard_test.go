package train

import (
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/mlxtest"
)

// TestGuardedExecSurvivesACompilePanic makes GoMLX's own output checks panic (a graph
// function with no outputs, which checkScalarLoss does not see): the call must return an
// error, and finalize must return instead of waiting for the pending compilation.
func TestGuardedExecSurvivesACompilePanic(t *testing.T) {
	for _, nb := range mlxtest.Backends(t) {
		exec, err := model.NewExec(nb.Backend, model.NewStore(), func(_ *model.Scope, _ []*graph.Node) []*graph.Node {
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ge := &guardedExec{exec: exec}
		if _, err := ge.call(float32(1)); err == nil || !strings.Contains(err.Error(), "no outputs") {
			t.Errorf("%s: got error %v, want GoMLX's \"no outputs\" panic as an error", nb.Name, err)
		}
		ge.finalize()
	}
}
