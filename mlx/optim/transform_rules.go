package optim

import (
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/support/exceptions"
)

// The transforms of this file are the preconditioners and decays of Adan, AdaBelief, Lion
// and AdaHessian, so that each of these optimizers is a [Chain] (equal to it bit for bit;
// see the package documentation for the chains). They keep the slot and counter names of
// the hand-written optimizers, so a chain and its optimizer read each other's checkpoints.

// panicOn panics with the checker's error, if any (transforms check their arguments while
// the step is built, GoMLX's convention).
func panicOn(ck *checker) {
	if ck.err != nil {
		exceptions.Panicf("%v", ck.err)
	}
}

// ClipByGlobalNormEps scales the updates by min(1, maxNorm/(||u|| + eps)), where ||u|| is
// the L2 norm of all updates together: Adan's gradient clipping (its MaxGradNorm), which
// adds eps to the norm where [ClipByGlobalNorm] does not. maxNorm must be > 0 and eps >= 0.
func ClipByGlobalNormEps(maxNorm, eps float64) Transform {
	return func(s *Step) {
		ck := &checker{opt: "ClipByGlobalNormEps"}
		ck.positive("maxNorm", maxNorm)
		ck.nonNegative("eps", eps)
		panicOn(ck)
		s.ScaleBy(globalNormClipFactor(s.Updates(), maxNorm, eps))
	}
}

// ScaleByAdan is Adan's preconditioner (official sail-sg/Adan code, see [Adan]), with the
// betas in the code's convention (b1 in [0, 1) weighs the old gradient average, ...) and
// eps > 0, on the updates g:
//
//	d = g - g_prev               (g_prev = g on Adan's first step, so d = 0)
//	m = b1*m + (1-b1)*g
//	v = b2*v + (1-b2)*d
//	n = b3*n + (1-b3)*(g + b2*d)^2
//	u = (m/(1-b1^k) + b2*v/(1-b2^k)) / (sqrt(n)/sqrt(1-b3^k) + eps)
//
// Slots "m", "v", "n" and "prev_grad"; k is the counter "k" (not the optimizer's step), as
// [Adan] keeps it, so a chain and the optimizer share checkpoints. Follow it with
// [ProximalDecay] (Adan's default decay) or [AddDecayedWeights] (NoProx), then [ScaleByLR].
func ScaleByAdan(b1, b2, b3, eps float64) Transform {
	return func(s *Step) {
		ck := &checker{opt: "ScaleByAdan"}
		ck.beta("b1", b1)
		ck.beta("b2", b2)
		ck.beta("b3", b3)
		ck.positive("eps", eps)
		panicOn(ck)
		k := s.Counter(adanCounter)
		first := ConvertDType(Equal(k, s.Scalar(1)), s.DType) // 1 on the first step, else 0
		bc1 := s.BiasCorrection(b1, k)
		bc2 := s.BiasCorrection(b2, k)
		sqrtBC3 := Sqrt(s.BiasCorrection(b3, k))
		for i := range s.Vars {
			g := s.Update(i)
			prev := Add(Mul(first, g), Mul(OneMinus(first), s.State(i, "prev_grad")))
			d := Sub(g, prev)
			m := s.EMA(i, "m", b1, g)
			dv := s.EMA(i, "v", b2, d)
			n := s.EMA(i, "n", b3, Square(Add(g, MulScalar(d, b2))))
			s.SetState(i, "prev_grad", g)
			denom := AddScalar(Div(Sqrt(n), sqrtBC3), eps)
			num := Add(Div(m, bc1), MulScalar(Div(dv, bc2), b2))
			s.SetUpdate(i, Div(num, denom))
		}
	}
}

// ProximalDecay is the proximal weight decay of Adan's paper (its default): once the chain
// has applied the update, w_new = (w - step)/(1 + lr*wd), with lr the scheduled learning
// rate and wd >= 0 (0: no decay). It acts through [Step.AfterApply], so its place among
// the transforms only orders it with the other AfterApply users ([Lookahead],
// [EMAWeights]): put it before them.
func ProximalDecay(wd float64) Transform {
	return func(s *Step) {
		ck := &checker{opt: "ProximalDecay"}
		ck.nonNegative("wd", wd)
		panicOn(ck)
		if wd == 0 {
			return
		}
		shrink := OnePlus(MulScalar(s.LR, wd))
		gate := s.gate
		s.AfterApply(func(_ int, w *Node) *Node {
			p := Div(w, shrink)
			if gate != nil {
				p = Where(gate, p, w)
			}
			return p
		})
	}
}

// ScaleByBelief is AdaBelief's preconditioner (official adabelief-pytorch 0.2 code, without
// rectification; see [AdaBelief]) on the updates g, with b1, b2 in [0, 1) and eps > 0:
//
//	m = b1*m + (1-b1)*g
//	s = b2*s + (1-b2)*(g-m)^2 + eps          (eps kept inside s, as the official code does)
//	u = m / (sqrt(s)/sqrt(1-b2^k) + eps) / (1-b1^k)
//
// Slots "m" and "s". AdaBelief's decoupled decay is [AddDecayedWeights] after it, its
// coupled (L2) decay [AddL2] before it; then [ScaleByLR].
func ScaleByBelief(b1, b2, eps float64) Transform {
	return func(s *Step) {
		ck := &checker{opt: "ScaleByBelief"}
		ck.beta("b1", b1)
		ck.beta("b2", b2)
		ck.positive("eps", eps)
		panicOn(ck)
		bc1 := s.BiasCorrection(b1, s.K)
		sqrtBC2 := Sqrt(s.BiasCorrection(b2, s.K))
		for i := range s.Vars {
			g := s.Update(i)
			m := s.EMA(i, "m", b1, g)
			belief := AddScalar(ema(s.State(i, "s"), b2, Square(Sub(g, m))), eps)
			s.SetState(i, "s", belief)
			s.SetUpdate(i, Div(m, AddScalar(Div(Sqrt(belief), sqrtBC2), eps)))
		}
		s.DivideBy(bc1)
	}
}

// ScaleByLion is Lion's update direction (official google/automl code, see [Lion]) on the
// updates g, with b1, b2 in [0, 1):
//
//	u = sign(b1*m + (1-b1)*g)
//	m = b2*m + (1-b2)*g
//
// Slot "m". Lion is ScaleByLion, [AddDecayedWeights] and [ScaleByLR].
func ScaleByLion(b1, b2 float64) Transform {
	return func(s *Step) {
		ck := &checker{opt: "ScaleByLion"}
		ck.beta("b1", b1)
		ck.beta("b2", b2)
		panicOn(ck)
		for i := range s.Vars {
			g := s.Update(i)
			m := s.State(i, "m")
			direction := Sign(Add(MulScalar(m, b1), MulScalar(g, 1-b1)))
			s.SetState(i, "m", ema(m, b2, g))
			s.SetUpdate(i, direction)
		}
	}
}

// ScaleByAdaHessian is AdaHessian's preconditioner (official amirgholami/adahessian code,
// see [AdaHessian]) on the updates g, with b1, b2 in [0, 1), eps > 0 and hessianPower in
// (0, 1]:
//
//	D = |Hutchinson estimate of the Hessian diagonal of the loss|, averaged over the
//	    spatial axes of 4-D kernels          (est: probes, refresh, spatial axes)
//	m = b1*m + (1-b1)*g
//	v = b2*v + (1-b2)*D^2                    (only on refresh steps with est.UpdateEvery > 1)
//	u = m/(1-b1^k) / ((sqrt(v)/sqrt(1-b2^h))^hessianPower + eps)
//
// where h is the step k, or the counter "hessian_updates" of refresh steps with
// est.UpdateEvery > 1. Slots "m" and "hessian_sq". AdaHessian's weight decay is [AddL2]
// after it (w -= lr*wd*w), then [ScaleByLR].
//
// It needs Hessian-vector products of the loss ([Step.HutchinsonDiagonal]), so the chain's
// step must be built with UpdateGraph; through UpdateGraphWithGradients it panics. Probes
// are drawn from the store's random number generator, in the order of [HutchinsonDiagonal].
func ScaleByAdaHessian(b1, b2, eps, hessianPower float64, est HessianEstimate) Transform {
	return func(s *Step) {
		ck := &checker{opt: "ScaleByAdaHessian"}
		ck.beta("b1", b1)
		ck.beta("b2", b2)
		ck.positive("eps", eps)
		if !finite(hessianPower) || hessianPower <= 0 || hessianPower > 1 {
			ck.fail("hessianPower=%g is out of range: it must be in (0, 1]", hessianPower)
		}
		est.check(ck, "est.")
		panicOn(ck)
		s.needLoss("ScaleByAdaHessian")
		diag := s.hutchinsonDiagonal(est.Probes, est.Gaussian)
		var refresh *Node
		hk := s.K
		if est.UpdateEvery > 1 {
			refresh = hessianRefresh(s.KInt, est.UpdateEvery)
			hk = s.counterIf(hessianUpdatesCounter, refresh)
		}
		bc1 := s.BiasCorrection(b1, s.K)
		sqrtBC2 := Sqrt(s.BiasCorrection(b2, hk))
		for i := range s.Vars {
			d := hessianSpatialMean(Abs(diag[i]), est.KernelSpatialAxes)
			m := s.EMA(i, "m", b1, s.Update(i))
			hv := hessianSquareEMA(s.State(i, "hessian_sq"), b2, d, refresh)
			s.SetState(i, "hessian_sq", hv)
			s.SetUpdate(i, Div(Div(m, bc1), adaHessianDenominator(hv, sqrtBC2, hessianPower, eps)))
		}
	}
}
