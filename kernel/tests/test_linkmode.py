"""Which linker builds a cell's program (kernel/shims/go): Go's own (-linkmode=internal, a third
faster) when every cgo package of the program is one the kernel tests link that way, gcc as
before for any other cgo package, whose #cgo LDFLAGS (here an rpath) only gcc applies."""

import shutil
import subprocess
import uuid

import pytest

from conftest import ROOT
from kernelclient import fresh_kernel
from test_kernel import FIRST_CELL

# Appended to a cell: prints the -ldflags its program was built with (from its build info).
PRINT_LDFLAGS = """
if info, ok := debug.ReadBuildInfo(); ok {
	for _, s := range info.Settings {
		if s.Key == "-ldflags" {
			fmt.Println("ldflags:", s.Value)
		}
	}
}
"""

INTERNAL = "ldflags: -w -linkmode=internal"
GCC = "ldflags: -w"


def ldflags_line(result):
    lines = [line for line in result.stdout.splitlines() if line.startswith("ldflags:")]
    assert len(lines) == 1, result
    return lines[0]


def test_mlx_cell_is_linked_by_go_linker_and_trains():
    with fresh_kernel() as kernel:
        result = kernel.run(FIRST_CELL + PRINT_LDFLAGS)
    assert result.status == "ok", result
    assert "loss at step 1: 1.6250" in result.stdout, result.stdout
    assert ldflags_line(result) == INTERNAL


def test_internal_linking_can_be_turned_off():
    with fresh_kernel({"GOPTLAB_INTERNAL_LINK": "0"}) as kernel:
        result = kernel.run(FIRST_CELL + PRINT_LDFLAGS)
    assert result.status == "ok", result
    assert "loss at step 1: 1.6250" in result.stdout, result.stdout
    assert ldflags_line(result) == GCC


@pytest.fixture
def rpath_packages():
    """Two temporary packages of our module: ext calls a C shared library found through the
    rpath in its #cgo LDFLAGS (Go's linker ignores it: the program would not start), plain
    has no cgo. Yields (import path prefix, plain's source file)."""
    name = "zz_linkmode_" + uuid.uuid4().hex[:8]
    base = ROOT / "kernel" / "tests" / name
    (base / "ext").mkdir(parents=True)
    (base / "plain").mkdir()
    (base / "lib").mkdir()
    try:
        (base / "lib" / "answer.c").write_text("long goptlab_answer(void) { return 42; }\n")
        cc = subprocess.run(["go", "env", "CC"], capture_output=True, text=True, check=True).stdout.split()
        subprocess.run(cc + ["-shared", "-fPIC", "-o", str(base / "lib" / "libgoptlabanswer.so"),
                            str(base / "lib" / "answer.c")], check=True)
        (base / "lib" / "answer.c").unlink()  # not a Go package's C file
        (base / "ext" / "ext.go").write_text(
            f"// Package ext is a temporary package of test_linkmode.py.\npackage ext\n\n"
            "/*\n#cgo LDFLAGS: -L${SRCDIR}/../lib -lgoptlabanswer -Wl,-rpath,${SRCDIR}/../lib\n"
            "long goptlab_answer(void);\n*/\nimport \"C\"\n\n"
            "// Answer returns 42, from the shared library.\nfunc Answer() int { return int(C.goptlab_answer()) }\n")
        plain = base / "plain" / "plain.go"
        plain.write_text("// Package plain is a temporary package of test_linkmode.py.\npackage plain\n\n"
                         "// Hello is edited by the test.\nfunc Hello() string { return \"hello\" }\n")
        yield f"github.com/goptlab/goptlab/kernel/tests/{name}", plain
    finally:
        shutil.rmtree(base)


def test_other_cgo_packages_are_linked_by_gcc_also_after_an_edit(rpath_packages):
    prefix, plain = rpath_packages
    plain_cell = f'import "{prefix}/plain"\n%%\nfmt.Println(plain.Hello())\n' + PRINT_LDFLAGS
    ext_cell = f'import "{prefix}/ext"\n%%\nfmt.Println(ext.Answer())\n' + PRINT_LDFLAGS
    with fresh_kernel() as kernel:
        no_cgo = kernel.run(plain_cell)
        # The same cell again, after plain starts using ext: its imports did not change.
        plain.write_text("// Package plain is a temporary package of test_linkmode.py.\npackage plain\n\n"
                         f'import (\n\t"fmt"\n\n\t"{prefix}/ext"\n)\n\n'
                         "// Hello now calls ext.\nfunc Hello() string { return \"hello \" + fmt.Sprint(ext.Answer()) }\n")
        edited = kernel.run(plain_cell)
        direct = kernel.run(ext_cell)
    assert no_cgo.status == "ok" and no_cgo.stdout.startswith("hello\n"), no_cgo
    assert ldflags_line(no_cgo) == INTERNAL
    assert direct.status == "ok" and direct.stdout.startswith("42\n"), direct
    assert ldflags_line(direct) == GCC
    assert edited.status == "ok" and edited.stdout.startswith("hello 42\n"), edited
    assert ldflags_line(edited) == GCC
