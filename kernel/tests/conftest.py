"""Shared set-up for the kernel tests: run against the project's own kernelspec, offline."""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
KERNEL_NAME = "goptlab"

# Every kernel these tests start must work without the network: the Go module
# proxy is off, and Go must use the local toolchain.
os.environ["GOPROXY"] = "off"
os.environ["GOTOOLCHAIN"] = "local"
