// Package atomicfile replaces files atomically: a reader, and the file system after a
// crash or a kill at any point, sees either the previous content or the new one, never a
// part of it, and a failed write leaves the previous file as it was.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces the file at path with what write writes. write gets a temporary file
// created in path's directory with os.CreateTemp(dir, pattern) (so pattern's last "*" is
// replaced by a random string); the file is then synced, closed, renamed over path, and the
// directory is synced so that the rename is durable where the platform allows it.
//
// If write or any of these steps fails, the temporary file is removed and path is left
// untouched. The new file keeps the permission bits of the file it replaces, or gets perm
// if there was none; if path is a symbolic link, the file it points to is replaced. Write
// does not create the directory.
func Write(path, pattern string, perm fs.FileMode, write func(io.Writer) error) (err error) {
	// A symbolic link is kept: the file it points to is replaced.
	if info, lerr := os.Lstat(path); lerr == nil && info.Mode()&fs.ModeSymlink != 0 {
		if path, err = filepath.EvalSymlinks(path); err != nil {
			return err
		}
	}
	dir := filepath.Dir(path)
	if info, serr := os.Stat(path); serr == nil {
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
		perm = info.Mode().Perm()
	} else if !errors.Is(serr, fs.ErrNotExist) {
		return serr
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename durable; not every platform can sync a directory, and the file is in
	// place either way.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
