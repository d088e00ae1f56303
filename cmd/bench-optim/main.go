// Command bench-optim measures the time per training step of the optimizers of mlx/optim on
// an MLP of about 1M parameters (784-1024-256-10, batch 256, float32), on the backend that
// mlx.Backend chooses (XLA CPU by default; set GOMLX_BACKEND=go for the pure-Go backend).
//
// All optimizers are measured in the same run, interleaved round by round (each round times
// one step of every optimizer, in turn), so that drifts of the machine affect them alike.
// It prints the median and minimum step time of each, and their ratios to Adam's. Two extra
// rows (-breakdown) time the gradient alone and the gradient plus one Hessian-vector product,
// without any update: AdaHessian's cost over Adam's is that product (a second backward pass
// through the backward pass), about 1.9x the gradient's cost.
//
//	go run ./cmd/bench-optim                 # default: 60 rounds, about 40 s on 2 cores
//	go run ./cmd/bench-optim -rounds 40 -batch 128
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"

	"github.com/goptlab/goptlab/cmd/internal/benchtime"
	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
)

var (
	flagRounds    = flag.Int("rounds", 60, "number of timed rounds (one step of each optimizer per round)")
	flagWarmup    = flag.Int("warmup", 3, "untimed steps of each optimizer after compilation")
	flagBatch     = flag.Int("batch", 256, "batch size")
	flagHidden    = flag.Int("hidden", 1024, "width of the first hidden layer (the second is a quarter of it)")
	flagBreakdown = flag.Bool("breakdown", true, "also time the gradient alone and the gradient plus one Hessian-vector product, without updates, to explain AdaHessian's cost")
	flagOnly      = flag.String("only", "", "comma-free substring: measure only optimizers whose name contains it (Adam always runs)")
)

const inputDim, outputDim = 784, 10

// mlpLoss is the benchmark model: dense-relu-dense-relu-dense, MSE against the labels.
func mlpLoss(hidden int) train.LossFn {
	dims := []int{inputDim, hidden, hidden / 4, outputDim}
	return func(scope *model.Scope, inputs, labels []*Node) *Node {
		x := inputs[0]
		g := x.Graph()
		s := scope.WithInitializer(initializer.XavierUniformFn(scope))
		for i := 0; i+1 < len(dims); i++ {
			w := s.VariableWithShape(fmt.Sprintf("w%d", i), shapes.Make(dtypes.Float32, dims[i], dims[i+1])).NodeValue(g)
			b := s.WithInitializer(initializer.Zero).VariableWithShape(fmt.Sprintf("b%d", i), shapes.Make(dtypes.Float32, dims[i+1])).NodeValue(g)
			x = Add(Dot(x, w).Product(), ExpandAxes(b, 0))
			if i+2 < len(dims) {
				x = Max(x, ZerosLike(x))
			}
		}
		return ReduceAllMean(Square(Sub(x, labels[0])))
	}
}

type entry struct {
	name    string
	stepper train.Stepper
	exec    *model.Exec
	times   []time.Duration
}

// firstOrder wraps an optimizer (or its construction error) as a train.Stepper.
func firstOrder[O optim.Optimizer](label string) func(o O, err error) (train.Stepper, error) {
	return func(o O, err error) (train.Stepper, error) {
		if err != nil {
			return nil, err
		}
		return train.FirstOrder(o, label), nil
	}
}

func candidates() ([]*entry, error) {
	sgd := optim.DefaultSGD()
	sgd.Momentum = 0.9
	clip := optim.DefaultAdan()
	clip.ScopeName, clip.MaxGradNorm, clip.WeightDecay = "adan_clip", 1, 0.02
	ah2 := optim.DefaultAdaHessian()
	ah2.ScopeName, ah2.Probes = "adahessian2", 2
	builders := []struct {
		name  string
		build func() (train.Stepper, error)
	}{
		{"adam", func() (train.Stepper, error) {
			return firstOrder[*optim.Adam]("adam")(optim.NewAdam(optim.DefaultAdam()))
		}},
		{"adan", func() (train.Stepper, error) {
			return firstOrder[*optim.Adan]("adan")(optim.NewAdan(optim.DefaultAdan()))
		}},
		{"adan+clip+wd", func() (train.Stepper, error) { return firstOrder[*optim.Adan]("adan+clip+wd")(optim.NewAdan(clip)) }},
		{"adahessian", func() (train.Stepper, error) {
			return firstOrder[*optim.AdaHessian]("adahessian")(optim.NewAdaHessian(optim.DefaultAdaHessian()))
		}},
		{"adahessian/2pr", func() (train.Stepper, error) {
			return firstOrder[*optim.AdaHessian]("adahessian/2pr")(optim.NewAdaHessian(ah2))
		}},
		{"sgd+momentum", func() (train.Stepper, error) { return firstOrder[*optim.SGD]("sgd+momentum")(optim.NewSGD(sgd)) }},
		{"adamw", func() (train.Stepper, error) {
			return firstOrder[*optim.Adam]("adamw")(optim.NewAdam(optim.DefaultAdamW()))
		}},
		{"amsgrad", func() (train.Stepper, error) {
			return firstOrder[*optim.Adam]("amsgrad")(optim.NewAdam(optim.DefaultAMSGrad()))
		}},
		{"adabelief", func() (train.Stepper, error) {
			return firstOrder[*optim.AdaBelief]("adabelief")(optim.NewAdaBelief(optim.DefaultAdaBelief()))
		}},
		{"lion", func() (train.Stepper, error) {
			return firstOrder[*optim.Lion]("lion")(optim.NewLion(optim.DefaultLion()))
		}},
		{"sam(adam)", func() (train.Stepper, error) {
			base, err := optim.NewAdam(optim.DefaultAdam())
			if err != nil {
				return nil, err
			}
			return optim.NewSAM(base, optim.DefaultSAM())
		}},
	}
	if *flagBreakdown {
		builders = append(builders,
			struct {
				name  string
				build func() (train.Stepper, error)
			}{"(grad only)", func() (train.Stepper, error) { return probeCost{hvp: false}, nil }},
			struct {
				name  string
				build func() (train.Stepper, error)
			}{"(grad+Hz only)", func() (train.Stepper, error) { return probeCost{hvp: true}, nil }})
	}
	var list []*entry
	for _, b := range builders {
		s, err := b.build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.name, err)
		}
		list = append(list, &entry{name: b.name, stepper: s})
	}
	return list, nil
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-optim:", err)
		os.Exit(1)
	}
}

func run() error {
	backend, err := mlx.Backend()
	if err != nil {
		return err
	}
	list, err := candidates()
	if err != nil {
		return err
	}
	x := tensors.FromShape(shapes.Make(dtypes.Float32, *flagBatch, inputDim))
	y := tensors.FromShape(shapes.Make(dtypes.Float32, *flagBatch, outputDim))
	fillRandom(x, 1)
	fillRandom(y, 2)
	lossFn := mlpLoss(*flagHidden)
	var active []*entry
	params := 0
	for _, e := range list {
		if *flagOnly != "" && e.name != "adam" && !strings.Contains(e.name, *flagOnly) {
			continue
		}
		store := model.NewStore()
		store.SetParam(model.ParamInitialSeed, int64(7))
		if err := store.SetRNGStateFromSeed(7); err != nil {
			return err
		}
		e.exec, err = newExec(backend, store, e.stepper, lossFn)
		if err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		start := time.Now()
		for range *flagWarmup + 1 {
			if err := step(e.exec, x, y); err != nil {
				return fmt.Errorf("%s: %w", e.name, err)
			}
		}
		if params == 0 {
			for v := range store.IterVariables() {
				if v.Trainable {
					params += v.Shape().Size()
				}
			}
		}
		fmt.Printf("compiled %-14s and ran %d warm-up steps in %s\n", e.name, *flagWarmup+1, time.Since(start).Round(time.Millisecond))
		active = append(active, e)
	}
	fns := make([]func() error, len(active))
	for i, e := range active {
		fns[i] = func() error {
			if err := step(e.exec, x, y); err != nil {
				return fmt.Errorf("%s: %w", e.name, err)
			}
			return nil
		}
	}
	times, err := benchtime.Interleaved(*flagRounds, fns...)
	if err != nil {
		return err
	}
	for i, e := range active {
		e.times = times[i]
	}
	choice, _ := mlx.Chosen()
	fmt.Printf("\nMLP %d-%d-%d-%d (%d parameters), batch %d, float32, backend %s, %d rounds\n\n",
		inputDim, *flagHidden, *flagHidden/4, outputDim, params, *flagBatch, choice.Kind, *flagRounds)
	adam, adamMin := benchtime.Median(active[0].times), slices.Min(active[0].times)
	fmt.Printf("%-14s %10s %10s %10s %14s %11s %11s\n", "optimizer", "median", "min", "max",
		"median/Adam's", "min/Adam's", "loss evals")
	for _, e := range active {
		m, lo := benchtime.Median(e.times), slices.Min(e.times)
		fmt.Printf("%-14s %10s %10s %10s %13.2fx %10.2fx %11d\n", e.name, m.Round(10*time.Microsecond),
			lo.Round(10*time.Microsecond), slices.Max(e.times).Round(10*time.Microsecond),
			float64(m)/float64(adam), float64(lo)/float64(adamMin), e.stepper.LossEvalsPerStep())
	}
	fmt.Println("\nOn a shared or busy machine the medians are noisy; the minima are the least disturbed measure.")
	return nil
}

// probeCost is a pseudo-optimizer for the breakdown rows: it computes the gradient (and,
// with hvp, one Rademacher Hessian-vector product, as AdaHessian does) and updates nothing.
type probeCost struct{ hvp bool }

// Name implements train.Stepper.
func (p probeCost) Name() string { return "probe" }

// LossEvalsPerStep implements train.Stepper.
func (p probeCost) LossEvalsPerStep() int { return 1 }

// BuildStep implements train.Stepper: the gradient (and Hz), no update.
func (p probeCost) BuildStep(scope *model.Scope, lossFn train.LossFn, inputs, labels []*Node) *Node {
	loss := lossFn(scope, inputs, labels)
	grads := scope.BuildTrainableVariablesGradientsGraph(loss)
	out := loss
	if p.hvp {
		grads = optim.HutchinsonDiagonal(scope, grads, 1, false)
	}
	// Consume every result so that nothing is pruned from the graph.
	for _, g := range grads {
		out = Add(out, MulScalar(ReduceAllSum(g), 0))
	}
	return out
}

func newExec(backend compute.Backend, store *model.Store, s train.Stepper, lossFn train.LossFn) (*model.Exec, error) {
	return model.NewExec(backend, store, func(scope *model.Scope, x, y *Node) *Node {
		return s.BuildStep(scope, lossFn, []*Node{x}, []*Node{y})
	})
}

// step runs one training step and waits for its loss (which waits for the computation).
func step(exec *model.Exec, x, y *tensors.Tensor) error {
	out, err := exec.Exec(x, y)
	if err != nil {
		return err
	}
	_, err = out[0].ValueSafe()
	return err
}

// fillRandom fills a float32 tensor with reproducible values in [-1, 1).
func fillRandom(t *tensors.Tensor, seed uint32) {
	state := seed*2654435761 + 1
	tensors.MustMutableFlatData(t, func(flat []float32) {
		for i := range flat {
			state ^= state << 13
			state ^= state >> 17
			state ^= state << 5
			flat[i] = float32(state)/float32(1<<32)*2 - 1
		}
	})
}
