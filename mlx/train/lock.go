package train

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// LockFile is the name of the lock file that [Run] holds in Config.CheckpointDir while it
// runs (see the package documentation); it holds the process id of the run holding it.
const LockFile = "checkpoint.lock"

// dirLock is the lock of a checkpoint directory held by one run.
type dirLock struct{ f *os.File }

// errLocked is returned by lockFile when another open file holds the lock.
var errLocked = errors.New("locked")

// lockDir creates dir if needed and takes the lock of its LockFile, without waiting: if
// another run holds it, the error names that run's process id and the directory.
func lockDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the checkpoint directory: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file of the checkpoint directory: %w", err)
	}
	if err := lockFile(f); err != nil {
		holder := "another process"
		if errors.Is(err, errLocked) {
			b, _ := os.ReadFile(path)
			if pid, perr := strconv.Atoi(string(bytes.TrimSpace(b))); perr == nil {
				holder = "process " + strconv.Itoa(pid)
				if pid == os.Getpid() {
					holder += " (this one)"
				}
			}
			err = fmt.Errorf("the checkpoint directory %s is in use by another run, of %s, which holds %s: "+
				"wait for it to finish or use another CheckpointDir", dir, holder, path)
		} else {
			err = fmt.Errorf("locking %s: %w", path, err)
		}
		_ = f.Close()
		return nil, err
	}
	// Record who holds the lock, for the error of a run that finds it taken.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// unlock releases the lock (closing the file releases it).
func (l *dirLock) unlock() {
	_ = l.f.Truncate(0)
	_ = l.f.Close()
}
