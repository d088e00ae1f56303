"""The kernel's processes, through a real Jupyter client: a forced shutdown or restart, and
JupyterLab stopped with SIGTERM, leave none running (gopls included); an interrupt stops a
cell's whole process tree, go build included; the kernel starts quietly and logs to
.jupyter/log/gonb.log; a cell that deletes GoNB's go.mod and go.work does not break the next.

Each test tags the kernels it starts (kernelclient.TAG_VAR in their environment, which every
process they start inherits) and looks for its processes by that tag in /proc."""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
from jupyter_server.serverapp import list_running_servers

from conftest import ROOT
from kernelclient import (READY_BOUND_S, STARTUP_BOUND_S, complete_until, describe, fresh_kernel, kill_tagged,
                          new_tag, still_running, tagged_processes, wait_until, TAG_VAR)

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="finds processes through /proc (Linux)")

# How long processes may take to end once they must: a liveness bound.
GONE_BOUND_S = 120

MLX_CELL = 'import "github.com/goptlab/goptlab/mlx"\n%%\nmlx.MustBackend()\nfmt.Println("mlx imported")'
COMPLETION = 'import "github.com/goptlab/goptlab/mlx"\n%%\nmlx.MustBa'


@pytest.fixture
def tag():
    """A fresh tag for this test's kernels; whatever still carries it at the end is killed."""
    value = new_tag()
    yield value
    kill_tagged(value)


def assert_all_gone(tag, what):
    try:
        wait_until(lambda: not tagged_processes(tag), GONE_BOUND_S, what)
    except AssertionError as e:
        raise AssertionError(f"{e}: {describe(tagged_processes(tag))}") from None


def start_gopls(kernel):
    """Runs a cell and a completion (so GoNB's gopls has loaded the module); returns gopls's processes."""
    result = kernel.run(MLX_CELL)
    assert result.status == "ok", result
    complete_until(kernel, COMPLETION, "MustBackend")


def gopls_of(tag):
    return [p for p in tagged_processes(tag) if p.name == "gopls"]


def test_forced_shutdown_leaves_no_process(tag):
    with fresh_kernel({TAG_VAR: tag}) as kernel:
        start_gopls(kernel)
        assert gopls_of(tag), f"gopls is not running: {describe(tagged_processes(tag))}"
    # fresh_kernel ends with shutdown_kernel(now=True): SIGKILL to the kernel's process group.
    assert_all_gone(tag, "the kernel's processes to end after a forced shutdown")


def test_forced_restart_stops_the_old_kernels_processes(tag):
    with fresh_kernel({TAG_VAR: tag}) as kernel:
        start_gopls(kernel)
        old = tagged_processes(tag)
        assert any(p.name == "gopls" for p in old), describe(old)
        kernel.km.restart_kernel(now=True)
        kernel.kc.wait_for_ready(timeout=STARTUP_BOUND_S)
        try:
            wait_until(lambda: not still_running(old), GONE_BOUND_S, "the old kernel's processes to end")
        except AssertionError as e:
            raise AssertionError(f"{e}: {describe(still_running(old))}") from None
        result = kernel.run(MLX_CELL)
        assert result.status == "ok" and "mlx imported" in result.stdout, result
    assert_all_gone(tag, "the kernel's processes to end after a forced shutdown")


def api(info, path, method="GET", body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{info['port']}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {info['token']}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=READY_BOUND_S) as response:
        return json.loads(response.read() or b"null")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyterlab_stopped_right_after_starting_kernels_leaves_nothing(tmp_path, tag):
    stderr_path = tmp_path / "lab-stderr.txt"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path), **{TAG_VAR: tag})
    with open(stderr_path, "w") as stderr:
        server = subprocess.Popen([str(ROOT / "kernel" / "lab.sh"), "--no-browser", f"--port={free_port()}",
                                   "--ServerApp.port_retries=0"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        def running():
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{stderr_path.read_text()}")
            return next(list_running_servers(str(tmp_path)), None)

        info = wait_until(running, STARTUP_BOUND_S, "JupyterLab to start")

        def answers():
            try:
                return api(info, "/api/status")
            except OSError:  # the server file can come before the socket listens
                return None

        wait_until(answers, STARTUP_BOUND_S, "JupyterLab to answer")
        kernels = [api(info, "/api/kernels", "POST", {"name": "goptlab"}) for _ in range(3)]
        assert all(k["id"] for k in kernels), kernels
        server.send_signal(signal.SIGTERM)
        server.wait(STARTUP_BOUND_S)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(30)
    assert_all_gone(tag, "the kernels' processes to end after JupyterLab stopped")
    log = stderr_path.read_text()
    assert "panic" not in log and "close of closed channel" not in log, log
    assert "Error message" not in log, log


# The interrupt tests use a copy of the kernelspec with interrupt_mode "signal" (conftest):
# with "message", GoNB only passes the interrupt to the cell's program, never to go build.

def run_and_interrupt(kernel, code, ready):
    """Runs code in a thread, waits until ready(result) is true, interrupts the kernel; returns
    (the cell's result, seconds from the interrupt to the end of the cell)."""
    box = {}
    progress = {"result": None}

    def on_output(msg, result):
        progress["result"] = result

    thread = threading.Thread(target=lambda: box.setdefault("r", kernel.run(code, timeout=READY_BOUND_S + STARTUP_BOUND_S,
                                                                            on_output=on_output)))
    thread.start()
    wait_until(lambda: ready(progress["result"]), STARTUP_BOUND_S, "the cell to get going")
    asked = time.monotonic()
    kernel.km.interrupt_kernel()
    thread.join(GONE_BOUND_S)
    assert not thread.is_alive(), f"the interrupted cell did not end within {GONE_BOUND_S} s"
    return box["r"], time.monotonic() - asked


def builds(tag):
    """The kernel's go build and compiler/linker processes."""
    return [p for p in tagged_processes(tag)
            if p.argv[1:2] == ("build",) or p.name in ("compile", "link", "asm", "cgo", "cc1", "gcc")]


def test_interrupt_during_go_build_stops_the_build_and_the_cell_does_not_run(tmp_path, tag, signal_kernel_name):
    # An empty build cache makes the cell's go build compile net/http and all it needs: long enough.
    env = {TAG_VAR: tag, "GOCACHE": str(tmp_path / "gocache")}
    cell = 'import "net/http"\n%%\nfmt.Println("the cell ran", http.StatusOK)'
    with fresh_kernel(env, kernel_name=signal_kernel_name) as kernel:
        result, latency = run_and_interrupt(kernel, cell, lambda _: any(p.argv[1:2] == ("build",) for p in builds(tag)))
        print(f"interrupt during go build: the cell ended {latency:.2f} s after the interrupt")
        assert result.status == "error", result
        assert "the cell ran" not in result.stdout, result
        try:
            wait_until(lambda: not builds(tag), GONE_BOUND_S, "go build to end")
        except AssertionError as e:
            raise AssertionError(f"{e}: {describe(builds(tag))}") from None


CHILD_CELL = """import (
	"os"
	"os/exec"
)
%%
child := exec.Command("bash", "-c", "trap '' INT; echo child started; exec sleep 100000")
child.Env = append(os.Environ(), "GOPTLAB_TEST_CELL_CHILD=1")
SHARE
if err := child.Start(); err != nil {
	panic(err)
}
fmt.Println("cell waiting")
child.Wait()
fmt.Println("cell finished")
"""


@pytest.mark.parametrize("shared_stdout", [True, False], ids=["shared-stdout", "own-stdout"])
def test_interrupt_stops_a_child_that_ignores_sigint(tag, signal_kernel_name, shared_stdout):
    cell = CHILD_CELL.replace("SHARE", "child.Stdout = os.Stdout" if shared_stdout else "")
    wanted = "child started" if shared_stdout else "cell waiting"

    def children():
        return tagged_processes(tag, marker="GOPTLAB_TEST_CELL_CHILD=1")

    with fresh_kernel({TAG_VAR: tag}, kernel_name=signal_kernel_name) as kernel:
        result, latency = run_and_interrupt(
            kernel, cell, lambda r: r is not None and wanted in r.stdout and any(p.name == "sleep" for p in children()))
        print(f"interrupt of a cell whose child ignores SIGINT: the cell ended {latency:.2f} s after the interrupt")
        assert result.status == "error", result
        assert "cell finished" not in result.stdout, result
        try:
            wait_until(lambda: not children(), GONE_BOUND_S, "the cell's child to end")
        except AssertionError as e:
            raise AssertionError(f"{e}: {describe(children())}") from None
        after = kernel.run('%%\nfmt.Println("still alive")')
        assert after.status == "ok" and after.stdout == "still alive\n", after
        assert gopls_of(tag), "the interrupt stopped gopls too"


GONB_LOG = ROOT / ".jupyter" / "log" / "gonb.log"


def test_kernel_starts_quietly_and_logs_to_gonb_log(tmp_path, tag):
    stderr_path = tmp_path / "kernel-stderr.txt"
    offset = GONB_LOG.stat().st_size if GONB_LOG.exists() else 0
    with open(stderr_path, "w") as stderr, fresh_kernel({TAG_VAR: tag}, stderr=stderr) as kernel:
        result = kernel.run('%%\nfmt.Println("logged")')
        assert result.status == "ok", result
        gonb = [p for p in tagged_processes(tag) if p.name == "gonb"]
        assert len(gonb) == 1, describe(tagged_processes(tag))

        def logged():
            with open(GONB_LOG, errors="replace") as f:
                f.seek(offset)
                return [line for line in f.read().splitlines() if f" {gonb[0].pid} " in line]

        lines = wait_until(lambda: [line for line in logged() if re.match(r"I\d{4} .* kernel created", line)],
                           READY_BOUND_S, "GoNB's log lines in gonb.log")
    assert lines, lines
    stderr_text = stderr_path.read_text()
    assert "Error message" not in stderr_text, stderr_text
    assert stderr_text == "", f"the kernel wrote to stderr: {stderr_text}"


def test_a_cell_that_deletes_go_mod_and_go_work_does_not_break_the_next(tag):
    delete = """import "path/filepath"
%%
dir := os.Getenv("GONB_TMP_DIR")
for _, name := range []string{"go.mod", "go.work"} {
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		panic(err)
	}
}
_, errMod := os.Stat(filepath.Join(dir, "go.mod"))
_, errWork := os.Stat(filepath.Join(dir, "go.work"))
fmt.Println("deleted:", os.IsNotExist(errMod), os.IsNotExist(errWork))"""
    with fresh_kernel({TAG_VAR: tag}) as kernel:
        first = kernel.run(MLX_CELL)
        assert first.status == "ok", first
        deleted = kernel.run(delete)
        assert deleted.status == "ok" and "deleted: true true" in deleted.stdout, deleted
        after = kernel.run(MLX_CELL)
        assert after.status == "ok" and "mlx imported" in after.stdout, after
