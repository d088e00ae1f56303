package cache

import (
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type result struct {
	Name   string
	Losses []float64
	Hidden map[string]int `json:"-"` // kept by gob although JSON would drop it
}

func TestLoadOrCompute(t *testing.T) {
	t.Setenv(DirEnv, t.TempDir())
	calls := 0
	compute := func() (result, error) {
		calls++
		return result{Name: "run", Losses: []float64{1, math.NaN(), math.Inf(1)}, Hidden: map[string]int{"a": 1}}, nil
	}
	key := map[string]any{"lr": 0.1, "seeds": 5}
	first, loaded, err := LoadOrCompute("sweep", key, compute)
	if err != nil || loaded || calls != 1 {
		t.Fatalf("first call: loaded=%v calls=%d err=%v", loaded, calls, err)
	}
	second, loaded, err := LoadOrCompute("sweep", key, compute)
	if err != nil || !loaded || calls != 1 {
		t.Fatalf("second call: loaded=%v calls=%d err=%v", loaded, calls, err)
	}
	if second.Name != first.Name || second.Losses[0] != 1 || !math.IsNaN(second.Losses[1]) || !math.IsInf(second.Losses[2], 1) || second.Hidden["a"] != 1 {
		t.Errorf("loaded %+v, stored %+v", second, first)
	}
	// Another key, another name or another type: computed afresh.
	if _, loaded, _ := LoadOrCompute("sweep", map[string]any{"lr": 0.2, "seeds": 5}, compute); loaded {
		t.Error("another key loaded the first entry")
	}
	if _, loaded, _ := LoadOrCompute("other", key, compute); loaded {
		t.Error("another name loaded the first entry")
	}
	if _, loaded, _ := LoadOrCompute("sweep", key, func() (int, error) { return 3, nil }); loaded {
		t.Error("another type loaded the first entry")
	}
	if calls != 3 {
		t.Errorf("calls = %d, want 3", calls)
	}
}

func TestFailedComputeStoresNothing(t *testing.T) {
	t.Setenv(DirEnv, t.TempDir())
	boom := errors.New("boom")
	if _, _, err := LoadOrCompute("x", 1, func() (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	v, loaded, err := LoadOrCompute("x", 1, func() (int, error) { return 7, nil })
	if err != nil || loaded || v != 7 {
		t.Errorf("after a failure: v=%d loaded=%v err=%v", v, loaded, err)
	}
}

func TestDamagedEntryIsComputedAgain(t *testing.T) {
	t.Setenv(DirEnv, t.TempDir())
	if _, _, err := LoadOrCompute("x", 1, func() (int, error) { return 7, nil }); err != nil {
		t.Fatal(err)
	}
	path, err := Path[int]("x", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not gob"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, loaded, err := LoadOrCompute("x", 1, func() (int, error) { return 8, nil })
	if err != nil || loaded || v != 8 {
		t.Errorf("damaged entry: v=%d loaded=%v err=%v", v, loaded, err)
	}
	if v, loaded, _ := LoadOrCompute("x", 1, func() (int, error) { return 9, nil }); !loaded || v != 8 {
		t.Errorf("the damaged entry was not replaced: v=%d loaded=%v", v, loaded)
	}
	if err := Clear(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Clear left %s: %v", path, err)
	}
}

func TestBadArguments(t *testing.T) {
	t.Setenv(DirEnv, t.TempDir())
	for _, name := range []string{"", "a/b", "..", strings.Repeat("n", 101)} {
		if _, _, err := LoadOrCompute(name, 1, func() (int, error) { return 1, nil }); err == nil {
			t.Errorf("name %q: no error", name)
		}
	}
	if _, _, err := LoadOrCompute("x", func() {}, func() (int, error) { return 1, nil }); err == nil || !strings.Contains(err.Error(), "JSON") {
		t.Errorf("a key JSON cannot encode: err = %v", err)
	}
	if _, _, err := LoadOrCompute[int]("x", 1, nil); err == nil {
		t.Error("nil compute: no error")
	}
}

func TestCodeVersionHashesTheModuleSources(t *testing.T) {
	v, err := CodeVersion()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "src:") {
		t.Fatalf("CodeVersion = %q: the sources are here, it should hash them", v)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the module with one source file changed hashes differently; a test file,
	// a hidden folder and a folder the go tool ignores (notebooks/_go holds the notebooks'
	// Jupytext pairs, rewritten each time a notebook is saved) do not count.
	again, err := hashSources(root)
	if err != nil || again != v {
		t.Fatalf("hashing twice: %q vs %q (%v)", again, v, err)
	}
	tmp := t.TempDir()
	for _, f := range []string{"go.mod", "a/a.go", "a/a_test.go", ".hidden/h.go", "notebooks/_go/n.go"} {
		if err := os.MkdirAll(filepath.Join(tmp, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, f), []byte("package a\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h1, _ := hashSources(tmp)
	os.WriteFile(filepath.Join(tmp, "a/a_test.go"), []byte("package a // changed\n"), 0o644)
	os.WriteFile(filepath.Join(tmp, ".hidden/h.go"), []byte("package a // changed\n"), 0o644)
	os.WriteFile(filepath.Join(tmp, "notebooks/_go/n.go"), []byte("package a // changed\n"), 0o644)
	h2, _ := hashSources(tmp)
	os.WriteFile(filepath.Join(tmp, "a/a.go"), []byte("package a // changed\n"), 0o644)
	h3, _ := hashSources(tmp)
	if h1 != h2 || h2 == h3 {
		t.Errorf("hashes: %s %s %s: want test, hidden and _ folders' files ignored, sources counted", h1, h2, h3)
	}
}

// TestAcrossPrograms is what a notebook does: one program (a cell) computes, the next
// one loads. The helper program is this test binary run again.
func TestAcrossPrograms(t *testing.T) {
	if os.Getenv("CACHE_TEST_CHILD") != "" {
		return
	}
	dir := t.TempDir()
	run := func() string {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestChildCell$", "-test.v")
		cmd.Env = append(os.Environ(), "CACHE_TEST_CHILD=1", DirEnv+"="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := run(); !strings.Contains(out, "computed 42") {
		t.Fatalf("first program: %s", out)
	}
	if out := run(); !strings.Contains(out, "loaded 42") {
		t.Fatalf("second program: %s", out)
	}
}

func TestChildCell(t *testing.T) {
	if os.Getenv("CACHE_TEST_CHILD") == "" {
		t.Skip("run by TestAcrossPrograms")
	}
	v, loaded, err := LoadOrCompute("cell", "key", func() (int, error) { return 42, nil })
	if err != nil {
		t.Fatal(err)
	}
	if loaded {
		t.Logf("loaded %d", v)
	} else {
		t.Logf("computed %d", v)
	}
}
