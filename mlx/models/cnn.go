package models

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

// CNNConfig describes a small convolutional network for images shaped
// [batch, height, width, channels]: for each entry of Channels, a "same"-padded
// convolution with that many output channels, the activation and a 2x2 max pooling;
// then the features are flattened and go through an MLP with Dense hidden widths and
// Outputs outputs.
type CNNConfig struct {
	// Channels are the output channels of each convolution block (at least one).
	Channels []int
	// Kernel is the size of the square convolution kernels (>= 1); 0 means 3.
	Kernel int
	// Dense are the hidden widths of the classifier head.
	Dense []int
	// Outputs is the number of outputs (e.g. classes).
	Outputs int
	// Activation is as in MLPConfig; empty means "relu".
	Activation string
}

func (c CNNConfig) kernel() int {
	if c.Kernel == 0 {
		return 3
	}
	return c.Kernel
}

// Validate checks the configuration.
func (c CNNConfig) Validate() error {
	if len(c.Channels) == 0 {
		return fmt.Errorf("models.CNNConfig: Channels is empty: at least one convolution block is required")
	}
	for i, ch := range c.Channels {
		if ch < 1 {
			return fmt.Errorf("models.CNNConfig: Channels[%d]=%d out of range: must be >= 1", i, ch)
		}
	}
	if c.Kernel < 0 {
		return fmt.Errorf("models.CNNConfig: Kernel=%d out of range: must be >= 1 (or 0 for the default 3)", c.Kernel)
	}
	head := MLPConfig{Hidden: c.Dense, Outputs: c.Outputs, Activation: c.Activation}
	if err := head.Validate(); err != nil {
		return fmt.Errorf("models.CNNConfig (head): %w", err)
	}
	return nil
}

// CNN builds the network on x ([batch, height, width, channels]); convolution blocks are
// named "conv_0", "conv_1", ... and the head "head". Height and width must be divisible
// by 2 once per block. It panics (graph building) on an invalid cfg or input shape.
func CNN(scope *model.Scope, x *graph.Node, cfg CNNConfig) *graph.Node {
	if err := cfg.Validate(); err != nil {
		exceptions.Panicf("%v", err)
	}
	if x.Rank() != 4 {
		exceptions.Panicf("models.CNN: x must be [batch, height, width, channels], got shape %s", x.Shape())
	}
	act, _ := activationType(cfg.Activation)
	for i, ch := range cfg.Channels {
		h, w := x.Shape().Dimensions[1], x.Shape().Dimensions[2]
		if h%2 != 0 || w%2 != 0 {
			exceptions.Panicf("models.CNN: block %d gets a %dx%d image, which 2x2 pooling cannot halve", i, h, w)
		}
		x = layers.Convolution(scope.In("conv_%d", i), x).Channels(ch).KernelSize(cfg.kernel()).PadSame().Done()
		x = activation.Apply(act, x)
		x = MaxPool2x2(x)
	}
	batch := x.Shape().Dimensions[0]
	x = graph.Reshape(x, batch, -1)
	return MLP(scope.In("head"), x, MLPConfig{Hidden: cfg.Dense, Outputs: cfg.Outputs, Activation: cfg.Activation})
}

// Fn returns the CNN as a model function.
func (c CNNConfig) Fn() Fn {
	return func(scope *model.Scope, x *graph.Node) *graph.Node { return CNN(scope, x, c) }
}

// MaxPool2x2 is graph.MaxPool(x).Window(2).Done() for x shaped [batch, height, width,
// channels] with even height and width, with the same values and the same gradient (to
// the first maximum of each window in row-major order, as XLA's select-and-scatter gives
// it), built from elementwise operations: each window's element at its ArgMax is selected
// by a one-hot mask. On XLA CPU, GoMLX's gradient of MaxPool (a select-and-scatter, run as
// an argmax reduce-window and two scatters) took about 70% of a small CNN's Adam step;
// this form takes a small fraction of that (see cmd/bench-xlaflags and docs/XLA_FLAGS.md).
// A window holding a NaN gives NaN (GoMLX's MaxPool does on the pure-Go backend; XLA CPU's
// ignores the NaN), so that a NaN in the activations reaches the loss.
func MaxPool2x2(x *graph.Node) *graph.Node {
	if x.Rank() != 4 || x.Shape().Dimensions[1]%2 != 0 || x.Shape().Dimensions[2]%2 != 0 {
		exceptions.Panicf("models.MaxPool2x2: x must be [batch, height, width, channels] with even height and width, got shape %s", x.Shape())
	}
	d := x.Shape().Dimensions
	b, h, w, c := d[0], d[1]/2, d[2]/2, d[3]
	// win[b, i, j, c, k]: the 4 elements of window (i, j), k in row-major order.
	win := graph.Reshape(graph.TransposeAllAxes(graph.Reshape(x, b, h, 2, w, 2, c), 0, 1, 3, 5, 2, 4), b, h, w, c, 4)
	first := graph.StopGradient(graph.ArgMax(win, 4, dtypes.Int32))
	elem := func(k int) *graph.Node {
		return graph.Reshape(graph.Slice(win, graph.AxisRange(), graph.AxisRange(), graph.AxisRange(), graph.AxisRange(), graph.AxisElem(k)), b, h, w, c)
	}
	// Select the element itself (not a sum with zeros, which would turn -0 into +0).
	y := elem(3)
	for k := 2; k >= 0; k-- {
		y = graph.Where(graph.Equal(first, graph.Const(x.Graph(), int32(k))), elem(k), y)
	}
	// ArgMax may or may not land on a NaN (comparisons with NaN are false): say NaN.
	nan := graph.StopGradient(graph.LogicalAny(graph.IsNaN(win), 4))
	return graph.Where(nan, graph.Scalar(x.Graph(), x.DType(), math.NaN()), y)
}
