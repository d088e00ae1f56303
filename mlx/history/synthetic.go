package history

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// SyntheticConfig describes a made-up training run for [Synthetic]: a loss that decays
// exponentially from Loss0 towards Floor with rate Rate per step, with multiplicative
// log-normal noise of standard deviation Noise, logged every LogEvery steps.
type SyntheticConfig struct {
	Name, Optimizer string
	Seed            int64
	Steps           int     // number of optimizer steps (> 0)
	LogEvery        int     // log one record every LogEvery steps; 0 means 1
	Loss0, Floor    float64 // initial and asymptotic loss (Loss0 > Floor >= 0)
	Rate            float64 // decay rate per step (> 0)
	Noise           float64 // standard deviation of log(loss) noise (>= 0)
	LR              float64 // peak learning rate recorded as metric "lr" (cosine decay); 0 omits it
	EvalsPerStep    int64   // loss evaluations per step; 0 means 1
	SecondsPerStep  float64 // simulated wall time per step; 0 means 1ms
}

// Synthetic returns a deterministic made-up history (the same config gives the same
// records), for demos, documentation and tests of plots: no training needed.
// Besides the loss it records the metrics "lr" (if LR > 0) and "accuracy", which rises
// as the loss falls.
func Synthetic(c SyntheticConfig) (*History, error) {
	switch {
	case c.Steps <= 0:
		return nil, fmt.Errorf("history.Synthetic: Steps = %d, want > 0", c.Steps)
	case c.LogEvery < 0:
		return nil, fmt.Errorf("history.Synthetic: LogEvery = %d, want >= 0", c.LogEvery)
	case !(c.Loss0 > c.Floor) || c.Floor < 0:
		return nil, fmt.Errorf("history.Synthetic: want Loss0 > Floor >= 0, got Loss0=%g Floor=%g", c.Loss0, c.Floor)
	case !(c.Rate > 0):
		return nil, fmt.Errorf("history.Synthetic: Rate = %g, want > 0", c.Rate)
	case !(c.Noise >= 0):
		return nil, fmt.Errorf("history.Synthetic: Noise = %g, want >= 0", c.Noise)
	case c.EvalsPerStep < 0 || c.SecondsPerStep < 0 || c.LR < 0:
		return nil, fmt.Errorf("history.Synthetic: EvalsPerStep, SecondsPerStep and LR must be >= 0")
	}
	every := max(c.LogEvery, 1)
	evals := c.EvalsPerStep
	if evals == 0 {
		evals = 1
	}
	dt := c.SecondsPerStep
	if dt == 0 {
		dt = 1e-3
	}
	rng := rand.New(rand.NewPCG(uint64(c.Seed), 0x9e3779b97f4a7c15))
	h := New(c.Name, c.Optimizer, c.Seed)
	t := 0.0
	for step := 1; step <= c.Steps; step++ {
		t += dt * (1 + 0.1*rng.Float64()) // jittered step time
		noise := math.Exp(c.Noise * rng.NormFloat64())
		if step%every != 0 && step != c.Steps {
			continue
		}
		loss := c.Floor + (c.Loss0-c.Floor)*math.Exp(-c.Rate*float64(step))*noise
		m := map[string]float64{"accuracy": 1 - 0.9*(loss-c.Floor)/(c.Loss0-c.Floor+loss-c.Floor)}
		if c.LR > 0 {
			m["lr"] = c.LR * 0.5 * (1 + math.Cos(math.Pi*float64(step-1)/float64(c.Steps)))
		}
		h.Records = append(h.Records, Record{Step: step, Time: t, Evals: int64(step) * evals, Loss: loss, Metrics: m})
	}
	return h, nil
}
