package optim

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
)

// Decay is the shape of a [Schedule] after its warm-up.
type Decay int

const (
	// DecayNone keeps the learning rate constant after the warm-up.
	DecayNone Decay = iota
	// DecayCosine goes from the base learning rate to FinalFactor times it along half a cosine.
	DecayCosine
	// DecayLinear goes from the base learning rate to FinalFactor times it along a straight line.
	DecayLinear
)

// String returns the decay's name.
func (d Decay) String() string {
	switch d {
	case DecayNone:
		return "none"
	case DecayCosine:
		return "cosine"
	case DecayLinear:
		return "linear"
	}
	return fmt.Sprintf("Decay(%d)", int(d))
}

// Schedule multiplies every optimizer's learning rate by a factor that depends on the
// optimizer's own step counter k = 1, 2, ... The zero value is a constant learning rate.
//
// The factor is: k/WarmupSteps during the warm-up (k <= WarmupSteps), then, with
// t = min(1, (k-WarmupSteps)/DecaySteps):
//
//	DecayNone:   1
//	DecayCosine: FinalFactor + (1-FinalFactor) * (1+cos(pi*t))/2
//	DecayLinear: 1 - (1-FinalFactor) * t
//
// After WarmupSteps+DecaySteps steps the factor stays at FinalFactor.
type Schedule struct {
	// WarmupSteps is the length of the linear warm-up from lr/WarmupSteps to lr, in
	// [0, MaxSteps]; 0 means none.
	WarmupSteps int
	// Decay selects the decay after the warm-up.
	Decay Decay
	// DecaySteps is the length of the decay, at most MaxSteps; it must be >= 1 when Decay
	// is not DecayNone, and 0 otherwise.
	DecaySteps int
	// FinalFactor is the factor reached at the end of the decay, in [0, 1].
	FinalFactor float64
}

// Validate returns an error naming the field that is out of range.
func (s Schedule) Validate() error {
	switch {
	case s.WarmupSteps < 0 || s.WarmupSteps > MaxSteps:
		return fmt.Errorf("Schedule.WarmupSteps=%d is out of range: it must be in [0, %d]", s.WarmupSteps, MaxSteps)
	case s.DecaySteps < 0 || s.DecaySteps > MaxSteps:
		return fmt.Errorf("Schedule.DecaySteps=%d is out of range: it must be in [0, %d] (>= 1 with a Decay)", s.DecaySteps, MaxSteps)
	case s.Decay < DecayNone || s.Decay > DecayLinear:
		return fmt.Errorf("Schedule.Decay=%d is invalid: it must be DecayNone, DecayCosine or DecayLinear", int(s.Decay))
	case s.Decay != DecayNone && s.DecaySteps < 1:
		return fmt.Errorf("Schedule.DecaySteps=%d is out of range: it must be >= 1 with Decay=%s", s.DecaySteps, s.Decay)
	case s.Decay == DecayNone && s.DecaySteps != 0:
		return fmt.Errorf("Schedule.DecaySteps=%d is set but Decay is DecayNone: set Decay or leave DecaySteps 0", s.DecaySteps)
	case !finite(s.FinalFactor) || s.FinalFactor < 0 || s.FinalFactor > 1:
		return fmt.Errorf("Schedule.FinalFactor=%g is out of range: it must be in [0, 1]", s.FinalFactor)
	}
	return nil
}

// Factor returns the learning-rate factor at step k (k >= 1), computed on the host;
// it is what the optimizers compute in the graph, useful for plotting a schedule.
func (s Schedule) Factor(k int) float64 {
	kf := float64(k)
	if s.WarmupSteps > 0 && k <= s.WarmupSteps {
		return kf / float64(s.WarmupSteps)
	}
	if s.Decay == DecayNone {
		return 1
	}
	t := math.Min(1, math.Max(0, (kf-float64(s.WarmupSteps))/float64(s.DecaySteps)))
	if s.Decay == DecayCosine {
		return s.FinalFactor + (1-s.FinalFactor)*0.5*(1+math.Cos(math.Pi*t))
	}
	return 1 - (1-s.FinalFactor)*t
}

// isConstant reports whether the schedule is the constant factor 1.
func (s Schedule) isConstant() bool { return s.WarmupSteps == 0 && s.Decay == DecayNone }

// factorGraph builds the factor for the step counter k (a scalar of dtype).
func (s Schedule) factorGraph(k *Node, dtype dtypes.DType) *Node {
	g := k.Graph()
	one := Scalar(g, dtype, 1.0)
	after := one
	if s.Decay != DecayNone {
		t := DivScalar(AddScalar(k, -float64(s.WarmupSteps)), float64(s.DecaySteps))
		t = MinScalar(MaxScalar(t, 0.0), 1.0)
		final := Scalar(g, dtype, s.FinalFactor)
		if s.Decay == DecayCosine {
			cos := MulScalar(AddScalar(Cos(MulScalar(t, math.Pi)), 1.0), 0.5)
			after = Add(final, MulScalar(cos, 1-s.FinalFactor))
		} else {
			after = Sub(one, MulScalar(t, 1-s.FinalFactor))
		}
	}
	if s.WarmupSteps == 0 {
		return after
	}
	warm := DivScalar(k, float64(s.WarmupSteps))
	return Where(LessOrEqual(k, Scalar(g, dtype, float64(s.WarmupSteps))), warm, after)
}
