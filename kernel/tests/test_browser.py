"""The notebook as a person uses it, in a real browser: Debian's chromium, driven by
playwright-core (kernel/browser/, installed by `make setup` with npm ci), against JupyterLab as
`make lab` starts it (kernel/lab.sh, on 127.0.0.1 with its token).

test_browser_lab opens a notebook made of plots.ipynb's first cells plus a PNG plot, checks that
it shows the kernel "Go (GoMLX)", runs all cells and sees every plot rendered (an <img> with a
decoded image or an <svg> with a non-empty box inside the output areas), gets completions for
`graph.Ad` with Tab, stops a cell that never ends with the interrupt button (the kernel is idle
again within a liveness bound, and runs the next cell), saves, closes and reopens the notebook
and sees the plots again; it also opens the notebook as `make html` executed it headless (not
trusted: JupyterLab then shows only safe outputs, so plots must carry PNG) and sees every plot. At the
end no process that the server started (kernels, gopls, cell programs) or chromium is left.

test_html_export runs `make html`'s exporter on the same notebook and opens the HTML offline:
every plot must render with the network cut off.

Screenshots are kept in $OUT/browser if $OUT is set, else out/browser/ (git-ignored); the test
prints the folder. Without chromium the tests are skipped with the reason (`make setup` installs
it when run as root)."""

import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import nbformat
import pytest

from conftest import ROOT
from kernelclient import READY_BOUND_S, STARTUP_BOUND_S, describe, kill_tagged, new_tag, tagged_processes, wait_until, TAG_VAR

BROWSER_DIR = ROOT / "kernel" / "browser"
SCRIPT = BROWSER_DIR / "lab-test.mjs"
GONE_BOUND_S = 120
# The whole browser session: kernels start and compile cells on a loaded 2-core machine.
SESSION_BOUND_S = 1800

PNG_CELL = """%%
fig, err := plots.Curves([]*history.History{adam[0], sgd[0]}, plots.LogY(), plots.Title("as PNG"))
if err != nil {
	panic(err)
}
if err := fig.DisplayPNG(); err != nil {
	panic(err)
}"""


def browser_or_skip():
    """Chromium and node with playwright-core, or a skip that says what is missing."""
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("browser tests need Debian's chromium: `make setup` installs it when run as root "
                    "(apt-get install chromium); as another user, install it and run make setup again")
    node = shutil.which("node")
    if not node:
        pytest.skip("browser tests need Node.js (node) to run playwright-core: install it, then make setup")
    if not (BROWSER_DIR / "node_modules" / "playwright-core" / "package.json").exists():
        pytest.fail("kernel/browser/node_modules has no playwright-core: run make setup (npm ci in kernel/browser)")
    return chromium, node


@pytest.fixture(scope="module")
def shots():
    """The screenshots' folder: $OUT/browser if $OUT is set, else out/browser/ (git-ignored)."""
    folder = pathlib.Path(os.environ["OUT"]) / "browser" if os.environ.get("OUT") else ROOT / "out" / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


def print_shots(capsys, folder, log):
    """Prints (past pytest's capture) the screenshots' paths and the measured figures."""
    with capsys.disabled():
        figures = "; ".join(f"{k} {v}" for k, v in measures(log).items())
        shown = sorted(p.name for p in folder.glob("*.png"))
        print(f"\nbrowser: {figures}\nbrowser: {len(shown)} screenshots in {folder}: {', '.join(shown)}")


@pytest.fixture(scope="module")
def test_notebook(tmp_path_factory):
    """plots.ipynb's first cells (helpers and two SVG plots) and a PNG plot, in a folder of its own."""
    source = nbformat.read(ROOT / "notebooks" / "plots.ipynb", as_version=4)
    nb = nbformat.v4.new_notebook(metadata=source.metadata)
    nb.cells = source.cells[:6] + [nbformat.v4.new_code_cell(PNG_CELL)]
    assert [c.cell_type for c in nb.cells].count("code") == 4, "plots.ipynb's first cells changed"
    folder = tmp_path_factory.mktemp("browser-notebooks")
    path = folder / "browser-test.ipynb"
    nbformat.write(nb, path)
    return path


def plot_outputs(nb):
    """How many outputs of an executed notebook carry a plot (SVG, an <img> or PNG data)."""
    n = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            html = data.get("text/html", "")
            if "image/png" in data or "image/svg+xml" in data or "<svg" in html or "<img" in html:
                n += 1
    return n


@pytest.fixture(scope="module")
def exported(test_notebook, tmp_path_factory):
    """The test notebook executed headless and exported by kernel/export_html.py (make html's)."""
    chromium_node = browser_or_skip()
    out = tmp_path_factory.mktemp("html")
    p = subprocess.run([sys.executable, str(ROOT / "kernel" / "export_html.py"), "--out", str(out), str(test_notebook)],
                       capture_output=True, text=True, timeout=SESSION_BOUND_S)
    assert p.returncode == 0, f"export_html.py failed:\n{p.stdout}\n{p.stderr}"
    html = out / "browser-test.html"
    executed = nbformat.read(out / "browser-test.ipynb", as_version=4)
    plots = plot_outputs(executed)
    assert plots == 3, f"the executed notebook has {plots} plot outputs, want 3 (two SVG, one PNG)"
    return chromium_node, html, out / "browser-test.ipynb", plots


def run_node(chromium, node, args, env, timeout):
    p = subprocess.run([node, str(SCRIPT), *args], cwd=BROWSER_DIR, env=dict(os.environ, CHROMIUM=chromium, **env),
                       capture_output=True, text=True, timeout=timeout)
    log = p.stdout + p.stderr
    assert p.returncode == 0 and "lab-test: ok" in p.stdout, f"lab-test.mjs {args[0]} failed:\n{log}"
    return log


def measures(log):
    return {m.group(1): m.group(2) for m in re.finditer(r"^measure: (\S+) (.*)$", log, re.M)}


def test_html_export(exported, shots, capsys):
    (chromium, node), html, _, plots = exported
    text = html.read_text(encoding="utf-8")
    embedded = len(re.findall(r'<img [^>]*src="data:image/(?:png|svg\+xml);base64,', text)) + text.count("<svg")
    assert embedded >= plots, f"the HTML embeds {embedded} plots (PNG or SVG data, or inline SVG), want {plots}"
    log = run_node(chromium, node, ["html", str(html)], {"SHOTS": str(shots), "PLOTS": str(plots)}, READY_BOUND_S)
    print_shots(capsys, shots, log)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(port, token, path):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def test_browser_lab(test_notebook, exported, shots, tmp_path, capsys):
    from jupyter_server.serverapp import list_running_servers

    (chromium, node), _, executed, plots = exported
    # kernel/lab.sh serves <its folder>/../notebooks with <its folder>/../.venv's Jupyter: run it
    # through a link in a folder that links .venv back to ours, and it serves that folder's notebooks/.
    top = tmp_path / "checkout"
    (top / "kernel").mkdir(parents=True)
    (top / "kernel" / "lab.sh").symlink_to(ROOT / "kernel" / "lab.sh")
    (top / ".venv").symlink_to(ROOT / ".venv")
    served = top / "notebooks"
    served.mkdir()
    shutil.copy(executed, served / "headless.ipynb")
    shutil.copy(test_notebook, served / "browser-test.ipynb")

    runtime = tmp_path / "runtime"
    tag = new_tag()
    # Folders of its own: the server's notebook signatures (trust) start empty and stay here, and
    # JupyterLab's settings and workspace (open tabs) are not the user's nor an earlier run's.
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               **{TAG_VAR: tag})
    port = free_port()
    stderr_path = tmp_path / "lab-stderr.txt"
    with open(stderr_path, "w") as stderr:
        server = subprocess.Popen([str(top / "kernel" / "lab.sh"), "--no-browser", f"--port={port}",
                                   "--ServerApp.port_retries=0"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        def running():
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{stderr_path.read_text()}")
            return next(list_running_servers(str(runtime)), None)

        info = wait_until(running, STARTUP_BOUND_S, "JupyterLab to write its server file", interval_s=0.5)
        assert info["port"] == port and info["token"], info

        def ready():
            try:
                return api(port, info["token"], "/api/status")
            except (urllib.error.URLError, ConnectionError):
                return None

        wait_until(ready, STARTUP_BOUND_S, "JupyterLab's API to answer", interval_s=0.5)
        assert pathlib.Path(api(port, info["token"], "/api/contents/headless.ipynb?content=0")["path"]) == \
            pathlib.Path("headless.ipynb")

        log = run_node(chromium, node, ["lab"], {TAG_VAR: tag,  # chromium too must be gone at the end
            "LAB_URL": f"http://127.0.0.1:{port}", "LAB_TOKEN": info["token"], "NOTEBOOK": "browser-test.ipynb",
            "HEADLESS_NOTEBOOK": "headless.ipynb", "SHOTS": str(shots), "PLOTS": str(plots)}, SESSION_BOUND_S)
        print_shots(capsys, shots, log)
        m = measures(log)
        assert int(m["plots_after_run_all"].split()[0]) >= plots, m
        # Saved after running in the session: signed by the server, trusted when reopened.
        assert int(m["plots_after_reopen"].split()[0]) >= plots, m
        assert "Notebook trusted" in m["plots_after_reopen"], m
        # Executed headless (nbclient signs nothing): not trusted, so JupyterLab shows only safe
        # outputs, and every plot must still show, as its PNG.
        untrusted = m["plots_headless_untrusted"]
        assert int(untrusted.split()[0]) >= plots and "not trusted" in untrusted, m
        assert untrusted.count("png ") >= plots and "svg" not in untrusted, m

        saved = nbformat.read(served / "browser-test.ipynb", as_version=4)
        assert plot_outputs(saved) >= plots, "the saved notebook lost its plots"
        assert any("tick" in out.get("text", "") for c in saved.cells for out in c.get("outputs", [])), \
            "the saved notebook lacks the interrupted cell's output"
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(STARTUP_BOUND_S)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        try:
            wait_until(lambda: not tagged_processes(tag), GONE_BOUND_S, "the server's and browser's processes to end")
        except AssertionError as e:
            left = tagged_processes(tag)
            kill_tagged(tag)
            raise AssertionError(f"{e}: left running: {describe(left)}") from None
