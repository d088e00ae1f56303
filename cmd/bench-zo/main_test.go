package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goptlab/goptlab/mlx"
	"github.com/goptlab/goptlab/mlx/models"
)

// dumpDir receives XLA's dumps of every executable the tests compile (XLA reads XLA_FLAGS
// once, when the plugin loads, so TestMain sets it first).
var dumpDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bench-zo-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dumpDir = dir
	_ = os.Setenv("XLA_FLAGS", strings.TrimSpace(os.Getenv("XLA_FLAGS")+" --xla_dump_to="+dir))
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// TestZOStepMemory checks, by XLA's own buffer assignment, that a ZO-SGD step with one
// direction (Gaussian or Rademacher) needs no more memory beyond its inputs than a forward
// pass plus one copy of the parameters (plus the step's few small outputs: RNG state, seeds,
// projected gradient, loss), on MLPs whose layers have different sizes and equal sizes
// (where XLA could pair a variable's perturbed points with another's output buffer). The
// assignment is deterministic, so this is a plain assertion, not a measurement.
func TestZOStepMemory(t *testing.T) {
	choice, err := mlx.ChooseAuto()
	if err != nil || choice.Kind != mlx.KindXLACPU {
		t.Skip("XLA CPU plugin not installed (run `make setup`): the memory figures are XLA's")
	}
	backend, err := choice.New()
	if err != nil {
		t.Fatal(err)
	}
	const smallOutputs = 1024 // bytes allowed for outputs other than the new parameters
	defer func(in int, hidden string) { *flagIn, *flagHidden = in, hidden }(*flagIn, *flagHidden)
	for _, arch := range []struct {
		in     int
		hidden string
	}{{512, "1024,512"}, {784, "1024,256"}, {512, "512,512,512,512"}} {
		*flagIn, *flagHidden = arch.in, arch.hidden
		hidden, err := parseHidden()
		if err != nil {
			t.Fatal(err)
		}
		cfg := models.MLPConfig{Hidden: hidden, Outputs: *flagOut, Activation: "relu"}
		paramBytes := int64(cfg.NumParams(*flagIn) * 4)
		extra := func(mode string) int64 {
			b, err := newBench(backend)
			if err != nil {
				t.Fatal(err)
			}
			old, _ := filepath.Glob(filepath.Join(dumpDir, "*"))
			for _, f := range old {
				_ = os.RemoveAll(f)
			}
			s, err := b.prepare(mode)
			if err != nil {
				t.Fatal(err)
			}
			defer s.finalize()
			if err := s.call(); err != nil {
				t.Fatal(err)
			}
			n, err := xlaExtraBytes(dumpDir)
			if err != nil || n < 0 {
				t.Fatalf("%s: no XLA buffer assignment in %s (%v)", mode, dumpDir, err)
			}
			return n
		}
		forward := extra("forward")
		for _, mode := range []string{"zo-m1", "zo-m1-rademacher"} {
			beyond := extra(mode) - forward
			t.Logf("MLP %d -> [%s]: %s needs %d bytes beyond a forward pass = one parameter copy %+d bytes",
				arch.in, arch.hidden, mode, beyond, beyond-paramBytes)
			if beyond > paramBytes+smallOutputs {
				t.Errorf("MLP %d -> [%s]: %s needs %d bytes beyond a forward pass, more than one parameter copy (%d bytes) + %d",
					arch.in, arch.hidden, mode, beyond, paramBytes, smallOutputs)
			}
		}
	}
}
