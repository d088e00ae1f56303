package history

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/goptlab/goptlab/mlx/internal/atomicfile"
)

// fileFormat reads and writes one kind of history file.
type fileFormat struct {
	read  func(io.Reader) ([]*History, error)
	write func(io.Writer, ...*History) error
}

// formatFor returns the format of the file at path from its extension, ".csv" or ".json"
// (case-insensitive); op names the caller in the error.
func formatFor(op, path string) (fileFormat, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return fileFormat{ReadCSV, WriteCSV}, nil
	case ".json":
		return fileFormat{ReadJSON, WriteJSON}, nil
	}
	return fileFormat{}, fmt.Errorf("%s %s: unknown extension %q (want .csv or .json)", op, path, filepath.Ext(path))
}

// saveWriteHook, if set (tests only), wraps the writer of Save's temporary file, to inject
// write errors or crashes in the middle of a save.
var saveWriteHook func(io.Writer) io.Writer

// Save writes the histories to the file at path, as CSV if its name ends in ".csv" or as
// JSON if it ends in ".json" (case-insensitive). See [WriteCSV] and [WriteJSON].
//
// The file is replaced atomically: the histories are written to a temporary file in the same
// directory (named "." + the file's name + ".*.tmp"), which is synced and then renamed over
// path. Histories that cannot be written (see [History.Validate]; CSV also rejects empty
// histories and two with the same name, optimizer and seed), a failed write, or a crash or
// kill during the save leave an existing file at path as it was.
func Save(path string, hs ...*History) error {
	format, err := formatFor("history.Save", path)
	if err != nil {
		return err
	}
	pattern := "." + filepath.Base(path) + ".*.tmp"
	err = atomicfile.Write(path, pattern, 0o644, func(w io.Writer) error {
		if saveWriteHook != nil {
			w = saveWriteHook(w)
		}
		bw := bufio.NewWriterSize(w, 1<<16)
		if err := format.write(bw, hs...); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("history.Save %s: %w", path, err)
	}
	return nil
}

// Load reads the histories in the file at path, as CSV if its name ends in ".csv" or as
// JSON if it ends in ".json" (case-insensitive). See [ReadCSV] and [ReadJSON].
func Load(path string) ([]*History, error) {
	format, err := formatFor("history.Load", path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history.Load: %w", err)
	}
	defer f.Close()
	hs, err := format.read(f)
	if err != nil {
		return nil, fmt.Errorf("history.Load %s: %w", path, err)
	}
	return hs, nil
}
