package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/internal/gomlxerr"
	"github.com/goptlab/goptlab/mlx/internal/validname"
)

// Config describes a training run.
type Config struct {
	// Steps is the number of optimizer steps of the run, in [1, MaxSteps]. A resumed run stops at the same total.
	Steps int
	// BatchSize is the number of examples per step, in [1, dataset size]; 0 means the whole dataset.
	BatchSize int
	// Seed controls all randomness of the run (see the package documentation).
	Seed int64
	// LogEvery records one history.Record every LogEvery steps (the last step is always
	// recorded), in [0, MaxSteps]; 0 means 1.
	LogEvery int
	// Name labels the run in the history; empty means the stepper's name. It must be valid
	// UTF-8 without control characters, not only spaces, of at most 1024 bytes (as must the
	// stepper's name).
	Name string
	// StepsPerExecution runs up to that many steps in one execution of the compiled step
	// (an XLA while loop over the steps), in [0, MaxSteps]; 0 or 1: one step per execution.
	// It cuts the fixed cost of starting an execution, which bounds small models. A chunk
	// of steps ends at every recorded step and checkpoint, so records, checkpoints and the
	// non-finite check (which replays single steps of the loop) stay exact to the step; an
	// interrupt waits for the chunk in progress. The loop's body is compiled on its own, so
	// a run's values may differ in the last bits from the same run with one step per
	// execution (runs with the same StepsPerExecution give the same bits, resumed or not).
	// It needs an XLA backend (GoMLX v0.28.8's pure-Go backend cannot run a gradient inside
	// a while loop), a dataset that fits on the device (see the package documentation) and
	// a stepper that is not an [AfterStepper] (which must see every step). It pays off for
	// dense models; measure before using it with convolutions, which XLA CPU runs much
	// slower inside a while loop (see the package documentation).
	StepsPerExecution int
	// OnStep, if set, is called with the history after each recorded step (live plots);
	// an error from it stops the run and is returned.
	OnStep func(*history.History) error
	// SkipNonFinite discards the update of a step whose loss or updated variables are not
	// finite (the float variables keep their values; step counters and random states advance)
	// instead of stopping the run with an error. Skipped steps are recorded with the metric "skipped" = 1.
	SkipNonFinite bool

	// Eval, if set, is evaluated at every recorded step with EvalMetrics: the history gets
	// "eval_loss" and one "eval_<name>" metric per entry of EvalMetrics. Its batches are
	// given to the loss function as they are: with a stepper whose training batches are
	// not the loss function's (local SGD's carry K workers), use an unsharded dataset.
	Eval *data.Dataset
	// EvalMetrics are metric functions evaluated on Eval.
	EvalMetrics map[string]MetricFn

	// CheckpointDir, if set, enables checkpoints (see the package documentation).
	CheckpointDir string
	// CheckpointEvery saves a checkpoint every that many steps, in [0, MaxSteps] (0: only at
	// the end and on interrupt).
	CheckpointEvery int
	// ResumeAnyway resumes a checkpoint written with another dataset (name or size) or
	// other stepper settings (learning rate, optimizer hyperparameters: see [Configured]),
	// which Run otherwise refuses with an error listing what changed. The seed, batch size
	// and stepper name must match in any case.
	ResumeAnyway bool
	// Context, if set, interrupts the run when it is cancelled: the loop stops after the
	// current step, saves a checkpoint if CheckpointDir is set, and returns the history with
	// an error wrapping ctx.Err() that names the last step done and the checkpoint file.
	// If nil, [Run] stops in the same way on SIGINT or SIGTERM (a notebook's interrupt
	// button), for its duration only (see the package documentation).
	Context context.Context
}

// MaxSteps is the largest Config.Steps (and LogEvery and CheckpointEvery): checkpoints
// store step numbers up to 2^31-1, and a run of more steps than that would take years.
const MaxSteps = math.MaxInt32

func (c Config) validate(ds *data.Dataset, stepper Stepper) (Config, error) {
	if c.Steps < 1 || c.Steps > MaxSteps {
		return c, fmt.Errorf("Config.Steps=%d out of range: must be >= 1 and <= %d (MaxSteps)", c.Steps, MaxSteps)
	}
	if c.BatchSize == 0 {
		c.BatchSize = ds.Len()
	}
	if err := ds.CheckBatchSize(c.BatchSize); err != nil {
		return c, fmt.Errorf("Config.BatchSize: %w", err)
	}
	if c.LogEvery < 0 || c.LogEvery > MaxSteps {
		return c, fmt.Errorf("Config.LogEvery=%d out of range: must be >= 0 (0 means 1) and <= %d (MaxSteps)", c.LogEvery, MaxSteps)
	}
	if c.LogEvery == 0 {
		c.LogEvery = 1
	}
	if c.StepsPerExecution < 0 || c.StepsPerExecution > MaxSteps {
		return c, fmt.Errorf("Config.StepsPerExecution=%d out of range: must be >= 0 (0 means 1) and <= %d (MaxSteps)", c.StepsPerExecution, MaxSteps)
	}
	if c.StepsPerExecution == 0 {
		c.StepsPerExecution = 1
	}
	if _, ok := stepper.(AfterStepper); ok && c.StepsPerExecution > 1 {
		return c, fmt.Errorf("Config.StepsPerExecution=%d: stepper %q implements AfterStep, which must see every step: "+
			"use one step per execution", c.StepsPerExecution, stepper.Name())
	}
	if c.CheckpointEvery < 0 || c.CheckpointEvery > MaxSteps {
		return c, fmt.Errorf("Config.CheckpointEvery=%d out of range: must be >= 0 and <= %d (MaxSteps)", c.CheckpointEvery, MaxSteps)
	}
	if err := validname.Label(c.Name); err != nil {
		return c, fmt.Errorf("Config.Name=%.40q is invalid: %w", c.Name, err)
	}
	if err := validname.Label(stepper.Name()); err != nil {
		return c, fmt.Errorf("the stepper's Name()=%.40q is invalid: %w", stepper.Name(), err)
	}
	if c.CheckpointDir != "" && (len(ds.Name()) > maxNameBytes || !utf8.ValidString(ds.Name())) {
		return c, fmt.Errorf("the dataset's name (%.40q, %d bytes) cannot be saved in a checkpoint: it must be valid UTF-8 "+
			"of at most %d bytes", ds.Name(), len(ds.Name()), maxNameBytes)
	}
	if c.CheckpointEvery > 0 && c.CheckpointDir == "" {
		return c, fmt.Errorf("Config.CheckpointEvery=%d needs Config.CheckpointDir", c.CheckpointEvery)
	}
	if len(c.EvalMetrics) > 0 && c.Eval == nil {
		return c, fmt.Errorf("Config.EvalMetrics needs Config.Eval (a dataset)")
	}
	return c, nil
}

// NonFiniteError reports a NaN or Inf in the loss or in an updated variable.
type NonFiniteError struct {
	// Step is the 1-based step whose result was not finite.
	Step int
	// Variable is the path of the first non-finite updated variable, or "loss".
	Variable string
	// All lists every non-finite quantity of the step.
	All []string
}

// Error implements error.
func (e *NonFiniteError) Error() string {
	if e.Step == 1 && e.Variable == "loss" {
		// The loss of step 1 is that of the initial model: no learning rate has acted yet.
		return fmt.Sprintf("step 1: non-finite (NaN or Inf) loss of the initial model, before any update (all non-finite: %v): "+
			"the data or the model produce it, not the learning rate: look for NaN or Inf inputs, or, with models.Classifier, "+
			"a class label outside [0, classes) (models.CheckLabels names it)", e.All)
	}
	return fmt.Sprintf("step %d: non-finite (NaN or Inf) %s (all non-finite: %v); "+
		"lower the learning rate, or set Config.SkipNonFinite to discard such steps", e.Step, e.Variable, e.All)
}

// SeedStore prepares a fresh Store for a seeded run: it sets model.ParamInitialSeed and the
// Store's random state from seed. It does nothing to a Store that already holds variables
// other than the random state (so a Store being trained further keeps its random state).
func SeedStore(store *model.Store, seed int64) error {
	for v := range store.IterVariables() {
		if v.Name() != model.RNGStateVariableName {
			return nil
		}
	}
	store.SetParam(model.ParamInitialSeed, seed)
	if err := store.SetRNGStateFromSeed(seed); err != nil {
		return fmt.Errorf("seeding the store's random state with %d: %w", seed, err)
	}
	return nil
}

// catch runs fn, turning a panic of graph-building code into an error, and prefixes errors with what.
func catch(what string, fn func() error) error {
	if err := gomlxerr.Catch(fn); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Run trains the model whose variables live in store: it runs the steps of cfg with
// stepper on batches of ds, and returns the run's history. On error it returns the
// history recorded so far along with the error.
//
// Unless it resumes from a checkpoint, Run first creates the model's variables by building
// lossFn's graph once on the first batch, or, if stepper implements [VariableCreator], its
// CreateVariables (e.g. local SGD, whose batches carry several workers' batches); that
// graph is only compiled and evaluated if it changes a variable (a loss that draws random
// numbers outside training too). To train several runs of one model, [Session] reuses the
// compiled graphs.
func Run(backend compute.Backend, store *model.Store, lossFn LossFn, ds *data.Dataset, stepper Stepper, cfg Config) (*history.History, error) {
	switch {
	case backend == nil:
		return nil, errors.New("train.Run: backend is nil")
	case store == nil:
		return nil, errors.New("train.Run: store is nil (create one with model.NewStore)")
	case lossFn == nil:
		return nil, errors.New("train.Run: lossFn is nil")
	case ds == nil:
		return nil, errors.New("train.Run: dataset is nil")
	case stepper == nil:
		return nil, errors.New("train.Run: stepper is nil")
	}
	cfg, err := cfg.validate(ds, stepper)
	if err != nil {
		return nil, fmt.Errorf("train.Run: %w", err)
	}
	cfg, stop := withInterrupts(cfg)
	defer stop()
	name := runName(cfg, stepper)
	hist := history.New(name, stepper.Name(), cfg.Seed)
	r := &runner{backend: backend, store: store, lossFn: lossFn, ds: ds, stepper: stepper, cfg: cfg, hist: hist}
	if cfg.CheckpointDir != "" {
		r.fingerprint = stepperFingerprint(stepper)
	}
	if err := r.run(); err != nil {
		return hist, fmt.Errorf("train.Run(%q): %w", name, err)
	}
	return hist, nil
}

// withInterrupts gives cfg a Context if it has none: one cancelled on SIGINT or SIGTERM
// until stop is called. After the first signal the previous handling is restored at once,
// so a second one acts as it would without the run.
func withInterrupts(cfg Config) (_ Config, stop func()) {
	if cfg.Context != nil {
		return cfg, func() {}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	cfg.Context = ctx
	return cfg, stop
}

// runName is the run's label: Config.Name, or the stepper's name.
func runName(cfg Config, stepper Stepper) string {
	if cfg.Name != "" {
		return cfg.Name
	}
	return stepper.Name()
}

type runner struct {
	backend compute.Backend
	store   *model.Store
	lossFn  LossFn
	ds      *data.Dataset
	stepper Stepper
	cfg     Config
	hist    *history.History

	exec *guardedExec
	eval *Evaluator
	// checked names the quantities whose finiteness the step checks: "loss", then the
	// paths of the float variables it updates.
	checked []string
	// changed lists the paths of the variables the step updates.
	changed []string
	// check is the graph of checkVariables (fast mode), compiled at its first use.
	check    *guardedExec
	ownCheck bool
	// snap holds the values of the variables of changed after step snapStep (fast mode).
	snap     map[string]*tensors.Tensor
	snapStep int
	// data holds the dataset's columns on the device (see deviceData), or nil: batches are
	// gathered on the host.
	data []*tensors.Tensor
	// loss and state are the outputs of the latest step.
	loss, state *tensors.Tensor
	// fingerprint describes the stepper's configuration (see stepperFingerprint), taken
	// before the run builds anything.
	fingerprint []string
	// forwardPrint and stepPrint describe the graphs createVariables and buildStep built
	// (see graphPrint): a Session compares them to reuse the compiled graphs.
	forwardPrint, stepPrint string
	// perm is the permutation of epoch permEpoch (see batch).
	perm      []int
	permEpoch int
}

func (r *runner) run() error {
	cfg := r.cfg
	startStep := 0
	resumed := false
	// lastSaved is the step of the newest checkpoint of this run on disk (-1: none).
	lastSaved := -1
	if cfg.CheckpointDir != "" {
		lock, err := lockDir(cfg.CheckpointDir)
		if err != nil {
			return err
		}
		defer lock.unlock()
		// No other run writes in the directory while this one holds its lock: every
		// temporary file there is left over from a crash.
		removeStaleTemps(cfg.CheckpointDir)
		ck, found, err := loadCheckpoint(cfg.CheckpointDir, r.store)
		if err != nil {
			return err
		}
		if found {
			if err := ck.compatible(r.stepper, r.fingerprint, r.ds, cfg); err != nil {
				return err
			}
			startStep, resumed, lastSaved = ck.Step, true, ck.Step
			r.hist.Records = append(r.hist.Records, ck.Records...)
			// Hyperparameters are not saved: variables created after the checkpoint (a
			// stepper's state created lazily from model.ParamInitialSeed) must see the seed.
			r.store.SetParam(model.ParamInitialSeed, cfg.Seed)
		}
	}
	if !resumed {
		if err := SeedStore(r.store, cfg.Seed); err != nil {
			return err
		}
	}
	if startStep >= cfg.Steps {
		return nil
	}
	// A checkpoint is only saved after the model's variables were created, so a resumed run
	// has them: creating them again would also run the loss once more, which must not
	// change the trajectory (e.g. through the random state).
	if !resumed {
		fwd, err := r.createVariables(startStep)
		if err != nil {
			return err
		}
		if fwd != nil {
			fwd.finalize()
		}
	}
	data, err := r.deviceData()
	if err != nil {
		return err
	}
	r.data, r.ownCheck = data, true
	defer finalizeTensors(r.data)
	if err := r.checkLoop(); err != nil {
		return err
	}
	if err := r.buildStep(); err != nil {
		return err
	}
	defer r.exec.finalize()
	// Compile the step before the clock starts: a history's wall time is training time, so
	// that curves against time compare optimizers, not compilers.
	if err := r.compileStep(); err != nil {
		return err
	}
	return r.train(startStep, lastSaved)
}

// train runs the steps after startStep with the compiled step r.exec; lastSaved is the
// step of the newest checkpoint of the run on disk (-1: none).
func (r *runner) train(startStep, lastSaved int) error {
	cfg := r.cfg
	var err error
	if cfg.Eval != nil {
		if r.eval, err = NewEvaluator(r.backend, r.store, r.lossFn, cfg.EvalMetrics, 0); err != nil {
			return err
		}
		defer r.eval.Finalize()
	}

	evalsPerStep := int64(r.stepper.LossEvalsPerStep())
	var elapsed time.Duration
	if last, ok := r.hist.Last(); ok {
		elapsed = time.Duration(last.Time * float64(time.Second))
	}
	save := func(step int) error {
		if cfg.CheckpointDir == "" || step == lastSaved {
			return nil
		}
		err := saveCheckpoint(cfg.CheckpointDir, r.store, checkpoint{
			Step: step, Seed: cfg.Seed, BatchSize: cfg.BatchSize, Stepper: r.stepper.Name(),
			Dataset: r.ds.Name(), DatasetSize: r.ds.Len(), Fingerprint: r.fingerprint, Records: r.hist.Records,
		})
		if err == nil {
			lastSaved = step
		}
		return err
	}
	// nonFinite adds to a NonFiniteError which checkpoint the run left on disk.
	nonFinite := func(err error) error {
		var nf *NonFiniteError
		if errors.As(err, &nf) && cfg.CheckpointDir != "" {
			return &keptCheckpointError{err: err, step: lastSaved, path: filepath.Join(cfg.CheckpointDir, CheckpointFile)}
		}
		return err
	}
	r.state = newState()
	defer func() {
		finalizeTensors([]*tensors.Tensor{r.loss, r.state})
		finalizeSnapshot(r.snap)
		r.loss, r.state, r.snap = nil, nil, nil
		if r.ownCheck && r.check != nil {
			r.check.finalize()
			r.check = nil
		}
	}()
	fast, syncEvery := r.fastMode(), r.syncEvery()
	if fast {
		// The stepper's variables get their initial values now rather than at the first
		// step (the same values: nothing runs in between), to copy them.
		if err := catch("initialising the stepper's variables", func() error {
			return r.store.InitializeVariables(r.backend, nil)
		}); err != nil {
			return err
		}
		if err := r.snapshot(startStep); err != nil {
			return err
		}
	}
	for step := startStep + 1; step <= cfg.Steps; step++ {
		if err := cfg.Context.Err(); err != nil {
			// Steps run since the state was last read may have gone non-finite.
			if _, nfErr := r.sync(step - 1); nfErr != nil {
				return nonFinite(nfErr)
			}
			return r.interrupted(step-1, err, save(step-1))
		}
		first := step
		step = r.chunkEnd(step)
		record := step%cfg.LogEvery == 0 || step == cfg.Steps
		saveNow := cfg.CheckpointEvery > 0 && step%cfg.CheckpointEvery == 0 && step != cfg.Steps
		start := time.Now()
		err := r.runSteps(first-1, step-first+1)
		var loss float64
		var skipped bool
		if err == nil && (record || saveNow || syncEvery) {
			skipped, err = r.sync(step)
			if err == nil && record {
				loss, err = r.lastLoss()
				if err != nil {
					err = fmt.Errorf("step %d: %w", step, err)
				}
			}
		}
		elapsed += time.Since(start)
		if err != nil {
			return nonFinite(err)
		}
		if obs, ok := r.stepper.(AfterStepper); ok {
			if err := obs.AfterStep(r.store, step, skipped); err != nil {
				return fmt.Errorf("step %d: %s.AfterStep: %w", step, r.stepper.Name(), err)
			}
		}
		if record {
			rec := history.Record{Step: step, Time: elapsed.Seconds(), Evals: int64(step) * evalsPerStep, Loss: loss}
			if skipped || cfg.Eval != nil {
				rec.Metrics = map[string]float64{}
			}
			if skipped {
				rec.Metrics["skipped"] = 1
			}
			if r.eval != nil {
				res, err := r.eval.Evaluate(cfg.Eval)
				if err != nil {
					return fmt.Errorf("step %d: evaluation: %w", step, err)
				}
				for k, v := range res {
					rec.Metrics["eval_"+k] = v
				}
			}
			r.hist.Add(rec)
			if cfg.OnStep != nil {
				if err := cfg.OnStep(r.hist); err != nil {
					return fmt.Errorf("step %d: OnStep: %w", step, err)
				}
			}
		}
		if saveNow {
			if err := save(step); err != nil {
				return err
			}
		}
	}
	return save(cfg.Steps)
}

// chunkEnd returns the last step of the chunk of steps that starts at step (1-based): up to
// StepsPerExecution steps, ending at the next recorded step or checkpoint.
func (r *runner) chunkEnd(step int) int {
	cfg := r.cfg
	end := min(cfg.Steps, step+cfg.StepsPerExecution-1)
	nextMultiple := func(m int) int { return (step + m - 1) / m * m }
	end = min(end, nextMultiple(cfg.LogEvery))
	if cfg.CheckpointEvery > 0 {
		end = min(end, nextMultiple(cfg.CheckpointEvery))
	}
	return end
}

// interrupted returns the error of a run interrupted (cause: the context's error) after
// step done, whose checkpoint was saved unless saveErr is not nil.
func (r *runner) interrupted(done int, cause error, saveErr error) error {
	what := fmt.Sprintf("interrupted at step %d of %d", done, r.cfg.Steps)
	if c := context.Cause(r.cfg.Context); c != nil && c != cause {
		what += fmt.Sprintf(" (%v)", c)
	}
	switch {
	case r.cfg.CheckpointDir == "":
		return fmt.Errorf("%s, without a checkpoint (Config.CheckpointDir is empty): %w", what, cause)
	case saveErr != nil:
		return errors.Join(fmt.Errorf("%s: %w", what, cause), saveErr)
	}
	return fmt.Errorf("%s: the checkpoint of step %d is in %s (run again with the same Config to resume): %w",
		what, done, filepath.Join(r.cfg.CheckpointDir, CheckpointFile), cause)
}

// keptCheckpointError adds to a NonFiniteError which checkpoint the run left on disk.
type keptCheckpointError struct {
	err  error
	step int // -1: none
	path string
}

// Error implements error.
func (e *keptCheckpointError) Error() string {
	if e.step < 0 {
		return fmt.Sprintf("%v; no checkpoint was saved before it", e.err)
	}
	return fmt.Sprintf("%v; the last good checkpoint, of step %d, is kept in %s", e.err, e.step, e.path)
}

// Unwrap returns the NonFiniteError.
func (e *keptCheckpointError) Unwrap() error { return e.err }

// createVariables creates the model's variables and initialises them before the step
// graph is built: steppers such as ZO need to know the trainable variables before their
// first loss evaluation. It builds the loss (forward only) on the first batch of the run,
// or, for a stepper that implements [VariableCreator], its CreateVariables. That graph is
// only compiled and run when it changes a variable (e.g. a loss that draws random numbers
// in evaluation too advances the Store's random state), which the run must then keep; it
// returns the compiled graph in that case, nil otherwise.
func (r *runner) createVariables(startStep int) (*guardedExec, error) {
	inputs, labels, err := r.ds.Batch(r.cfg.Seed, r.cfg.BatchSize, startStep)
	if err != nil {
		return nil, err
	}
	defer finalizeTensors(inputs, labels)
	changes := false
	_, err = buildOnly(r.backend, r.store, shapesOf(inputs, labels), func(scope *model.Scope, args []*graph.Node) string {
		loss := r.forwardGraph(scope, args)
		for v := range r.store.IterVariables() {
			changes = changes || v.ChangedInGraph(loss.Graph())
		}
		r.forwardPrint = graphPrint(r.store, loss.Graph(), loss)
		return ""
	})
	if err != nil {
		return nil, fmt.Errorf("creating the model's variables: %w", err)
	}
	if !changes {
		return nil, catch("initialising the model's variables", func() error {
			return r.store.InitializeVariables(r.backend, nil)
		})
	}
	var ge *guardedExec
	err = catch("creating the model's variables", func() error {
		exec, err := model.NewExec(r.backend, r.store, func(scope *model.Scope, inputsAndLabels []*graph.Node) *graph.Node {
			return r.forwardGraph(scope, inputsAndLabels)
		})
		if err != nil {
			return err
		}
		ge = &guardedExec{exec: exec}
		outs, err := ge.call(batchArgs(inputs, labels)...)
		finalizeTensors(outs)
		if err != nil {
			ge.finalize()
			ge = nil
		}
		return err
	})
	return ge, err
}

// forwardGraph builds the graph of createVariables: the loss (or the stepper's
// CreateVariables) on the first batch, forward only.
func (r *runner) forwardGraph(scope *model.Scope, inputsAndLabels []*graph.Node) *graph.Node {
	n := len(r.ds.Inputs())
	in, lb := inputsAndLabels[:n], inputsAndLabels[n:]
	if vc, ok := r.stepper.(VariableCreator); ok {
		loss := vc.CreateVariables(scope, r.lossFn, in, lb)
		checkScalarLoss(fmt.Sprintf("stepper %q: CreateVariables", r.stepper.Name()), inputsAndLabels[0].Graph(), loss)
		return loss
	}
	loss := r.lossFn(scope, in, lb)
	checkScalarLoss("the loss function", inputsAndLabels[0].Graph(), loss)
	return loss
}

// finalizeTensors frees the tensors of each list now rather than at garbage collection.
func finalizeTensors(lists ...[]*tensors.Tensor) {
	for _, l := range lists {
		for _, t := range l {
			if t != nil {
				_ = t.FinalizeAll()
			}
		}
	}
}

func batchArgs(inputs, labels []*tensors.Tensor) []any {
	args := make([]any, 0, len(inputs)+len(labels))
	for _, t := range inputs {
		args = append(args, t)
	}
	for _, t := range labels {
		args = append(args, t)
	}
	return args
}

// buildStep creates the step executable (compiled at its first call).
func (r *runner) buildStep() error {
	if err := r.createStepVariables(r.store); err != nil {
		return err
	}
	return catch("building the training step", func() error {
		exec, err := model.NewExec(r.backend, r.store, func(scope *model.Scope, args []*graph.Node) []*graph.Node {
			outs, checked, changed := r.stepGraph(scope, args)
			r.checked, r.changed = checked, changed
			r.stepPrint = graphPrint(scope.Store(), outs[0].Graph(), outs...)
			return outs
		})
		if err != nil {
			return err
		}
		r.exec = &guardedExec{exec: exec.WithName("train.Run:" + r.stepper.Name())}
		return nil
	})
}

// stepGraph builds the training step on the Store of scope, for the arguments of
// stepArgShapes: it returns the step's outputs (the loss and the new state), the names of
// the quantities whose finiteness it checks, and the paths of the variables it updates.
func (r *runner) stepGraph(scope *model.Scope, args []*graph.Node) (outs []*graph.Node, checked, changed []string) {
	if r.loop() {
		return r.loopGraph(scope, args)
	}
	return r.singleStepGraph(scope, args)
}

// singleStepGraph is stepGraph for one step per execution.
func (r *runner) singleStepGraph(scope *model.Scope, args []*graph.Node) (outs []*graph.Node, checked, changed []string) {
	store := scope.Store()
	numInputs, numCols := len(r.ds.Inputs()), len(r.ds.Inputs())+len(r.ds.Labels())
	g := args[0].Graph()
	store.SetTraining(g, true)
	batch := args[:numCols]
	if r.data != nil {
		// The batch's rows, gathered from the dataset on the device.
		idx := args[numCols]
		batch = make([]*graph.Node, numCols)
		for i, col := range args[:numCols] {
			batch[i] = graph.Gather(col, idx)
		}
	}
	state := args[len(args)-1]
	loss := r.stepper.BuildStep(scope, r.lossFn, batch[:numInputs], batch[numInputs:])
	checkScalarLoss(fmt.Sprintf("stepper %q: BuildStep", r.stepper.Name()), g, loss)
	stateOut, checked, changed := stepChecks(g, loss, state, changedVars(store, g), r.fastMode(), r.cfg.SkipNonFinite)
	return []*graph.Node{loss, stateOut}, checked, changed
}

// compileStep compiles the step executable for the shapes of its arguments.
func (r *runner) compileStep() error {
	argShapes, err := r.stepArgShapes()
	if err != nil {
		return err
	}
	return catch("compiling the training step", func() error {
		return r.exec.compile(argShapes...)
	})
}
