package localsgd

import (
	"fmt"
	"math"

	"github.com/goptlab/goptlab/mlx/internal/validname"
	"github.com/goptlab/goptlab/mlx/train"
)

// StateMode says what happens to the inner optimizer's state (Adam's moments and step
// counter, momentum buffers, ...) at the end of a round.
type StateMode int

const (
	// KeepState keeps one optimizer state per worker across rounds: each worker's
	// moments continue from where its previous round ended (the default; what FedAvg
	// and DiLoCo implementations usually do). Nothing extra crosses the network.
	KeepState StateMode = iota

	// ResetState restarts every worker's optimizer state at the start of each round from
	// the optimizer's initial values (zero moments, step counter 0). Nothing extra
	// crosses the network.
	ResetState

	// AverageState averages the optimizer state over the workers (with the FedAvg
	// weights) at the end of each round, like the model. For Adam this sends the two
	// moments as well as the parameters: DES-LOC's point that syncing all optimizer
	// states "triples communication costs" (see [Communication]).
	AverageState
)

// String returns "keep", "reset" or "average".
func (m StateMode) String() string {
	switch m {
	case KeepState:
		return "keep"
	case ResetState:
		return "reset"
	case AverageState:
		return "average"
	}
	return fmt.Sprintf("StateMode(%d)", int(m))
}

// Outer configures DiLoCo's outer optimizer: SGD, optionally with (Nesterov) momentum,
// applied to the pseudo-gradient delta = theta_global - sum_k w_k theta_k at the end of
// each round, with PyTorch's torch.optim.SGD update (dampening 0):
//
//	buf   = Momentum*buf + delta
//	step  = delta + Momentum*buf   (Nesterov)   or   buf   (heavy ball)
//	theta_global = theta_global - LR*step
//
// LR 1 with Momentum 0 is plain averaging (FedAvg).
type Outer struct {
	// LR is the outer learning rate, > 0 (torchft's DiLoCo uses 0.7).
	LR float64
	// Momentum is in [0, 1) (torchft's DiLoCo uses 0.9).
	Momentum float64
	// Nesterov selects Nesterov momentum (torchft's DiLoCo: true).
	Nesterov bool
}

// DiLoCoOuter returns the outer optimizer of torchft's DiLoCo: Nesterov SGD with
// lr 0.7 and momentum 0.9.
func DiLoCoOuter() *Outer {
	return &Outer{LR: 0.7, Momentum: 0.9, Nesterov: true}
}

// Config configures local SGD. The zero values of the optional fields give FedAvg with
// equal weights, per-worker optimizer state and no proximal term.
type Config struct {
	// Workers is K, the number of simulated workers, in [1, MaxWorkers].
	Workers int
	// LocalSteps is H, the number of local optimizer steps per round, in [1, MaxLocalSteps].
	LocalSteps int
	// ShardSizes are the number of examples of each worker's shard (len Workers, each > 0);
	// the FedAvg weights are ShardSizes[k]/sum(ShardSizes). Nil gives equal weights.
	ShardSizes []int
	// Outer is DiLoCo's outer optimizer; nil averages the workers' models (FedAvg).
	Outer *Outer
	// ProxMu is FedProx's mu >= 0: each worker minimizes its loss plus
	// (mu/2)*||w - w_global||^2 over the trainable variables. 0 disables it.
	ProxMu float64
	// State says what happens to the inner optimizer's state between rounds.
	State StateMode
	// Name labels the method in histories; empty gives e.g. "fedavg(K=8,H=5)". It must be
	// valid UTF-8 without control characters, not only spaces, of at most 1024 bytes.
	Name string
	// WorkerAxis is the axis of the inputs and labels that indexes the K workers: 0 (the
	// default) for [K, batch, ...], 1 for [batch, K, ...] as the batches of a
	// [ShardedDataset] come.
	WorkerAxis int
	// StorePrefix is the Store path under which the workers' copies, the round counter
	// and the outer momentum live; empty gives "/localsgd". Its "/"-separated parts must be
	// non-empty names without control characters or spaces at their ends (at most 1024
	// bytes in all).
	StorePrefix string
}

// Upper bounds of Config's counts.
const (
	// MaxWorkers is the largest Config.Workers: the step graph holds one copy of the
	// model, its optimizer state and its forward and backward passes per worker (they are
	// unrolled), so this many already makes a graph that takes minutes to compile.
	MaxWorkers = 1024
	// MaxLocalSteps is the largest Config.LocalSteps: a round longer than the longest run
	// of train.Run (Config.Steps <= 2^31-1) would never end.
	MaxLocalSteps = math.MaxInt32
)

// validate checks the hyperparameters and returns an error naming the first bad one.
func (c *Config) validate() error {
	if c.Workers < 1 || c.Workers > MaxWorkers {
		return fmt.Errorf("localsgd: Workers (K) = %d: must be >= 1 and <= %d (MaxWorkers)", c.Workers, MaxWorkers)
	}
	if c.LocalSteps < 1 || c.LocalSteps > MaxLocalSteps {
		return fmt.Errorf("localsgd: LocalSteps (H) = %d: must be >= 1 and <= %d (MaxLocalSteps)", c.LocalSteps, MaxLocalSteps)
	}
	if err := validname.Label(c.Name); err != nil {
		return fmt.Errorf("localsgd: Name = %.40q is invalid: %w", c.Name, err)
	}
	if err := validname.ScopePath(c.StorePrefix); err != nil {
		return fmt.Errorf("localsgd: StorePrefix = %.40q is invalid: %w", c.StorePrefix, err)
	}
	if c.ShardSizes != nil {
		if len(c.ShardSizes) != c.Workers {
			return fmt.Errorf("localsgd: ShardSizes has %d entries: must have one per worker (Workers = %d)",
				len(c.ShardSizes), c.Workers)
		}
		for k, n := range c.ShardSizes {
			if n <= 0 {
				return fmt.Errorf("localsgd: ShardSizes[%d] = %d: must be > 0", k, n)
			}
		}
	}
	if !(c.ProxMu >= 0) || math.IsInf(c.ProxMu, 0) {
		return fmt.Errorf("localsgd: ProxMu = %g: must be finite and >= 0", c.ProxMu)
	}
	if c.WorkerAxis != 0 && c.WorkerAxis != 1 {
		return fmt.Errorf("localsgd: WorkerAxis = %d: must be 0 ([K, batch, ...]) or 1 ([batch, K, ...])", c.WorkerAxis)
	}
	if c.State < KeepState || c.State > AverageState {
		return fmt.Errorf("localsgd: State = %d: must be KeepState, ResetState or AverageState", int(c.State))
	}
	if o := c.Outer; o != nil {
		if !(o.LR > 0) || math.IsInf(o.LR, 0) {
			return fmt.Errorf("localsgd: Outer.LR = %g: must be finite and > 0", o.LR)
		}
		if !(o.Momentum >= 0 && o.Momentum < 1) {
			return fmt.Errorf("localsgd: Outer.Momentum = %g: must be in [0, 1)", o.Momentum)
		}
	}
	return nil
}

// weights returns the normalized FedAvg weights.
func (c *Config) weights() []float64 {
	w := make([]float64, c.Workers)
	if c.ShardSizes == nil {
		for k := range w {
			w[k] = 1 / float64(c.Workers)
		}
		return w
	}
	total := 0.0
	for _, n := range c.ShardSizes {
		total += float64(n)
	}
	for k, n := range c.ShardSizes {
		w[k] = float64(n) / total
	}
	return w
}

// defaultName derives the method's label from the configuration.
func (c *Config) defaultName() string {
	method := "fedavg"
	switch {
	case c.Outer != nil && c.ProxMu > 0:
		method = "diloco+prox"
	case c.Outer != nil:
		method = "diloco"
	case c.ProxMu > 0:
		method = "fedprox"
	}
	return fmt.Sprintf("%s(K=%d,H=%d)", method, c.Workers, c.LocalSteps)
}

var _ train.Configured = (*LocalSGD)(nil)

// TrainConfig implements train.Configured: checkpoints record the configuration and the
// inner optimizer, so that a run does not resume one written with other hyperparameters.
func (l *LocalSGD) TrainConfig() any {
	return struct {
		Config Config
		Inner  Inner
	}{l.cfg, l.inner}
}
