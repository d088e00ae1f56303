"""Executes notebooks headless and exports each to self-contained HTML (`make html`).

    .venv/bin/python kernel/export_html.py [--out out/html] [NOTEBOOK ...]

By default every notebooks/*.ipynb runs, with the project's kernel, as `make reproduce` runs the
experiment notebooks (experiments/reproduce.py's execute: the same client, limits and checks);
experiment notebooks run at the size $GOPTLAB_EXPERIMENT_SIZE names, or their own default. For
each notebook NAME it writes OUT/NAME.html (plots embedded as inline SVG or PNG data: the page
opens offline) and OUT/NAME.ipynb, the executed notebook. A cell with an error output or any text
on stderr makes the exit status 1, after every notebook was written (so the failure can be read).
"""

import argparse
import importlib.util
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "experiments" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "out" / "html"), help="folder for NAME.html and NAME.ipynb")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds one cell may run")
    ap.add_argument("notebooks", nargs="*", help="notebooks to run (default: notebooks/*.ipynb)")
    args = ap.parse_args(argv)

    notebooks = [pathlib.Path(p).resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing or not notebooks:
        print(f"html: no such notebook: {', '.join(missing) or 'none found'}", file=sys.stderr)
        return 2
    out = pathlib.Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    execute = load_reproduce().execute
    problems = []
    for path in notebooks:
        t0 = time.monotonic()
        print(f"html: running {path.name} ...", flush=True)
        p = execute(path, out, out, args.timeout)
        problems += p
        print(f"html: {out / (path.stem + '.html')} {'FAILED' if p else 'ok'} in {time.monotonic() - t0:.0f} s",
              flush=True)
    if problems:
        print("html: failed:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
