"""`make reproduce` at the tiny size: every experiment notebook runs headless with the real
kernel, and the report folder holds the executed notebooks, self-contained HTML exports with
their plots, the families' result files and REPORT.md/index.html with a row per claim. An
interrupted run leaves earlier reports as they were and no folder that looks complete."""

import json
import re
import os
import pathlib
import signal
import subprocess
import sys

from conftest import ROOT

REPRODUCE = ROOT / "experiments" / "reproduce.py"
FAMILIES = ["adan", "adahessian", "zo", "localsgd"]


def experiment_notebooks():
    return [ROOT / "notebooks" / f"{f}.ipynb" for f in FAMILIES if (ROOT / "notebooks" / f"{f}.ipynb").exists()]


def test_reproduce_tiny_writes_a_complete_report(tmp_path):
    notebooks = experiment_notebooks()
    assert notebooks, "no experiment notebook in notebooks/"
    reports = tmp_path / "reports"
    earlier = reports / "2000-01-01-earlier"
    earlier.mkdir(parents=True)
    (earlier / "REPORT.md").write_text("an earlier report\n")

    run = subprocess.run([sys.executable, str(REPRODUCE), "--size", "tiny", "--reports", str(reports)],
                         cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, f"reproduce failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"

    made = [p for p in reports.iterdir() if p != earlier]
    assert len(made) == 1 and made[0].name.endswith("-tiny"), [p.name for p in reports.iterdir()]
    report = made[0]
    assert (earlier / "REPORT.md").read_text() == "an earlier report\n"

    md = (report / "REPORT.md").read_text()
    html = (report / "index.html").read_text()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert commit in md and commit in html
    for nb in notebooks:
        family = nb.stem
        result = json.loads((report / "results" / family / "result.json").read_text())
        assert result["family"] == family and result["size"] == "tiny"
        claims = result["claims"]
        assert claims, f"{family}: no claims"
        for c in claims:
            # One row per claim, with its verdict.
            assert f"| {family} | {c['id']}:" in md, f"REPORT.md has no row for {family}/{c['id']}"
            assert c["judgement"]["verdict"] in ("supports", "does not support", "inconclusive")
        executed = json.loads((report / "notebooks" / nb.name).read_text())
        assert any(cell.get("outputs") for cell in executed["cells"]), f"{nb.name} was not executed"
        export = (report / "html" / f"{family}.html").read_text()
        # Plots are embedded as image elements with their data inline, so the export opens
        # offline. (nbconvert's own CSS holds a data:image/png URL: match <img> elements.)
        images = re.findall(r'<img[^>]*\ssrc="data:image/(?:png|svg\+xml);base64,', export)
        assert images, f"{family}.html has no embedded plot"
        assert f'href="html/{family}.html"' in html
    assert not [p for p in reports.iterdir() if p.name.startswith(".incomplete")]


def test_interrupted_reproduce_leaves_no_report(tmp_path):
    notebooks = experiment_notebooks()
    assert notebooks
    reports = tmp_path / "reports"
    earlier = reports / "2000-01-01-earlier"
    earlier.mkdir(parents=True)
    (earlier / "REPORT.md").write_text("an earlier report\n")
    proc = subprocess.Popen([sys.executable, str(REPRODUCE), "--size", "tiny", "--reports", str(reports), str(notebooks[0])],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait (for readiness, not a fixed time) until a notebook is executing: the runner says
        # so just before it starts the kernel, and its hidden work folder exists.
        line = proc.stdout.readline()
        assert "running" in line, f"unexpected first line {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        assert [p for p in reports.iterdir() if p.name.startswith(".incomplete")]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, out
    assert "interrupted" in err, err
    assert sorted(p.name for p in reports.iterdir()) == ["2000-01-01-earlier"]
    assert (earlier / "REPORT.md").read_text() == "an earlier report\n"
