package zoexp

import (
	"bytes"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"sync"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"k8s.io/klog/v2"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/train"
)

// Memory sources.
const (
	// SourceXLA: measured, from the compiled executable's memory statistics (XLA's buffer assignment).
	SourceXLA = "measured: XLA compiled memory statistics of one step's executable"
	// SourceDesign: computed, when the backend gives no statistics (GoMLX's pure-Go backend).
	SourceDesign = "computed, not measured: parameter copies of the design (θ in and out, momentum buffers in and out, " +
		"SGD's gradient) plus the batch; activations and temporaries not counted"
)

// MemoryRow is the memory of one step of a method ("forward": one forward pass, the loss only).
type MemoryRow struct {
	Method string `json:"method"`
	Source string `json:"source"`
	// Inputs (parameters, optimizer state, batch), Outputs (new parameters and state, loss),
	// Aliases (outputs in an input's buffer) and Temporary, in bytes.
	Inputs    int64 `json:"inputs"`
	Outputs   int64 `json:"outputs"`
	Aliases   int64 `json:"aliases"`
	Temporary int64 `json:"temporary"`
	// Peak is Inputs + Outputs − Aliases + Temporary: what one call needs at most.
	Peak int64 `json:"peak"`
	// BeyondForward is Peak minus the forward pass's Peak, also in float32 parameter copies.
	BeyondForward       int64   `json:"beyond_forward"`
	BeyondForwardCopies float64 `json:"beyond_forward_copies"`
}

// xlaMemoryRE matches go-xla v0.4.5's log line of a compiled executable's memory statistics.
var xlaMemoryRE = regexp.MustCompile(`Memory usage: On Device: \[Code:([^,\]]+), Inputs:([^,\]]+), Outputs:([^,\]]+), Aliases:([^,\]]+), Temporary:([^,\]]+)\]`)

// sizeRE matches GoMLX's humanize.Bytes rendering: "4 B", "595.8 KiB", "1.2 MiB".
var sizeRE = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?) (B|KiB|MiB|GiB|TiB)\s*$`)

// parseSize reads a size rendered by humanize.Bytes (rounded to 0.1 of its unit).
func parseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("zoexp: cannot read the size %q", s)
	}
	x, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("zoexp: cannot read the size %q: %w", s, err)
	}
	unit := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	return int64(x*unit + 0.5), nil
}

// parseMemoryLog returns the statistics of the largest executable (by inputs + outputs +
// temporaries) logged in log, and false if none is.
func parseMemoryLog(log string) (MemoryRow, bool, error) {
	var best MemoryRow
	found := false
	for _, m := range xlaMemoryRE.FindAllStringSubmatch(log, -1) {
		var v [4]int64
		for i := range v {
			x, err := parseSize(m[i+2])
			if err != nil {
				return MemoryRow{}, false, err
			}
			v[i] = x
		}
		r := MemoryRow{Source: SourceXLA, Inputs: v[0], Outputs: v[1], Aliases: v[2], Temporary: v[3]}
		r.Peak = r.Inputs + r.Outputs - r.Aliases + r.Temporary
		if !found || r.Inputs+r.Outputs+r.Temporary > best.Inputs+best.Outputs+best.Temporary {
			best, found = r, true
		}
	}
	return best, found, nil
}

// klogMu serialises the capture of klog's output.
var klogMu sync.Mutex

// lockedBuffer is a bytes.Buffer safe for klog's writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// captureVerboseLog runs fn with klog at verbosity 1 writing into a buffer (not stderr),
// and returns what was logged. go-xla v0.4.5 reports an executable's compiled memory
// statistics only in such a log line. klog's settings are restored afterwards.
func captureVerboseLog(fn func() error) (string, error) {
	klogMu.Lock()
	defer klogMu.Unlock()
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	settings := []struct{ name, value string }{
		{"logtostderr", "false"}, {"alsologtostderr", "false"}, {"stderrthreshold", "FATAL"}, {"v", "1"},
	}
	old := make([]string, len(settings))
	for i, s := range settings {
		f := fs.Lookup(s.name)
		if f == nil {
			return "", fmt.Errorf("zoexp: klog has no flag -%s", s.name)
		}
		old[i] = f.Value.String()
	}
	buf := &lockedBuffer{}
	klog.SetOutput(buf)
	defer func() {
		klog.Flush()
		for i := len(settings) - 1; i >= 0; i-- {
			_ = fs.Set(settings[i].name, old[i])
		}
		klog.SetOutput(nil)
	}()
	for _, s := range settings {
		if err := fs.Set(s.name, s.value); err != nil {
			return "", fmt.Errorf("zoexp: klog -%s=%s: %w", s.name, s.value, err)
		}
	}
	err := fn()
	klog.Flush()
	return buf.String(), err
}

// memory measures one step of each method (and a forward pass) on a fresh model and a
// batch of the training set.
func (e *runner) memory(d *mnist) ([]MemoryRow, error) {
	cfg := e.cfg
	mlp := models.MLPConfig{Hidden: cfg.Hidden, Outputs: 10}
	lossFn := models.Classifier(mlp.Fn())
	batch, err := d.train.Subset("batch", data.Range(0, cfg.BatchSize))
	if err != nil {
		return nil, fmt.Errorf("zoexp: memory: %w", err)
	}
	inputs, labels := batch.All()
	paramBytes := int64(4 * mlp.NumParams(784))
	batchBytes := int64(cfg.BatchSize * (784*4 + 4))
	var rows []MemoryRow
	for _, method := range append([]string{"forward"}, Methods...) {
		var stepper train.Stepper
		if method != "forward" {
			if stepper, err = cfg.stepper(method, cfg.LRGrid[method][0]); err != nil {
				return nil, err
			}
		}
		store := model.NewStore()
		if err := train.SeedStore(store, 1); err != nil {
			return nil, fmt.Errorf("zoexp: memory: %w", err)
		}
		if _, err := train.Evaluate(e.backend, store, lossFn, batch, nil, 0); err != nil { // creates the variables
			return nil, fmt.Errorf("zoexp: memory: %w", err)
		}
		log, err := captureVerboseLog(func() error {
			exec, err := model.NewExec(e.backend, store, func(scope *model.Scope, x, y *graph.Node) *graph.Node {
				xs, ys := []*graph.Node{x}, []*graph.Node{y}
				if stepper == nil {
					return lossFn(scope, xs, ys)
				}
				store.SetTraining(x.Graph(), true)
				return stepper.BuildStep(scope, lossFn, xs, ys)
			})
			if err != nil {
				return err
			}
			defer exec.Finalize()
			outs, err := exec.Call(inputs[0], labels[0])
			for _, o := range outs {
				o.FinalizeAll()
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("zoexp: memory of %s: %w", method, err)
		}
		row, found, err := parseMemoryLog(log)
		if err != nil {
			return nil, fmt.Errorf("zoexp: memory of %s: %w", method, err)
		}
		if !found {
			copies := map[string]int64{"forward": 1, MeZO: 2, SparseMeZO: 2, MeZOMomentum: 4, SGD: 3}[method]
			row = MemoryRow{Source: SourceDesign, Peak: copies*paramBytes + batchBytes}
		}
		row.Method = method
		rows = append(rows, row)
	}
	for i := range rows {
		rows[i].BeyondForward = rows[i].Peak - rows[0].Peak
		rows[i].BeyondForwardCopies = float64(rows[i].BeyondForward) / float64(paramBytes)
		e.logf("memory of one %s step: peak %d bytes, %.2f parameter copies beyond a forward pass (%s)",
			rows[i].Method, rows[i].Peak, rows[i].BeyondForwardCopies, rows[i].Source)
	}
	return rows, nil
}
