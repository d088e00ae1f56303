package train

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/history"
)

// CheckpointFile is the name of the checkpoint file inside Config.CheckpointDir.
const CheckpointFile = "checkpoint.gob"

// checkpoint is the header of a checkpoint file; the Store's variables follow it.
type checkpoint struct {
	Step      int
	Seed      int64
	BatchSize int
	Stepper   string
	Dataset   string
	Records   []history.Record
}

// compatible checks that a checkpoint belongs to the run described by cfg.
func (c checkpoint) compatible(stepper string, cfg Config) error {
	if c.Seed != cfg.Seed || c.BatchSize != cfg.BatchSize || c.Stepper != stepper {
		return fmt.Errorf("the checkpoint in %s is from another run (seed %d, batch size %d, stepper %q), "+
			"not this one (seed %d, batch size %d, stepper %q): use another CheckpointDir or delete it",
			cfg.CheckpointDir, c.Seed, c.BatchSize, c.Stepper, cfg.Seed, cfg.BatchSize, stepper)
	}
	return nil
}

// savedVariable is the header of one variable in a checkpoint file; its tensor follows it.
type savedVariable struct {
	Path      string
	Trainable bool
}

// saveCheckpoint writes the header and every Store variable with a value to
// dir/CheckpointFile atomically: it writes a temporary file in dir, syncs it and renames it.
func saveCheckpoint(dir string, store *model.Store, ck checkpoint) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	f, err := os.CreateTemp(dir, CheckpointFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			err = fmt.Errorf("saving checkpoint of step %d to %s: %w", ck.Step, dir, err)
		}
	}()
	enc := gob.NewEncoder(f)
	if err = enc.Encode(ck); err != nil {
		return err
	}
	var vars []*model.Variable
	for v := range store.IterVariables() {
		if v.HasValue() {
			vars = append(vars, v)
		}
	}
	if err = enc.Encode(len(vars)); err != nil {
		return err
	}
	for _, v := range vars {
		value, verr := v.Value()
		if verr != nil {
			return fmt.Errorf("variable %q: %w", v.Path(), verr)
		}
		if err = enc.Encode(savedVariable{Path: v.Path(), Trainable: v.Trainable}); err != nil {
			return err
		}
		if err = value.GobSerialize(enc); err != nil {
			return fmt.Errorf("variable %q: %w", v.Path(), err)
		}
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, CheckpointFile))
}

// loadCheckpoint reads dir/CheckpointFile into store, creating the variables it lacks (in
// the saved order, so iteration order matches the saved run) and overwriting those it has.
// found is false if there is no checkpoint.
func loadCheckpoint(dir string, store *model.Store) (ck checkpoint, found bool, err error) {
	path := filepath.Join(dir, CheckpointFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ck, false, nil
	}
	if err != nil {
		return ck, false, fmt.Errorf("loading checkpoint: %w", err)
	}
	defer func() { _ = f.Close() }()
	wrap := func(err error) error { return fmt.Errorf("loading checkpoint %s: %w", path, err) }
	dec := gob.NewDecoder(f)
	if err := dec.Decode(&ck); err != nil {
		return ck, false, wrap(err)
	}
	var n int
	if err := dec.Decode(&n); err != nil {
		return ck, false, wrap(err)
	}
	for range n {
		var sv savedVariable
		if err := dec.Decode(&sv); err != nil {
			return ck, false, wrap(err)
		}
		value, err := tensors.GobDeserialize(dec)
		if err != nil {
			return ck, false, wrap(fmt.Errorf("variable %q: %w", sv.Path, err))
		}
		if v := store.GetVariable(sv.Path); v != nil {
			if !v.Shape().Equal(value.Shape()) {
				return ck, false, wrap(fmt.Errorf("variable %q has shape %s in the store and %s in the checkpoint",
					sv.Path, v.Shape(), value.Shape()))
			}
			if err := v.SetValue(value); err != nil {
				return ck, false, wrap(err)
			}
			v.Trainable = sv.Trainable
			continue
		}
		v, err := store.CreateVariable(sv.Path, value)
		if err != nil {
			return ck, false, wrap(err)
		}
		v.Trainable = sv.Trainable
	}
	return ck, true, nil
}
