package mlx

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/loss"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

// fakeMachine builds probes over a fixed environment, GPU presence and set of files.
func fakeMachine(env map[string]string, gpu bool, files ...string) probes {
	exists := make(map[string]bool)
	for _, f := range files {
		exists[f] = true
	}
	return probes{
		lookupEnv:  func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		gpuPresent: func() bool { return gpu },
		fileExists: func(p string) bool { return exists[p] },
		pluginDirs: []string{"/opt/a", "/opt/b"},
		pluginVersion: func(string) (PJRTVersion, error) {
			return goXLAPJRT, nil
		},
	}
}

func TestChooseAutomatic(t *testing.T) {
	const cpu, cuda = "/opt/b/pjrt_c_api_cpu_plugin.so", "/opt/a/pjrt_c_api_cuda_plugin.so"
	tests := []struct {
		name       string
		gpu        bool
		files      []string
		wantKind   string
		wantPlugin string
		wantReason []string
	}{
		{"gpu and cuda plugin", true, []string{cpu, cuda}, KindXLACUDA, cuda, []string{"GPU and CUDA PJRT plugin found"}},
		{"gpu without cuda plugin", true, []string{cpu}, KindXLACPU, cpu, []string{"a GPU is present but no pjrt_c_api_cuda_plugin.so"}},
		{"cpu plugin only", false, []string{cpu}, KindXLACPU, cpu, []string{"no NVIDIA GPU found"}},
		{"nothing installed", false, nil, KindGo, "", []string{"no NVIDIA GPU found", "no pjrt_c_api_cpu_plugin.so in /opt/a:/opt/b", "make setup"}},
		{"cuda plugin but no gpu", false, []string{cuda}, KindGo, "", []string{"no NVIDIA GPU found", "XLA CPU passed over"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fakeMachine(nil, tc.gpu, tc.files...).choose()
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tc.wantKind || got.Plugin != tc.wantPlugin {
				t.Fatalf("got %s with plugin %q, want %s with %q", got.Kind, got.Plugin, tc.wantKind, tc.wantPlugin)
			}
			for _, w := range tc.wantReason {
				if !strings.Contains(got.Reason, w) {
					t.Errorf("reason %q does not say %q", got.Reason, w)
				}
			}
			if line := got.String(); strings.Contains(line, "\n") || !strings.HasPrefix(line, "mlx: running on "+tc.wantKind) {
				t.Errorf("choice line %q is not one line starting with the kind", line)
			}
		})
	}
}

func TestChooseForced(t *testing.T) {
	const cpu = "/opt/a/pjrt_c_api_cpu_plugin.so"
	tests := []struct {
		value      string
		files      []string
		wantKind   string
		wantConfig string
		wantErr    []string
	}{
		{value: "go", wantKind: KindGo, wantConfig: "go"},
		{value: "xla:cpu", files: []string{cpu}, wantKind: KindXLACPU, wantConfig: "xla:" + cpu},
		{value: "xla", files: []string{cpu}, wantKind: KindXLACPU, wantConfig: "xla:" + cpu},
		{value: "xla:cpu,shared_buffers=false", files: []string{cpu}, wantKind: KindXLACPU, wantConfig: "xla:" + cpu + ",shared_buffers=false"},
		{value: "xla:/x/pjrt_c_api_cuda_plugin.so", files: []string{"/x/pjrt_c_api_cuda_plugin.so"}, wantKind: KindXLACUDA, wantConfig: "xla:/x/pjrt_c_api_cuda_plugin.so"},
		{value: "xla:cpu", wantErr: []string{`no PJRT plugin named "cpu"`, "/opt/a:/opt/b", "make setup"}},
		{value: "xla:cuda", files: []string{cpu}, wantErr: []string{`no PJRT plugin named "cuda"`}},
		{value: "xla:/missing/plugin.so", wantErr: []string{"/missing/plugin.so does not exist"}},
		{value: "xla:./rel.so", wantErr: []string{"must be a name (cpu, cuda) or an absolute path"}},
		{value: "tpu", wantErr: []string{`unknown backend "tpu"`, "go, xla:cpu, xla:cuda"}},
		{value: "simplego", wantErr: []string{`unknown backend "simplego"`}},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			got, err := fakeMachine(map[string]string{EnvBackend: tc.value}, true, tc.files...).choose()
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				for _, w := range append(tc.wantErr, "GOMLX_BACKEND") {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tc.wantKind || got.Config != tc.wantConfig {
				t.Fatalf("got %s %q, want %s %q", got.Kind, got.Config, tc.wantKind, tc.wantConfig)
			}
			if !strings.Contains(got.Reason, "set by GOMLX_BACKEND") {
				t.Errorf("reason %q does not name GOMLX_BACKEND", got.Reason)
			}
		})
	}
}

func TestBrokenPluginFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pjrt_c_api_cpu_plugin.so")
	if err := os.WriteFile(path, []byte("not a shared library"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Choice{Kind: KindXLACPU, Config: "xla:" + path, Plugin: path}.New()
	if err == nil {
		t.Fatal("loading a broken plugin file succeeded")
	}
	for _, w := range []string{path, "make setup", "GOMLX_BACKEND=go"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func TestPluginSearchDirs(t *testing.T) {
	dirs := pluginSearchDirs("/first::/second")
	if len(dirs) < 3 || dirs[0] != "/first" || dirs[1] != "/second" {
		t.Fatalf("dirs = %q, want $PJRT_PLUGIN_LIBRARY_PATH's entries first", dirs)
	}
	root := ProjectRoot()
	if root == "" {
		t.Fatal("ProjectRoot() found no go.mod above mlx/")
	}
	if dirs[2] != filepath.Join(root, ".xla") {
		t.Errorf("dirs[2] = %q, want the project's .xla folder", dirs[2])
	}
}

// tinyLossCurve trains a fixed 4-8-1 tanh MLP with plain SGD on fixed data and returns the loss of each step.
// All values come from Go's math/rand with a fixed seed, so the run does not depend on a backend's RNG.
func tinyLossCurve(t *testing.T, backend compute.Backend, steps int) []float64 {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	matrix := func(rows, cols int, scale float64) [][]float32 {
		m := make([][]float32, rows)
		for i := range m {
			m[i] = make([]float32, cols)
			for j := range m[i] {
				m[i][j] = float32(rng.NormFloat64() * scale)
			}
		}
		return m
	}
	x, w1, w2 := matrix(32, 4, 1), matrix(4, 8, 0.5), matrix(8, 1, 0.5)
	y := make([][]float32, len(x))
	for i, row := range x {
		y[i] = []float32{float32(math.Sin(float64(row[0])) + 0.5*float64(row[1]*row[2]))}
	}

	store := model.NewStore()
	modelFn := func(scope *model.Scope, inputs []*graph.Node) []*graph.Node {
		g := inputs[0].Graph()
		s := scope.In("mlp")
		b1 := s.VariableWithShape("b1", shapes.Make(inputs[0].DType(), 8)).NodeValue(g)
		h := graph.Tanh(graph.Add(graph.MatMul(inputs[0], s.VariableWithValue("w1", w1).NodeValue(g)), graph.ExpandLeftToRank(b1, 2)))
		return []*graph.Node{graph.MatMul(h, s.VariableWithValue("w2", w2).NodeValue(g))}
	}
	opt := optimizer.StochasticGradientDescent().WithDecay(false).WithLearningRate(0.05).Done()
	trainer := train.NewTrainer(backend, store, modelFn, loss.MeanSquaredError, opt, nil, nil)
	curve := make([]float64, steps)
	for i := range curve {
		metrics, err := trainer.TrainStep(train.Batch{
			Inputs: []*tensors.Tensor{tensors.FromValue(x)},
			Labels: []*tensors.Tensor{tensors.FromValue(y)},
		})
		if err != nil {
			t.Fatalf("step %d on %s: %v", i+1, backend.Name(), err)
		}
		curve[i] = float64(metrics[0].Value().(float32))
	}
	return curve
}

// TestXLAMatchesPureGo trains the same tiny model on XLA CPU and on the pure-Go backend:
// the loss curves must agree within float32 tolerance.
func TestXLAMatchesPureGo(t *testing.T) {
	choice, err := ChooseAuto()
	if err != nil {
		t.Fatal(err)
	}
	if choice.Kind != KindXLACPU {
		t.Skipf("XLA CPU is not installed here (%s); `make test` installs it", choice.Reason)
	}
	xlaBackend, err := choice.New()
	if err != nil {
		t.Fatal(err)
	}
	goBackend, err := Choice{Kind: KindGo, Config: "go"}.New()
	if err != nil {
		t.Fatal(err)
	}
	const steps = 40
	onXLA, onGo := tinyLossCurve(t, xlaBackend, steps), tinyLossCurve(t, goBackend, steps)
	maxDiff := 0.0
	for i := range onXLA {
		diff := math.Abs(onXLA[i] - onGo[i])
		maxDiff = max(maxDiff, diff)
		if diff > 1e-5+1e-4*math.Abs(onGo[i]) {
			t.Errorf("step %d: loss %.8g on XLA CPU, %.8g on pure Go (diff %.3g)", i+1, onXLA[i], onGo[i], diff)
		}
	}
	if onGo[steps-1] >= 0.9*onGo[0] {
		t.Errorf("the tiny model did not train: loss %.4g -> %.4g", onGo[0], onGo[steps-1])
	}
	t.Logf("loss %.6f -> %.6f on both backends; largest difference %.3g", onGo[0], onGo[steps-1], maxDiff)
}

func TestFallback(t *testing.T) {
	const cpu, cuda = "/opt/b/pjrt_c_api_cpu_plugin.so", "/opt/a/pjrt_c_api_cuda_plugin.so"
	failure := errors.New("loading failed: CUDA driver too old")
	cudaChoice := Choice{Kind: KindXLACUDA, Config: "xla:" + cuda, Plugin: cuda, Reason: "GPU found"}
	tests := []struct {
		name     string
		failed   Choice
		files    []string
		wantKind string
	}{
		{"cuda to cpu", cudaChoice, []string{cpu, cuda}, KindXLACPU},
		{"cuda to go without cpu plugin", cudaChoice, []string{cuda}, KindGo},
		{"cpu to go", Choice{Kind: KindXLACPU, Config: "xla:" + cpu, Plugin: cpu, Reason: "no GPU"}, []string{cpu}, KindGo},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := fakeMachine(nil, true, tc.files...).fallback(tc.failed, failure)
			if got.Kind != tc.wantKind {
				t.Fatalf("fallback after %s = %s, want %s", tc.failed.Kind, got.Kind, tc.wantKind)
			}
			for _, w := range []string{tc.failed.Reason, failure.Error()} {
				if !strings.Contains(got.Reason, w) {
					t.Errorf("reason %q does not say %q", got.Reason, w)
				}
			}
		})
	}
}
