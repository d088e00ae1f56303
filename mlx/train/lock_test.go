package train_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/train"
)

// pausingWriter passes writes through to w. The first write of all the pausingWriters
// sharing first (a flag) closes paused and waits until resume is closed.
type pausingWriter struct {
	w      io.Writer
	first  *atomic.Bool
	paused chan struct{}
	resume chan struct{}
}

func (p *pausingWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if p.first.CompareAndSwap(true, false) {
		close(p.paused)
		<-p.resume
	}
	return n, err
}

// TestSecondRunOnACheckpointDirIsRefused starts a run whose first checkpoint write pauses
// half-way, then starts a second run on the same directory: the second must fail, naming
// the directory and the first run's process, and leave the first's temporary file alone;
// the first must then finish and leave a checkpoint that a later run resumes.
func TestSecondRunOnACheckpointDirIsRefused(t *testing.T) {
	backend := mlxtest.Backends(t)[0].Backend
	ds := data.LinearRegression()
	dir := t.TempDir()
	cfg := train.Config{Steps: 2, Seed: 3, CheckpointDir: dir, CheckpointEvery: 1, Context: context.Background()}

	paused, resume, first := make(chan struct{}), make(chan struct{}), &atomic.Bool{}
	first.Store(true)
	restore := train.SetCheckpointWriteHook(func(w io.Writer) io.Writer {
		return &pausingWriter{w: w, first: first, paused: paused, resume: resume}
	})
	defer restore()
	firstErr := make(chan error, 1)
	go func() {
		_, err := train.Run(backend, model.NewStore(), linearLoss, ds, sgd(0.05), cfg)
		firstErr <- err
	}()
	<-paused
	if tmp := tempFiles(t, dir); len(tmp) != 1 {
		t.Fatalf("the paused checkpoint write should have one temporary file, found %v", tmp)
	}

	_, err := train.Run(backend, model.NewStore(), linearLoss, ds, sgd(0.05), cfg)
	close(resume)
	if err == nil {
		t.Fatal("a second run on the same checkpoint directory was accepted")
	}
	for _, want := range []string{"in use by another run", dir, "process " + strconv.Itoa(os.Getpid()), filepath.Join(dir, train.LockFile)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the second run's error %q does not contain %q", err, want)
		}
	}
	if err := <-firstErr; err != nil {
		t.Fatalf("the first run failed: %v", err)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}

	// The directory is free again: a longer run resumes from the first one's checkpoint.
	cfg.Steps = 3
	hist, err := train.Run(backend, model.NewStore(), linearLoss, ds, sgd(0.05), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Records) != 3 {
		t.Fatalf("the resumed run has %d records, want 3", len(hist.Records))
	}
}
