package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	check := func(want string, mode os.FileMode) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil || string(b) != want {
			t.Fatalf("file holds %q (%v), want %q", b, err, want)
		}
		if info, _ := os.Stat(path); info.Mode().Perm() != mode {
			t.Errorf("mode %v, want %v", info.Mode().Perm(), mode)
		}
		if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) != 0 {
			t.Errorf("temporary files left: %v", m)
		}
	}
	if err := Write(path, "f.*.tmp", 0o640, write("one")); err != nil {
		t.Fatal(err)
	}
	check("one", 0o640)
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, "f.*.tmp", 0o644, write("two")); err != nil {
		t.Fatal(err)
	}
	check("two", 0o600) // The replaced file's mode is kept.
	boom := errors.New("boom")
	if err := Write(path, "f.*.tmp", 0o644, func(w io.Writer) error { _, _ = io.WriteString(w, "partial"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("want the write's error, got %v", err)
	}
	check("two", 0o600)

	// Through a symbolic link, the target is replaced and the link kept.
	link := filepath.Join(dir, "link.txt")
	if err := os.Symlink(path, link); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	if err := Write(link, "link.*.tmp", 0o644, write("three")); err != nil {
		t.Fatal(err)
	}
	check("three", 0o600)
	if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v, %v", info, err)
	}
}
