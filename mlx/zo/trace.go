package zo

import (
	"errors"
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/internal/gomlxerr"
)

// StepTrace is what one ZO step needs to be replayed: one seed and one projected gradient
// per direction. A step discarded by train.Config.SkipNonFinite is marked Skipped.
type StepTrace struct {
	Step    int
	Seeds   []Seed
	GProj   []float64
	Skipped bool
}

// AfterStep implements train.AfterStepper: with Config.Trace set, it appends the step's
// seeds and projected gradients to the trace.
func (z *ZO) AfterStep(store *model.Store, step int, skipped bool) error {
	if !z.cfg.Trace {
		return nil
	}
	st := StepTrace{Step: step, Skipped: skipped}
	if !skipped {
		seedsVar, gprojVar := store.GetVariable(z.scope+"/"+seedsName), store.GetVariable(z.scope+"/"+gprojName)
		if seedsVar == nil || gprojVar == nil {
			return fmt.Errorf("zo: no step variables under %s: was the step built by this stepper?", z.scope)
		}
		seedsT, err := seedsVar.Value()
		if err != nil {
			return err
		}
		gprojT, err := gprojVar.Value()
		if err != nil {
			return err
		}
		rows, ok := seedsT.Value().([][]uint64)
		if !ok {
			return fmt.Errorf("zo: unexpected seeds value %s", seedsT.Shape())
		}
		for _, r := range rows {
			st.Seeds = append(st.Seeds, Seed{r[0], r[1], r[2]})
		}
		switch v := gprojT.Value().(type) {
		case []float32:
			for _, x := range v {
				st.GProj = append(st.GProj, float64(x))
			}
		case []float64:
			st.GProj = append(st.GProj, v...)
		default:
			return fmt.Errorf("zo: unexpected projected gradients value %s", gprojT.Shape())
		}
	}
	z.mu.Lock()
	z.trace = append(z.trace, st)
	z.mu.Unlock()
	return nil
}

// Trace returns a copy of the recorded steps (empty unless Config.Trace is set).
func (z *ZO) Trace() []StepTrace {
	z.mu.Lock()
	defer z.mu.Unlock()
	return append([]StepTrace(nil), z.trace...)
}

// Replay re-applies the updates of recorded steps to the trainable variables of store,
// without evaluating the loss: starting from the parameters (and optimizer state) the
// recorded run started from, it reproduces that run's parameters bit for bit, on the same
// backend and dtype as the recorded run (GoMLX's pure-Go backend and XLA CPU are tested,
// with the step built alone and inside train.Run, losses that end in a data-dependent
// product included). The update is built by the same code in the step and here, and the
// step computes each projected gradient once, so the value recorded is the value applied.
// A Rule (ZO-Adam) replays bit for bit as long as its own update is deterministic. Replays
// on another backend, or of a trace edited by hand, agree only to rounding. The store's
// trainable variables must be the same, in the same order, as in the recorded run.
// Skipped steps are skipped.
func (z *ZO) Replay(backend compute.Backend, store *model.Store, steps []StepTrace) (err error) {
	if backend == nil || store == nil {
		return errors.New("zo.Replay: backend and store are required")
	}
	vars := z.params(store)
	if len(vars) == 0 {
		return errors.New("zo.Replay: the store has no trainable float variables")
	}
	lossDType := vars[0].DType()
	shapesList := make([]shapes.Shape, len(vars))
	for i, v := range vars {
		shapesList[i] = v.Shape()
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("zo.Replay: %v", r)
		}
	}()
	exec, err := model.NewExec(backend, store, func(scope *model.Scope, seeds, gproj *graph.Node) *graph.Node {
		g := seeds.Graph()
		theta := make([]*graph.Node, len(vars))
		for i, v := range vars {
			theta[i] = v.NodeValue(g)
		}
		z.applyUpdate(scope, vars, theta, shapesList, z.masks(theta), seeds, gproj, nil)
		return graph.ReduceAllSum(gproj)
	})
	if err != nil {
		return fmt.Errorf("zo.Replay: %w", err)
	}
	defer exec.Finalize()
	for _, st := range steps {
		if st.Skipped {
			continue
		}
		if len(st.Seeds) != z.cfg.Directions || len(st.GProj) != z.cfg.Directions {
			return fmt.Errorf("zo.Replay: step %d has %d seeds and %d projected gradients, want %d (Directions)",
				st.Step, len(st.Seeds), len(st.GProj), z.cfg.Directions)
		}
		flat := make([]uint64, 0, 3*len(st.Seeds))
		for _, s := range st.Seeds {
			flat = append(flat, s[:]...)
		}
		seedsT := tensors.FromFlatDataAndDimensions(flat, len(st.Seeds), 3)
		var gprojT *tensors.Tensor
		switch lossDType {
		case dtypes.Float32:
			g32 := make([]float32, len(st.GProj))
			for i, x := range st.GProj {
				g32[i] = float32(x)
			}
			gprojT = tensors.FromValue(g32)
		default:
			gprojT = tensors.FromValue(append([]float64(nil), st.GProj...))
		}
		outs, err := exec.Call(seedsT, gprojT)
		if err != nil {
			return fmt.Errorf("zo.Replay: step %d: %w", st.Step, err)
		}
		for _, o := range outs {
			_ = o.FinalizeAll()
		}
	}
	return nil
}

// SampleZ returns the perturbation z that the seed of one direction (a [StepTrace] entry)
// generated for the variables of store that z perturbs, keyed by variable path, in the
// stepper's Distribution and without its Mask (a mask zeroes entries of z where it is 0):
// the direction of a recorded step, without knowing the order in which a step generates z.
// store must hold the same trainable variables as the recorded run.
func (z *ZO) SampleZ(backend compute.Backend, store *model.Store, seed Seed) (map[string]*tensors.Tensor, error) {
	if store == nil {
		return nil, errors.New("zo.ZO.SampleZ: store is nil")
	}
	vars := z.params(store)
	if len(vars) == 0 {
		return nil, errors.New("zo.ZO.SampleZ: the store has no trainable float variables")
	}
	shapesList := make([]shapes.Shape, len(vars))
	for i, v := range vars {
		shapesList[i] = v.Shape()
	}
	zs, err := SampleZ(backend, seed, shapesList, z.cfg.Distribution)
	if err != nil {
		return nil, fmt.Errorf("zo.ZO.SampleZ: %w", err)
	}
	out := make(map[string]*tensors.Tensor, len(vars))
	for i, v := range vars {
		out[v.Path()] = zs[i]
	}
	return out, nil
}

// SampleZ returns the perturbation z of distribution dist that a seed generates for
// variables of the given shapes, without any mask: for analysis and tests. The order
// matters: a step generates z for the trainable float variables of the store outside the
// stepper's Scope, in the store's order (model.Store.IterVariables); [ZO.SampleZ] does
// that for you and keys the result by variable path.
func SampleZ(backend compute.Backend, seed Seed, shapesList []shapes.Shape, dist Distribution) ([]*tensors.Tensor, error) {
	if backend == nil {
		return nil, errors.New("zo.SampleZ: backend is nil")
	}
	if len(shapesList) == 0 {
		return nil, errors.New("zo.SampleZ: no shapes given")
	}
	for i, s := range shapesList {
		if !s.DType.IsFloat() {
			return nil, fmt.Errorf("zo.SampleZ: shapes[%d]=%s: must be a float dtype", i, s)
		}
	}
	var out []*tensors.Tensor
	err := gomlxerr.Catch(func() error {
		exec, err := graph.NewExec(backend, func(s *graph.Node) []*graph.Node { return sampleZ(s, shapesList, dist) })
		if err != nil {
			return err
		}
		defer exec.Finalize()
		out, err = exec.Call(tensors.FromValue(seed[:]))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("zo.SampleZ: %w", err)
	}
	return out, nil
}
