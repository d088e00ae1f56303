package history

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Save writes the histories to the file at path, as CSV if its name ends in ".csv" or as
// JSON if it ends in ".json" (case-insensitive). See [WriteCSV] and [WriteJSON].
func Save(path string, hs ...*History) (err error) {
	write, err := writerFor(path)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("history.Save: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("history.Save %s: %w", path, cerr)
		}
	}()
	if err := write(f, hs...); err != nil {
		return fmt.Errorf("history.Save %s: %w", path, err)
	}
	return nil
}

// Load reads the histories in the file at path, as CSV if its name ends in ".csv" or as
// JSON if it ends in ".json" (case-insensitive). See [ReadCSV] and [ReadJSON].
func Load(path string) ([]*History, error) {
	var read func(io.Reader) ([]*History, error)
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		read = ReadCSV
	case ".json":
		read = ReadJSON
	default:
		return nil, fmt.Errorf("history.Load %s: unknown extension %q (want .csv or .json)", path, filepath.Ext(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history.Load: %w", err)
	}
	defer f.Close()
	hs, err := read(f)
	if err != nil {
		return nil, fmt.Errorf("history.Load %s: %w", path, err)
	}
	return hs, nil
}

func writerFor(path string) (func(io.Writer, ...*History) error, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return WriteCSV, nil
	case ".json":
		return WriteJSON, nil
	}
	return nil, fmt.Errorf("history.Save %s: unknown extension %q (want .csv or .json)", path, filepath.Ext(path))
}
