"""The set-up scripts and the Makefile: checkout paths are data, never code; the kernelspec
is valid JSON whatever the path; set-up leaves the committed files alone; `make test`
fuzzes with a bound that cannot fail by chance; nothing points outside the repository.

These run make and the scripts on copies of the working tree in temporary folders (no
installs: only the cheap targets, and `make -n` for the rest)."""

import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from conftest import ROOT

# Folder names a clone may get: each must be taken as a name. The first runs `touch PWNED`
# if any script or recipe hands the path to a shell unquoted (or in double quotes).
HOSTILE_NAMES = ["r$(touch PWNED)", "r with space", "r'q`touch PWNED`"]


def clean_env():
    """The environment without the calling make's variables (pytest may run under make)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    env["GOTOOLCHAIN"] = "local"
    return env


def tracked_files():
    """The working tree's files that a clone would have (tracked, or new and not ignored)."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, check=True, capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


def copy_tree(dst):
    """Copies the working tree's files into dst (a clone without .git), keeping file modes."""
    for rel in tracked_files():
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    return dst


def make(cwd, *args, check=True):
    p = subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, env=clean_env(),
                       capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, f"make {' '.join(args)} in {cwd} failed:\n{p.stdout}\n{p.stderr}"
    return p


def pwned(top):
    return sorted(str(p) for p in top.rglob("PWNED"))


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_checkout_path_is_never_executed(tmp_path, name):
    repo = copy_tree(tmp_path / name)

    def run(*args):
        p = make(repo, *args, check=False)
        assert pwned(tmp_path) == [], f"make {' '.join(args)} ran the path as a command"
        assert p.returncode == 0, f"make {' '.join(args)} in {repo} failed:\n{p.stdout}\n{p.stderr}"
        return p

    # Set-up's cheap parts for real: the prerequisite check, the kernelspec (its venv stamp
    # faked, so nothing is installed), and uninstall; the rest as make -n (which still
    # evaluates every variable and $(shell ...) of the Makefile).
    run("prereqs")
    (repo / ".stamps").mkdir()
    (repo / ".stamps" / "venv").touch()
    run(".venv/share/jupyter/kernels/goptlab/kernel.json")
    spec = json.loads((repo / ".venv/share/jupyter/kernels/goptlab/kernel.json").read_text())
    assert spec["argv"][0] == str(repo / "kernel" / "launch.sh")
    for target in ("setup", "test", "lab", "bench", "bench-kernel"):
        run("-n", target)
    run("uninstall")
    assert not (repo / ".venv").exists() and not (repo / ".stamps").exists()


def test_make_outside_the_repository_root_says_how(tmp_path):
    """make -f from another folder cannot work with relative paths: it must say so, not
    half-run."""
    repo = copy_tree(tmp_path / "repo")
    p = make(tmp_path, "-f", str(repo / "Makefile"), "prereqs", check=False)
    assert p.returncode != 0
    assert "make -C" in p.stderr, p.stderr


def test_kernelspec_is_json_whatever_the_path(tmp_path):
    """A folder name with a quote, a backslash and a crafted `", "--x` stays one argument."""
    repo = tmp_path / 'a"b\\c", "--x'
    (repo / "kernel").mkdir(parents=True)
    for f in ("install-kernelspec.sh", "launch.sh", "logo-svg.svg"):
        shutil.copy2(ROOT / "kernel" / f, repo / "kernel" / f)
    data = tmp_path / 'data "dir\\'
    p = subprocess.run([str(repo / "kernel" / "install-kernelspec.sh"), str(data)],
                       env=clean_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    spec = json.loads((data / "kernels" / "goptlab" / "kernel.json").read_text())
    assert spec["argv"] == [str(repo / "kernel" / "launch.sh"), "{connection_file}"]
    assert spec["env"]["GO_BIN_DIR"] == str(pathlib.Path(shutil.which("go")).parent)
    assert spec["display_name"] == "Go (GoMLX)"


def test_setup_leaves_go_mod_and_go_sum_unchanged(tmp_path):
    """Set-up runs `go mod download all` (notebooks then work offline): on the committed
    go.mod and go.sum it must change nothing, or a fresh clone is dirty after `make setup`.
    Run on copies, from the module cache set-up filled (no network)."""
    for f in ("go.mod", "go.sum"):
        shutil.copy2(ROOT / f, tmp_path / f)
    env = clean_env() | {"GOPROXY": "off", "GOSUMDB": "off", "GOFLAGS": "-mod=mod", "GOWORK": "off"}
    p = subprocess.run(["go", "mod", "download", "all"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"go mod download all (offline, after set-up) failed:\n{p.stderr}"
    assert (tmp_path / "go.mod").read_text() == (ROOT / "go.mod").read_text(), \
        "go mod download all changes go.mod: run it and commit go.mod"
    before = set((ROOT / "go.sum").read_text().splitlines())
    missing = [l for l in (tmp_path / "go.sum").read_text().splitlines() if l not in before]
    assert missing == [], (f"go mod download all adds {len(missing)} lines to go.sum, e.g. "
                           f"{missing[:3]}: run it and commit go.sum")


def test_make_test_fuzzes_by_execution_count():
    """A -fuzztime duration can fail with "context deadline exceeded" when a worker is slow
    at the deadline (go.dev/issue/75804): `make test` must fuzz for a number of executions
    (minimization too), with no wall-clock limit, while `make fuzz` keeps FUZZTIME."""
    out = make(ROOT, "-n", "test").stdout
    fuzz = [l for l in out.splitlines() if "-fuzz " in l or "-fuzz=" in l or '-fuzz "' in l]
    assert fuzz, f"make test runs no fuzzing:\n{out}"
    for line in fuzz:
        for flag in ("-fuzztime", "-fuzzminimizetime"):
            m = re.search(flag + r"[= ](\S+)", line)
            assert m and re.fullmatch(r"[0-9]+x", m.group(1)), f"{flag} is not a count in: {line}"
        assert re.search(r"-parallel[= ]1\b", line), line
        assert re.search(r"-timeout[= ]0\b", line), line
    timed = make(ROOT, "-n", "fuzz", "FUZZTIME=7s").stdout
    assert re.search(r"-fuzztime[= ]7s", timed), timed


def test_tracked_files_point_inside_the_repository():
    """Notes and citations must not name files outside the repository (a clone has none)."""
    outside = ["/work" + "/", "../" + "shared/"]
    hits = []
    for rel in tracked_files():
        try:
            text = (ROOT / rel).read_text()
        except UnicodeDecodeError:
            continue
        hits += [f"{rel}: {s}" for s in outside if s in text]
    assert hits == []
