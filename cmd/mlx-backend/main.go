// Command mlx-backend prints the backend that notebooks and programs of this project
// will run on, and why, then checks that it really computes: it runs a small
// matrix product on it and compares the result with one computed in Go.
//
//	go run ./cmd/mlx-backend            # the automatic choice (or $GOMLX_BACKEND)
//	go run ./cmd/mlx-backend -require=xla_cpu   # fail unless XLA CPU is what runs
//
// `make setup` runs it with -require=xla_cpu to check the installed plugin.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"

	"github.com/gomlx/gomlx/core/graph"

	"github.com/goptlab/goptlab/mlx"
)

var flagRequire = flag.String("require", "", `fail unless this backend kind runs: "xla_cpu", "xla_cuda" or "go"`)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mlx-backend:", err)
		os.Exit(1)
	}
}

func run() error {
	kinds := map[string]string{"xla_cpu": mlx.KindXLACPU, "xla_cuda": mlx.KindXLACUDA, "go": mlx.KindGo}
	want, known := kinds[*flagRequire]
	if *flagRequire != "" && !known {
		return fmt.Errorf("-require=%q: valid values are xla_cpu, xla_cuda and go", *flagRequire)
	}
	backend, err := mlx.Backend()
	if err != nil {
		return err
	}
	choice, _ := mlx.Chosen()
	if want != "" && choice.Kind != want {
		return fmt.Errorf("running on %s, but %s was required: %s", choice.Kind, want, choice.Reason)
	}

	// A 3x4 by 4x2 product, checked against plain Go arithmetic.
	a := [][]float32{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}}
	b := [][]float32{{1, -1}, {0.5, 2}, {-3, 0}, {2, 0.25}}
	exec, err := graph.NewExec(backend, func(x, y *graph.Node) *graph.Node { return graph.MatMul(x, y) })
	if err != nil {
		return fmt.Errorf("compiling a matrix product on %s: %w", choice.Kind, err)
	}
	outputs, err := exec.Exec(a, b)
	if err != nil {
		return fmt.Errorf("computing a matrix product on %s: %w", choice.Kind, err)
	}
	got, ok := outputs[0].Value().([][]float32)
	if !ok {
		return fmt.Errorf("%s returned a %s, want a 3x2 float32 matrix", choice.Kind, outputs[0].Shape())
	}
	for i := range a {
		for j := range b[0] {
			var want float32
			for k := range b {
				want += a[i][k] * b[k][j]
			}
			if math.Abs(float64(got[i][j]-want)) > 1e-5 {
				return fmt.Errorf("%s computed %v at [%d][%d], want %v", choice.Kind, got[i][j], i, j, want)
			}
		}
	}
	fmt.Printf("ok: %s computes correctly (%s)\n", choice.Kind, backend.Description())
	return nil
}
