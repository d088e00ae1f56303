// Package mlxtest runs tests on every backend this machine has: GoMLX's pure-Go
// backend always, and XLA CPU where its PJRT plugin is installed (as `make test` does).
package mlxtest

import (
	"sync"
	"testing"

	"github.com/gomlx/compute"

	"github.com/goptlab/goptlab/mlx"
)

// Backends are created once per test binary: loading the XLA plugin is not free.
var backends = sync.OnceValues(func() ([]Named, error) {
	goChoice := mlx.Choice{Kind: mlx.KindGo, Config: "go"}
	goBackend, err := goChoice.New()
	if err != nil {
		return nil, err
	}
	list := []Named{{Name: "go", Backend: goBackend}}
	if choice, err := mlx.ChooseAuto(); err == nil && choice.Kind == mlx.KindXLACPU {
		xlaBackend, err := choice.New()
		if err != nil {
			return nil, err
		}
		list = append(list, Named{Name: "xla_cpu", Backend: xlaBackend})
	}
	return list, nil
})

// Named is a backend with a short name for subtests.
type Named struct {
	Name    string
	Backend compute.Backend
}

// Backends returns the pure-Go backend and, where installed, XLA CPU.
// It fails the test if a backend that should load does not.
func Backends(t testing.TB) []Named {
	t.Helper()
	list, err := backends()
	if err != nil {
		t.Fatalf("creating test backends: %v", err)
	}
	if len(list) == 1 {
		t.Log("XLA CPU plugin not installed (run `make setup`): testing on the pure-Go backend only")
	}
	return list
}

// ForEach runs fn as a subtest on each backend of [Backends].
func ForEach(t *testing.T, fn func(t *testing.T, backend compute.Backend)) {
	t.Helper()
	for _, nb := range Backends(t) {
		t.Run(nb.Name, func(t *testing.T) { fn(t, nb.Backend) })
	}
}
