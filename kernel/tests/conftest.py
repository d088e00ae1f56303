"""Shared set-up for the kernel tests: run against the project's own kernelspec, offline."""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
KERNEL_NAME = "goptlab"

# Every kernel these tests start must work without the network: the Go module
# proxy is off, and Go must use the local toolchain.
os.environ["GOPROXY"] = "off"
os.environ["GOTOOLCHAIN"] = "local"


import json  # noqa: E402
import shutil  # noqa: E402

import pytest  # noqa: E402

SIGNAL_KERNEL_NAME = KERNEL_NAME + "-signal"


@pytest.fixture(scope="session")
def signal_kernel_name(tmp_path_factory):
    """The name of a copy of our kernelspec with interrupt_mode "signal" (Jupyter then interrupts
    by sending SIGINT to the kernel's process group, which the launcher turns into stopping the
    cell's whole process tree, go build included), in a Jupyter data dir of its own."""
    from jupyter_client.kernelspec import KernelSpecManager

    installed = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    data_dir = tmp_path_factory.mktemp("jupyter-data")
    spec_dir = data_dir / "kernels" / SIGNAL_KERNEL_NAME
    shutil.copytree(installed.resource_dir, spec_dir)
    spec = json.loads((spec_dir / "kernel.json").read_text())
    spec["interrupt_mode"] = "signal"
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=2))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(data_dir)] + ([old] if old else []))
    yield SIGNAL_KERNEL_NAME
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old
