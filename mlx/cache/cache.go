// Package cache keeps results between notebook cells.
//
// GoNB runs every cell as a new program, so a variable computed in one cell is gone in
// the next. [LoadOrCompute] is the way to keep a result: the first cell that asks for it
// computes it and stores it on disk; any later cell (or a re-run of the same cell, or
// another kernel) that asks with the same name and key loads it instead, in milliseconds:
//
//	res, err := cache.LoadOrCompute("adan", cfg, func() (*adan.Result, error) {
//		return adan.Run(ctx, cfg, os.Stdout)
//	})
//
// An entry is keyed by its name, the key (any value encoding/json can encode: a
// configuration struct, say), the result's Go type, and the code's version: a hash of
// this module's Go sources (see [CodeVersion]; the notebooks' Jupytext pairs in
// notebooks/_go do not count). Change the configuration or edit the
// library, and the next call computes afresh. A failed computation stores nothing, so a
// cell that crashed leaves the next one computing instead of failing on a missing file.
//
// Values are stored with encoding/gob (so NaN and ±Inf survive, and so do fields that
// JSON leaves out), each in its own file written atomically (temporary file, fsync,
// rename). An unreadable entry (say, from a type whose fields changed) is computed again
// and replaced.
//
// The entries live in $GOPTLAB_CACHE_DIR if set, else in this repository's .cache/results
// folder (the kernel and the Makefile run inside the repository; nothing is written to
// your home folder). [Clear] removes them.
package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/goptlab/goptlab/mlx/internal/atomicfile"
)

// DirEnv names the environment variable that overrides the cache folder.
const DirEnv = "GOPTLAB_CACHE_DIR"

// Dir returns the cache folder: $GOPTLAB_CACHE_DIR, else <module root>/.cache/results.
func Dir() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		return d, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", fmt.Errorf("cache: set $%s to a folder: %w", DirEnv, err)
	}
	return filepath.Join(root, ".cache", "results"), nil
}

// LoadOrCompute returns the value stored under (name, key) if there is one, and
// otherwise calls compute, stores its result, and returns it. loaded says which happened.
// name is a short label for people (it starts the file's name); key is anything that
// encoding/json can encode and that identifies what compute computes.
func LoadOrCompute[T any](name string, key any, compute func() (T, error)) (value T, loaded bool, err error) {
	if compute == nil {
		return value, false, errors.New("cache.LoadOrCompute: compute is nil")
	}
	path, err := Path[T](name, key)
	if err != nil {
		return value, false, err
	}
	if b, err := os.ReadFile(path); err == nil {
		if gob.NewDecoder(bytes.NewReader(b)).Decode(&value) == nil {
			return value, true, nil
		}
		var zero T
		value = zero // a stale or damaged entry: compute again and replace it
	}
	value, err = compute()
	if err != nil {
		return value, false, err
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&value); err != nil {
		return value, false, fmt.Errorf("cache.LoadOrCompute(%q): the result cannot be stored: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return value, false, fmt.Errorf("cache.LoadOrCompute(%q): %w", name, err)
	}
	err = atomicfile.Write(path, "."+filepath.Base(path)+".tmp*", 0o644, func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	})
	if err != nil {
		return value, false, fmt.Errorf("cache.LoadOrCompute(%q): %w", name, err)
	}
	return value, false, nil
}

// Path returns the file that holds the entry of type T stored under (name, key).
func Path[T any](name string, key any) (string, error) {
	if name == "" || strings.ContainsAny(name, "/\\\x00") || name == "." || name == ".." || len(name) > 100 {
		return "", fmt.Errorf("cache: name %q: use a short label without slashes (at most 100 bytes)", name)
	}
	k, err := json.Marshal(key)
	if err != nil {
		return "", fmt.Errorf("cache: the key of %q cannot be encoded as JSON: %w", name, err)
	}
	version, err := CodeVersion()
	if err != nil {
		return "", err
	}
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(name), k, []byte(reflect.TypeFor[T]().String()), []byte(version)} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return filepath.Join(dir, name+"-"+hex.EncodeToString(h.Sum(nil))[:24]+".gob"), nil
}

// Clear removes every entry of the cache folder.
func Clear() error {
	dir, err := Dir()
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("cache.Clear: %w", err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".gob") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("cache.Clear: %w", err)
			}
		}
	}
	return nil
}

var version struct {
	once  sync.Once
	value string
	err   error
}

// CodeVersion identifies the code that computes cached values: a SHA-256 over the path
// and content of every non-test .go file of this module that the go tool would build (not
// those in hidden, "_" or testdata folders), found from this file's compile-time path and
// computed once per program. When the sources are not on disk (a binary built with
// -trimpath, or moved to another machine), it falls back to the program's build
// information (module versions and VCS revision).
func CodeVersion() (string, error) {
	version.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			info, ok := debug.ReadBuildInfo()
			if !ok {
				version.err = fmt.Errorf("cache: no sources and no build information to version the code: %w", err)
				return
			}
			sum := sha256.Sum256([]byte(info.String()))
			version.value = "build:" + hex.EncodeToString(sum[:])
			return
		}
		version.value, version.err = hashSources(root)
	})
	return version.value, version.err
}

// moduleRoot returns the folder of this module's go.mod, from this file's path.
func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return "", fmt.Errorf("cache: this package's source path is unknown (%q)", file)
	}
	root := filepath.Dir(filepath.Dir(filepath.Dir(file))) // mlx/cache/cache.go -> the module
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("cache: the module's sources are not at %s: %w", root, err)
	}
	return root, nil
}

// hashSources hashes the non-test Go files below root, skipping the folders the go tool
// ignores: hidden ones (.cache, .venv, ...), those starting with "_" (notebooks/_go, the
// notebooks' Jupytext pairs, which JupyterLab rewrites at every save) and testdata.
func hashSources(root string) (string, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("cache: hashing the module's sources: %w", err)
	}
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("cache: hashing the module's sources: %w", err)
		}
		rel, _ := filepath.Rel(root, f)
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(b))
		h.Write(b)
	}
	return "src:" + hex.EncodeToString(h.Sum(nil)), nil
}
