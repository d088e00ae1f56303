package mlx

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// PJRTVersion is a PJRT C API version, as a plugin's GetPjrtApi reports it.
type PJRTVersion struct {
	Major, Minor int
}

// String returns the version as "major.minor", e.g. "0.104".
func (v PJRTVersion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// The PJRT C API versions this project's go-xla (v0.4.5) works with. go-xla is built
// with pjrt_c_api.h version 0.104 (goXLAPJRT; a test checks it against the header in
// the module cache) and has no version check of its own: it calls into whatever
// plugin it loads. A different major version is ABI-incompatible by PJRT's rules. A
// plugin newer than the header may reject go-xla's smaller argument structs at any
// call ("Unexpected ... size ... Check installed software versions"). An older one
// has a shorter function table: go-xla v0.4.5 is tested by this project down to 0.81,
// the version of the XLA CPU plugin that `make setup` installs (oldestPJRT).
var (
	goXLAPJRT  = PJRTVersion{Major: 0, Minor: 104}
	oldestPJRT = PJRTVersion{Major: 0, Minor: 81}
)

// goXLAVersion is the go-xla release whose header goXLAPJRT comes from (see go.mod).
const goXLAVersion = "v0.4.5"

// cudaWheelFix is what to install for a CUDA plugin go-xla can use: the jax wheels
// 0.10.0 carry PJRT C API 0.104 (jax-cuda13-pjrt and jax-cuda12-pjrt alike; the
// plugin package's with-cuda extra brings NVIDIA's libraries). See docs/GPU.md.
const cudaWheelFix = `pip install "jax-cuda13-plugin[with-cuda]==0.10.0" (or jax-cuda12-plugin[with-cuda]==0.10.0), whose plugin has PJRT C API 0.104`

// compatible reports whether go-xla can use a plugin of version v.
func (v PJRTVersion) compatible() bool {
	return v.Major == goXLAPJRT.Major && v.Minor >= oldestPJRT.Minor && v.Minor <= goXLAPJRT.Minor
}

// cudaWheelPlugins are where the jax-cuda13-pjrt and jax-cuda12-pjrt wheels put the
// CUDA plugin inside a site-packages folder, newest CUDA first.
var cudaWheelPlugins = []string{
	filepath.Join("jax_plugins", "xla_cuda13", "xla_cuda_plugin.so"),
	filepath.Join("jax_plugins", "xla_cuda12", "xla_cuda_plugin.so"),
}

// systemSitePackages are the folders where a pip outside any virtualenv installs, as
// glob patterns.
var systemSitePackages = []string{
	"/usr/local/lib/python3*/site-packages",
	"/usr/local/lib/python3*/dist-packages",
	"/usr/lib/python3/dist-packages",
}

// sitePackagesDirs lists the site-packages folders searched for pip's CUDA plugins, in
// order: the active virtualenv's ($VIRTUAL_ENV), the project's .venv, the user's
// (~/.local), then the system's (globs, as systemSitePackages). Missing folders are
// left out; several Python versions in one place are taken newest first.
func sitePackagesDirs(virtualEnv, projectRoot, home string, system []string) []string {
	var globs []string
	venvGlob := func(prefix string) {
		globs = append(globs, filepath.Join(prefix, "lib", "python3*", "site-packages"))
	}
	if virtualEnv != "" {
		venvGlob(virtualEnv)
	}
	if projectRoot != "" {
		venvGlob(filepath.Join(projectRoot, ".venv"))
	}
	if home != "" {
		venvGlob(filepath.Join(home, ".local"))
	}
	globs = append(globs, system...)
	var dirs []string
	for _, g := range globs {
		matches, _ := filepath.Glob(g)
		slices.SortFunc(matches, comparePythonDirs)
		for _, m := range matches {
			if info, err := os.Stat(m); err == nil && info.IsDir() && !slices.Contains(dirs, m) {
				dirs = append(dirs, m)
			}
		}
	}
	return dirs
}

// comparePythonDirs orders ".../python3.12/..." before ".../python3.9/...".
func comparePythonDirs(a, b string) int {
	minor := func(p string) int {
		var n int
		if i := strings.Index(p, "python3."); i >= 0 {
			fmt.Sscanf(p[i+len("python3."):], "%d", &n)
		}
		return n
	}
	if c := minor(b) - minor(a); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// cudaPlugins returns the CUDA PJRT plugin files present, in the order they are tried:
// pjrt_c_api_cuda_plugin.so in each plugin folder, then the pip wheels' layout in each
// site-packages folder.
func (p probes) cudaPlugins() []string {
	var found []string
	for _, dir := range p.pluginDirs {
		if path := filepath.Join(dir, "pjrt_c_api_cuda_plugin.so"); p.fileExists(path) {
			found = append(found, path)
		}
	}
	for _, dir := range p.sitePackages {
		for _, rel := range cudaWheelPlugins {
			if path := filepath.Join(dir, rel); p.fileExists(path) {
				found = append(found, path)
			}
		}
	}
	return found
}

// chooseCUDA picks the first CUDA plugin whose PJRT C API version go-xla can use. If
// none, it returns "" and why, in one line: no plugin anywhere, or each plugin found
// with its version, go-xla's, and the fix.
func (p probes) chooseCUDA() (plugin string, version PJRTVersion, refusals []string) {
	candidates := p.cudaPlugins()
	if len(candidates) == 0 {
		return "", PJRTVersion{}, []string{fmt.Sprintf(
			"a GPU is present but no pjrt_c_api_cuda_plugin.so is in %s and no jax_plugins/xla_cuda{13,12}/xla_cuda_plugin.so in the site-packages %s (see README.md, 'Using a GPU')",
			strings.Join(p.pluginDirs, ":"), strings.Join(p.sitePackages, ":"))}
	}
	for _, path := range candidates {
		v, err := p.pluginVersion(path)
		switch {
		case err != nil:
			refusals = append(refusals, fmt.Sprintf("%v (reinstall it: %s)", err, cudaWheelFix))
		case !v.compatible():
			refusals = append(refusals, refusalMessage(path, v))
		default:
			return path, v, refusals
		}
	}
	return "", PJRTVersion{}, refusals
}

// refusalMessage is the one line for a CUDA plugin whose PJRT C API version go-xla cannot use.
func refusalMessage(path string, v PJRTVersion) string {
	return fmt.Sprintf("%s has PJRT C API %s but go-xla %s speaks %s (it works with %s to %s): %s, or force this one with %s=xla:%s",
		path, v, goXLAVersion, goXLAPJRT, oldestPJRT, goXLAPJRT, cudaWheelFix, EnvBackend, path)
}

// pipCUDADataDir returns the CUDA toolkit folder (ptxas, libdevice) that NVIDIA's pip
// wheels install beside a pip-installed CUDA plugin: site-packages/nvidia/cu13 for
// xla_cuda13, site-packages/nvidia/cuda_nvcc for xla_cuda12, or "" if the plugin is
// not in the pip layout or the folder is missing.
func pipCUDADataDir(plugin string) string {
	pluginDir := filepath.Dir(plugin)
	if filepath.Base(filepath.Dir(pluginDir)) != "jax_plugins" {
		return ""
	}
	site := filepath.Dir(filepath.Dir(pluginDir))
	var dir string
	switch filepath.Base(pluginDir) {
	case "xla_cuda13":
		dir = filepath.Join(site, "nvidia", "cu13")
	case "xla_cuda12":
		dir = filepath.Join(site, "nvidia", "cuda_nvcc")
	default:
		return ""
	}
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return ""
	}
	return dir
}

// prepareCUDAEnv points XLA at the CUDA toolkit of a pip-installed plugin
// (--xla_gpu_cuda_data_dir in $XLA_FLAGS, unless set) and turns off go-xla's check for
// an nvidia/ folder beside the plugin (GOPJRT_CUDA_CHECKS=0, unless set): pip puts
// NVIDIA's libraries in site-packages/nvidia, which the plugin's RPATH finds, not
// where go-xla's own installer puts them, and the check would print a misleading warning.
func prepareCUDAEnv(plugin string) {
	dataDir := pipCUDADataDir(plugin)
	if dataDir == "" {
		return
	}
	if cur := os.Getenv("XLA_FLAGS"); !strings.Contains(cur, "--xla_gpu_cuda_data_dir") {
		_ = os.Setenv("XLA_FLAGS", strings.TrimSpace(cur+" --xla_gpu_cuda_data_dir="+dataDir))
	}
	if _, set := os.LookupEnv("GOPJRT_CUDA_CHECKS"); !set {
		_ = os.Setenv("GOPJRT_CUDA_CHECKS", "0")
	}
}
