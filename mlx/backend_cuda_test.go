package mlx

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// standinCompiler returns the C compiler that builds stand-in plugins, or skips the test.
func standinCompiler(t *testing.T) string {
	t.Helper()
	for _, cc := range []string{os.Getenv("CC"), "cc", "gcc"} {
		if cc == "" {
			continue
		}
		if path, err := exec.LookPath(cc); err == nil {
			return path
		}
	}
	t.Skip("no C compiler (cc, gcc or $CC) to build the stand-in PJRT plugins")
	return ""
}

// standinPlugin builds testdata/standin_pjrt.c into a shared library at path (making its
// folders) whose GetPjrtApi reports PJRT C API version v.
func standinPlugin(t *testing.T, cc, path string, v PJRTVersion) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := filepath.Abs(filepath.Join("testdata", "standin_pjrt.c"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cc, "-shared", "-fPIC", "-o", path,
		fmt.Sprintf("-DSTANDIN_MAJOR=%d", v.Major), fmt.Sprintf("-DSTANDIN_MINOR=%d", v.Minor), src).CombinedOutput()
	if err != nil {
		t.Fatalf("building the stand-in plugin %s: %v\n%s", path, err, out)
	}
}

// pipTree is a stand-in machine: folders laid out as pip and `make setup` lay them out.
type pipTree struct {
	root, venvSite, projectSite, userSite, systemSite, pluginDir string
}

func newPipTree(t *testing.T) pipTree {
	root := t.TempDir()
	tr := pipTree{
		root:        root,
		venvSite:    filepath.Join(root, "venv", "lib", "python3.11", "site-packages"),
		projectSite: filepath.Join(root, "project", ".venv", "lib", "python3.11", "site-packages"),
		userSite:    filepath.Join(root, "home", ".local", "lib", "python3.12", "site-packages"),
		systemSite:  filepath.Join(root, "usr", "lib", "python3", "dist-packages"),
		pluginDir:   filepath.Join(root, "plugins"),
	}
	for _, d := range []string{tr.venvSite, tr.projectSite, tr.userSite, tr.systemSite, tr.pluginDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// probes returns the machine's probes over the tree, with a GPU, reading versions for real.
func (tr pipTree) probes(loaded *[]string) probes {
	p := machineProbes()
	p.lookupEnv = func(string) (string, bool) { return "", false }
	p.gpuPresent = func() bool { return true }
	p.pluginDirs = []string{tr.pluginDir}
	p.sitePackages = sitePackagesDirs(filepath.Join(tr.root, "venv"), filepath.Join(tr.root, "project"),
		filepath.Join(tr.root, "home"), []string{filepath.Join(tr.root, "usr", "lib", "python3", "dist-packages")})
	p.pluginVersion = func(path string) (PJRTVersion, error) {
		*loaded = append(*loaded, path)
		return readPJRTVersion(path)
	}
	return p
}

func cuda13(site string) string {
	return filepath.Join(site, "jax_plugins", "xla_cuda13", "xla_cuda_plugin.so")
}
func cuda12(site string) string {
	return filepath.Join(site, "jax_plugins", "xla_cuda12", "xla_cuda_plugin.so")
}

func TestSitePackagesOrder(t *testing.T) {
	tr := newPipTree(t)
	// A second Python in the virtualenv: the newer one is searched first.
	older := filepath.Join(tr.root, "venv", "lib", "python3.9", "site-packages")
	if err := os.MkdirAll(older, 0o755); err != nil {
		t.Fatal(err)
	}
	var loaded []string
	got := tr.probes(&loaded).sitePackages
	want := []string{tr.venvSite, older, tr.projectSite, tr.userSite, tr.systemSite}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("site-packages searched in order\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCUDAPluginDiscovery lays out stand-in CUDA plugins as the jax-cuda13-pjrt and
// jax-cuda12-pjrt wheels and `make setup` do, and checks which one is chosen, in which
// order they are tried, and what the choice line says.
func TestCUDAPluginDiscovery(t *testing.T) {
	cc := standinCompiler(t)
	good, newer, older, otherMajor := goXLAPJRT, PJRTVersion{0, 116}, PJRTVersion{0, 70}, PJRTVersion{1, goXLAPJRT.Minor}
	type plugin struct {
		path func(pipTree) string
		v    PJRTVersion
	}
	tests := []struct {
		name       string
		plugins    []plugin
		want       func(pipTree) string // "" for no CUDA
		wantLoaded func(pipTree) []string
		wantReason []string
	}{
		{
			name:       "absent",
			want:       func(pipTree) string { return "" },
			wantLoaded: func(pipTree) []string { return nil },
			wantReason: []string{"a GPU is present but no pjrt_c_api_cuda_plugin.so", "jax_plugins/xla_cuda{13,12}/xla_cuda_plugin.so", "site-packages"},
		},
		{
			name:       "present in the virtualenv",
			plugins:    []plugin{{func(tr pipTree) string { return cuda13(tr.venvSite) }, good}},
			want:       func(tr pipTree) string { return cuda13(tr.venvSite) },
			wantLoaded: func(tr pipTree) []string { return []string{cuda13(tr.venvSite)} },
			wantReason: []string{"CUDA PJRT plugin found (PJRT C API 0.104)"},
		},
		{
			name: "plugin folder before virtualenv before project before user before system",
			plugins: []plugin{
				{func(tr pipTree) string { return cuda12(tr.systemSite) }, good},
				{func(tr pipTree) string { return cuda13(tr.userSite) }, good},
				{func(tr pipTree) string { return cuda13(tr.projectSite) }, good},
				{func(tr pipTree) string { return cuda12(tr.venvSite) }, good},
				{func(tr pipTree) string { return filepath.Join(tr.pluginDir, "pjrt_c_api_cuda_plugin.so") }, good},
			},
			want: func(tr pipTree) string { return filepath.Join(tr.pluginDir, "pjrt_c_api_cuda_plugin.so") },
			wantLoaded: func(tr pipTree) []string {
				return []string{filepath.Join(tr.pluginDir, "pjrt_c_api_cuda_plugin.so")}
			},
		},
		{
			name: "each place in turn, cuda13 before cuda12",
			plugins: []plugin{
				{func(tr pipTree) string { return cuda12(tr.systemSite) }, good},
				{func(tr pipTree) string { return cuda13(tr.userSite) }, newer},
				{func(tr pipTree) string { return cuda12(tr.projectSite) }, older},
				{func(tr pipTree) string { return cuda13(tr.projectSite) }, otherMajor},
			},
			want: func(tr pipTree) string { return cuda12(tr.systemSite) },
			wantLoaded: func(tr pipTree) []string {
				return []string{cuda13(tr.projectSite), cuda12(tr.projectSite), cuda13(tr.userSite), cuda12(tr.systemSite)}
			},
			wantReason: []string{"passed over before it", "PJRT C API 1.104", "PJRT C API 0.70", "PJRT C API 0.116"},
		},
		{
			name:       "wrong API version only",
			plugins:    []plugin{{func(tr pipTree) string { return cuda13(tr.venvSite) }, newer}},
			want:       func(pipTree) string { return "" },
			wantLoaded: func(tr pipTree) []string { return []string{cuda13(tr.venvSite)} },
			wantReason: []string{"XLA CUDA passed over: ", "has PJRT C API 0.116 but go-xla v0.4.5 speaks 0.104",
				`jax-cuda13-plugin[with-cuda]==0.10.0`, "GOMLX_BACKEND=xla:"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newPipTree(t)
			for _, pl := range tc.plugins {
				standinPlugin(t, cc, pl.path(tr), pl.v)
			}
			var loaded []string
			choice, err := tr.probes(&loaded).chooseAuto()
			if err != nil {
				t.Fatal(err)
			}
			line := choice.String()
			if want := tc.want(tr); want == "" {
				if choice.Kind == KindXLACUDA {
					t.Fatalf("chose XLA CUDA: %s", line)
				}
			} else if choice.Kind != KindXLACUDA || choice.Plugin != want || !strings.Contains(line, "(xla:"+want+")") {
				t.Fatalf("chose %s with %q, want XLA CUDA with %s named in the line: %s", choice.Kind, choice.Plugin, want, line)
			}
			if got, want := strings.Join(loaded, "\n"), strings.Join(tc.wantLoaded(tr), "\n"); got != want {
				t.Errorf("plugins loaded to read their version:\n%s\nwant:\n%s", got, want)
			}
			for _, w := range tc.wantReason {
				if !strings.Contains(line, w) {
					t.Errorf("choice line does not say %q: %s", w, line)
				}
			}
			if strings.Contains(line, "\n") {
				t.Errorf("choice line is not one line: %q", line)
			}
		})
	}
}

// TestCUDAPluginNotLoadedWithoutGPU: on a machine without a GPU no CUDA plugin is loaded.
func TestCUDAPluginNotLoadedWithoutGPU(t *testing.T) {
	cc := standinCompiler(t)
	tr := newPipTree(t)
	standinPlugin(t, cc, cuda13(tr.venvSite), goXLAPJRT)
	var loaded []string
	p := tr.probes(&loaded)
	p.gpuPresent = func() bool { return false }
	choice, err := p.chooseAuto()
	if err != nil {
		t.Fatal(err)
	}
	if choice.Kind == KindXLACUDA || len(loaded) > 0 || !strings.Contains(choice.Reason, "no NVIDIA GPU found") {
		t.Fatalf("without a GPU: chose %s, loaded %q: %s", choice.Kind, loaded, choice)
	}
}

// TestForcedCUDAFindsPipPlugin: GOMLX_BACKEND=xla:cuda uses the pip wheel's plugin too.
func TestForcedCUDAFindsPipPlugin(t *testing.T) {
	cc := standinCompiler(t)
	tr := newPipTree(t)
	standinPlugin(t, cc, cuda12(tr.venvSite), goXLAPJRT)
	var loaded []string
	p := tr.probes(&loaded)
	p.lookupEnv = func(k string) (string, bool) { return "xla:cuda", k == EnvBackend }
	choice, err := p.choose()
	if err != nil {
		t.Fatal(err)
	}
	if choice.Kind != KindXLACUDA || choice.Plugin != cuda12(tr.venvSite) {
		t.Fatalf("GOMLX_BACKEND=xla:cuda chose %s %q, want XLA CUDA %s", choice.Kind, choice.Plugin, cuda12(tr.venvSite))
	}
}

func TestReadPJRTVersion(t *testing.T) {
	cc := standinCompiler(t)
	dir := t.TempDir()
	for _, v := range []PJRTVersion{{0, 81}, {0, 104}, {0, 116}, {1, 3}} {
		path := filepath.Join(dir, fmt.Sprintf("v%d_%d", v.Major, v.Minor), "plugin.so")
		standinPlugin(t, cc, path, v)
		got, err := readPJRTVersion(path)
		if err != nil || got != v {
			t.Errorf("readPJRTVersion(%s) = %v, %v; want %v", path, got, err, v)
		}
	}
	notPlugin := filepath.Join(dir, "not_a_plugin.so")
	if err := os.WriteFile(notPlugin, []byte("not a shared library"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readPJRTVersion(notPlugin); err == nil || !strings.Contains(err.Error(), notPlugin) {
		t.Errorf("readPJRTVersion of a text file: err = %v, want an error naming the file", err)
	}
}

func TestPJRTVersionCompatible(t *testing.T) {
	for _, tc := range []struct {
		v    PJRTVersion
		want bool
	}{
		{goXLAPJRT, true}, {oldestPJRT, true}, {PJRTVersion{0, 90}, true},
		{PJRTVersion{0, goXLAPJRT.Minor + 1}, false}, {PJRTVersion{0, oldestPJRT.Minor - 1}, false},
		{PJRTVersion{1, goXLAPJRT.Minor}, false},
	} {
		if got := tc.v.compatible(); got != tc.want {
			t.Errorf("%v.compatible() = %v, want %v", tc.v, got, tc.want)
		}
	}
}

// TestGoXLAHeaderVersion checks goXLAPJRT and goXLAVersion against the go-xla this
// module builds with: after a go-xla upgrade, the accepted range must be checked again.
func TestGoXLAHeaderVersion(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}} {{.Dir}}", "github.com/gomlx/go-xla").Output()
	if err != nil {
		t.Skipf("go list cannot locate go-xla here: %v", err)
	}
	version, dir, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if version != goXLAVersion {
		t.Errorf("go.mod has go-xla %s, mlx's PJRT range is for %s: read its pjrt_c_api.h and update goXLAPJRT, goXLAVersion and docs/GPU.md", version, goXLAVersion)
	}
	header, err := os.ReadFile(filepath.Join(dir, "pjrt", "pjrt_c_api.h"))
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) int {
		m := regexp.MustCompile(`#define ` + name + ` (\d+)`).FindSubmatch(header)
		if m == nil {
			t.Fatalf("no %s in go-xla's pjrt_c_api.h", name)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	if got := (PJRTVersion{read("PJRT_API_MAJOR"), read("PJRT_API_MINOR")}); got != goXLAPJRT {
		t.Errorf("go-xla %s's pjrt_c_api.h is version %v, goXLAPJRT says %v", version, got, goXLAPJRT)
	}
}

func TestPipCUDADataDir(t *testing.T) {
	tr := newPipTree(t)
	if err := os.MkdirAll(filepath.Join(tr.venvSite, "nvidia", "cu13"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ plugin, want string }{
		{cuda13(tr.venvSite), filepath.Join(tr.venvSite, "nvidia", "cu13")},
		{cuda12(tr.venvSite), ""}, // nvidia/cuda_nvcc is not installed
		{filepath.Join(tr.pluginDir, "pjrt_c_api_cuda_plugin.so"), ""},
	} {
		if got := pipCUDADataDir(tc.plugin); got != tc.want {
			t.Errorf("pipCUDADataDir(%s) = %q, want %q", tc.plugin, got, tc.want)
		}
	}
}

// TestInstalledCUDAPlugins reads the PJRT C API version of every CUDA plugin installed on
// this machine where mlx looks (the CUDA image's, for one): each must be one go-xla can
// use. Machines without one, as CI, skip it.
func TestInstalledCUDAPlugins(t *testing.T) {
	p := machineProbes()
	plugins := p.cudaPlugins()
	if len(plugins) == 0 {
		t.Skipf("no CUDA PJRT plugin installed in %s or in the site-packages %s",
			strings.Join(p.pluginDirs, ":"), strings.Join(p.sitePackages, ":"))
	}
	for _, path := range plugins {
		v, err := readPJRTVersion(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if !v.compatible() {
			t.Errorf("%s", refusalMessage(path, v))
			continue
		}
		t.Logf("%s: PJRT C API %s, go-xla %s can use it", path, v, goXLAVersion)
	}
}
