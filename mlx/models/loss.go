package models

import (
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/loss"
	"github.com/gomlx/gomlx/ml/train/metric"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/goptlab/goptlab/mlx/train"
)

// checkIO panics unless there is exactly one input and one label.
func checkIO(what string, inputs, labels []*graph.Node) {
	if len(inputs) != 1 || len(labels) != 1 {
		exceptions.Panicf("models.%s: want one input and one label, got %d inputs and %d labels", what, len(inputs), len(labels))
	}
}

// Classifier returns the mean softmax cross-entropy of the model's logits
// ([batch, classes]) against integer class labels ([batch, 1]) as a train.LossFn.
func Classifier(fn Fn) train.LossFn {
	return func(scope *model.Scope, inputs, labels []*graph.Node) *graph.Node {
		checkIO("Classifier", inputs, labels)
		logits := fn(scope, inputs[0])
		return graph.ReduceAllMean(loss.SparseCategoricalCrossEntropyLogits(labels, []*graph.Node{logits}))
	}
}

// Regressor returns the mean squared error of the model's predictions against
// float labels of the same shape as a train.LossFn.
func Regressor(fn Fn) train.LossFn {
	return func(scope *model.Scope, inputs, labels []*graph.Node) *graph.Node {
		checkIO("Regressor", inputs, labels)
		pred := fn(scope, inputs[0])
		return loss.MeanSquaredError(labels, []*graph.Node{pred})
	}
}

// Accuracy returns the fraction of examples whose arg-max logit equals the integer label
// ([batch, 1]), as a train.MetricFn for train.Evaluate and train.Config.EvalMetrics
// (GoMLX's metric.SparseCategoricalAccuracyGraph: ties count as misses).
func Accuracy(fn Fn) train.MetricFn {
	return func(scope *model.Scope, inputs, labels []*graph.Node) *graph.Node {
		checkIO("Accuracy", inputs, labels)
		logits := fn(scope, inputs[0])
		return metric.SparseCategoricalAccuracyGraph(scope, labels, []*graph.Node{logits})
	}
}
