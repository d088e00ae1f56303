// Package models holds small models for optimizer experiments (an MLP and a small CNN),
// as graph-building functions, and the loss functions that turn them into a train.LossFn.
//
// Models create their variables under the scope they are given, with GoMLX's default
// initializer (He normal for weights, zero biases), which draws from the Store's random
// state: a run seeded with train.Config.Seed (or model.ParamInitialSeed) starts from the
// same weights on every backend.
package models

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

// Fn is a model: it maps a batch of inputs to outputs (logits or predictions).
// It is a graph-building function and panics on error.
type Fn func(scope *model.Scope, x *graph.Node) *graph.Node

// MLPConfig describes a multi-layer perceptron.
type MLPConfig struct {
	// Hidden are the widths of the hidden layers (may be empty: a linear model).
	Hidden []int
	// Outputs is the width of the last (linear) layer.
	Outputs int
	// Activation is the name of the hidden activation, one of GoMLX's activation names
	// ("relu", "tanh", "gelu", "swish", "sigmoid", "leaky_relu", "selu", ...). Empty means "relu".
	Activation string
}

// activationType returns the validated activation, "relu" when empty.
func activationType(name string) (activation.Type, error) {
	if name == "" {
		return activation.TypeRelu, nil
	}
	if t, ok := activation.Aliases[name]; ok {
		return t, nil
	}
	t, err := activation.TypeString(name)
	if err != nil || t == activation.TypeSwiGLU {
		var names []string
		for _, v := range activation.TypeValues() {
			if v != activation.TypeSwiGLU {
				names = append(names, v.String())
			}
		}
		return 0, fmt.Errorf("Activation=%q: unknown activation, valid values are %s", name, strings.Join(names, ", "))
	}
	return t, nil
}

// Validate checks the configuration: widths >= 1 and a known activation.
func (c MLPConfig) Validate() error {
	for i, w := range c.Hidden {
		if w < 1 {
			return fmt.Errorf("models.MLPConfig: Hidden[%d]=%d out of range: widths must be >= 1", i, w)
		}
	}
	if c.Outputs < 1 {
		return fmt.Errorf("models.MLPConfig: Outputs=%d out of range: must be >= 1", c.Outputs)
	}
	if _, err := activationType(c.Activation); err != nil {
		return fmt.Errorf("models.MLPConfig: %w", err)
	}
	return nil
}

// NumParams returns the number of parameters of the MLP for inputs of width in.
func (c MLPConfig) NumParams(in int) int {
	total := 0
	for _, w := range append(append([]int{}, c.Hidden...), c.Outputs) {
		total += in*w + w
		in = w
	}
	return total
}

// MLP builds the perceptron on x ([batch, features]): dense layers named "layer_0",
// "layer_1", ... under scope, the activation after each hidden layer, none after the last.
// It panics (graph building) if cfg is invalid; call cfg.Validate first to get an error.
func MLP(scope *model.Scope, x *graph.Node, cfg MLPConfig) *graph.Node {
	if err := cfg.Validate(); err != nil {
		exceptions.Panicf("%v", err)
	}
	if x.Rank() != 2 {
		exceptions.Panicf("models.MLP: x must be [batch, features], got shape %s", x.Shape())
	}
	act, _ := activationType(cfg.Activation)
	for i, w := range cfg.Hidden {
		x = layers.DenseWithBias(scope.In("layer_%d", i), x, w)
		x = activation.Apply(act, x)
	}
	return layers.DenseWithBias(scope.In("layer_%d", len(cfg.Hidden)), x, cfg.Outputs)
}

// Fn returns the MLP as a model function.
func (c MLPConfig) Fn() Fn {
	return func(scope *model.Scope, x *graph.Node) *graph.Node { return MLP(scope, x, c) }
}
