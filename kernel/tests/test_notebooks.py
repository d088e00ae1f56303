"""Runs every notebook in notebooks/ headless with the real kernel, as a reader would:
any error output, or anything written to stderr, fails the test."""

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import KERNEL_NAME, ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ has no .ipynb files"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_clean(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL_NAME, \
        f"{path.name} should use the {KERNEL_NAME!r} kernel"
    # Liveness bounds only (a cell's 15-minute bound failed under load): the experiment
    # notebooks run their default size in one cell, minutes on an idle 2-core machine.
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=3600, startup_timeout=600,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError at the first error output

    problems = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                problems.append(f"cell {index}: {output.ename}: {output.evalue}")
            elif output.output_type == "stream" and output.name == "stderr":
                problems.append(f"cell {index} wrote to stderr: {output.text[:500]}")
    assert not problems, "\n".join(problems)
