package history

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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

// Save writes the histories to the file at path, as CSV if its name ends in ".csv" or as
// JSON if it ends in ".json" (case-insensitive). See [WriteCSV] and [WriteJSON].
func Save(path string, hs ...*History) (err error) {
	format, err := formatFor("history.Save", path)
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
	if err := format.write(f, hs...); err != nil {
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
