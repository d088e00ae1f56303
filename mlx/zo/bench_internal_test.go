package zo

import (
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/goptlab/goptlab/mlx/mlxtest"
)

// BenchmarkDirections times θ + ε·z for a variable of 2^20 entries (one pass of the
// generator fused with its consumer), against θ + ε·θ (the memory traffic alone).
func BenchmarkDirections(b *testing.B) {
	const n = 1 << 20
	for _, nb := range mlxtest.Backends(b) {
		theta := tensors.FromShape(shapes.Make(dtypes.Float32, n))
		seed := tensors.FromValue([]uint64{1, 2, 3})
		for _, c := range []struct {
			name string
			fn   func(seed, theta *graph.Node) *graph.Node
		}{
			{"copy", func(_, theta *graph.Node) *graph.Node { return graph.Add(theta, graph.MulScalar(theta, 1e-3)) }},
			{"gaussian", func(seed, theta *graph.Node) *graph.Node {
				return graph.Add(theta, graph.MulScalar(sampleZ(seed, []shapes.Shape{theta.Shape()}, Gaussian)[0], 1e-3))
			}},
			{"rademacher", func(seed, theta *graph.Node) *graph.Node {
				return graph.Add(theta, graph.MulScalar(sampleZ(seed, []shapes.Shape{theta.Shape()}, Rademacher)[0], 1e-3))
			}},
		} {
			b.Run(nb.Name+"/"+c.name, func(b *testing.B) {
				exec, err := graph.NewExec(nb.Backend, func(seed, theta *graph.Node) []*graph.Node {
					out := c.fn(seed, theta)
					return []*graph.Node{out, graph.Slice(out, graph.AxisRange(0, 1))}
				})
				if err != nil {
					b.Fatal(err)
				}
				defer exec.Finalize()
				for b.Loop() {
					out, err := exec.Call(seed, theta)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := out[1].ValueSafe(); err != nil {
						b.Fatal(err)
					}
					_ = out[0].FinalizeAll()
					_ = out[1].FinalizeAll()
				}
			})
		}
	}
}
