"""The kernel platform, through a real Jupyter client: kernelspec, first cell, backend choice,
module visibility through go.work, error display and the launcher's messages."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import uuid

import pytest

from conftest import KERNEL_NAME, ROOT
from kernelclient import complete_until, fresh_kernel, launcher

# The first cell of a new notebook: our module and GoMLX, no set-up cell, one training step.
# The model is y = x.w with w = (0.5, -0.25): its loss on this batch before the step is
# mean((0.5 - 0.5 - 1)^2, (1.5 - 1 - 2)^2) = (1 + 2.25) / 2 = 1.625.
FIRST_CELL = """import (
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/loss"
	"github.com/gomlx/gomlx/ml/train/optimizer"
	"github.com/goptlab/goptlab/mlx"
)

%%
backend := mlx.MustBackend()
modelFn := func(scope *model.Scope, x *graph.Node) *graph.Node {
	w := scope.VariableWithValue("w", [][]float32{{0.5}, {-0.25}})
	return graph.MatMul(x, w.NodeValue(x.Graph()))
}
sgd := optimizer.StochasticGradientDescent().WithDecay(false).WithLearningRate(0.1).Done()
trainer := train.NewTrainer(backend, model.NewStore(), modelFn, loss.MeanSquaredError, sgd, nil, nil)
batch := train.Batch{
	Inputs: []*tensors.Tensor{tensors.FromValue([][]float32{{1, 2}, {3, 4}})},
	Labels: []*tensors.Tensor{tensors.FromValue([][]float32{{1}, {2}})},
}
metrics, err := trainer.TrainStep(batch)
if err != nil {
	panic(err)
}
fmt.Printf("loss at step 1: %.4f\\n", metrics[0].Value())
"""


def venv_bin(name):
    return str(pathlib.Path(sys.executable).parent / name)


def test_kernelspec_is_listed():
    out = subprocess.run([venv_bin("jupyter"), "kernelspec", "list", "--json"],
                         check=True, capture_output=True, text=True).stdout
    specs = json.loads(out)["kernelspecs"]
    assert KERNEL_NAME in specs, f"kernelspec {KERNEL_NAME!r} not installed: {sorted(specs)}"
    spec = specs[KERNEL_NAME]["spec"]
    assert spec["display_name"] == "Go (GoMLX)"
    assert spec["language"] == "go"
    assert spec["argv"][0] == str(ROOT / "kernel" / "launch.sh")


def test_first_cell_imports_mlx_and_trains_on_xla_cpu():
    with fresh_kernel() as kernel:
        result = kernel.run(FIRST_CELL)
    assert result.status == "ok", result
    assert result.stdout.splitlines()[0].startswith("mlx: running on XLA CPU"), result.stdout
    assert "loss at step 1: 1.6250" in result.stdout, result.stdout
    assert result.stderr == "" and not result.errors, result


def test_backend_env_is_honoured_and_bad_values_are_explained():
    cell = 'import "github.com/goptlab/goptlab/mlx"\n%%\nmlx.MustBackend()\nfmt.Println("after")'
    with fresh_kernel({"GOMLX_BACKEND": "go"}) as kernel:
        result = kernel.run(cell)
    assert result.status == "ok", result
    assert result.stdout.startswith('mlx: running on pure Go (go): set by GOMLX_BACKEND="go"'), result.stdout

    with fresh_kernel({"GOMLX_BACKEND": "tpu"}) as kernel:
        result = kernel.run(cell)
    assert result.status == "error"
    assert "after" not in result.stdout
    assert 'mlx: GOMLX_BACKEND="tpu": unknown backend "tpu"; valid values are go, xla:cpu' in result.stderr
    assert "goroutine" not in result.stderr, "a bad GOMLX_BACKEND should not print a stack trace"


def test_completion_sees_our_module():
    # gopls starts with the kernel and completes nothing until it has loaded the module (seconds,
    # or minutes on a loaded machine): ask again until it answers, within a liveness bound.
    with fresh_kernel() as kernel:
        code = 'import "github.com/goptlab/goptlab/mlx"\n%%\nmlx.MustBa'
        reply = complete_until(kernel, code, "MustBackend")
    assert reply["msg_type"] == "complete_reply"
    assert "MustBackend" in reply["content"]["matches"], reply["content"]


def test_compile_error_shows_cell_line_and_message():
    with fresh_kernel() as kernel:
        result = kernel.run('%%\nx := 1\nundefinedFunction(x)')
    assert result.status == "error"
    html = " ".join(d.get("text/html", "") for d in result.displays)
    assert "undefined: undefinedFunction" in html, html
    assert "undefinedFunction(x)" in html, "the error display should show the offending cell code"
    assert result.errors, "an error output must follow, so notebook runners stop"


def test_repo_edits_are_seen_at_the_next_cell_run():
    pkg = "zz_livereload_" + uuid.uuid4().hex[:8]
    pkg_dir = ROOT / "kernel" / "tests" / pkg
    pkg_dir.mkdir()
    try:
        source = pkg_dir / "value.go"
        source.write_text(f"// Package {pkg} is a temporary package of test_kernel.py.\npackage {pkg}\n\n"
                          "// Value is edited by the test.\nconst Value = \"first\"\n")
        cell = f'import "github.com/goptlab/goptlab/kernel/tests/{pkg}"\n%%\nfmt.Println({pkg}.Value)'
        with fresh_kernel() as kernel:
            first = kernel.run(cell)
            source.write_text(source.read_text().replace('"first"', '"second"'))
            second = kernel.run(cell)
        assert first.stdout.strip() == "first", first
        assert second.stdout.strip() == "second", second
    finally:
        shutil.rmtree(pkg_dir)


def test_launcher_explains_a_missing_go_toolchain(tmp_path):
    connection = tmp_path / "connection.json"
    connection.write_text("{}")
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")}
    if shutil.which("go", path=env["PATH"]):
        pytest.skip("this machine has go in /usr/bin or /bin")
    result = launcher(env, str(connection))
    assert result.returncode == 1
    assert result.stderr.startswith("goptlab kernel: the Go toolchain ('go') is not on PATH: install Go"), result.stderr


def test_launcher_explains_a_missing_connection_file(tmp_path):
    result = launcher(dict(os.environ), str(tmp_path / "missing.json"))
    assert result.returncode == 1
    assert "connection file" in result.stderr and "is not readable" in result.stderr, result.stderr


def test_setup_explains_missing_prerequisites():
    script = str(ROOT / "kernel" / "check-prereqs.sh")
    no_go = subprocess.run([script, sys.executable], env={"PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True)
    if shutil.which("go", path="/usr/bin:/bin") is None:
        assert no_go.returncode == 1
        assert "the Go toolchain ('go') is not on PATH" in no_go.stderr, no_go.stderr
    no_python = subprocess.run([script, "no-such-python3"], capture_output=True, text=True)
    assert no_python.returncode == 1
    assert "Python 3 ('no-such-python3') is not on PATH" in no_python.stderr, no_python.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
