"""docker/: the Dockerfiles pass hadolint (which does catch a bad one), and what they pin
agrees with the project (go.mod's Go, mlx's CUDA wheel). `make docker-test` builds and runs
the images themselves where a container engine can run."""

import re
import subprocess

import pytest

from conftest import ROOT

DOCKER = ROOT / "docker"
HADOLINT = ROOT / ".venv" / "bin" / "hadolint"
DOCKERFILES = [DOCKER / "Dockerfile.cpu", DOCKER / "Dockerfile.cuda"]


def hadolint(*paths):
    if not HADOLINT.exists():
        pytest.skip(f"{HADOLINT} is not installed: `make hadolint` (part of `make test`) installs it")
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--config", str(DOCKER / ".hadolint.yaml"), *map(str, paths)],
        capture_output=True, text=True, timeout=120)


def test_dockerfiles_pass_hadolint():
    result = hadolint(*DOCKERFILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    # No pipefail before a pipe, cd instead of WORKDIR, root user, apt lists left behind.
    bad.write_text("FROM debian:trixie-slim\nRUN apt-get update && apt-get install -y git\n"
                   "RUN cd /tmp && curl -s x | sh\n")
    result = hadolint(bad)
    assert result.returncode != 0, "hadolint passed a Dockerfile with known problems"
    for rule in ("DL3003", "DL4006", "DL3009"):
        assert rule in result.stdout, f"hadolint did not report {rule}:\n{result.stdout}"


def version(text):
    return tuple(int(n) for n in text.split("."))


def test_go_toolchain_satisfies_go_mod():
    need = re.search(r"^go (\d+\.\d+(?:\.\d+)?)$", (ROOT / "go.mod").read_text(), re.M).group(1)
    have = re.search(r"^ARG GO_TOOLCHAIN=go(\S+)$", (DOCKER / "Dockerfile.cpu").read_text(), re.M).group(1)
    assert version(have) >= version(need), f"the image's Go {have} is older than go.mod's go {need}"


def test_cuda_wheel_is_the_one_mlx_names():
    wheel = re.search(r'^ARG CUDA_WHEEL="(jax-cuda1\d-plugin\[with-cuda\]==[\d.]+)"$',
                      (DOCKER / "Dockerfile.cuda").read_text(), re.M).group(1)
    mlx_fix = (ROOT / "mlx" / "backend_cuda.go").read_text()
    assert f'pip install "{wheel}"' in mlx_fix, \
        f"Dockerfile.cuda installs {wheel}, mlx's message for a refused plugin names another wheel"
