"""A small client for the kernel tests: start a fresh kernel, run cells, collect outputs; run
the launcher by itself; find the processes a kernel started."""

import contextlib
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field

from jupyter_client.manager import start_new_kernel

from conftest import KERNEL_NAME, ROOT


@dataclass
class CellResult:
    """What one executed cell produced."""

    status: str
    stdout: str = ""
    stderr: str = ""
    errors: list = field(default_factory=list)  # (ename, evalue, traceback) of "error" outputs
    displays: list = field(default_factory=list)  # data dicts of display_data / update_display_data
    first_output_s: float | None = None  # seconds from the request to the first output
    first_output_at: float | None = None  # time.monotonic() at the first output


class Kernel:
    """A running kernel with a blocking client."""

    def __init__(self, km, kc):
        self.km, self.kc = km, kc

    def run(self, code, timeout=300, on_output=None):
        """Executes code and returns a CellResult. on_output(msg, result) sees each output as it comes."""
        result = CellResult(status="")
        start = time.monotonic()

        def hook(msg):
            kind, content = msg["msg_type"], msg["content"]
            if kind not in ("stream", "display_data", "update_display_data", "error", "execute_result"):
                return
            if result.first_output_s is None:
                result.first_output_at = time.monotonic()
                result.first_output_s = result.first_output_at - start
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind == "error":
                result.errors.append((content["ename"], content["evalue"], content["traceback"]))
            else:
                result.displays.append(content["data"])
            if on_output is not None:
                on_output(msg, result)

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        result.status = reply["content"]["status"]
        return result


# Liveness bounds: how long a test waits for something that must happen (a kernel that
# answers, gopls that completes, processes that end) before it calls it a failure. Only a
# hang reaches them; on a loaded machine things take longer, never this long.
STARTUP_BOUND_S = 600
READY_BOUND_S = 300


@contextlib.contextmanager
def fresh_kernel(extra_env=None, startup_timeout=STARTUP_BOUND_S, kernel_name=KERNEL_NAME, **launch_kwargs):
    """Starts a new kernel of our kernelspec (with extra environment variables) and shuts it down
    after, forcibly (shutdown_kernel(now=True)). launch_kwargs go to the kernel's Popen (e.g. stderr)."""
    env = dict(os.environ, **(extra_env or {}))
    km, kc = start_new_kernel(kernel_name=kernel_name, startup_timeout=startup_timeout, env=env, **launch_kwargs)
    try:
        yield Kernel(km, kc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def launcher(env, *args):
    """Runs kernel/launch.sh directly (not through Jupyter) with env and args; for its error messages."""
    return subprocess.run([str(ROOT / "kernel" / "launch.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=30)


def wait_until(predicate, bound_s, what, interval_s=0.2):
    """Polls predicate() until it returns a true value, which it returns; fails after bound_s (a liveness bound)."""
    deadline = time.monotonic() + bound_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {bound_s} s for {what}")
        time.sleep(interval_s)


def complete_until(kernel, code, wanted, bound_s=READY_BOUND_S):
    """Asks for completions at the end of code until wanted is among them (gopls starts with the
    kernel and answers nothing until it has loaded the module); returns the last complete_reply."""
    last = {}

    def ready():
        reply = kernel.kc.complete(code, len(code), reply=True, timeout=bound_s)
        last["reply"] = reply
        return wanted in reply["content"]["matches"]

    try:
        wait_until(ready, bound_s, f"gopls to complete {wanted!r}", interval_s=1)
    except AssertionError as e:
        raise AssertionError(f"{e}: last reply {last.get('reply', {}).get('content')}") from None
    return last["reply"]


# Processes are told apart by a tag in their environment: every process a kernel starts
# inherits it (GoNB, gopls, go build, cell programs and their children), whatever its parent
# or session, so a test finds them all and only its own.
TAG_VAR = "GOPTLAB_TEST_TAG"


def new_tag():
    """A fresh tag value, for the TAG_VAR environment variable of a kernel (or JupyterLab)."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Proc:
    pid: int
    start: int  # start time in clock ticks since boot: (pid, start) names one process
    argv: tuple

    @property
    def name(self):
        return os.path.basename(self.argv[0]) if self.argv else ""


def _stat(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])  # state, starttime


def tagged_processes(tag, marker=None):
    """The live processes whose environment holds TAG_VAR=tag (and marker, a NAME=VALUE, if given)."""
    wanted = [f"{TAG_VAR}={tag}".encode()] + ([marker.encode()] if marker else [])
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            if not all(w in env for w in wanted):
                continue
            state, start = _stat(pid)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = tuple(a.decode(errors="replace") for a in f.read().split(b"\0") if a)
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to read
        if state not in ("Z", "X"):
            found.append(Proc(pid, start, argv))
    return found


def still_running(procs):
    """Those of procs that are still running (same pid and start time)."""
    left = []
    for p in procs:
        try:
            state, start = _stat(p.pid)
        except (OSError, ValueError):
            continue
        if start == p.start and state not in ("Z", "X"):
            left.append(p)
    return left


def kill_tagged(tag):
    """Kills what a failed test left running (the machine is shared); returns what it killed."""
    procs = tagged_processes(tag)
    for p in procs:
        with contextlib.suppress(OSError):
            os.kill(p.pid, signal.SIGKILL)
    return procs


def describe(procs):
    return "; ".join(f"{p.pid}: {' '.join(p.argv)[:160]}" for p in procs)
