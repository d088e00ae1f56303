// Package mlx holds the GoMLX helpers every notebook of this project starts from:
// the choice of compute backend (XLA CUDA, XLA CPU or GoMLX's pure-Go backend),
// and, in its sub-packages, models, data, optimizers and the training loop.
//
// A notebook's first cell typically does:
//
//	backend := mlx.MustBackend()
//
// which prints one line saying which backend runs and why.
package mlx

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/gobackend"
	"github.com/gomlx/go-xla/compute/xla"

	"github.com/goptlab/goptlab/mlx/internal/gomlxerr"
)

// Backend kinds, as printed in the choice line and stored in [Choice.Kind].
const (
	KindXLACUDA = "XLA CUDA"
	KindXLACPU  = "XLA CPU"
	KindGo      = "pure Go"
)

// EnvBackend is the environment variable that forces a backend, with GoMLX's syntax:
// "go", "xla:cpu", "xla:cuda" or "xla:/absolute/path/to/a/pjrt/plugin.so".
const EnvBackend = compute.ConfigEnvVar

// EnvPluginPath is the ":"-separated list of folders searched for PJRT plugins
// (files named pjrt_c_api_<name>_plugin.so), as in go-xla.
const EnvPluginPath = "PJRT_PLUGIN_LIBRARY_PATH"

func init() {
	// Plugins are installed by `make setup`; go-xla's download from the network
	// cannot work offline and must never hang a cell.
	xla.EnableAutoInstall(false)
}

// Choice is the backend that [Choose] picked and why.
type Choice struct {
	// Kind is one of KindXLACUDA, KindXLACPU or KindGo.
	Kind string
	// Config is the GoMLX backend configuration ("go", or "xla:" and a plugin path).
	Config string
	// Plugin is the PJRT plugin file for the XLA kinds, empty for KindGo.
	Plugin string
	// Reason says why this backend was chosen and why the ones before it were passed over.
	Reason string
}

// String returns the one line that [Backend] prints.
func (c Choice) String() string {
	return fmt.Sprintf("mlx: running on %s (%s): %s", c.Kind, c.Config, c.Reason)
}

// probes are the facts about the machine that [Choose] looks at; tests replace them.
type probes struct {
	lookupEnv  func(string) (string, bool)
	gpuPresent func() bool
	fileExists func(string) bool
	// pluginDirs are searched, in order, for pjrt_c_api_<name>_plugin.so files.
	pluginDirs []string
	// sitePackages are searched, after pluginDirs, for the CUDA plugin of the
	// jax-cuda13-pjrt and jax-cuda12-pjrt pip wheels (see cudaWheelPlugins).
	sitePackages []string
	// pluginVersion reads a plugin's PJRT C API version (it loads the library).
	pluginVersion func(path string) (PJRTVersion, error)
}

func machineProbes() probes {
	p := probes{
		lookupEnv:  os.LookupEnv,
		gpuPresent: nvidiaGPUPresent,
		fileExists: func(path string) bool {
			info, err := os.Stat(path)
			return err == nil && !info.IsDir()
		},
		pluginVersion: readPJRTVersion,
	}
	p.pluginDirs = pluginSearchDirs(os.Getenv(EnvPluginPath))
	home, _ := os.UserHomeDir()
	p.sitePackages = sitePackagesDirs(os.Getenv("VIRTUAL_ENV"), ProjectRoot(), home, systemSitePackages)
	return p
}

// pluginSearchDirs lists the folders searched for PJRT plugins: those in
// $PJRT_PLUGIN_LIBRARY_PATH, then the project's own .xla folder (where
// `make setup` links the plugin), then go-xla's default folders.
func pluginSearchDirs(envPath string) []string {
	var dirs []string
	for _, d := range strings.Split(envPath, ":") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if root := ProjectRoot(); root != "" {
		dirs = append(dirs, filepath.Join(root, ".xla"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".local", "lib", "go-xla"))
	}
	dirs = append(dirs, "/usr/local/lib/go-xla")
	return slices.Compact(dirs)
}

// ProjectRoot returns the root folder of this project's source tree (where go.mod is),
// found from this file's compiled-in path, or "" if the sources are not on this machine.
func ProjectRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	root := filepath.Dir(filepath.Dir(file))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return ""
	}
	return root
}

// nvidiaGPUPresent reports whether the NVIDIA driver exposes at least one GPU.
func nvidiaGPUPresent() bool {
	if entries, err := os.ReadDir("/proc/driver/nvidia/gpus"); err == nil && len(entries) > 0 {
		return true
	}
	_, err := os.Stat("/dev/nvidia0")
	return err == nil
}

func (p probes) findPlugin(name string) string {
	if name == "cuda" {
		if found := p.cudaPlugins(); len(found) > 0 {
			return found[0]
		}
		return ""
	}
	for _, dir := range p.pluginDirs {
		path := filepath.Join(dir, "pjrt_c_api_"+name+"_plugin.so")
		if p.fileExists(path) {
			return path
		}
	}
	return ""
}

// Choose decides which backend to use, without creating it:
// $GOMLX_BACKEND if set; else XLA CUDA where a GPU and a CUDA PJRT plugin whose PJRT C
// API version go-xla can use exist (pjrt_c_api_cuda_plugin.so in a plugin folder, or
// the plugin of the jax-cuda13-pjrt/jax-cuda12-pjrt wheels in a virtualenv's or the
// system's site-packages; only then is a plugin loaded, to read its version);
// else XLA CPU where its plugin is installed; else GoMLX's pure-Go backend.
// It returns an error for an unknown or unusable $GOMLX_BACKEND.
func Choose() (Choice, error) {
	return machineProbes().choose()
}

// ChooseAuto is [Choose] ignoring $GOMLX_BACKEND: the backend this machine would use by default.
func ChooseAuto() (Choice, error) {
	return machineProbes().chooseAuto()
}

func (p probes) choose() (Choice, error) {
	if value, set := p.lookupEnv(EnvBackend); set && strings.TrimSpace(value) != "" {
		return p.chooseForced(strings.TrimSpace(value))
	}
	return p.chooseAuto()
}

func (p probes) chooseAuto() (Choice, error) {
	var passed []string
	if !p.gpuPresent() {
		passed = append(passed, "XLA CUDA passed over: no NVIDIA GPU found")
	} else if path, version, refusals := p.chooseCUDA(); path == "" {
		passed = append(passed, "XLA CUDA passed over: "+strings.Join(refusals, "; "))
	} else {
		reason := fmt.Sprintf("GOMLX_BACKEND unset; NVIDIA GPU and CUDA PJRT plugin found (PJRT C API %s)", version)
		if len(refusals) > 0 {
			reason += "; passed over before it: " + strings.Join(refusals, "; ")
		}
		return Choice{Kind: KindXLACUDA, Config: "xla:" + path, Plugin: path, Reason: reason}, nil
	}
	if path := p.findPlugin("cpu"); path != "" {
		return Choice{Kind: KindXLACPU, Config: "xla:" + path, Plugin: path,
			Reason: "GOMLX_BACKEND unset; " + strings.Join(passed, "; ")}, nil
	}
	passed = append(passed, fmt.Sprintf(
		"XLA CPU passed over: no pjrt_c_api_cpu_plugin.so in %s (run `make setup` to install it)",
		strings.Join(p.pluginDirs, ":")))
	return Choice{Kind: KindGo, Config: "go", Reason: "GOMLX_BACKEND unset; " + strings.Join(passed, "; ")}, nil
}

// knownBackends are the $GOMLX_BACKEND values listed when an unknown one is given.
var knownBackends = []string{"go", "xla:cpu", "xla:cuda", "xla:/path/to/pjrt_c_api_NAME_plugin.so"}

func (p probes) chooseForced(value string) (Choice, error) {
	name, config, _ := strings.Cut(value, ":")
	reason := fmt.Sprintf("set by %s=%q", EnvBackend, value)
	switch name {
	case "go":
		return Choice{Kind: KindGo, Config: "go", Reason: reason}, nil
	case "xla", "stablehlo", "hlo", "shlo":
		plugin, options, _ := strings.Cut(config, ",")
		if plugin == "" {
			plugin = "cpu"
		}
		path := plugin
		if !filepath.IsAbs(plugin) {
			if strings.ContainsAny(plugin, "/.") {
				return Choice{}, fmt.Errorf("%s=%q: the plugin %q must be a name (cpu, cuda) or an absolute path", EnvBackend, value, plugin)
			}
			path = p.findPlugin(plugin)
			if path == "" {
				return Choice{}, fmt.Errorf("%s=%q: no PJRT plugin named %q (pjrt_c_api_%s_plugin.so) in %s: run `make setup`, "+
					"add its folder to %s, or unset %s to choose automatically",
					EnvBackend, value, plugin, plugin, strings.Join(p.pluginDirs, ":"), EnvPluginPath, EnvBackend)
			}
		} else if !p.fileExists(path) {
			return Choice{}, fmt.Errorf("%s=%q: plugin file %s does not exist: fix the path, run `make setup`, or unset %s",
				EnvBackend, value, path, EnvBackend)
		}
		kind := KindXLACPU
		if strings.Contains(strings.ToLower(filepath.Base(path)), "cuda") {
			kind = KindXLACUDA
		}
		cfg := "xla:" + path
		if options != "" {
			cfg += "," + options
		}
		return Choice{Kind: kind, Config: cfg, Plugin: path, Reason: reason}, nil
	default:
		return Choice{}, fmt.Errorf("%s=%q: unknown backend %q; valid values are %s, or unset it to choose automatically",
			EnvBackend, value, name, strings.Join(knownBackends, ", "))
	}
}

// goBackendOptions configures GoMLX's pure-Go backend to execute one operation at a time
// (each operation still splits its own work over the cores). Its default runs independent
// operations in parallel on a pool of 2*GOMAXPROCS workers, and large convolutions split
// their work on the same pool without releasing their slot: when as many convolutions as
// there are workers run at once, all wait for a free worker forever (compute v0.1.6:
// AdaHessian's step on a two-block CNN deadlocked so on a 2-core machine;
// TestModelOptimizerMatrix in mlx/optim trains it on this backend).
const goBackendOptions = "ops_sequential"

// New creates the backend described by the choice. A plugin that fails to load
// gives an error naming the file and the fix.
func (c Choice) New() (compute.Backend, error) {
	if c.Kind == KindGo {
		b, err := gobackend.New(goBackendOptions)
		if err != nil {
			return nil, fmt.Errorf("creating the pure-Go backend: %w", err)
		}
		return b, nil
	}
	if c.Kind == KindXLACUDA {
		prepareCUDAEnv(c.Plugin)
	}
	b, err := newXLA(strings.TrimPrefix(c.Config, "xla:"))
	if err != nil {
		return nil, fmt.Errorf("loading the %s PJRT plugin %s failed (the file is broken or built for another PJRT version: "+
			"reinstall it with `make setup`, or set %s=go): %w", c.Kind, c.Plugin, EnvBackend, err)
	}
	return b, nil
}

// preferVectorWidth is the XLA flag for the vector width XLA CPU's LLVM prefers.
const preferVectorWidth = "--xla_cpu_prefer_vector_width="

// preferWideVectors asks XLA CPU, on amd64, for 512-bit vectors (AVX-512 where the CPU has
// it; LLVM prefers 256 bits by default) by appending --xla_cpu_prefer_vector_width=512 to
// $XLA_FLAGS, unless they already set that flag (the user's choice wins). Fused
// elementwise loops, such as zeroth-order SGD's direction generator (integer hashing and
// float32 polynomials), run up to twice as fast (cmd/bench-zo: a ZO-SGD step from about
// 2.8 to about 2.4 forward passes); the forward pass is not slower. On a CPU without
// AVX-512, LLVM uses the widest vectors it has. XLA reads $XLA_FLAGS once per process,
// when its first client is created: every XLA backend this package creates uses the
// same setting, so results do not depend on which packages a program imports.
func preferWideVectors() {
	if runtime.GOARCH != "amd64" {
		return
	}
	if cur := os.Getenv("XLA_FLAGS"); !strings.Contains(cur, preferVectorWidth) {
		_ = os.Setenv("XLA_FLAGS", strings.TrimSpace(cur+" "+preferVectorWidth+"512"))
	}
}

// newXLA creates an XLA backend, turning go-xla's panics into errors.
func newXLA(config string) (b compute.Backend, err error) {
	preferWideVectors()
	err = gomlxerr.Catch(func() error {
		b, err = xla.New(config)
		return err
	})
	return b, err
}

var (
	// Output receives the line that [Backend] prints; notebooks show it under the cell.
	Output io.Writer = os.Stdout

	cached struct {
		sync.Mutex
		backend compute.Backend
		choice  Choice
	}
)

// Backend returns the backend this process should use (see [Choose]), creating it
// on the first call and printing one line that says which one runs and why.
// Later calls return the same backend. If the automatic choice fails to load, it falls
// back (XLA CUDA to XLA CPU, XLA CPU to pure Go) and says so; a backend
// forced by $GOMLX_BACKEND that fails is an error.
func Backend() (compute.Backend, error) {
	cached.Lock()
	defer cached.Unlock()
	if cached.backend != nil {
		return cached.backend, nil
	}
	p := machineProbes()
	choice, err := p.choose()
	if err != nil {
		return nil, err
	}
	b, err := choice.New()
	forced, _ := p.lookupEnv(EnvBackend)
	for err != nil {
		if strings.TrimSpace(forced) != "" || choice.Kind == KindGo {
			return nil, err
		}
		choice = p.fallback(choice, err)
		b, err = choice.New()
	}
	cached.backend, cached.choice = b, choice
	fmt.Fprintln(Output, choice)
	return b, nil
}

// fallback is the backend to try when the automatically chosen one failed to load with
// err: XLA CPU after XLA CUDA (a driver too old for the plugin's CUDA, say) where its
// plugin is installed, else the pure-Go backend. Its reason keeps the failed one's and
// adds the error.
func (p probes) fallback(failed Choice, err error) Choice {
	reason := fmt.Sprintf("%s; %v", failed.Reason, err)
	if failed.Kind == KindXLACUDA {
		if path := p.findPlugin("cpu"); path != "" {
			return Choice{Kind: KindXLACPU, Config: "xla:" + path, Plugin: path, Reason: reason}
		}
	}
	return Choice{Kind: KindGo, Config: "go", Reason: reason}
}

// MustBackend is [Backend] for notebook cells and main functions: on error it prints
// the error's one-line message (which names the problem and the fix) to stderr and
// exits with status 1, rather than panicking with a stack trace that would bury it.
func MustBackend() compute.Backend {
	b, err := Backend()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mlx:", err)
		os.Exit(1)
	}
	return b
}

// Chosen returns the choice that [Backend] made, and false if it has not been called yet.
func Chosen() (Choice, bool) {
	cached.Lock()
	defer cached.Unlock()
	return cached.choice, cached.backend != nil
}
