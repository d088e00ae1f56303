package models

import (
	"fmt"
	"math"

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
//
// Labels must be in [0, classes). A batch with a label outside that range (a -1 "ignore"
// label, or 1-based labels) would otherwise train silently towards a meaningless loss of
// -0 (its one-hot row is all zeros), so the loss checks the labels in the graph: for such
// a batch the loss is NaN, and the store variable [InvalidLabelPath](classes) is set to
// NaN (0 otherwise). train.Run checks both after every step, and stops at the first such
// step with a train.NonFiniteError whose list names that variable, which reads, for 3
// classes, "/models.Classifier/class_label_outside_[0,3)".
func Classifier(fn Fn) train.LossFn {
	return func(scope *model.Scope, inputs, labels []*graph.Node) *graph.Node {
		checkIO("Classifier", inputs, labels)
		logits := fn(scope, inputs[0])
		if logits.Rank() < 1 {
			exceptions.Panicf("models.Classifier: the model's logits must be [batch, classes], got shape %s", logits.Shape())
		}
		mean := graph.ReduceAllMean(loss.SparseCategoricalCrossEntropyLogits(labels, []*graph.Node{logits}))
		return checkLabels(scope.Store(), labels[0], logits.Shape().Dim(-1), mean)
	}
}

// InvalidLabelPath is the path of the variable with which [Classifier] flags class labels
// outside [0, classes).
func InvalidLabelPath(classes int) string {
	return fmt.Sprintf("/models.Classifier/class_label_outside_[0,%d)", classes)
}

// checkLabels returns loss, or NaN if a label is outside [0, classes); it also sets the flag
// variable InvalidLabelPath(classes) to 0 or NaN. Called several times in one graph (SAM's
// two evaluations, local SGD's workers), the flag is NaN if any call saw a bad label.
func checkLabels(store *model.Store, labels *graph.Node, classes int, mean *graph.Node) *graph.Node {
	g := labels.Graph()
	dt := labels.DType()
	valid := graph.LogicalAll(graph.LogicalAnd(
		graph.GreaterOrEqual(labels, graph.Scalar(g, dt, 0)),
		graph.LessThan(labels, graph.Scalar(g, dt, classes))))
	flag := store.VariableWithValue(InvalidLabelPath(classes), float32(0)).SetTrainable(false)
	ok := graph.Scalar(g, flag.DType(), 0)
	if flag.ChangedInGraph(g) {
		ok = flag.NodeValue(g) // an earlier call in this graph: keep its verdict
	}
	flag.SetNodeValue(graph.Where(valid, ok, graph.Scalar(g, flag.DType(), math.NaN())))
	return graph.Where(valid, mean, graph.Scalar(g, mean.DType(), math.NaN()))
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
