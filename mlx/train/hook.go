package train

import "github.com/gomlx/gomlx/ml/model"

// AfterStepper is optionally implemented by a [Stepper] that looks at the Store after each
// executed step, e.g. to record the random seeds and projected gradients of a
// zeroth-order step. [Run] calls AfterStep after every step, with the 1-based step number
// and whether the step's update was discarded (Config.SkipNonFinite); an error stops the run.
type AfterStepper interface {
	AfterStep(store *model.Store, step int, skipped bool) error
}
