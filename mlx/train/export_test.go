package train

import (
	"bytes"
	"io"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/history"
)

// Test-only access to the checkpoint internals, for the external tests of this package.

// SetCheckpointWriteHook makes every checkpoint write go through hook(file) until restore is called.
func SetCheckpointWriteHook(hook func(io.Writer) io.Writer) (restore func()) {
	old := checkpointWriteHook
	checkpointWriteHook = hook
	return func() { checkpointWriteHook = old }
}

// SaveCheckpoint saves store as the checkpoint of step in dir, with the given history records.
func SaveCheckpoint(dir string, store *model.Store, step int, seed int64, records []history.Record) error {
	return saveCheckpoint(dir, store, checkpoint{Step: step, Seed: seed, BatchSize: 1, Stepper: "test",
		Dataset: "test", Records: records})
}

// LoadCheckpoint loads the checkpoint of dir into store and returns its step and records.
func LoadCheckpoint(dir string, store *model.Store) (step int, records []history.Record, found bool, err error) {
	ck, found, err := loadCheckpoint(dir, store)
	return ck.Step, ck.Records, found, err
}

// DecodeCheckpoint decodes a checkpoint file's bytes and returns its step, records and
// number of variables.
func DecodeCheckpoint(b []byte) (step int, records []history.Record, numVars int, err error) {
	ck, vars, err := decodeCheckpoint(bytes.NewReader(b), int64(len(b)))
	return ck.Step, ck.Records, len(vars), err
}

// DecodeCheckpointHeader decodes b as a checkpoint's header (without the file's prefix and
// checksums), whose variables take dataBytes.
func DecodeCheckpointHeader(b []byte, dataBytes int64) error {
	_, _, err := decodeHeader(b, dataBytes, checkpointVersion)
	return err
}

// CheckpointLayout returns the offset of the header in a checkpoint file (its length is
// the uint32 just before it).
func CheckpointLayout() (headerOffset int) { return fixedPrefixBytes }

// RewriteCheckpointAsVersion1 rewrites the checkpoint of dir in format version 1 (without
// the dataset size and the stepper's fingerprint), as earlier versions of Run wrote it.
func RewriteCheckpointAsVersion1(dir string) error {
	path := filepath.Join(dir, CheckpointFile)
	ck, vars, err := readCheckpoint(path)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := encodeCheckpointVersion(&b, ck, vars, 1); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// CheckpointVersion returns the format version of the checkpoint file of dir.
func CheckpointVersion(dir string) (int, error) {
	ck, _, err := readCheckpoint(filepath.Join(dir, CheckpointFile))
	return ck.Version, err
}

// SetDeviceDataLimit sets the largest dataset a run copies to the device until restore is
// called (0: every dataset's batches are gathered on the host).
func SetDeviceDataLimit(bytes int64) (restore func()) {
	old := deviceDataLimit
	deviceDataLimit = bytes
	return func() { deviceDataLimit = old }
}
