package train_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
	"github.com/goptlab/goptlab/mlx/zo"
)

// TestResumeRefusesOtherSettings resumes a checkpoint with another learning rate,
// optimizer, dataset or dataset size under the same stepper name: Run must refuse, naming
// what changed with both values, and leave the checkpoint as it was; with
// Config.ResumeAnyway it resumes. A checkpoint of format version 1 (no fingerprint) still
// resumes, with only its dataset name compared.
func TestResumeRefusesOtherSettings(t *testing.T) {
	backend := mlxtest.Backends(t)[0].Backend
	ds := data.LinearRegression()
	adam := func(lr float64) train.Stepper {
		cfg := optim.DefaultAdam()
		cfg.LR = lr
		return train.FirstOrder(must(optim.NewAdam(cfg)), "opt")
	}
	sgdOpt := func(lr float64) train.Stepper {
		cfg := optim.DefaultSGD()
		cfg.LR = lr
		return train.FirstOrder(must(optim.NewSGD(cfg)), "opt")
	}
	zoStepper := func(directions int, trace bool) train.Stepper {
		cfg := zo.DefaultConfig()
		cfg.LR, cfg.Directions, cfg.Trace, cfg.Name = 1e-3, directions, trace, "opt"
		return must(zo.New(cfg))
	}
	copied := must(data.New("linear-copy", ds.Inputs(), ds.Labels()))
	smaller := must(ds.Subset(ds.Name(), data.Range(0, ds.Len()-16)))
	config := func(dir string, steps int) train.Config {
		return train.Config{Steps: steps, Seed: 5, BatchSize: 16, CheckpointDir: dir, Context: context.Background()}
	}
	for _, tc := range []struct {
		name          string
		first, second train.Stepper
		ds            *data.Dataset
		version1      bool
		// noAnyway: the states differ, so even ResumeAnyway cannot resume (not tried).
		noAnyway bool
		want     []string // empty: the resume must succeed
	}{
		{name: "learning rate", first: adam(0.01), second: adam(0.02), ds: ds,
			want: []string{"optimizer.cfg.Common.LR: 0.01 in the checkpoint, 0.02 now"}},
		{name: "optimizer", first: adam(0.01), second: sgdOpt(0.01), ds: ds,
			want: []string{"optimizer.(type): *optim.Adam in the checkpoint, *optim.SGD now"}},
		{name: "dataset", first: adam(0.01), second: adam(0.01), ds: copied,
			want: []string{`dataset: "linear-regression" in the checkpoint, "linear-copy" now`}},
		{name: "dataset size", first: adam(0.01), second: adam(0.01), ds: smaller,
			want: []string{fmt.Sprintf("dataset size: %d examples in the checkpoint, %d now", ds.Len(), smaller.Len())}},
		{name: "zo directions", first: zoStepper(1, false), second: zoStepper(2, false), ds: ds, noAnyway: true,
			want: []string{"config.Directions: 1 in the checkpoint, 2 now"}},
		{name: "zo trace only", first: zoStepper(1, false), second: zoStepper(1, true), ds: ds},
		{name: "same settings", first: adam(0.01), second: adam(0.01), ds: ds},
		{name: "version 1, learning rate", first: adam(0.01), second: adam(0.02), ds: ds, version1: true},
		{name: "version 1, dataset", first: adam(0.01), second: adam(0.01), ds: copied, version1: true,
			want: []string{`dataset: "linear-regression" in the checkpoint, "linear-copy" now`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := train.Run(backend, model.NewStore(), linearLoss, ds, tc.first, config(dir, 2)); err != nil {
				t.Fatal(err)
			}
			if v, err := train.CheckpointVersion(dir); err != nil || v != 2 {
				t.Fatalf("the checkpoint's format version is %d (%v), want 2", v, err)
			}
			if tc.version1 {
				if err := train.RewriteCheckpointAsVersion1(dir); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, train.CheckpointFile)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			hist, err := train.Run(backend, model.NewStore(), linearLoss, tc.ds, tc.second, config(dir, 4))
			if len(tc.want) == 0 {
				if err != nil || len(hist.Records) != 4 {
					t.Fatalf("resume: %d records, error %v; want 4 records and no error", len(hist.Records), err)
				}
				return
			}
			if err == nil {
				t.Fatalf("the resume with another %s was accepted", tc.name)
			}
			for _, w := range append(tc.want, "Config.ResumeAnyway", dir) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, before) {
				t.Errorf("the refused resume changed the checkpoint (%v)", err)
			}
			if tc.noAnyway {
				return
			}
			cfg := config(dir, 4)
			cfg.ResumeAnyway = true
			hist, err = train.Run(backend, model.NewStore(), linearLoss, tc.ds, tc.second, cfg)
			if err != nil || len(hist.Records) != 4 {
				t.Fatalf("ResumeAnyway: %d records, error %v; want 4 records and no error", len(hist.Records), err)
			}
		})
	}
}
