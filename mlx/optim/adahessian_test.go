package optim

import (
	"math"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/mlxtest"
)

// TestRademacherProbe guards against kozistr/pytorch_optimizer's bug (randint(0, 1)*2-1 is
// always -1): the probes must be +-1, with both signs about equally often, fresh every
// execution and reproducible from the seed.
func TestRademacherProbe(t *testing.T) {
	const n = 4000
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		draw := func(seed int64, times int) [][]float64 {
			store := model.NewStore()
			if err := store.SetRNGStateFromSeed(seed); err != nil {
				t.Fatal(err)
			}
			exec, err := model.NewExec(backend, store, func(scope *model.Scope, g *Graph) *Node {
				return RademacherProbe(scope, g, shapes.Make(dtypes.Float64, n))
			})
			if err != nil {
				t.Fatal(err)
			}
			var out [][]float64
			for range times {
				res, err := exec.Exec()
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, tensors.MustCopyFlatData[float64](res[0]))
			}
			return out
		}
		draws := draw(42, 2)
		for d, z := range draws {
			plus := 0
			for i, x := range z {
				if x != 1 && x != -1 {
					t.Fatalf("draw %d: z[%d] = %g, want +1 or -1", d, i, x)
				}
				if x == 1 {
					plus++
				}
			}
			// Binomial(4000, 1/2): std 31.6, so +-200 is more than 6 standard deviations.
			if plus < n/2-200 || plus > n/2+200 {
				t.Errorf("draw %d: %d of %d entries are +1, want about half", d, plus, n)
			}
		}
		// No stuck position either (entries are unpacked from 32-bit random words): over the two
		// draws each residue i mod 32 has 250 entries, about 125 of them +1 (std 7.9).
		for pos := range 32 {
			plus := 0
			for _, z := range draws {
				for i := pos; i < n; i += 32 {
					if z[i] == 1 {
						plus++
					}
				}
			}
			if plus < 60 || plus > 190 {
				t.Errorf("entries i with i%%32 == %d: %d of 250 are +1, want about 125", pos, plus)
			}
		}
		same := 0
		for i := range draws[0] {
			if draws[0][i] == draws[1][i] {
				same++
			}
		}
		if same > n/2+200 {
			t.Errorf("two successive draws agree on %d of %d entries: probes are not fresh each step", same, n)
		}
		again := draw(42, 1)
		for i := range again[0] {
			if again[0][i] != draws[0][i] {
				t.Fatalf("same seed, different probe at %d: not reproducible", i)
			}
		}
	})
}

// hutchinsonExec returns an executor of HutchinsonDiagonal (probes, gaussian) for lossFn on
// the variables of store.
func hutchinsonExec(t *testing.T, backend compute.Backend, store *model.Store, lossFn func(scope *model.Scope, g *Graph) *Node,
	probes int, gaussian bool) *model.Exec {
	t.Helper()
	exec, err := model.NewExec(backend, store, func(scope *model.Scope, g *Graph) []*Node {
		loss := lossFn(scope, g)
		return HutchinsonDiagonal(scope, scope.BuildTrainableVariablesGradientsGraph(loss), probes, gaussian)
	})
	if err != nil {
		t.Fatal(err)
	}
	return exec
}

// TestHutchinsonExactOnDiagonalHessian: for a separable loss, z*Hz = z^2*H = H exactly for
// every Rademacher z.
func TestHutchinsonExactOnDiagonalHessian(t *testing.T) {
	gd := loadGolden(t)
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		for _, gaussian := range []bool{false, true} {
			store := model.NewStore()
			_ = store.SetRNGStateFromSeed(3)
			root := store.RootScope()
			for _, n := range []string{"w", "k"} {
				newVar(t, root, n, gd.Init[n], gd.Shapes[n]...)
			}
			loss := quarticLoss(gd)
			exec := hutchinsonExec(t, backend, store, func(scope *model.Scope, g *Graph) *Node {
				return loss(scope, []*Node{ScalarZero(g, dtypes.Float64)}, nil)
			}, 1, gaussian)
			allOne := true
			for rep := range 4 {
				out, err := exec.Exec()
				if err != nil {
					t.Fatal(err)
				}
				for vi, n := range []string{"w", "k"} {
					got := tensors.MustCopyFlatData[float64](out[vi])
					for i, x := range gd.Init[n] {
						d := x - gd.C[n][i]
						h := gd.A[n][i] + 3*gd.B[n][i]*d*d
						if !gaussian && !isClose(got[i], h, 1e-12, 1e-12) {
							t.Fatalf("rep %d: Rademacher estimate of H[%s][%d] = %.15g, want exactly %.15g", rep, n, i, got[i], h)
						}
						if gaussian {
							ratio := got[i] / h // z^2 >= 0, not always 1
							if ratio < 0 {
								t.Fatalf("Gaussian estimate %g of positive H %g is negative", got[i], h)
							}
							allOne = allOne && isClose(ratio, 1, 1e-9, 0)
						}
					}
				}
			}
			if gaussian && allOne {
				t.Errorf("Gaussian probes gave z^2 = 1 everywhere: they are not Gaussian")
			}
		}
	})
}

// TestHutchinsonUnbiased: on 0.5 w'Hw with a non-diagonal H, the average estimate converges
// to diag(H), not to the row sums (what all -1 "Rademacher" probes would give).
func TestHutchinsonUnbiased(t *testing.T) {
	hess := [][]float64{{2, .5, .5, .5}, {.5, 3, .5, .5}, {.5, .5, 1, .5}, {.5, .5, .5, 4}}
	const probes, reps = 16, 25
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		store := model.NewStore()
		_ = store.SetRNGStateFromSeed(5)
		newVar(t, store.RootScope(), "w", []float64{0.3, -1, 2, 0.5}, 4)
		exec := hutchinsonExec(t, backend, store, func(scope *model.Scope, g *Graph) *Node {
			w := scope.GetVariable("w").NodeValue(g)
			hw := Einsum("ij,j->i", Const(g, hess), w)
			return MulScalar(ReduceAllSum(Mul(w, hw)), 0.5)
		}, probes, false)
		mean := make([]float64, 4)
		for range reps {
			out, err := exec.Exec()
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range tensors.MustCopyFlatData[float64](out[0]) {
				mean[i] += x / reps
			}
		}
		// Per-sample variance is sum_{j!=i} H_ij^2 = 0.75: the mean of 400 has std 0.043.
		for i := range mean {
			if math.Abs(mean[i]-hess[i][i]) > 0.3 {
				t.Errorf("mean estimate of H[%d][%d] = %.3f, want %.3f (row sum would be %.3f)", i, i, mean[i], hess[i][i], hess[i][i]+1.5)
			}
		}
	})
}

// cnnLoss is a small CNN (conv 3x3 -> [batch norm] -> tanh -> 2x2 max-pool -> dense) with
// all parameters unpacked from one flat vector p, on fixed data, with an MSE loss.
func cnnLoss(batchNorm bool) (numParams int, f func(p *Node) *Node) {
	const convSize, denseSize = 3 * 3 * 1 * 2, 2 * 2 * 2
	numParams = convSize + denseSize
	if batchNorm {
		numParams += 4
	}
	f = func(p *Node) *Node {
		g := p.Graph()
		x := Reshape(Const(g, fixedRand(11, 3*4*4, -1, 1)), 3, 4, 4, 1)
		y := Const(g, fixedRand(12, 3, -1, 1))
		kernel := Reshape(Slice(p, AxisRange(0, convSize)), 3, 3, 1, 2)
		h := Convolve(x, kernel).PadSame().Done()
		off := convSize
		if batchNorm {
			scale := AddScalar(Slice(p, AxisRange(off, off+2)), 1)
			offset := Slice(p, AxisRange(off+2, off+4))
			h, _, _ = InternalBatchNormForTraining(h, scale, offset, 1e-3, -1)
			off += 4
		}
		h = MaxPool(Tanh(h)).Window(2).Done()
		dense := Slice(p, AxisRange(off, off+denseSize))
		pred := Einsum("bi,i->b", Reshape(h, 3, denseSize), dense)
		return ReduceAllMean(Square(Sub(pred, y)))
	}
	return
}

// TestHessianVectorProductCNN checks H z through convolution, batch normalization and
// max-pooling against finite differences of the gradient.
func TestHessianVectorProductCNN(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		for _, bn := range []bool{false, true} {
			name := map[bool]string{false: "conv_pool", true: "conv_batchnorm_pool"}[bn]
			t.Run(name, func(t *testing.T) {
				if bn {
					skipWithout(t, backend, compute.OpTypeBatchNormForTraining)
				}
				n, f := cnnLoss(bn)
				p0 := fixedRand(13, n, -0.8, 0.8)
				z := fixedRand(14, n, -1, 1)
				fdCheck(t, backend, p0, []int{n}, secondOrder(f, z), 1e-5)
			})
		}
	})
}

// TestAdaHessianTrainsCNN runs AdaHessian (two probes, the option path) on the CNN with
// model variables: the loss must drop.
func TestAdaHessianTrainsCNN(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		bn := backend.Capabilities().Operations[compute.OpTypeBatchNormForTraining]
		n, f := cnnLoss(bn)
		cfg := DefaultAdaHessian()
		cfg.LR, cfg.Probes = 0.01, 2
		opt := must(NewAdaHessian(cfg))
		store := model.NewStore()
		_ = store.SetRNGStateFromSeed(9)
		newVar(t, store.RootScope(), "p", fixedRand(15, n, -0.8, 0.8), n)
		exec := newStepExec(t, backend, store, opt, func(scope *model.Scope, inputs, _ []*Node) *Node {
			return f(scope.GetVariable("p").NodeValue(inputs[0].Graph()))
		})
		first := runSteps(t, exec, 1)
		last := runSteps(t, exec, 60)
		t.Logf("loss %.4g -> %.4g", first, last)
		if !(last < 0.5*first) {
			t.Errorf("AdaHessian on the CNN (batch norm %v): loss %.4g -> %.4g after 60 steps, want at least halved", bn, first, last)
		}
	})
}
