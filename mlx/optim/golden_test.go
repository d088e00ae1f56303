package optim

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/mlxtest"
)

// golden is testdata/golden.json, written by testdata/golden.py.
type golden struct {
	Steps  int                               `json:"steps"`
	Shapes map[string][]int                  `json:"shapes"`
	Init   map[string][]float64              `json:"init"`
	A      map[string][]float64              `json:"a"`
	B      map[string][]float64              `json:"b"`
	C      map[string][]float64              `json:"c"`
	Cases  map[string][]map[string][]float64 `json:"cases"`
}

func loadGolden(t *testing.T) *golden {
	t.Helper()
	data, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatalf("reading golden values (regenerate with `cd mlx/optim/testdata && python3 golden.py`): %v", err)
	}
	var gd golden
	if err := json.Unmarshal(data, &gd); err != nil {
		t.Fatalf("parsing testdata/golden.json: %v", err)
	}
	return &gd
}

// goldenCases builds the optimizer of each case of golden.py, with the same settings.
func goldenCases(t *testing.T) map[string]stepper {
	t.Helper()
	cases := map[string]stepper{}
	sgd := DefaultSGD()
	sgd.LR = 0.05
	cases["sgd"] = must(NewSGD(sgd))
	sgd.Momentum, sgd.Nesterov, sgd.WeightDecay = 0.9, true, 0.01
	cases["sgd_nesterov_wd"] = must(NewSGD(sgd))
	sgd = DefaultSGD()
	sgd.LR, sgd.Momentum = 0.05, 0.8
	sgd.Schedule = Schedule{Decay: DecayLinear, DecaySteps: 6, FinalFactor: 0.2}
	cases["sgd_momentum_linear"] = must(NewSGD(sgd))

	adam := DefaultAdam()
	adam.LR, adam.WeightDecay = 0.1, 0.01
	cases["adam"] = must(NewAdam(adam))
	adamw := DefaultAdamW()
	adamw.LR, adamw.WeightDecay = 0.1, 0.1
	cases["adamw"] = must(NewAdam(adamw))
	ams := DefaultAMSGrad()
	ams.LR = 0.1
	cases["amsgrad"] = must(NewAdam(ams))
	adam = DefaultAdam()
	adam.LR = 0.1
	adam.Schedule = Schedule{WarmupSteps: 2, Decay: DecayCosine, DecaySteps: 4, FinalFactor: 0.1}
	cases["adam_warmup_cosine"] = must(NewAdam(adam))

	ab := DefaultAdaBelief()
	ab.LR, ab.WeightDecay = 0.1, 0.1
	cases["adabelief"] = must(NewAdaBelief(ab))
	lion := DefaultLion()
	lion.LR, lion.WeightDecay = 0.01, 0.1
	cases["lion"] = must(NewLion(lion))

	adan := DefaultAdan()
	adan.LR, adan.WeightDecay = 0.05, 0.02
	cases["adan"] = must(NewAdan(adan))
	adan.NoProx, adan.MaxGradNorm = true, 1.0
	cases["adan_noprox_clip"] = must(NewAdan(adan))

	ah := DefaultAdaHessian()
	ah.WeightDecay = 0.001
	cases["adahessian"] = must(NewAdaHessian(ah))
	ah = DefaultAdaHessian()
	ah.HessianPower = 0.5
	ah.Schedule = Schedule{Decay: DecayLinear, DecaySteps: 8}
	cases["adahessian_power_linear"] = must(NewAdaHessian(ah))

	ah = DefaultAdaHessian()
	ah.UpdateEvery, ah.Probes, ah.KernelSpatialAxes = 3, 3, nil
	cases["adahessian_every3_nospatial"] = must(NewAdaHessian(ah))

	sgd = DefaultSGD()
	sgd.LR = 0.05
	cases["sam_sgd"] = must(NewSAM(must(NewSGD(sgd)), SAMConfig{Rho: 0.05, Eps: 1e-12}))
	adam = DefaultAdam()
	adam.LR = 0.05
	cases["asam_adam"] = must(NewSAM(must(NewAdam(adam)), SAMConfig{Rho: 0.5, Adaptive: true, Eps: 1e-12}))
	return cases
}

// quarticLoss is golden.py's separable quartic on the variables "w" and "k";
// inputs[0] is only there to give the graph.
func quarticLoss(gd *golden) func(scope *model.Scope, inputs, _ []*Node) *Node {
	return func(scope *model.Scope, inputs, _ []*Node) *Node {
		g := inputs[0].Graph()
		var loss *Node
		for _, name := range []string{"w", "k"} {
			x := scope.GetVariable(name).NodeValue(g)
			dims := gd.Shapes[name]
			cst := func(vals []float64) *Node { return Reshape(ConvertDType(Const(g, vals), x.DType()), dims...) }
			d := Sub(x, cst(gd.C[name]))
			sq := Square(d)
			term := ReduceAllSum(Add(MulScalar(Mul(cst(gd.A[name]), sq), 0.5), MulScalar(Mul(cst(gd.B[name]), Square(sq)), 0.25)))
			if loss == nil {
				loss = term
			} else {
				loss = Add(loss, term)
			}
		}
		return loss
	}
}

func TestGoldenFirstSteps(t *testing.T) {
	testGolden(t, dtypes.Float64, 1e-10, 1e-12)
}

// TestGoldenFirstStepsFloat32 runs the same cases on float32 variables and loss (the
// optimizers then compute in float32), to float32 tolerance.
func TestGoldenFirstStepsFloat32(t *testing.T) {
	testGolden(t, dtypes.Float32, 1e-4, 1e-5)
}

func testGolden(t *testing.T, dtype dtypes.DType, rtol, atol float64) {
	gd := loadGolden(t)
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		cases := goldenCases(t)
		if len(cases) != len(gd.Cases) {
			t.Fatalf("golden.json has %d cases, the test builds %d: keep them in sync", len(gd.Cases), len(cases))
		}
		for name, opt := range cases {
			want, ok := gd.Cases[name]
			if !ok {
				t.Fatalf("case %q missing from golden.json", name)
			}
			t.Run(name, func(t *testing.T) {
				store := model.NewStore()
				if err := store.SetRNGStateFromSeed(1); err != nil {
					t.Fatal(err)
				}
				root := store.RootScope()
				vars := map[string]*model.Variable{}
				for _, n := range []string{"w", "k"} {
					vars[n] = newVarDType(t, root, n, dtype, gd.Init[n], gd.Shapes[n]...)
				}
				exec := newStepExec(t, backend, store, opt, quarticLoss(gd))
				for step := range gd.Steps {
					runSteps(t, exec, 1)
					for _, n := range []string{"w", "k"} {
						got := floats(t, vars[n])
						for i, w := range want[step][n] {
							if !isClose(got[i], w, rtol, atol) {
								t.Fatalf("step %d: %s[%d] = %.15g, golden.py says %.15g (diff %.3g)",
									step+1, n, i, got[i], w, got[i]-w)
							}
						}
					}
				}
			})
		}
	})
}
