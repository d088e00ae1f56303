// Package zo implements zeroth-order SGD as a train.Stepper: MeZO's two-point estimator
// (Malladi et al., "Fine-Tuning Language Models with Just Forward Passes") with the seed
// trick, m directions per step (n-SPSA), heavy-ball momentum or any first-order rule fed
// with the estimate (ZO-Adam), optional sparse masks and weight decay.
//
// One step, for each direction k = 1..m with its own random state s_k:
//
//	z_k    = N(0, I) generated from s_k, variable by variable in a fixed order (or Rademacher ±1)
//	θ+     = θ + ε z_k,  θ- = 2θ - θ+                (θ - ε z_k up to rounding)
//	g_k    = (L(θ+) - L(θ-)) / (2ε)                 (the projected gradient, a scalar)
//	d_k    = (θ - θ-) / ε                           (z_k as evaluated, up to rounding)
//	ĝ      = (1/m) Σ_k g_k d_k
//	θ      ← θ - lr (ĝ + wd θ)                      (built-in rule; wd only on rank >= 2 variables)
//
// z is never stored: it is generated from s_k inside the step graph by a counter-based
// generator made of elementwise ops that XLA fuses and vectorizes (see [Distribution]), once
// per direction, into the computation of θ + εz. Only forward passes are built, no gradient
// graph. The second point is 2θ - (θ + εz), and the update moves along the displacement
// actually evaluated, (θ - θ-)/ε (z up to rounding), so z is not needed again: a step takes
// one parameter copy of memory beyond a forward pass (cmd/bench-zo measures it). θ is not
// changed in place as in the official code, so it is restored exactly. The seeds and
// projected gradients of every step can be recorded ([Config.Trace]) and replayed
// ([Replay]) to reproduce the parameters bit for bit.
package zo

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/mlx/internal/validname"
	"github.com/goptlab/goptlab/mlx/train"
)

// Config holds the hyperparameters of a ZO stepper. Start from [DefaultConfig].
type Config struct {
	// LR is the learning rate lr, in [0, +Inf) (the same name as in mlx/optim).
	LR float64
	// Epsilon is the perturbation scale ε, in (0, +Inf). MeZO's default is 1e-3.
	Epsilon float64
	// Directions is m, the number of two-point estimates averaged per step (n-SPSA), in
	// [1, MaxDirections].
	Directions int
	// WeightDecay is wd, in [0, +Inf): θ ← θ - lr·wd·θ for variables of rank >= 2
	// (MeZO exempts biases and layer norms; here every rank-0/1 variable is exempt).
	WeightDecay float64
	// Momentum is the heavy-ball coefficient β in [0, 1) of the built-in rule:
	// b ← β b + ĝ + wd θ; θ ← θ - lr b. It keeps one buffer per parameter. 0 disables it.
	Momentum float64
	// Rule, if set, replaces the built-in rule: the estimate ĝ + wd θ is fed to its
	// UpdateGraphWithGradients as the gradient (ZO-Adam with GoMLX's optimizer.Adam, or any
	// optimizer of mlx/optim). LR and Momentum are then unused (the rule has its own).
	Rule optimizer.Interface
	// Distribution is the law of the directions z: Gaussian (the zero value, MeZO's) or Rademacher.
	Distribution Distribution
	// Mask, if set, restricts the perturbation to a subset of each variable (sparse ZO).
	Mask Mask
	// Trace records the seeds and projected gradients of every step (see [ZO.Trace]).
	Trace bool
	// Name labels the stepper in histories; empty means "zo-sgd", "zo-momentum" or "zo-" + the rule's name.
	// It must be valid UTF-8 without control characters, not only spaces, of at most 1024 bytes.
	Name string
	// Scope is the Store scope of the stepper's own variables, e.g. "/zo" or "zo2"; empty
	// means "/zo". Its "/"-separated parts must be non-empty names without control
	// characters or spaces at their ends (at most 1024 bytes in all).
	Scope string
}

// MaxDirections is the largest Config.Directions. The step graph holds two forward passes
// per direction (they are unrolled, not looped), so a graph of this many already takes
// minutes to build and compile; more would not fit in memory for any real model.
const MaxDirections = 1024

// DefaultConfig returns MeZO's defaults: lr 1e-6 (their full fine-tuning range is 1e-6..1e-7;
// small models tolerate much larger rates), ε = 1e-3, one direction, no weight decay.
func DefaultConfig() Config {
	return Config{LR: 1e-6, Epsilon: 1e-3, Directions: 1}
}

func finiteIn(name string, v, lo float64, loOpen bool, hi float64, hiOpen bool) error {
	ok := !math.IsNaN(v) && (v > lo || (!loOpen && v == lo)) && (v < hi || (!hiOpen && v == hi))
	if ok {
		return nil
	}
	lb, rb := "[", "]"
	if loOpen {
		lb = "("
	}
	if hiOpen {
		rb = ")"
	}
	return fmt.Errorf("zo: %s=%g out of range: must be in %s%g, %g%s", name, v, lb, lo, hi, rb)
}

// Validate checks every hyperparameter and names the first one out of range.
func (c Config) Validate() error {
	if err := finiteIn("LR", c.LR, 0, false, math.Inf(1), true); err != nil {
		return err
	}
	if err := finiteIn("Epsilon", c.Epsilon, 0, true, math.Inf(1), true); err != nil {
		return err
	}
	if c.Directions < 1 || c.Directions > MaxDirections {
		return fmt.Errorf("zo: Directions=%d out of range: must be >= 1 and <= %d (MaxDirections)", c.Directions, MaxDirections)
	}
	if err := finiteIn("WeightDecay", c.WeightDecay, 0, false, math.Inf(1), true); err != nil {
		return err
	}
	if err := finiteIn("Momentum", c.Momentum, 0, false, 1, true); err != nil {
		return err
	}
	if c.Rule != nil {
		if _, ok := c.Rule.(gradientRule); !ok {
			return fmt.Errorf("zo: Rule %T has no UpdateGraphWithGradients(scope, grads, dtype) method, so it cannot take a ZO estimate", c.Rule)
		}
		if c.Momentum != 0 {
			return fmt.Errorf("zo: Momentum=%g is for the built-in rule; with a Rule, configure momentum on the rule", c.Momentum)
		}
	}
	if c.Distribution != Gaussian && c.Distribution != Rademacher {
		return fmt.Errorf("zo: Distribution=%d out of range: must be Gaussian or Rademacher", int(c.Distribution))
	}
	if c.Mask != nil {
		if err := c.Mask.validate(); err != nil {
			return err
		}
	}
	if err := validname.Label(c.Name); err != nil {
		return fmt.Errorf("zo: Name=%.40q is invalid: %w", c.Name, err)
	}
	if err := validname.ScopePath(c.Scope); err != nil {
		return fmt.Errorf("zo: Scope=%.40q is invalid: %w", c.Scope, err)
	}
	return nil
}

var _ train.Configured = (*ZO)(nil)

// TrainConfig implements train.Configured: checkpoints record the configuration, so that a
// run does not resume one written with other hyperparameters. Trace is left out: it does
// not change the trajectory.
func (z *ZO) TrainConfig() any {
	cfg := z.cfg
	cfg.Trace = false
	return cfg
}
