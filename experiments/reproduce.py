"""Runs the experiment notebooks headless and writes a shareable report (`make reproduce`).

    .venv/bin/python experiments/reproduce.py [--size default] [--reports reports] [NOTEBOOK ...]

Each notebook (by default every experiment notebook: notebooks/{adan,adahessian,zo,localsgd}.ipynb
that exists) is executed with the project's kernel, with $GOPTLAB_EXPERIMENT_SIZE set to the size
and $GOPTLAB_RESULTS_DIR pointing into the report, so each family writes its result files there.
The report folder, reports/<date>-<commit>[-dirty][-<size>], holds:

    notebooks/*.ipynb   the executed notebooks
    html/*.html         a self-contained HTML export of each (plots embedded: opens offline)
    results/<family>/   result.json, timing.json, histories.json
    REPORT.md, index.html  one row per claim, and the provenance (written by experiments/cmd/report)

The report is built in a hidden folder (reports/.incomplete-...) and renamed into place only when
everything succeeded: an interrupted or failed run leaves earlier reports as they were and no
folder that looks complete. A cell with an error output or any text on stderr fails the run.
"""

import argparse
import datetime
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAMILIES = ["adan", "adahessian", "zo", "localsgd"]
KERNEL_NAME = "goptlab"
SIZES = ["tiny", "default", "paper"]


def git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def report_name(size):
    commit = git("rev-parse", "--short=12", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    name = f"{date}-{commit}" + ("-dirty" if dirty else "")
    return name if size == "default" else f"{name}-{size}"


def execute(path, out_dir, html_dir, timeout):
    """Executes one notebook; returns a list of problems (empty when it ran clean)."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=timeout, startup_timeout=300,
                            resources={"metadata": {"path": str(path.parent)}})
    problems = []
    try:
        client.execute()
    except Exception as e:  # CellExecutionError and kernel deaths: the notebook is still saved
        problems.append(f"{path.name}: {type(e).__name__}: {str(e)[-2000:]}")
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                problems.append(f"{path.name} cell {index}: {output.ename}: {output.evalue}")
            elif output.output_type == "stream" and output.name == "stderr":
                problems.append(f"{path.name} cell {index} wrote to stderr: {output.text[:500]}")
    nbformat.write(nb, out_dir / path.name)
    body, _ = HTMLExporter(embed_images=True).from_notebook_node(nb)
    (html_dir / (path.stem + ".html")).write_text(body, encoding="utf-8")
    return problems


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="default", choices=SIZES)
    ap.add_argument("--reports", default=str(ROOT / "reports"), help="folder of the reports")
    ap.add_argument("notebooks", nargs="*", help="notebooks to run (default: every experiment notebook)")
    args = ap.parse_args(argv)

    if args.notebooks:
        notebooks = [pathlib.Path(p).resolve() for p in args.notebooks]
    else:
        notebooks = [ROOT / "notebooks" / f"{f}.ipynb" for f in FAMILIES]
        notebooks = [p for p in notebooks if p.exists()]
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing or not notebooks:
        print(f"reproduce: no such notebook: {', '.join(missing) or 'none found'}", file=sys.stderr)
        return 2

    reports = pathlib.Path(args.reports).resolve()
    reports.mkdir(parents=True, exist_ok=True)
    name = report_name(args.size)
    work = reports / f".incomplete-{name}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "notebooks").mkdir(parents=True)
    (work / "html").mkdir()
    (work / "results").mkdir()
    os.environ["GOPTLAB_EXPERIMENT_SIZE"] = args.size
    os.environ["GOPTLAB_RESULTS_DIR"] = str(work / "results")
    # A paper-size run may take hours on a GPU: no per-cell limit then.
    timeout = None if args.size == "paper" else 3600

    # SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C, so the work folder is removed.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    ok = False
    try:
        started = time.monotonic()
        problems = []
        for path in notebooks:
            t0 = time.monotonic()
            print(f"reproduce: running {path.name} at size {args.size} ...", flush=True)
            p = execute(path, work / "notebooks", work / "html", timeout)
            problems += p
            print(f"reproduce: {path.name} {'FAILED' if p else 'ok'} in {time.monotonic() - t0:.0f} s", flush=True)
        if problems:
            print("reproduce: failed:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
        subprocess.run(["go", "run", "./experiments/cmd/report", "-dir", str(work),
                        "-wall", f"{time.monotonic() - started:.0f}"], cwd=ROOT, check=True)
        final = reports / name
        n = 2
        while final.exists():
            final = reports / f"{name}-{n}"
            n += 1
        work.rename(final)
        ok = True
        print(f"reproduce: report in {final} ({time.monotonic() - started:.0f} s)")
        return 0
    except KeyboardInterrupt:
        print("reproduce: interrupted: no report written; earlier reports are untouched", file=sys.stderr)
        return 130
    finally:
        if not ok:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
