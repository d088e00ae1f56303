package localsgd

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Communication counts the numbers (floats, one per tensor element whatever its dtype)
// that one round would send from the workers to the server: each worker uploads every
// averaged variable once per round. An all-reduce or the broadcast of the new global
// model back to the workers moves the same amount again in the other direction.
type Communication struct {
	// Workers is K.
	Workers int
	// Trainable is the number of trainable parameters of the model.
	Trainable int
	// ModelState is the number of non-trainable model floats averaged as well
	// (batch-norm running statistics and the like).
	ModelState int
	// Optimizer is the size of one worker's inner optimizer state (Adam: two moments
	// and a step counter); it is sent only when State is AverageState.
	Optimizer int
	// State is the configured optimizer-state mode.
	State StateMode
	// Variables lists the Store paths of the averaged model variables.
	Variables []string
	// OptimizerVariables lists the Store paths of the optimizer's per-worker state.
	OptimizerVariables []string
}

// Model is the number of floats of the whole model state that one worker sends per round.
func (c Communication) Model() int { return c.Trainable + c.ModelState }

// PerWorker is what one worker sends per round: the model, plus its optimizer state
// if withOptimizer.
func (c Communication) PerWorker(withOptimizer bool) int {
	if withOptimizer {
		return c.Model() + c.Optimizer
	}
	return c.Model()
}

// Total is what all K workers send per round.
func (c Communication) Total(withOptimizer bool) int { return c.Workers * c.PerWorker(withOptimizer) }

// Sent is what the configured State mode actually sends per round, in total.
func (c Communication) Sent() int { return c.Total(c.State == AverageState) }

// WriteTable writes the floats-per-round table: per worker and total, with and
// without the optimizer state, and their ratio.
func (c Communication) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "floats per round (K=%d)\tper worker\ttotal\t\n", c.Workers)
	fmt.Fprintf(tw, "model only (%d trainable + %d state)\t%d\t%d\t\n", c.Trainable, c.ModelState,
		c.PerWorker(false), c.Total(false))
	fmt.Fprintf(tw, "model + optimizer state (%d)\t%d\t%d\t\n", c.Optimizer, c.PerWorker(true), c.Total(true))
	ratio := 0.0
	if c.PerWorker(false) > 0 {
		ratio = float64(c.PerWorker(true)) / float64(c.PerWorker(false))
	}
	fmt.Fprintf(tw, "ratio with/without optimizer state\t%.3f\t%.3f\t\n", ratio, ratio)
	return tw.Flush()
}
