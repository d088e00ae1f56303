package sweep

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
)

// Params holds hyperparameters by name, e.g. {"lr": 1e-3, "beta2": 0.99}. Boolean settings
// take 0 or 1, integer ones whole numbers. A run's Params are recorded on its history
// (history.History.Params).
type Params map[string]float64

// String returns the parameters sorted by name, e.g. "beta2=0.99 lr=0.001".
func (p Params) String() string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(p)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%g", k, p[k])
	}
	return b.String()
}

// Clone returns a copy of p (nil for nil).
func (p Params) Clone() Params { return maps.Clone(p) }

// setter applies one named hyperparameter to an optimizer's config.
type setter func(v float64) error

func float(dst *float64) setter { return func(v float64) error { *dst = v; return nil } }

func boolean(dst *bool) setter {
	return func(v float64) error {
		if v != 0 && v != 1 {
			return fmt.Errorf("must be 0 or 1 (a boolean), got %g", v)
		}
		*dst = v == 1
		return nil
	}
}

func integer(dst *int) setter {
	return func(v float64) error {
		if v != math.Trunc(v) || math.Abs(v) > 1<<31 {
			return fmt.Errorf("must be a whole number, got %g", v)
		}
		*dst = int(v)
		return nil
	}
}

// spec describes one optimizer: its hyperparameters (with the config they set) and how to
// build it once they are set.
type spec struct {
	setup func(scopeName string) (params map[string]setter, build func() (optim.Optimizer, error))
}

// common returns the setters every optimizer shares.
func common(c *optim.Common, scopeName string) map[string]setter {
	if scopeName != "" {
		c.ScopeName = scopeName
	}
	return map[string]setter{"lr": float(&c.LR)}
}

func with(m map[string]setter, more map[string]setter) map[string]setter {
	maps.Copy(m, more)
	return m
}

func adamLike(defaults func() optim.AdamConfig) func(string) (map[string]setter, func() (optim.Optimizer, error)) {
	return func(scope string) (map[string]setter, func() (optim.Optimizer, error)) {
		c := defaults()
		return with(common(&c.Common, scope), map[string]setter{
				"beta1": float(&c.Beta1), "beta2": float(&c.Beta2), "eps": float(&c.Eps),
				"weight_decay": float(&c.WeightDecay), "decoupled": boolean(&c.Decoupled), "amsgrad": boolean(&c.AMSGrad),
			}), func() (optim.Optimizer, error) {
				return optim.NewAdam(c)
			}
	}
}

// specs are the optimizers [Optimizer] builds, by name.
var specs = map[string]spec{
	"sgd": {func(scope string) (map[string]setter, func() (optim.Optimizer, error)) {
		c := optim.DefaultSGD()
		c.Momentum, c.Nesterov = 0.9, true
		return with(common(&c.Common, scope), map[string]setter{
				"momentum": float(&c.Momentum), "nesterov": boolean(&c.Nesterov), "weight_decay": float(&c.WeightDecay),
			}), func() (optim.Optimizer, error) {
				return optim.NewSGD(c)
			}
	}},
	"adam":    {adamLike(optim.DefaultAdam)},
	"adamw":   {adamLike(optim.DefaultAdamW)},
	"amsgrad": {adamLike(optim.DefaultAMSGrad)},
	"adan": {func(scope string) (map[string]setter, func() (optim.Optimizer, error)) {
		c := optim.DefaultAdan()
		return with(common(&c.Common, scope), map[string]setter{
				"beta1": float(&c.Beta1), "beta2": float(&c.Beta2), "beta3": float(&c.Beta3), "eps": float(&c.Eps),
				"weight_decay": float(&c.WeightDecay), "no_prox": boolean(&c.NoProx), "max_grad_norm": float(&c.MaxGradNorm),
			}), func() (optim.Optimizer, error) {
				return optim.NewAdan(c)
			}
	}},
	"adabelief": {func(scope string) (map[string]setter, func() (optim.Optimizer, error)) {
		c := optim.DefaultAdaBelief()
		return with(common(&c.Common, scope), map[string]setter{
				"beta1": float(&c.Beta1), "beta2": float(&c.Beta2), "eps": float(&c.Eps),
				"weight_decay": float(&c.WeightDecay), "coupled": boolean(&c.Coupled),
			}), func() (optim.Optimizer, error) {
				return optim.NewAdaBelief(c)
			}
	}},
	"lion": {func(scope string) (map[string]setter, func() (optim.Optimizer, error)) {
		c := optim.DefaultLion()
		return with(common(&c.Common, scope), map[string]setter{
				"beta1": float(&c.Beta1), "beta2": float(&c.Beta2), "weight_decay": float(&c.WeightDecay),
			}), func() (optim.Optimizer, error) {
				return optim.NewLion(c)
			}
	}},
	"adahessian": {func(scope string) (map[string]setter, func() (optim.Optimizer, error)) {
		c := optim.DefaultAdaHessian()
		return with(common(&c.Common, scope), map[string]setter{
				"beta1": float(&c.Beta1), "beta2": float(&c.Beta2), "eps": float(&c.Eps),
				"weight_decay": float(&c.WeightDecay), "hessian_power": float(&c.HessianPower),
				"probes": integer(&c.Probes), "gaussian": boolean(&c.Gaussian), "update_every": integer(&c.UpdateEvery),
			}), func() (optim.Optimizer, error) {
				return optim.NewAdaHessian(c)
			}
	}},
}

// Names returns the names [Optimizer] accepts, sorted.
func Names() []string { return slices.Sorted(maps.Keys(specs)) }

// ParamNames returns the hyperparameters the named optimizer accepts, sorted, or an error
// for an unknown name.
func ParamNames(name string) ([]string, error) {
	s, ok := specs[name]
	if !ok {
		return nil, unknown(name)
	}
	setters, _ := s.setup("")
	return slices.Sorted(maps.Keys(setters)), nil
}

func unknown(name string) error {
	return fmt.Errorf("sweep.Optimizer: unknown optimizer %q: use one of %s", name, strings.Join(Names(), ", "))
}

// Optimizer returns the named optimizer of mlx/optim with its defaults ("sgd": Nesterov
// momentum 0.9) changed by params, e.g. Optimizer("adam", Params{"lr": 1e-3, "beta2": 0.99}).
// Names are those of [Names]; hyperparameters those of [ParamNames]: "lr" for all, and
// the config's fields in snake case ("beta1", "weight_decay", "nesterov", ...). An unknown
// name or hyperparameter, or a value the optimizer's constructor rejects, gives an error
// that names it.
func Optimizer(name string, params Params) (optim.Optimizer, error) {
	return newOptimizer(name, params, "")
}

// newOptimizer is Optimizer with the optimizer's state kept under the scope scopeName
// ("" keeps the default).
func newOptimizer(name string, params Params, scopeName string) (optim.Optimizer, error) {
	s, ok := specs[name]
	if !ok {
		return nil, unknown(name)
	}
	setters, build := s.setup(scopeName)
	for _, k := range slices.Sorted(maps.Keys(params)) {
		set, ok := setters[k]
		if !ok {
			return nil, fmt.Errorf("sweep.Optimizer(%q): unknown hyperparameter %q: %s accepts %s",
				name, k, name, strings.Join(slices.Sorted(maps.Keys(setters)), ", "))
		}
		if err := set(params[k]); err != nil {
			return nil, fmt.Errorf("sweep.Optimizer(%q): hyperparameter %s: %w", name, k, err)
		}
	}
	opt, err := build()
	if err != nil {
		return nil, fmt.Errorf("sweep.Optimizer(%q, {%s}): %w", name, params, err)
	}
	return opt, nil
}

// Stepper returns [Optimizer](name, params) as a train.Stepper named name.
func Stepper(name string, params Params) (train.Stepper, error) {
	opt, err := Optimizer(name, params)
	if err != nil {
		return nil, err
	}
	return train.FirstOrder(opt, name), nil
}
