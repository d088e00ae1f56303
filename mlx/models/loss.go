package models

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/loss"
	"github.com/gomlx/gomlx/ml/train/metric"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/goptlab/goptlab/mlx/data"
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
// -0 (its one-hot row is all zeros), so the loss checks the labels in the graph and is NaN
// for such a batch: train.Run stops at the first such step with a train.NonFiniteError
// (and Config.SkipNonFinite discards the step). [CheckLabels] finds the bad label and
// example on the host, before a run.
func Classifier(fn Fn) train.LossFn {
	return func(scope *model.Scope, inputs, labels []*graph.Node) *graph.Node {
		checkIO("Classifier", inputs, labels)
		logits := fn(scope, inputs[0])
		if logits.Rank() < 1 {
			exceptions.Panicf("models.Classifier: the model's logits must be [batch, classes], got shape %s", logits.Shape())
		}
		mean := graph.ReduceAllMean(loss.SparseCategoricalCrossEntropyLogits(labels, []*graph.Node{logits}))
		return nanUnlessLabelsIn(labels[0], logits.Shape().Dim(-1), mean)
	}
}

// nanUnlessLabelsIn returns loss if every label is in [0, classes), else NaN. Its gradient
// is zero for such a batch.
func nanUnlessLabelsIn(labels *graph.Node, classes int, loss *graph.Node) *graph.Node {
	g := labels.Graph()
	dt := labels.DType()
	valid := graph.LogicalAll(graph.LogicalAnd(
		graph.GreaterOrEqual(labels, graph.Scalar(g, dt, 0)),
		graph.LessThan(labels, graph.Scalar(g, dt, classes))))
	return graph.Where(valid, loss, graph.Scalar(g, loss.DType(), math.NaN()))
}

// CheckLabels returns an error naming the first example of ds whose class label (its first
// label column, of integers) is outside [0, classes), or nil if there is none: the host-side
// check to run before training a [Classifier] on ds.
func CheckLabels(ds *data.Dataset, classes int) error {
	if ds == nil {
		return fmt.Errorf("models.CheckLabels: dataset is nil")
	}
	if classes < 1 {
		return fmt.Errorf("models.CheckLabels(%q): classes=%d out of range: must be >= 1", ds.Name(), classes)
	}
	cols := ds.Labels()
	if len(cols) == 0 || cols[0].Int32 == nil {
		return fmt.Errorf("models.CheckLabels(%q): the dataset has no integer label column", ds.Name())
	}
	for i, y := range cols[0].Int32 {
		if y < 0 || int(y) >= classes {
			return fmt.Errorf("models.CheckLabels(%q): label %d of example %d is outside the valid range [0, %d)",
				ds.Name(), y, i, classes)
		}
	}
	return nil
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
