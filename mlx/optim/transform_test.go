package optim

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/mlxtest"
)

// runQuartic runs n steps of s on golden.py's quartic in dtype and returns the values of
// "w" and "k" after each step.
func runQuartic(t *testing.T, backend compute.Backend, gd *golden, s stepper, dtype dtypes.DType, n int) [][]float64 {
	t.Helper()
	store := model.NewStore()
	_ = store.SetRNGStateFromSeed(1)
	var vars []*model.Variable
	for _, name := range []string{"w", "k"} {
		vars = append(vars, newVarDType(t, store.RootScope(), name, dtype, gd.Init[name], gd.Shapes[name]...))
	}
	exec := newStepExec(t, backend, store, s, quarticLoss(gd))
	var out [][]float64
	for range n {
		runSteps(t, exec, 1)
		var row []float64
		for _, v := range vars {
			row = append(row, floats(t, v)...)
		}
		out = append(out, row)
	}
	return out
}

// TestChainBitForBit checks that the hand-written optimizers (Adam, AdamW, AMSGrad, SGD,
// Adan, AdaBelief, Lion, AdaHessian) equal their chains of transforms exactly (same bits),
// in float64 and float32, on both backends, for 8 steps of golden.py's quartic. AdaHessian's
// probes come from the store's generator, seeded alike for both and drawn in the same
// order (the chain's ScaleByAdaHessian is its first random draw, as in the optimizer). On
// the separable quartic a Rademacher probe gives the exact diagonal whatever its signs, so
// the Gaussian pair is the one that checks that both draw the same probes.
func TestChainBitForBit(t *testing.T) {
	gd := loadGolden(t)
	type pair struct {
		name      string
		reference func() stepper
		chain     func() stepper
	}
	adam := DefaultAdam()
	adam.LR, adam.WeightDecay = 0.1, 0.01
	adamw := DefaultAdamW()
	adamw.LR, adamw.WeightDecay = 0.1, 0.1
	adamw.Schedule = Schedule{WarmupSteps: 2, Decay: DecayCosine, DecaySteps: 4, FinalFactor: 0.1}
	ams := DefaultAMSGrad()
	ams.LR = 0.1
	sgd := DefaultSGD()
	sgd.LR, sgd.Momentum, sgd.Nesterov, sgd.WeightDecay = 0.05, 0.9, true, 0.01
	pairs := []pair{
		{"adam_l2", func() stepper { return must(NewAdam(adam)) }, func() stepper {
			return must(NewChain("adam", adam.Common, AddL2(adam.WeightDecay), ScaleByAdam(adam.Beta1, adam.Beta2, adam.Eps, false), ScaleByLR()))
		}},
		{"adamw", func() stepper { return must(NewAdam(adamw)) }, func() stepper {
			return must(NewChain("adamw", adamw.Common, ScaleByAdam(adamw.Beta1, adamw.Beta2, adamw.Eps, false), AddDecayedWeights(adamw.WeightDecay), ScaleByLR()))
		}},
		{"amsgrad", func() stepper { return must(NewAdam(ams)) }, func() stepper {
			return must(NewChain("amsgrad", ams.Common, ScaleByAdam(ams.Beta1, ams.Beta2, ams.Eps, true), ScaleByLR()))
		}},
		{"sgd_nesterov_l2", func() stepper { return must(NewSGD(sgd)) }, func() stepper {
			return must(NewChain("sgd", sgd.Common, AddL2(sgd.WeightDecay), Momentum(sgd.Momentum, true), ScaleByLR()))
		}},
	}
	adanChain := func(cfg AdanConfig) func() stepper {
		return func() stepper {
			var ts []Transform
			if cfg.MaxGradNorm > 0 {
				ts = append(ts, ClipByGlobalNormEps(cfg.MaxGradNorm, cfg.Eps))
			}
			ts = append(ts, ScaleByAdan(cfg.Beta1, cfg.Beta2, cfg.Beta3, cfg.Eps))
			if cfg.NoProx {
				ts = append(ts, AddDecayedWeights(cfg.WeightDecay))
			} else {
				ts = append(ts, ProximalDecay(cfg.WeightDecay))
			}
			return must(NewChain("adan", cfg.Common, append(ts, ScaleByLR())...))
		}
	}
	adan := DefaultAdan()
	adan.LR = 0.05
	adanWD := adan
	adanWD.WeightDecay = 0.02
	adanNoProx := adanWD
	adanNoProx.NoProx = true
	adanClip := adanWD
	adanClip.MaxGradNorm = 2 // the quartic's gradient norm is about 6 to 9 over these steps: all are clipped
	adanClip.Schedule = Schedule{WarmupSteps: 2, Decay: DecayCosine, DecaySteps: 4, FinalFactor: 0.1}
	for _, c := range []struct {
		name string
		cfg  AdanConfig
	}{{"adan", adan}, {"adan_prox", adanWD}, {"adan_noprox", adanNoProx}, {"adan_clip_prox_cosine", adanClip}} {
		pairs = append(pairs, pair{c.name, func() stepper { return must(NewAdan(c.cfg)) }, adanChain(c.cfg)})
	}
	belief := DefaultAdaBelief()
	belief.LR, belief.WeightDecay = 0.1, 0.1
	beliefL2 := belief
	beliefL2.Coupled = true
	lion := DefaultLion()
	lion.LR, lion.WeightDecay = 0.01, 0.1
	pairs = append(pairs,
		pair{"adabelief_decoupled", func() stepper { return must(NewAdaBelief(belief)) }, func() stepper {
			return must(NewChain("adabelief", belief.Common, ScaleByBelief(belief.Beta1, belief.Beta2, belief.Eps),
				AddDecayedWeights(belief.WeightDecay), ScaleByLR()))
		}},
		pair{"adabelief_coupled", func() stepper { return must(NewAdaBelief(beliefL2)) }, func() stepper {
			return must(NewChain("adabelief", beliefL2.Common, AddL2(beliefL2.WeightDecay),
				ScaleByBelief(beliefL2.Beta1, beliefL2.Beta2, beliefL2.Eps), ScaleByLR()))
		}},
		pair{"lion_wd", func() stepper { return must(NewLion(lion)) }, func() stepper {
			return must(NewChain("lion", lion.Common, ScaleByLion(lion.Beta1, lion.Beta2), AddDecayedWeights(lion.WeightDecay), ScaleByLR()))
		}},
	)
	// AdaHessian as golden_test.go configures it.
	ah := DefaultAdaHessian()
	ah.WeightDecay = 0.001
	ahPower := DefaultAdaHessian()
	ahPower.HessianPower = 0.5
	ahPower.Schedule = Schedule{Decay: DecayLinear, DecaySteps: 8}
	ahEvery := DefaultAdaHessian()
	ahEvery.UpdateEvery, ahEvery.Probes, ahEvery.KernelSpatialAxes = 3, 3, nil
	ahGauss := DefaultAdaHessian()
	ahGauss.Probes, ahGauss.Gaussian = 2, true
	for _, c := range []struct {
		name string
		cfg  AdaHessianConfig
	}{{"adahessian_wd", ah}, {"adahessian_power_linear", ahPower}, {"adahessian_every3_nospatial", ahEvery}, {"adahessian_gaussian2", ahGauss}} {
		pairs = append(pairs, pair{c.name, func() stepper { return must(NewAdaHessian(c.cfg)) }, func() stepper {
			est := HessianEstimate{Probes: c.cfg.Probes, Gaussian: c.cfg.Gaussian, UpdateEvery: c.cfg.UpdateEvery,
				KernelSpatialAxes: c.cfg.KernelSpatialAxes}
			return must(NewChain("adahessian", c.cfg.Common, ScaleByAdaHessian(c.cfg.Beta1, c.cfg.Beta2, c.cfg.Eps, c.cfg.HessianPower, est),
				AddL2(c.cfg.WeightDecay), ScaleByLR()))
		}})
	}
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		for _, dtype := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
			for _, p := range pairs {
				t.Run(p.name+"/"+dtype.String(), func(t *testing.T) {
					want := runQuartic(t, backend, gd, p.reference(), dtype, 8)
					got := runQuartic(t, backend, gd, p.chain(), dtype, 8)
					for step := range want {
						for j := range want[step] {
							if math.Float64bits(got[step][j]) != math.Float64bits(want[step][j]) {
								t.Fatalf("step %d, element %d: chain %.17g, %s %.17g", step+1, j, got[step][j], p.name, want[step][j])
							}
						}
					}
				})
			}
		}
	})
}

// TestBiasCorrectionFloat64 checks that 1 - beta^k is computed in float64 and rounded once
// (PyTorch's rule), and that it differs from rounding beta to float32 first, the rule the
// optimizers used before, at beta = 0.999, k = 1..10.
func TestBiasCorrectionFloat64(t *testing.T) {
	const beta, n = 0.999, 10
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		results := MustExecOnceN(backend, func(k *Node) []*Node {
			return []*Node{BiasCorrection(beta, k, dtypes.Float32), OneMinus(Pow(Scalar(k.Graph(), dtypes.Float32, beta), k))}
		}, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
		got, old := results[0].Value().([]float32), results[1].Value().([]float32)
		differ := 0
		for i := range n {
			want := float32(1 - math.Pow(beta, float64(i+1)))
			if got[i] != want {
				t.Errorf("k=%d: BiasCorrection = %.9g, float32(1 - 0.999^k in float64) = %.9g", i+1, got[i], want)
			}
			if old[i] != want {
				differ++
				t.Logf("k=%d: float64 rule %.9g, float32 rule %.9g (relative %.2g)", i+1, want, old[i], float64(old[i]-want)/float64(want))
			}
		}
		if differ == 0 {
			t.Errorf("the float32 rule matched the float64 rule at every k: the test no longer shows the difference")
		}
	})
}

// quadStep builds a chain on the 2-element quadratic 0.5*sum(a*(x-c)^2) and returns its
// iterates.
func quadSteps(t *testing.T, backend compute.Backend, o Optimizer, n int) [][]float64 {
	t.Helper()
	store := model.NewStore()
	x := newVar(t, store.RootScope(), "x", []float64{1, -2}, 2)
	loss := func(scope *model.Scope, inputs, _ []*Node) *Node {
		v := scope.GetVariable("x").NodeValue(inputs[0].Graph())
		d := Sub(v, Const(v.Graph(), []float64{0.5, 0.25}))
		return MulScalar(ReduceAllSum(Mul(Const(v.Graph(), []float64{1, 10}), Square(d))), 0.5)
	}
	exec := newStepExec(t, backend, store, o, loss)
	var out [][]float64
	for range n {
		runSteps(t, exec, 1)
		out = append(out, floats(t, x))
	}
	return out
}

// quadGrad is the gradient of quadSteps' loss.
func quadGrad(x []float64) []float64 {
	return []float64{1 * (x[0] - 0.5), 10 * (x[1] - 0.25)}
}

func closeAll(t *testing.T, step int, got, want []float64) {
	t.Helper()
	for i := range want {
		if !isClose(got[i], want[i], 1e-12, 1e-14) {
			t.Fatalf("step %d: x = %v, want %v", step, got, want)
		}
	}
}

// TestTransforms checks clipping, accumulation, lookahead and weight averaging against
// host computations of their rules.
func TestTransforms(t *testing.T) {
	com := Common{LR: 0.1, ScopeName: "t"}
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		t.Run("clip_by_global_norm", func(t *testing.T) {
			got := quadSteps(t, backend, must(NewChain("c", com, ClipByGlobalNorm(1), ScaleByLR())), 5)
			x := []float64{1, -2}
			for k := range got {
				g := quadGrad(x)
				f := 1 / math.Max(1, math.Hypot(g[0], g[1]))
				x = []float64{x[0] - 0.1*f*g[0], x[1] - 0.1*f*g[1]}
				closeAll(t, k+1, got[k], x)
			}
		})
		t.Run("clip_by_value", func(t *testing.T) {
			got := quadSteps(t, backend, must(NewChain("c", com, ClipByValue(0.5), ScaleByLR())), 5)
			x := []float64{1, -2}
			for k := range got {
				g := quadGrad(x)
				for i := range x {
					x[i] -= 0.1 * math.Max(-0.5, math.Min(0.5, g[i]))
				}
				closeAll(t, k+1, got[k], x)
			}
		})
		t.Run("accumulate", func(t *testing.T) {
			// Heavy-ball momentum every 3rd step on the mean of 3 gradients; the parameters do
			// not move in between, so the mean is the gradient at the current point.
			got := quadSteps(t, backend, must(NewChain("c", com, Accumulate(3, Momentum(0.5, false), ScaleByLR()))), 9)
			x, buf := []float64{1, -2}, []float64{0, 0}
			for k := range got {
				if (k+1)%3 == 0 {
					g := quadGrad(x)
					for i := range x {
						buf[i] = 0.5*buf[i] + g[i]
						x[i] -= 0.1 * buf[i]
					}
				}
				closeAll(t, k+1, got[k], x)
			}
		})
		t.Run("lookahead", func(t *testing.T) {
			got := quadSteps(t, backend, must(NewChain("c", com, ScaleByLR(), Lookahead(2, 0.5))), 6)
			x := []float64{1, -2}
			slow := append([]float64(nil), x...)
			for k := range got {
				g := quadGrad(x)
				for i := range x {
					x[i] -= 0.1 * g[i]
				}
				if (k+1)%2 == 0 {
					for i := range x {
						slow[i] += 0.5 * (x[i] - slow[i])
						x[i] = slow[i]
					}
				}
				closeAll(t, k+1, got[k], x)
			}
		})
		t.Run("ema_weights", func(t *testing.T) {
			store := model.NewStore()
			x := newVar(t, store.RootScope(), "x", []float64{1, -2}, 2)
			loss := func(scope *model.Scope, inputs, _ []*Node) *Node {
				return MulScalar(ReduceAllSum(Square(scope.GetVariable("x").NodeValue(inputs[0].Graph()))), 0.5)
			}
			exec := newStepExec(t, backend, store, must(NewChain("c", com, ScaleByLR(), EMAWeights(0.9))), loss)
			runSteps(t, exec, 3)
			ev := store.GetVariable("/t/x_ema")
			if ev == nil {
				t.Fatal("no slot /t/x_ema")
			}
			want := []float64{1, -2}
			var e []float64
			for k := range 3 {
				for i := range want {
					want[i] *= 0.9
				}
				if k == 0 {
					e = append([]float64(nil), want...)
				} else {
					for i := range e {
						e[i] = 0.9*e[i] + 0.1*want[i]
					}
				}
			}
			closeAll(t, 3, floats(t, x), want)
			closeAll(t, 3, floats(t, ev), e)
		})
	})
}

// TestTransformArgumentErrors checks that out-of-range arguments of the transforms are
// reported when the step is built, naming the argument.
func TestTransformArgumentErrors(t *testing.T) {
	backend := mlxtest.Backends(t)[0].Backend
	for _, c := range []struct {
		tr   Transform
		want string
	}{
		{Accumulate(0, ScaleByLR()), "Accumulate: n=0 is out of range"},
		{Lookahead(-1, 0.5), "Lookahead: syncEvery=-1 is out of range"},
		{ScaleBySchedule(Schedule{WarmupSteps: -2}), "Schedule.WarmupSteps=-2 is out of range"},
		{ClipByGlobalNormEps(0, 1e-8), "ClipByGlobalNormEps: maxNorm=0 is out of range: it must be > 0"},
		{ScaleByAdan(0.98, 0.92, 1, 1e-8), "ScaleByAdan: b3=1 is out of range: it must be in [0, 1)"},
		{ProximalDecay(-0.1), "ProximalDecay: wd=-0.1 is out of range: it must be >= 0"},
		{ScaleByBelief(0.9, 0.999, 0), "ScaleByBelief: eps=0 is out of range: it must be > 0"},
		{ScaleByLion(-0.5, 0.99), "ScaleByLion: b1=-0.5 is out of range: it must be in [0, 1)"},
		{ScaleByAdaHessian(0.9, 0.999, 1e-4, 1.5, HessianEstimate{Probes: 1, UpdateEvery: 1}), "ScaleByAdaHessian: hessianPower=1.5 is out of range"},
		{ScaleByAdaHessian(0.9, 0.999, 1e-4, 1, HessianEstimate{Probes: 0, UpdateEvery: 1}), "ScaleByAdaHessian: est.Probes=0 is out of range: it must be in [1, 64]"},
		{ScaleByAdaHessian(0.9, 0.999, 1e-4, 1, HessianEstimate{Probes: 1, UpdateEvery: 1, KernelSpatialAxes: []int{0}}), "ScaleByAdaHessian: est.KernelSpatialAxes=[0] is invalid"},
	} {
		store := model.NewStore()
		newVar(t, store.RootScope(), "x", []float64{1, 2}, 2)
		o := must(NewChain("c", Common{LR: 0.1, ScopeName: "c"}, c.tr))
		err := func() (err error) {
			defer func() { // model.Exec returns the errors of graph building, or panics with them
				if r := recover(); r != nil {
					err = fmt.Errorf("%v", r)
				}
			}()
			exec, err := model.NewExec(backend, store, func(scope *model.Scope, g *Graph) *Node {
				return buildStep(g, o, scope, func(scope *model.Scope, inputs, _ []*Node) *Node {
					return ReduceAllSum(Square(scope.GetVariable("x").NodeValue(inputs[0].Graph())))
				})
			})
			if err != nil {
				return err
			}
			_, err = exec.Exec()
			return err
		}()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error containing %q", err, c.want)
		}
	}
}

// TestStepHessian checks Step.HessianVectorProducts and Step.HutchinsonDiagonal against
// golden.py's quartic, whose Hessian is diagonal, a + 3b(x-c)^2: a transform makes the
// update H z (or the Hutchinson diagonal), and with LR 1 one step moves x by minus it.
func TestStepHessian(t *testing.T) {
	gd := loadGolden(t)
	names := []string{"w", "k"}
	hessian := func(n string) []float64 {
		h := make([]float64, len(gd.Init[n]))
		for j, x := range gd.Init[n] {
			h[j] = gd.A[n][j] + 3*gd.B[n][j]*(x-gd.C[n][j])*(x-gd.C[n][j])
		}
		return h
	}
	zs := map[string][]float64{"w": fixedRand(5, 3, -2, 2), "k": fixedRand(6, 8, -2, 2)}
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		for _, c := range []struct {
			name string
			rule Transform
			want func(n string, j int) float64
		}{
			{"hessian_vector_products", func(s *Step) {
				if !s.HasLoss() {
					t.Error("HasLoss is false in a chain built with UpdateGraph")
				}
				dirs := make([]*Node, len(s.Vars))
				for i, v := range s.Vars {
					dirs[i] = Reshape(Const(s.Graph, zs[v.Name()]), v.Shape().Dimensions...)
				}
				for i, hz := range s.HessianVectorProducts(dirs) {
					s.SetUpdate(i, hz)
				}
			}, func(n string, j int) float64 { return hessian(n)[j] * zs[n][j] }},
			{"hutchinson_diagonal", func(s *Step) {
				for i, d := range s.HutchinsonDiagonal(2, false) {
					s.SetUpdate(i, d)
				}
			}, func(n string, j int) float64 { return hessian(n)[j] }},
		} {
			t.Run(c.name, func(t *testing.T) {
				store := model.NewStore()
				_ = store.SetRNGStateFromSeed(1)
				vars := map[string]*model.Variable{}
				for _, n := range names {
					vars[n] = newVar(t, store.RootScope(), n, gd.Init[n], gd.Shapes[n]...)
				}
				o := must(NewChain("h", Common{LR: 1, ScopeName: "h"}, c.rule, ScaleByLR()))
				runSteps(t, newStepExec(t, backend, store, o, quarticLoss(gd)), 1)
				for _, n := range names {
					for j, got := range floats(t, vars[n]) {
						if want := gd.Init[n][j] - c.want(n, j); !isClose(got, want, 1e-12, 1e-12) {
							t.Errorf("%s[%d] = %.15g after one step, want %.15g", n, j, got, want)
						}
					}
				}
			})
		}
	})
}

// TestChainHessianNeedsLoss checks that a chain given gradients only (as zeroth-order
// estimates and local SGD give them) reports that ScaleByAdaHessian needs the loss.
func TestChainHessianNeedsLoss(t *testing.T) {
	backend := mlxtest.Backends(t)[0].Backend
	store := model.NewStore()
	newVar(t, store.RootScope(), "x", []float64{1, 2}, 2)
	ah := DefaultAdaHessian()
	o := must(NewChain("ah", ah.Common, ScaleByAdaHessian(ah.Beta1, ah.Beta2, ah.Eps, ah.HessianPower,
		HessianEstimate{Probes: 1, UpdateEvery: 1}), ScaleByLR()))
	err := func() (err error) {
		defer func() { // model.Exec returns the errors of graph building, or panics with them
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		exec, err := model.NewExec(backend, store, func(scope *model.Scope, g *Graph) *Node {
			x := scope.GetVariable("x").NodeValue(g)
			o.UpdateGraphWithGradients(scope, []*Node{MulScalar(x, 2)}, x.DType())
			return ReduceAllSum(Square(x))
		})
		if err != nil {
			return err
		}
		_, err = exec.Exec()
		return err
	}()
	const want = `optim.ScaleByAdaHessian: needs Hessian-vector products of the loss, but chain "ah" was given gradients only`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want an error containing %q", err, want)
	}
}

// TestChainCountersUnderAccumulate checks that inside Accumulate, Adan's counter k counts
// the applied steps only, and that ProximalDecay leaves the parameters alone on the steps
// that only accumulate.
func TestChainCountersUnderAccumulate(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		store := model.NewStore()
		x := newVar(t, store.RootScope(), "x", []float64{1, -2}, 2)
		o := must(NewChain("c", Common{LR: 0.1, ScopeName: "c"},
			Accumulate(2, ScaleByAdan(0.98, 0.92, 0.99, 1e-8), ProximalDecay(0.5), ScaleByLR())))
		exec := newStepExec(t, backend, store, o, func(scope *model.Scope, inputs, _ []*Node) *Node {
			return ReduceAllSum(Square(scope.GetVariable("x").NodeValue(inputs[0].Graph())))
		})
		runSteps(t, exec, 1)
		if got := floats(t, x); got[0] != 1 || got[1] != -2 {
			t.Errorf("x = %v after an accumulating step, want [1 -2] unchanged", got)
		}
		runSteps(t, exec, 3)
		k := store.GetVariable("/c/k")
		if k == nil {
			t.Fatal("no counter /c/k")
		}
		if got := k.MustValue().Value().(int64); got != 2 {
			t.Errorf("Adan's counter k = %d after 4 steps accumulated by 2, want 2", got)
		}
	})
}
