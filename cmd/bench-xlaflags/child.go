package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/core/tensors/images"
	"github.com/gomlx/gomlx/ml/layers"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
)

// Case names. The CNN is cmd/bench-peers' (conv3x3 32 -> pool -> conv3x3 64 -> pool ->
// dense 10, 28x28x1, batch 64, Adam) in three lowerings of its convolutions; the MLP is
// bench-peers' 784-1024-256-10 (batch 256, Adam); gemm is a float32 1024^3 product.
const (
	caseCNN     = "cnn"         // mlx/models.CNN: layers.Convolution, channels last (NHWC, HWIO kernels)
	caseCNNNCHW = "cnn-nchw"    // the same network channels first (NCHW, OIHW kernels)
	caseCNNCol  = "cnn-im2col"  // channels last, each convolution as 9 shifted slices and one matrix product
	caseCNNPool = "cnn-rpool"   // channels last, 2x2 max pooling as a reshape and ReduceMax (no select-and-scatter in the gradient)
	caseCNNArg  = "cnn-argpool" // channels last, 2x2 max pooling as the window's element at its ArgMax (gradient to that element only)
	caseMLP     = "mlp"
	caseGEMM    = "gemm"
)

// caseInfo describes each case: the steps of one timed block, and the steps whose results
// (from the initial state) are compared across flag sets, which are also the warm-up.
var caseInfo = map[string]struct {
	block, quickBlock int
	check, quickCheck int
}{
	caseCNN:     {4, 1, 8, 2},
	caseCNNNCHW: {4, 1, 8, 2},
	caseCNNCol:  {4, 1, 8, 2},
	caseCNNPool: {4, 1, 8, 2},
	caseCNNArg:  {4, 1, 8, 2},
	caseMLP:     {10, 2, 10, 2},
	caseGEMM:    {5, 2, 3, 2},
}

// gemmN is the GEMM's side.
const gemmN = 1024

// benchCase is one compiled case in a child.
type benchCase interface {
	// run runs n steps and returns their time and the last step's result ("f32:"+hex bits
	// of the loss, or "f64:"+hex bits of the product's sum).
	run(n int) (time.Duration, string, error)
	params() int
	close()
}

// childRequest is what the parent sends a child, one JSON object a line.
type childRequest struct {
	Op    string `json:"op"` // "run" or "quit"
	Case  string `json:"case,omitempty"`
	Steps int    `json:"steps,omitempty"`
}

// childAnswer is a child's answer: to its start (Hello) and to each run.
type childAnswer struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Hello: the backend line, $XLA_FLAGS as XLA read them, and each case's set-up
	// (compilation and warm-up) seconds, parameter count and the results of its first
	// steps from the initial state (the warm-up).
	Backend    string              `json:"backend,omitempty"`
	XLAFlags   string              `json:"xla_flags,omitempty"`
	Setup      map[string]float64  `json:"setup,omitempty"`
	Params     map[string]int      `json:"params,omitempty"`
	Trajectory map[string][]string `json:"trajectory,omitempty"`
	// Run: the block's seconds and last result.
	Seconds float64 `json:"seconds,omitempty"`
	Result  string  `json:"result,omitempty"`
}

// runChild is the child process: it builds the cases, runs check[case] steps of each
// (the results compared across flag sets, and the warm-up), says hello, then runs blocks
// as asked.
func runChild(caseNames []string, check map[string]int, in io.Reader, out io.Writer) error {
	enc := json.NewEncoder(out)
	fail := func(err error) error {
		_ = enc.Encode(childAnswer{Error: err.Error()})
		return err
	}
	mlx.Output = os.Stderr // stdout carries the protocol
	backend, err := mlx.Backend()
	if err != nil {
		return fail(err)
	}
	choice, _ := mlx.Chosen()
	if choice.Kind != mlx.KindXLACPU {
		return fail(fmt.Errorf("running on %s, not XLA CPU: %s", choice.Kind, choice.Reason))
	}
	hello := childAnswer{OK: true, Backend: choice.String(), XLAFlags: os.Getenv("XLA_FLAGS"),
		Setup: map[string]float64{}, Params: map[string]int{}, Trajectory: map[string][]string{}}
	cases := map[string]benchCase{}
	defer func() {
		for _, c := range cases {
			c.close()
		}
	}()
	for _, name := range caseNames {
		start := time.Now()
		c, err := newCase(backend, name)
		if err != nil {
			return fail(fmt.Errorf("case %s: %w", name, err))
		}
		cases[name] = c
		for i := range max(check[name], 1) {
			_, res, err := c.run(1)
			if err != nil {
				return fail(fmt.Errorf("case %s: step %d: %w", name, i+1, err))
			}
			hello.Trajectory[name] = append(hello.Trajectory[name], res)
		}
		hello.Setup[name] = time.Since(start).Seconds()
		hello.Params[name] = c.params()
	}
	if err := enc.Encode(hello); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		var req childRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			return fail(fmt.Errorf("bad request %q: %w", sc.Text(), err))
		}
		switch req.Op {
		case "quit":
			return nil
		case "run":
			c, ok := cases[req.Case]
			if !ok || req.Steps < 1 {
				return fail(fmt.Errorf("bad run request %q", sc.Text()))
			}
			d, res, err := c.run(req.Steps)
			if err != nil {
				return fail(fmt.Errorf("case %s: %w", req.Case, err))
			}
			if err := enc.Encode(childAnswer{OK: true, Seconds: d.Seconds(), Result: res}); err != nil {
				return err
			}
		default:
			return fail(fmt.Errorf("unknown op %q", req.Op))
		}
	}
	return sc.Err()
}

// newCase builds and compiles a case on backend.
func newCase(backend compute.Backend, name string) (benchCase, error) {
	switch name {
	case caseCNN, caseCNNNCHW, caseCNNCol, caseCNNPool, caseCNNArg:
		fn := models.CNNConfig{Channels: cnnChannels, Outputs: 10}.Fn()
		if name == caseCNNNCHW {
			fn = cnnChannelsFirst
		} else if name == caseCNNCol {
			fn = cnnIm2col
		} else if name == caseCNNPool {
			fn = cnnPooled(maxPool2x2Reduce)
		} else if name == caseCNNArg {
			fn = cnnPooled(maxPool2x2ArgMax)
		}
		return newStepCase(backend, models.Classifier(fn), []int{64, 28, 28, 1}, 10)
	case caseMLP:
		fn := models.MLPConfig{Hidden: []int{1024, 256}, Outputs: 10}.Fn()
		return newStepCase(backend, models.Classifier(fn), []int{256, 784}, 10)
	case caseGEMM:
		return newGEMMCase(backend, gemmN)
	}
	return nil, fmt.Errorf("unknown case %q", name)
}

// cnnChannels are the CNN's convolution widths.
var cnnChannels = []int{32, 64}

// cnnChannelsFirst is mlx/models' CNN with channels first: images [batch, 1, 28, 28],
// convolution kernels [out, in, 3, 3] and pooling over the last two axes.
func cnnChannelsFirst(scope *model.Scope, x *Node) *Node {
	d := x.Shape().Dimensions
	// One channel: NHWC to NCHW is a reshape.
	x = Reshape(x, d[0], d[3], d[1], d[2])
	for i, ch := range cnnChannels {
		x = layers.Convolution(scope.In("conv_%d", i), x).Channels(ch).KernelSize(3).PadSame().
			ChannelsAxis(images.ChannelsFirst).Done()
		x = activation.Relu(x)
		x = MaxPool(x).ChannelsAxis(images.ChannelsFirst).Window(2).Done()
	}
	x = Reshape(x, d[0], -1)
	return models.MLP(scope.In("head"), x, models.MLPConfig{Outputs: 10})
}

// cnnPooled is mlx/models' CNN (same variables, same initial values) with its 2x2 max
// pooling done by pool instead of graph.MaxPool. GoMLX differentiates MaxPool with a
// select-and-scatter, which XLA CPU runs as an arg-max reduce-window and a scatter.
func cnnPooled(pool func(x *Node) *Node) models.Fn {
	return func(scope *model.Scope, x *Node) *Node {
		for i, ch := range cnnChannels {
			x = layers.Convolution(scope.In("conv_%d", i), x).Channels(ch).KernelSize(3).PadSame().Done()
			x = pool(activation.Relu(x))
		}
		x = Reshape(x, x.Shape().Dimensions[0], -1)
		return models.MLP(scope.In("head"), x, models.MLPConfig{Outputs: 10})
	}
}

// maxPool2x2Reduce pools x [batch, h, w, channels] as a reshape to
// [batch, h/2, 2, w/2, 2, channels] and a ReduceMax over the two window axes. Its gradient
// (GoMLX's ReduceMax rule) goes to every element equal to the window's maximum: the same
// as MaxPool's where the maximum is unique, but k times the gradient where k elements tie
// (after a ReLU, ties at zero are harmless; ties at a positive value, such as a constant
// background, are not).
func maxPool2x2Reduce(x *Node) *Node {
	d := x.Shape().Dimensions
	return ReduceMax(Reshape(x, d[0], d[1]/2, 2, d[2]/2, 2, d[3]), 2, 4)
}

// maxPool2x2ArgMax pools x [batch, h, w, channels] by picking, in each 2x2 window (its
// 4 elements in row-major order), the element at the window's ArgMax (the first maximum):
// the sum of the window times a one-hot mask held constant. The forward values are
// MaxPool's exactly (for finite inputs: an infinite element outside the mask would give
// 0*Inf = NaN), and the gradient goes to that one element, as MaxPool's select-and-scatter
// (which keeps the first of tied maxima) does, through elementwise operations only.
func maxPool2x2ArgMax(x *Node) *Node {
	d := x.Shape().Dimensions
	b, h, w, c := d[0], d[1]/2, d[2]/2, d[3]
	win := Reshape(TransposeAllAxes(Reshape(x, b, h, 2, w, 2, c), 0, 1, 3, 5, 2, 4), b, h, w, c, 4)
	mask := StopGradient(OneHot(ArgMax(win, 4), 4, x.DType()))
	return ReduceSum(Mul(win, mask), 4)
}

// cnnIm2col is mlx/models' CNN (same variables, same initial values) with each 3x3
// "same" convolution written as im2col: the 9 shifted copies of the padded image
// concatenated along the channels and multiplied by the kernel reshaped to [9*in, out].
func cnnIm2col(scope *model.Scope, x *Node) *Node {
	for i, ch := range cnnChannels {
		x = conv3x3Im2col(scope.In("conv_%d", i).In("conv"), x, ch)
		x = activation.Relu(x)
		x = MaxPool(x).Window(2).Done()
	}
	x = Reshape(x, x.Shape().Dimensions[0], -1)
	return models.MLP(scope.In("head"), x, models.MLPConfig{Outputs: 10})
}

// conv3x3Im2col is layers.Convolution(...).KernelSize(3).PadSame() on x [batch, h, w, in],
// with its variables (weights [3, 3, in, out], biases [out]), as one matrix product.
func conv3x3Im2col(scope *model.Scope, x *Node, out int) *Node {
	g := x.Graph()
	d := x.Shape().Dimensions
	b, h, w, in := d[0], d[1], d[2], d[3]
	kernel := scope.VariableWithShape("weights", shapes.Make(x.DType(), 3, 3, in, out)).NodeValue(g)
	bias := scope.VariableWithShape("biases", shapes.Make(x.DType(), out)).NodeValue(g)
	padded := Pad(x, ScalarZero(g, x.DType()),
		compute.PadAxis{}, compute.PadAxis{Start: 1, End: 1}, compute.PadAxis{Start: 1, End: 1}, compute.PadAxis{})
	patches := make([]*Node, 0, 9)
	for dy := range 3 {
		for dx := range 3 {
			patches = append(patches, Slice(padded, AxisRange(), AxisRange(dy, dy+h), AxisRange(dx, dx+w), AxisRange()))
		}
	}
	cols := Reshape(Concatenate(patches, 3), b*h*w, 9*in)
	y := MatMul(cols, Reshape(kernel, 9*in, out))
	y = Add(y, BroadcastToDims(Reshape(bias, 1, out), b*h*w, out))
	return Reshape(y, b, h, w, out)
}

// stepCase is the bare compiled Adam step of a model (as bench-peers' bareExec): the
// stepper's graph run by model.Exec on a batch transferred once, the loss read back.
type stepCase struct {
	exec  *model.Exec
	store *model.Store
	x, y  *tensors.Tensor
}

func newStepCase(backend compute.Backend, lossFn train.LossFn, inDims []int, classes int) (c *stepCase, err error) {
	cfg := optim.DefaultAdam()
	cfg.LR = 1e-3
	opt, err := optim.NewAdam(cfg)
	if err != nil {
		return nil, err
	}
	stepper := train.FirstOrder(opt, "adam")
	// Inputs uniform in [-1, 1), labels uniform in [0, classes), as bench-peers' data.
	rng := rand.New(rand.NewPCG(1, 1))
	size := 1
	for _, d := range inDims {
		size *= d
	}
	xs := make([]float32, size)
	for i := range xs {
		xs[i] = rng.Float32()*2 - 1
	}
	ys := make([]int32, inDims[0])
	for i := range ys {
		ys[i] = int32(rng.IntN(classes))
	}
	c = &stepCase{store: model.NewStore(),
		x: tensors.FromFlatDataAndDimensions(xs, inDims...), y: tensors.FromFlatDataAndDimensions(ys, inDims[0], 1)}
	if err := train.SeedStore(c.store, 7); err != nil {
		return nil, err
	}
	err = catch(func() error {
		var err error
		c.exec, err = model.NewExec(backend, c.store, func(scope *model.Scope, x, y *Node) *Node {
			c.store.SetTraining(x.Graph(), true)
			return stepper.BuildStep(scope, lossFn, []*Node{x}, []*Node{y})
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("compiling the step: %w", err)
	}
	return c, nil
}

func (c *stepCase) run(n int) (time.Duration, string, error) {
	var loss float32
	start := time.Now()
	err := catch(func() error {
		for range n {
			out, err := c.exec.Exec(c.x, c.y)
			if err != nil {
				return err
			}
			v, err := out[0].ValueSafe()
			if err != nil {
				return err
			}
			var ok bool
			if loss, ok = v.(float32); !ok {
				return fmt.Errorf("the step returned a %T, want a float32 loss", v)
			}
			_ = out[0].FinalizeAll()
		}
		return nil
	})
	return time.Since(start), fmt.Sprintf("f32:%08x", math.Float32bits(loss)), err
}

func (c *stepCase) params() int {
	n := 0
	for v := range c.store.IterVariables() {
		if v.Trainable {
			n += v.Shape().Size()
		}
	}
	return n
}

func (c *stepCase) close() { c.exec.Finalize() }

// gemmCase is a float32 n x n product read back to the host (as bench-peers' "matrix read
// back" figure), on fixed normal random matrices.
type gemmCase struct {
	exec *Exec
	a, b *tensors.Tensor
	n    int
}

func newGEMMCase(backend compute.Backend, n int) (*gemmCase, error) {
	a := tensors.FromShape(shapes.Make(dtypes.Float32, n, n))
	b := tensors.FromShape(shapes.Make(dtypes.Float32, n, n))
	rng := rand.New(rand.NewPCG(3, 4))
	for _, t := range []*tensors.Tensor{a, b} {
		tensors.MustMutableFlatData(t, func(flat []float32) {
			for i := range flat {
				flat[i] = float32(rng.NormFloat64())
			}
		})
	}
	c := &gemmCase{a: a, b: b, n: n}
	err := catch(func() error {
		var err error
		c.exec, err = NewExec(backend, func(a, b *Node) *Node { return Dot(a, b).Product() })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("compiling the product: %w", err)
	}
	return c, nil
}

func (c *gemmCase) run(n int) (time.Duration, string, error) {
	var total time.Duration
	var sum float64
	err := catch(func() error {
		for i := range n {
			start := time.Now()
			out, err := c.exec.Exec(c.a, c.b)
			if err != nil {
				return err
			}
			last := i == n-1
			err = tensors.ConstFlatData(out[0], func(flat []float32) {
				total += time.Since(start)
				if last {
					sum = 0
					for _, v := range flat {
						sum += float64(v)
					}
				}
			})
			_ = out[0].FinalizeAll()
			if err != nil {
				return err
			}
		}
		return nil
	})
	return total, fmt.Sprintf("f64:%016x", math.Float64bits(sum)), err
}

func (c *gemmCase) params() int { return 2 * c.n * c.n }

func (c *gemmCase) close() { c.exec.Finalize() }

// catch runs fn and returns its error, or the panic it raised (GoMLX's graph building
// panics) as an error.
func catch(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("%w", e)
			} else {
				err = fmt.Errorf("%v", r)
			}
		}
	}()
	return fn()
}
