package history

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// errInjected is the error of failingWriter.
var errInjected = errors.New("injected write error")

// failingWriter passes the first limit bytes through to w, then fails every write.
type failingWriter struct {
	w     io.Writer
	limit int
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n, _ := f.w.Write(p[:f.limit])
		f.limit = 0
		return n, errInjected
	}
	f.limit -= len(p)
	return f.w.Write(p)
}

// bigHistories returns histories whose CSV or JSON takes a few megabytes.
func bigHistories() []*History {
	var hs []*History
	for i := range 4 {
		h := New(fmt.Sprintf("run %d", i), "adam", int64(i))
		for s := 1; s <= 20_000; s++ {
			h.Add(Record{Step: s, Time: float64(s) / 100, Evals: int64(s), Loss: 1 / float64(s),
				Metrics: map[string]float64{"lr": 1e-3, "accuracy": float64(s%100) / 100}})
		}
		hs = append(hs, h)
	}
	return hs
}

// saved writes sample() to dir/name and returns the path and the file's bytes.
func saved(t *testing.T, dir, name string) (string, []byte) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := Save(path, sample()...); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		t.Fatalf("reading the saved file: %d bytes, %v", len(b), err)
	}
	return path, b
}

// checkUnchanged fails the test unless the file at path still holds want and no
// temporary file of Save is left in its directory.
func checkUnchanged(t *testing.T, what, path string, want []byte, allowTemp bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(b, want) {
		t.Errorf("%s: the file changed: %d bytes (had %d), error %v", what, len(b), len(want), err)
	}
	if _, err := Load(path); err != nil {
		t.Errorf("%s: the file no longer loads: %v", what, err)
	}
	if allowTemp {
		return
	}
	if tmp, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.tmp")); len(tmp) != 0 {
		t.Errorf("%s: temporary files left: %v", what, tmp)
	}
}

// TestRejectedSaveKeepsTheFile saves histories that the format cannot hold over an
// existing file: Save must fail and leave the file byte for byte as it was.
func TestRejectedSaveKeepsTheFile(t *testing.T) {
	dir := t.TempDir()
	dup := sample()
	dup = append(dup, dup[0].Clone())
	bad := New("bad", "sgd", 1)
	bad.Add(Record{Step: 2, Loss: 1})
	bad.Add(Record{Step: 1, Loss: 1})
	for _, name := range []string{"runs.csv", "runs.json"} {
		path, before := saved(t, dir, name)
		cases := map[string][]*History{
			"a nil history":       {sample()[0], nil},
			"steps that decrease": {bad},
		}
		if name == "runs.csv" {
			cases["two runs with the same identity"] = dup
			cases["an empty run"] = []*History{New("empty", "sgd", 1)}
		}
		for what, hs := range cases {
			if err := Save(path, hs...); err == nil {
				t.Errorf("%s: Save of %s returned no error", name, what)
			}
			checkUnchanged(t, name+": "+what, path, before, false)
		}
	}
}

// TestFailedWriteKeepsTheFile injects a write error in the middle of a save.
func TestFailedWriteKeepsTheFile(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"runs.csv", "runs.json"} {
		path, before := saved(t, dir, name)
		saveWriteHook = func(w io.Writer) io.Writer { return &failingWriter{w: w, limit: 1000} }
		err := Save(path, bigHistories()...)
		saveWriteHook = nil
		if !errors.Is(err, errInjected) {
			t.Errorf("%s: want the injected error, got %v", name, err)
		}
		checkUnchanged(t, name+": failed write", path, before, false)
	}
}

// Helper mode of TestKilledSaveKeepsTheFile (the test binary re-executed).
const (
	killHelperEnv = "GOPTLAB_HISTORY_KILL_HELPER"
	killReady     = "HALF-WRITTEN"
)

// TestHelperSaveThenHang is not a test: it is the helper mode of TestKilledSaveKeepsTheFile.
// It saves large histories over the file named by the environment, and after 1 MB written
// prints killReady and waits to be killed.
func TestHelperSaveThenHang(t *testing.T) {
	path := os.Getenv(killHelperEnv)
	if path == "" {
		t.Skip("helper mode of TestKilledSaveKeepsTheFile")
	}
	saveWriteHook = func(w io.Writer) io.Writer { return &hangingWriter{w: w, after: 1 << 20} }
	err := Save(path, bigHistories()...)
	fmt.Println("SAVE RETURNED", err)
	os.Exit(3)
}

// hangingWriter passes writes through to w; once after bytes are written, it announces
// it on stdout and blocks forever.
type hangingWriter struct {
	w     io.Writer
	after int
}

func (h *hangingWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.after -= n
	if h.after <= 0 {
		fmt.Println(killReady)
		select {}
	}
	return n, err
}

// TestKilledSaveKeepsTheFile kills a process in the middle of a Save (1 MB written of a few)
// over an existing file: the file must still hold the old histories.
func TestKilledSaveKeepsTheFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	for _, name := range []string{"runs.csv", "runs.json"} {
		t.Run(name, func(t *testing.T) {
			path, before := saved(t, t.TempDir(), name)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // liveness bound only
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperSaveThenHang$", "-test.count=1")
			cmd.Env = append(os.Environ(), killHelperEnv+"="+path)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(stdout)
			ready := false
			var out []string
			for !ready && lines.Scan() {
				ready = lines.Text() == killReady
				out = append(out, lines.Text())
			}
			if ready {
				_ = cmd.Process.Kill()
			}
			_ = cmd.Wait()
			if !ready {
				t.Fatalf("the helper did not reach the middle of its save: %q %s", out, stderr.String())
			}
			checkUnchanged(t, "killed during a save", path, before, true)
		})
	}
}
