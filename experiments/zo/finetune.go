package zoexp

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/experiments"
	"github.com/goptlab/goptlab/experiments/verdict"
	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
	"github.com/goptlab/goptlab/mlx/zo"
)

// Pretrained is the pre-trained start of one seed, measured on all ten digits.
type Pretrained struct {
	Seed         int64   `json:"seed"`
	ValLoss      float64 `json:"val_loss"`
	TestAccuracy float64 `json:"test_accuracy"`
}

// FineTuneRun is one fine-tuning run of part (c) on an evaluation seed.
type FineTuneRun struct {
	Method string  `json:"method"`
	Seed   int64   `json:"seed"`
	LR     float64 `json:"lr"`
	// Steps and ForwardPasses of the run (ForwardPasses = Budget).
	Steps         int `json:"steps"`
	ForwardPasses int `json:"forward_passes"`
	// StartValLoss is the pre-trained start's validation loss; FinalValLoss the run's last
	// (+Inf if it diverged).
	StartValLoss float64       `json:"start_val_loss"`
	FinalValLoss verdict.Float `json:"final_val_loss"`
	TestAccuracy verdict.Float `json:"test_accuracy"`
	TestLoss     verdict.Float `json:"test_loss"`
	// Oscillation is the standard deviation of consecutive differences of the validation
	// loss over the second half of the run (see [oscillation]).
	Oscillation verdict.Float `json:"oscillation"`
	// ThirdBudgetValLoss (SGD only) is the validation loss at the last measurement at or
	// before a third of the budget: equal compute if a backward pass costs two forward passes.
	ThirdBudgetValLoss *verdict.Float `json:"third_budget_val_loss,omitempty"`
}

// Gap is a ZO method's final validation loss over SGD's, per seed, at the same forward-pass budget.
type Gap struct {
	Method   string           `json:"method"`
	Values   []verdict.Float  `json:"values"`
	Summary  verdict.Summary  `json:"summary"`
	Interval verdict.Interval `json:"interval"`
}

// FineTuneResult is parts (c) and (d)'s measurements.
type FineTuneResult struct {
	// Params is the MLP's parameter count.
	Params     int          `json:"params"`
	Pretrained []Pretrained `json:"pretrained"` // tuning seed 0 first
	// ChosenLR is each method's learning rate picked on the tuning seed; Tuning the final
	// validation loss of every (method, learning rate) of the grid.
	ChosenLR map[string]float64                  `json:"chosen_lr"`
	Tuning   map[string]map[string]verdict.Float `json:"tuning"`
	Runs     []FineTuneRun                       `json:"runs"`
	// GapToSGD holds, for each ZO method, its final validation loss / SGD's.
	GapToSGD []Gap `json:"gap_to_sgd"`
	// Memory is the peak memory of one step of each method (and of a forward pass).
	Memory []MemoryRow `json:"memory"`
}

// mnist holds part (c)'s data.
type mnist struct {
	train, pretrain, val, test *data.Dataset
}

// loadMNIST loads the splits; pretrain is train's examples of the digits below classes.
func loadMNIST(cfg Config) (*mnist, error) {
	trainSet, val, test, err := experiments.MNISTSplits(cfg.DataDir, data.LayoutFlat, cfg.TrainExamples, cfg.ValExamples, cfg.TestExamples)
	if err != nil {
		return nil, fmt.Errorf("zoexp: %w", err)
	}
	var rows []int
	for i, l := range trainSet.Labels()[0].Int32 {
		if int(l) < cfg.PretrainClasses {
			rows = append(rows, i)
		}
	}
	if len(rows) < cfg.BatchSize {
		return nil, fmt.Errorf("zoexp: %d training examples of digits below %d, fewer than a batch of %d", len(rows), cfg.PretrainClasses, cfg.BatchSize)
	}
	pre, err := trainSet.Subset(fmt.Sprintf("mnist-train-digits<%d", cfg.PretrainClasses), rows)
	if err != nil {
		return nil, fmt.Errorf("zoexp: %w", err)
	}
	return &mnist{train: trainSet, pretrain: pre, val: val, test: test}, nil
}

// savedVar is one model variable's value.
type savedVar struct {
	path  string
	value *tensors.Tensor
}

// pretrain trains the MLP with Adam on the pre-training digits and returns its variables.
func (e *runner) pretrain(d *mnist, seed int64) ([]savedVar, Pretrained, error) {
	cfg := e.cfg
	mlp := models.MLPConfig{Hidden: cfg.Hidden, Outputs: 10}
	lossFn := models.Classifier(mlp.Fn())
	ac := optim.DefaultAdam()
	ac.LR = cfg.PretrainLR
	opt, err := optim.NewAdam(ac)
	if err != nil {
		return nil, Pretrained{}, fmt.Errorf("zoexp: pre-training: %w", err)
	}
	store := model.NewStore()
	if _, err := train.Run(e.backend, store, lossFn, d.pretrain, train.FirstOrder(opt, "adam"), train.Config{
		Steps: cfg.PretrainSteps, BatchSize: cfg.BatchSize, Seed: seed, LogEvery: cfg.PretrainSteps, Context: e.ctx,
	}); err != nil {
		return nil, Pretrained{}, fmt.Errorf("zoexp: pre-training seed %d: %w", seed, err)
	}
	var vars []savedVar
	for v := range store.IterVariables() {
		if !v.Trainable || !v.DType().IsFloat() {
			continue // Adam's state, step counters, random state
		}
		t, err := v.Value()
		if err != nil {
			return nil, Pretrained{}, fmt.Errorf("zoexp: pre-training seed %d: %w", seed, err)
		}
		c, err := t.Clone()
		if err != nil {
			return nil, Pretrained{}, fmt.Errorf("zoexp: pre-training seed %d: %w", seed, err)
		}
		vars = append(vars, savedVar{v.Path(), c})
	}
	m, err := e.test(store, d.val, d.test)
	if err != nil {
		return nil, Pretrained{}, err
	}
	p := Pretrained{Seed: seed, ValLoss: m.valLoss, TestAccuracy: m.testAccuracy}
	e.logf("pre-trained seed %d on digits < %d (%d Adam steps): validation loss %.4f on all digits, test accuracy %.4f",
		seed, cfg.PretrainClasses, cfg.PretrainSteps, p.ValLoss, p.TestAccuracy)
	return vars, p, nil
}

// restore returns a fresh store holding copies of vars, whose steppers draw from seed.
func restore(vars []savedVar, seed int64) (*model.Store, error) {
	store := model.NewStore()
	for _, v := range vars {
		c, err := v.value.Clone()
		if err != nil {
			return nil, fmt.Errorf("zoexp: copying %s: %w", v.path, err)
		}
		if _, err := store.CreateVariable(v.path, c); err != nil {
			return nil, fmt.Errorf("zoexp: copying %s: %w", v.path, err)
		}
	}
	// train.SeedStore leaves a store with variables alone: the ZO directions' seed is set here.
	store.SetParam(model.ParamInitialSeed, seed)
	if err := store.SetRNGStateFromSeed(seed); err != nil {
		return nil, fmt.Errorf("zoexp: seeding the store: %w", err)
	}
	return store, nil
}

// measured are a model's validation loss and test metrics.
type measured struct {
	valLoss, testLoss, testAccuracy float64
}

// test measures the model in store on the validation and test sets.
func (e *runner) test(store *model.Store, val, test *data.Dataset) (measured, error) {
	mlp := models.MLPConfig{Hidden: e.cfg.Hidden, Outputs: 10}
	ev, err := train.NewEvaluator(e.backend, store, models.Classifier(mlp.Fn()),
		map[string]train.MetricFn{"accuracy": models.Accuracy(mlp.Fn())}, 2000)
	if err != nil {
		return measured{}, fmt.Errorf("zoexp: %w", err)
	}
	defer ev.Finalize()
	v, err := ev.Evaluate(val)
	if err != nil {
		return measured{}, fmt.Errorf("zoexp: validation: %w", err)
	}
	t, err := ev.Evaluate(test)
	if err != nil {
		return measured{}, fmt.Errorf("zoexp: test: %w", err)
	}
	return measured{valLoss: v["loss"], testLoss: t["loss"], testAccuracy: t["accuracy"]}, nil
}

// stepper returns the training stepper of a method at learning rate lr.
func (c Config) stepper(method string, lr float64) (train.Stepper, error) {
	zc := zo.Config{LR: lr, Epsilon: c.Epsilon, Directions: 1, Name: method}
	switch method {
	case MeZO:
	case MeZOMomentum:
		zc.Momentum = c.Momentum
	case SparseMeZO:
		zc.Mask = zo.MagnitudeMask(c.SparseFraction)
	case SGD:
		sc := optim.DefaultSGD()
		sc.LR = lr
		opt, err := optim.NewSGD(sc)
		if err != nil {
			return nil, fmt.Errorf("zoexp: %s at lr %g: %w", method, lr, err)
		}
		return train.FirstOrder(opt, SGD), nil
	default:
		return nil, fmt.Errorf("zoexp: unknown method %q", method)
	}
	s, err := zo.New(zc)
	if err != nil {
		return nil, fmt.Errorf("zoexp: %s at lr %g: %w", method, lr, err)
	}
	return s, nil
}

// fineTuneOne fine-tunes a copy of the pre-trained variables with one method.
func (e *runner) fineTuneOne(d *mnist, vars []savedVar, start Pretrained, method string, lr float64) (FineTuneRun, *history.History, error) {
	cfg := e.cfg
	stepper, err := cfg.stepper(method, lr)
	if err != nil {
		return FineTuneRun{}, nil, err
	}
	store, err := restore(vars, start.Seed)
	if err != nil {
		return FineTuneRun{}, nil, err
	}
	per := stepper.LossEvalsPerStep()
	steps := cfg.Budget / per
	r := FineTuneRun{Method: method, Seed: start.Seed, LR: lr, Steps: steps, ForwardPasses: steps * per, StartValLoss: start.ValLoss}
	mlp := models.MLPConfig{Hidden: cfg.Hidden, Outputs: 10}
	t0 := time.Now()
	h, err := train.Run(e.backend, store, models.Classifier(mlp.Fn()), d.train, stepper, train.Config{
		Steps: steps, BatchSize: cfg.BatchSize, Seed: start.Seed, LogEvery: cfg.EvalEvery / per,
		Name: fmt.Sprintf("%s lr=%g", method, lr), Eval: d.val, Context: e.ctx,
	})
	var nf *train.NonFiniteError
	diverged := errors.As(err, &nf)
	if err != nil && !diverged {
		return r, nil, fmt.Errorf("zoexp: fine-tuning %s (lr %g, seed %d): %w", method, lr, start.Seed, err)
	}
	vals := make([]float64, 0, len(h.Records))
	for _, rec := range h.Records {
		vals = append(vals, rec.Metrics["eval_loss"])
	}
	if diverged {
		inf := verdict.Float(math.Inf(1))
		r.FinalValLoss, r.TestLoss, r.TestAccuracy, r.Oscillation = inf, inf, verdict.Float(math.NaN()), inf
	} else {
		m, err := e.test(store, d.val, d.test)
		if err != nil {
			return r, nil, err
		}
		r.FinalValLoss, r.TestLoss, r.TestAccuracy = verdict.Float(m.valLoss), verdict.Float(m.testLoss), verdict.Float(m.testAccuracy)
		r.Oscillation = verdict.Float(oscillation(vals))
	}
	if method == SGD {
		third := verdict.Float(math.NaN())
		for _, rec := range h.Records {
			if rec.Evals <= int64(cfg.Budget/3) {
				third = verdict.Float(rec.Metrics["eval_loss"])
			}
		}
		r.ThirdBudgetValLoss = &third
	}
	e.logf("fine-tune %-13s lr %-7g seed %d, %5d steps: val loss %.4f -> %.4f, test accuracy %.4f (%.1fs)",
		method, lr, start.Seed, steps, start.ValLoss, float64(r.FinalValLoss), float64(r.TestAccuracy), time.Since(t0).Seconds())
	return r, h, nil
}

// oscillation returns the sample standard deviation of the consecutive differences of
// values over their second half (values[len/2:]): how much the loss jumps from one
// measurement to the next once the fast initial descent is over. It is +Inf if a value
// is not finite and 0 with fewer than three values in the second half.
func oscillation(values []float64) float64 {
	half := values[len(values)/2:]
	if len(half) < 3 {
		return 0
	}
	diffs := make([]float64, len(half)-1)
	for i := range diffs {
		diffs[i] = half[i+1] - half[i]
		if math.IsNaN(diffs[i]) || math.IsInf(diffs[i], 0) {
			return math.Inf(1)
		}
	}
	var mean float64
	for _, d := range diffs {
		mean += d
	}
	mean /= float64(len(diffs))
	var ss float64
	for _, d := range diffs {
		ss += (d - mean) * (d - mean)
	}
	return math.Sqrt(ss / float64(len(diffs)-1))
}

// ratio returns a/b for non-negative values that may be 0 or +Inf: +Inf if a is (or if
// only b is 0), 0 if only b is +Inf, 1 if both are 0.
func ratio(a, b float64) float64 {
	switch {
	case math.IsInf(a, 1):
		return math.Inf(1)
	case math.IsInf(b, 1):
		return 0
	case b == 0 && a == 0:
		return 1
	case b == 0:
		return math.Inf(1)
	}
	return a / b
}

// fineTune runs parts (c) and (d).
func (e *runner) fineTune() (FineTuneResult, []*history.History, error) {
	cfg := e.cfg
	res := FineTuneResult{ChosenLR: map[string]float64{}, Tuning: map[string]map[string]verdict.Float{}}
	res.Params = models.MLPConfig{Hidden: cfg.Hidden, Outputs: 10}.NumParams(784)
	d, err := loadMNIST(cfg)
	if err != nil {
		return res, nil, err
	}
	mem, err := e.memory(d)
	if err != nil {
		return res, nil, err
	}
	res.Memory = mem

	// 1. Learning rates, on the tuning seed 0.
	vars, start, err := e.pretrain(d, 0)
	if err != nil {
		return res, nil, err
	}
	res.Pretrained = append(res.Pretrained, start)
	for _, method := range Methods {
		res.Tuning[method] = map[string]verdict.Float{}
		best := math.Inf(1)
		for _, lr := range cfg.LRGrid[method] {
			r, _, err := e.fineTuneOne(d, vars, start, method, lr)
			if err != nil {
				return res, nil, err
			}
			res.Tuning[method][fmt.Sprint(lr)] = r.FinalValLoss
			if float64(r.FinalValLoss) < best {
				best, res.ChosenLR[method] = float64(r.FinalValLoss), lr
			}
		}
		if _, ok := res.ChosenLR[method]; !ok {
			return res, nil, fmt.Errorf("zoexp: every learning rate of %s's grid %v diverged on the tuning seed", method, cfg.LRGrid[method])
		}
	}

	// 2. Evaluation seeds.
	var hists []*history.History
	for seed := int64(1); seed <= int64(cfg.Seeds); seed++ {
		vars, start, err := e.pretrain(d, seed)
		if err != nil {
			return res, nil, err
		}
		res.Pretrained = append(res.Pretrained, start)
		for _, method := range Methods {
			r, h, err := e.fineTuneOne(d, vars, start, method, res.ChosenLR[method])
			if err != nil {
				return res, nil, err
			}
			res.Runs = append(res.Runs, r)
			hists = append(hists, h)
		}
	}
	for i, method := range Methods[:3] {
		g := Gap{Method: method}
		values := gapValues(res.Runs, method)
		for _, v := range values {
			g.Values = append(g.Values, verdict.Float(v))
		}
		if g.Summary, err = verdict.Summarize(values); err != nil {
			return res, nil, fmt.Errorf("zoexp: gap of %s: %w", method, err)
		}
		if g.Interval, err = verdict.BootstrapMedian(values, 0.95, 10000, uint64(500+i)); err != nil {
			return res, nil, fmt.Errorf("zoexp: gap of %s: %w", method, err)
		}
		res.GapToSGD = append(res.GapToSGD, g)
	}
	return res, hists, nil
}

// runsOf returns the evaluation runs of method, in seed order.
func runsOf(runs []FineTuneRun, method string) []FineTuneRun {
	var out []FineTuneRun
	for _, r := range runs {
		if r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// gapValues returns, per seed, method's final validation loss over SGD's.
func gapValues(runs []FineTuneRun, method string) []float64 {
	zoRuns, sgdRuns := runsOf(runs, method), runsOf(runs, SGD)
	out := make([]float64, min(len(zoRuns), len(sgdRuns)))
	for i := range out {
		out[i] = ratio(float64(zoRuns[i].FinalValLoss), float64(sgdRuns[i].FinalValLoss))
	}
	return out
}

// fineTuneClaims judges parts (c) and (d).
func fineTuneClaims(ft FineTuneResult, cfg Config) ([]experiments.Claim, error) {
	var out []experiments.Claim
	for i, method := range Methods[:3] {
		runs := runsOf(ft.Runs, method)
		values := make([]float64, len(runs))
		every := true
		for k, r := range runs {
			values[k] = ratio(float64(r.FinalValLoss), r.StartValLoss)
			every = every && values[k] < 1
		}
		rule := verdict.Rule{Quantity: fmt.Sprintf("%s's final validation loss after %d forward passes / the pre-trained start's (and every seed below 1)",
			method, cfg.Budget), Direction: verdict.AtMost, Bound: 1}
		j, err := judge(rule, values, uint64(600+i))
		if err != nil {
			return nil, err
		}
		if !every && j.Verdict == verdict.Supports {
			j.Verdict = verdict.Inconclusive
			j.Why += "; but not every seed improved on its start, which the rule also asks"
		}
		out = append(out, experiments.Claim{ID: "forward-only-" + method,
			Text:      fmt.Sprintf("ZO trains with just forward passes: %s improves the validation loss of the pre-trained start on every seed", method),
			Judgement: j})
	}
	rule := verdict.Rule{Quantity: fmt.Sprintf("MeZO's final validation loss / SGD's, both after %d forward passes", cfg.Budget),
		Direction: verdict.AtMost, Bound: 2}
	j, err := judge(rule, gapValues(ft.Runs, MeZO), 610)
	if err != nil {
		return nil, err
	}
	out = append(out, experiments.Claim{ID: "mezo-vs-sgd",
		Text:      "MeZO comes within 2x of SGD's validation loss at the same forward-pass budget (our reading of \"comparable performance to fine-tuning\")",
		Judgement: j})

	plain, mom := runsOf(ft.Runs, MeZO), runsOf(ft.Runs, MeZOMomentum)
	osc := make([]float64, min(len(plain), len(mom)))
	for i := range osc {
		osc[i] = ratio(float64(mom[i].Oscillation), float64(plain[i].Oscillation))
	}
	rule = verdict.Rule{Quantity: "std of consecutive validation-loss differences (second half of the run), MeZO with momentum / without",
		Direction: verdict.AtMost, Bound: 1}
	if j, err = judge(rule, osc, 620); err != nil {
		return nil, err
	}
	out = append(out, experiments.Claim{ID: "momentum-smooths",
		Text:      fmt.Sprintf("momentum (β=%g) reduces MeZO's oscillations (ZO-AdaMU)", cfg.Momentum),
		Judgement: j})
	return out, nil
}
