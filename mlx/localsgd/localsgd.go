package localsgd

import (
	"fmt"
	"strings"
	"sync"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/goptlab/goptlab/mlx/train"
)

// Inner is the optimizer each worker runs locally: any GoMLX optimizer.Interface that
// can also apply gradients it is given (GoMLX's SGD and Adam have this method, but
// their constructors return the plain interface: [New] checks for it).
type Inner interface {
	optimizer.Interface
	UpdateGraphWithGradients(scope *model.Scope, grads []*graph.Node, lossDType dtypes.DType)
}

// LocalSGD is a [train.Stepper] that runs K workers in one graph: every step makes one
// local step of each worker on its own batch, and every H-th step ends a round (the
// workers' models are averaged, and DiLoCo's outer optimizer applied).
//
// The model's own variables (at the paths the loss function creates them) hold the
// global model theta_global: it changes only at the end of each round, so evaluating the
// model between steps evaluates the last synchronized model. The workers' copies live in
// the Store under Config.StorePrefix (default "/localsgd"), as "worker_<k>" followed by
// the variable's path.
type LocalSGD struct {
	cfg     Config
	inner   Inner
	weights []float64
	prefix  string
	name    string

	mu   sync.Mutex
	comm *Communication
}

// The LocalSGD stepper plugs into mlx/train's loop, which creates the model's variables
// through it.
var (
	_ train.Stepper         = (*LocalSGD)(nil)
	_ train.VariableCreator = (*LocalSGD)(nil)
)

// New returns local SGD with the given inner optimizer, or an error naming the first
// out-of-range hyperparameter (Workers < 1, LocalSteps < 1, ProxMu < 0, Outer.LR <= 0,
// Outer.Momentum outside [0, 1), bad ShardSizes), or saying that the inner optimizer
// cannot apply given gradients.
func New(inner optimizer.Interface, cfg Config) (*LocalSGD, error) {
	if inner == nil {
		return nil, fmt.Errorf("localsgd: the inner optimizer is nil")
	}
	in, ok := inner.(Inner)
	if !ok {
		return nil, fmt.Errorf("localsgd: the inner optimizer %T has no method "+
			"UpdateGraphWithGradients(scope, grads, lossDType): it cannot be used as an inner optimizer", inner)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.ShardSizes = append([]int(nil), cfg.ShardSizes...)
	if cfg.Outer != nil {
		outer := *cfg.Outer
		cfg.Outer = &outer
	}
	prefix := cfg.StorePrefix
	if prefix == "" {
		prefix = "/localsgd"
	}
	prefix = "/" + strings.Trim(prefix, "/")
	if prefix == "/" {
		return nil, fmt.Errorf("localsgd: StorePrefix %q: must name a sub-scope, not the root", cfg.StorePrefix)
	}
	name := cfg.Name
	if name == "" {
		name = cfg.defaultName()
	}
	return &LocalSGD{cfg: cfg, inner: in, weights: cfg.weights(), prefix: prefix, name: name}, nil
}

// Config returns the configuration (a copy: changing it, ShardSizes or Outer included,
// does not change the stepper).
func (l *LocalSGD) Config() Config {
	c := l.cfg
	c.ShardSizes = append([]int(nil), l.cfg.ShardSizes...)
	if l.cfg.Outer != nil {
		outer := *l.cfg.Outer
		c.Outer = &outer
	}
	return c
}

// Weights returns the normalized FedAvg weights of the workers (summing to 1).
func (l *LocalSGD) Weights() []float64 { return append([]float64(nil), l.weights...) }

// LossEvalsPerStep implements [train.Stepper]: one step evaluates the loss once per worker.
func (l *LocalSGD) LossEvalsPerStep() int { return l.cfg.Workers }

// Name implements [train.Stepper].
func (l *LocalSGD) Name() string { return l.name }

// WorkerPath returns the Store path of worker k's copy of the variable at path.
func (l *LocalSGD) WorkerPath(k int, path string) string {
	return fmt.Sprintf("%s/worker_%d%s", l.prefix, k, path)
}

// StepPath returns the Store path of the int64 counter of steps taken (a round ends
// after every LocalSteps of them).
func (l *LocalSGD) StepPath() string { return l.prefix + "/local_step" }

// MomentumPath returns the Store path of DiLoCo's outer momentum buffer for the variable at path.
func (l *LocalSGD) MomentumPath(path string) string { return l.prefix + "/outer_momentum" + path }

// Communication returns what one round sends, as measured on the last graph built by
// BuildStep; an error if no graph was built yet.
func (l *LocalSGD) Communication() (Communication, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.comm == nil {
		return Communication{}, fmt.Errorf("localsgd %s: no training step was built yet: "+
			"the variables to average are known once BuildStep has run", l.name)
	}
	return *l.comm, nil
}

func (l *LocalSGD) setCommunication(c Communication) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.comm = &c
}

// isOwn reports whether a Store path belongs to this stepper's own bookkeeping.
func (l *LocalSGD) isOwn(path string) bool {
	return strings.HasPrefix(path, l.prefix+"/")
}
