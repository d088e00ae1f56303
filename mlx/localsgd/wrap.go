package localsgd

import (
	"reflect"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/train"
)

// WrapLoss returns a loss function for batches that carry all K workers (along
// Config.WorkerAxis): the FedAvg-weighted mean of perWorker over the workers' slices, at
// the current (global) model. Give it to mlx/train's loop (train.Run) together with this
// stepper: the loop evaluates it to create the model's variables and for evaluation,
// and BuildStep, given a loss returned by WrapLoss, calls perWorker once per worker.
func (l *LocalSGD) WrapLoss(perWorker train.LossFn) train.LossFn {
	wrapped := func(scope *model.Scope, inputs, labels []*Node) *Node {
		workerInputs := l.splitWorkers("inputs", inputs)
		workerLabels := l.splitWorkers("labels", labels)
		losses := make([]*Node, l.cfg.Workers)
		for k := range losses {
			losses[k] = l.callLoss(scope, perWorker, workerInputs[k], workerLabels[k])
		}
		return l.average(losses)
	}
	l.mu.Lock()
	l.perWorker = perWorker
	l.mu.Unlock()
	return wrapped
}

// unwrapLoss returns the per-worker loss if lossFn was returned by WrapLoss.
func (l *LocalSGD) unwrapLoss(lossFn train.LossFn) train.LossFn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perWorker != nil && reflect.ValueOf(lossFn).Pointer() == wrapLossCode {
		return l.perWorker
	}
	return lossFn
}

// wrapLossCode is the code pointer shared by every closure WrapLoss returns.
var wrapLossCode = reflect.ValueOf((&LocalSGD{cfg: Config{Workers: 1}}).WrapLoss(nil)).Pointer()
