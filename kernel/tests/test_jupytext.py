"""Jupytext pairing of the notebooks: every notebooks/*.ipynb has a Go script in the percent
format (notebooks/_go/NAME.go, as notebooks/jupytext.toml declares) that says the same cells,
and the representation reads back exactly, GoNB's `%%`, `!` and `%` lines included.

After editing one side alone, `.venv/bin/jupytext --sync notebooks/NAME.ipynb` updates the other."""

import shutil

import jupytext
import nbformat
import pytest
from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file
from jupytext.paired_paths import paired_paths

from conftest import ROOT

NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
FORMAT = "go:percent"


def paired_script(ipynb):
    """The path of the script that the notebook folder's jupytext configuration pairs ipynb with."""
    config_file = find_jupytext_configuration_file(str(ipynb.parent))
    assert config_file, f"no jupytext configuration found for {ipynb.parent}"
    config = load_jupytext_configuration_file(config_file)
    formats = config.default_formats(str(ipynb))
    assert formats, f"{config_file} pairs {ipynb.name} with nothing"
    scripts = [path for path, fmt in paired_paths(str(ipynb), "ipynb", formats)
               if fmt.get("extension") == ".go" and fmt.get("format_name") == "percent"]
    assert len(scripts) == 1, f"{config_file}: {ipynb.name} should pair with one go:percent script, got {formats}"
    return type(ipynb)(scripts[0])


def cells(nb):
    """What a notebook says, for comparing the two sides: each cell's type, source and metadata."""
    return [(c.cell_type, c.source, dict(c.metadata)) for c in nb.cells]


def out_of_sync(ipynb):
    """Why ipynb and its paired script disagree (empty when they are in sync)."""
    script = paired_script(ipynb)
    fix = f"run: .venv/bin/jupytext --sync {ipynb.relative_to(ipynb.parent.parent)}"
    if not script.exists():
        return [f"{ipynb.name} has no paired script {script.name} ({fix})"]
    problems = []
    nb = nbformat.read(ipynb, as_version=4)
    if jupytext.writes(nb, fmt=FORMAT) != script.read_text(encoding="utf-8"):
        problems.append(f"{script.name} is not the go:percent text of {ipynb.name}")
    back = jupytext.read(script, fmt=FORMAT)
    if cells(back) != cells(nb):
        problems.append(f"{script.name} reads back to cells that differ from {ipynb.name}'s")
    if back.metadata.get("kernelspec") != nb.metadata.get("kernelspec"):
        problems.append(f"{script.name} names kernel {back.metadata.get('kernelspec')}, {ipynb.name} "
                        f"{nb.metadata.get('kernelspec')}")
    return [f"{p} ({fix})" for p in problems]


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ has no .ipynb files"


def test_configuration_pairs_with_go_percent_scripts_outside_the_go_packages():
    script = paired_script(NOTEBOOK_DIR / "any.ipynb")
    assert script.suffix == ".go"
    # The go tool skips folders whose name starts with "_": the scripts are cells, not a package.
    rel = script.relative_to(ROOT)
    assert any(part.startswith("_") for part in rel.parent.parts), rel


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_and_script_in_sync(path):
    problems = out_of_sync(path)
    assert not problems, "\n".join(problems)


def test_every_script_has_its_notebook():
    scripts = sorted((NOTEBOOK_DIR / "_go").glob("*.go"))
    orphans = [s.name for s in scripts if not (NOTEBOOK_DIR / (s.stem + ".ipynb")).exists()]
    assert not orphans, f"paired scripts without a notebook (delete them with their notebook): {orphans}"


@pytest.fixture
def pair(tmp_path):
    """A copy of a real notebook, its script and the configuration, in a folder of its own."""
    notebooks = tmp_path / "notebooks"
    (notebooks / "_go").mkdir(parents=True)
    shutil.copy(NOTEBOOK_DIR / "jupytext.toml", notebooks)
    source = NOTEBOOKS[0]
    ipynb = notebooks / source.name
    shutil.copy(source, ipynb)
    shutil.copy(paired_script(source), paired_script(ipynb))
    assert out_of_sync(ipynb) == []
    return ipynb


def test_check_fails_when_only_the_notebook_is_edited(pair):
    nb = nbformat.read(pair, as_version=4)
    nb.cells[-1].source += "\n// edited in the notebook only"
    nbformat.write(nb, pair)
    assert any("is not the go:percent text" in p for p in out_of_sync(pair))


def test_check_fails_when_only_the_script_is_edited(pair):
    script = paired_script(pair)
    script.write_text(script.read_text() + "\n// %%\nfmt.Println(\"edited in the script only\")\n")
    problems = out_of_sync(pair)
    assert any("reads back to cells that differ" in p for p in problems), problems


def test_check_fails_when_the_script_is_missing(pair):
    paired_script(pair).unlink()
    assert any("has no paired script" in p for p in out_of_sync(pair))


# GoNB's own syntax: `%%` starts the main function (alone, or with flags), `!` runs a shell
# command, `%` lines are magics.
GONB_CELLS = [
    'import "fmt"\n\n%%\nfmt.Println("hi")',
    '%% --count=3\nfmt.Println("flags")',
    '%%\n// a %% inside a comment\nfmt.Println("%%")',
    '!echo "shell" && ls\n!*go version',
    '%env GOMLX_BACKEND go\n%goflags -race\n%main',
    'func f() int {\n\treturn 1\n}\n\n%%\nfmt.Println(f())',
    '%%\n\n\nfmt.Println("blank lines around")\n\n',
]


@pytest.mark.parametrize("source", GONB_CELLS)
def test_gonb_syntax_round_trips(source):
    nb = nbformat.v4.new_notebook(metadata=nbformat.read(NOTEBOOKS[0], as_version=4).metadata)
    nb.cells = [nbformat.v4.new_markdown_cell("# title\n\nSome *text*."), nbformat.v4.new_code_cell(source),
                nbformat.v4.new_code_cell('fmt.Println("next cell")')]
    text = jupytext.writes(nb, fmt=FORMAT)
    back = jupytext.reads(text, fmt=FORMAT)
    assert [(c.cell_type, c.source) for c in back.cells] == [(c.cell_type, c.source) for c in nb.cells], text


def test_a_line_that_reads_as_a_cell_marker_is_caught(pair):
    """The percent format's one collision: a line starting with `// %%` in a code cell (or `%%` at
    the start of a markdown line) reads back as a new cell. The sync check reports such a notebook
    even right after its script was written; rewording the comment fixes it."""
    nb = nbformat.read(pair, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell('%%\n// %% looks like a marker\nfmt.Println("x")'))
    nbformat.write(nb, pair)
    paired_script(pair).write_text(jupytext.writes(nb, fmt=FORMAT), encoding="utf-8")
    problems = out_of_sync(pair)
    assert problems and all("reads back to cells that differ" in p for p in problems), problems
