"""A small client for the kernel tests: start a fresh kernel, run cells, collect outputs; run
the launcher by itself."""

import contextlib
import os
import subprocess
import time
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


@contextlib.contextmanager
def fresh_kernel(extra_env=None, startup_timeout=120):
    """Starts a new kernel of our kernelspec (with extra environment variables) and shuts it down after."""
    env = dict(os.environ, **(extra_env or {}))
    km, kc = start_new_kernel(kernel_name=KERNEL_NAME, startup_timeout=startup_timeout, env=env)
    try:
        yield Kernel(km, kc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def launcher(env, *args):
    """Runs kernel/launch.sh directly (not through Jupyter) with env and args; for its error messages."""
    return subprocess.run([str(ROOT / "kernel" / "launch.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=30)
