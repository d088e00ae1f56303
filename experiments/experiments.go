// Package experiments holds what the experiment families (experiments/adan, ...) share:
// run sizes, optimizers built by name, the MNIST splits, and the result files.
//
// Each family is a library with a Run(ctx, Config) (*Result, error) that a notebook calls,
// and a subcommand of the CLI `go run ./experiments/cmd/experiment`. A family measures
// one value per seed for each claim of ../CLAIMS in its package documentation and lets
// package verdict judge it by a rule fixed in code before the run.
package experiments

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goptlab/goptlab/experiments/verdict"
	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/sweep"
	"github.com/goptlab/goptlab/mlx/train"
)

// Size selects how big an experiment runs.
type Size string

// The sizes every family offers.
const (
	// Tiny runs in seconds: a smoke test of the whole pipeline (its verdicts mean little).
	Tiny Size = "tiny"
	// Default runs in minutes on 2 CPU cores.
	Default Size = "default"
	// Paper is the size meant for a GPU: closer to the papers' settings.
	Paper Size = "paper"
)

// Sizes lists the sizes in increasing order.
var Sizes = []Size{Tiny, Default, Paper}

// ParseSize returns the size named s.
func ParseSize(s string) (Size, error) {
	if slices.Contains(Sizes, Size(s)) {
		return Size(s), nil
	}
	return "", fmt.Errorf("unknown size %q: use one of %v", s, Sizes)
}

// Claim is one claim of a paper with its measured values and verdict.
type Claim struct {
	// ID names the claim within its family, e.g. "half-cost-vs-adam".
	ID string `json:"id"`
	// Text quotes or paraphrases the claim.
	Text      string             `json:"text"`
	Judgement *verdict.Judgement `json:"judgement"`
}

// Timing holds an experiment's measurements that depend on the machine and its load, and
// so differ from run to run: claims about time, and the experiment's wall time. It is
// written to timing.json, apart from the deterministic result.json.
type Timing struct {
	Claims      []Claim `json:"claims,omitempty"`
	WallSeconds float64 `json:"wall_seconds"`
}

// FirstOrderNames lists the optimizers [FirstOrder] builds.
var FirstOrderNames = []string{"sgd", "adam", "adamw", "adan", "adahessian"}

// FirstOrder returns a train.Stepper for the named optimizer at learning rate lr, with the
// defaults of mlx/optim otherwise ("sgd" is SGD with Nesterov momentum 0.9): sweep.Stepper
// restricted to [FirstOrderNames].
func FirstOrder(name string, lr float64) (train.Stepper, error) {
	if !slices.Contains(FirstOrderNames, name) {
		return nil, fmt.Errorf("unknown optimizer %q: use one of %s", name, strings.Join(FirstOrderNames, ", "))
	}
	s, err := sweep.Stepper(name, sweep.Params{"lr": lr})
	if err != nil {
		return nil, fmt.Errorf("optimizer %s at lr %g: %w", name, lr, err)
	}
	return s, nil
}

// MNISTSplits loads MNIST (from dir, or where data.LoadMNIST looks when dir is empty) and
// returns the first trainN examples of its training split for training, the last valN
// examples of the training split for validation (held out: used to pick learning rates
// and to measure steps to a target), and the first testN examples of the test split.
func MNISTSplits(dir string, layout data.Layout, trainN, valN, testN int) (trainSet, val, test *data.Dataset, err error) {
	full, fullTest, err := data.LoadMNIST(dir, layout)
	if err != nil {
		return nil, nil, nil, err
	}
	switch {
	case trainN < 1 || valN < 1 || trainN+valN > full.Len():
		return nil, nil, nil, fmt.Errorf("MNIST splits: train %d + validation %d examples: each must be >= 1 and together at most %d",
			trainN, valN, full.Len())
	case testN < 1 || testN > fullTest.Len():
		return nil, nil, nil, fmt.Errorf("MNIST splits: test %d examples: must be in [1, %d]", testN, fullTest.Len())
	}
	if trainSet, err = full.Subset("mnist-train", data.Range(0, trainN)); err != nil {
		return nil, nil, nil, err
	}
	if val, err = full.Subset("mnist-val", data.Range(full.Len()-valN, full.Len())); err != nil {
		return nil, nil, nil, err
	}
	if test, err = fullTest.Subset("mnist-test", data.Range(0, testN)); err != nil {
		return nil, nil, nil, err
	}
	return trainSet, val, test, nil
}

// WriteFiles writes an experiment's outputs into dir (created if needed): result.json
// (the deterministic result: same configuration and backend, same bytes; it must have
// the fields "family", "size", "backend" and "claims" that the report reads), timing.json
// (wall-clock measurements) and histories.json (every evaluation run's history). Each file
// is written to a temporary file and renamed, so an interrupted write leaves the old file
// or none, never a partial one.
func WriteFiles(dir string, result any, timing Timing, histories []*history.History) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("experiment files: %w", err)
	}
	for name, v := range map[string]any{"result.json": result, "timing.json": timing} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("experiment files: encoding %s: %w", name, err)
		}
		if err := writeAtomic(filepath.Join(dir, name), append(b, '\n')); err != nil {
			return err
		}
	}
	if len(histories) > 0 {
		if err := history.Save(filepath.Join(dir, "histories.json"), histories...); err != nil {
			return fmt.Errorf("experiment files: %w", err)
		}
	}
	return nil
}

// writeAtomic writes b to path through a temporary file in the same folder and a rename.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing left to remove
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
