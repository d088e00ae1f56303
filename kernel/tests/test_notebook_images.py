"""Figures survive sharing: notebooks/plots.ipynb executed headless with the real kernel
shows every figure as one bundle with a PNG (2x, its CSS size in the metadata) and the SVG,
which JupyterLab's own renderer choice resolves to the SVG in a trusted notebook and to the
PNG in an untrusted one, and which nbconvert's HTML export embeds."""

import base64
import re
import struct
import sys
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from conftest import KERNEL_NAME, ROOT

NOTEBOOK = ROOT / "notebooks" / "plots.ipynb"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DISPLAY_SCALE = 2  # plots.DisplayScale: PNG pixels per CSS pixel


@pytest.fixture(scope="module")
def executed():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=3600, startup_timeout=600,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    return nb


def is_figure(output):
    """A figure output in any form: an image, or HTML holding one (what Display sent before)."""
    data = output.get("data", {})
    html = data.get("text/html", "")
    return "image/png" in data or "image/svg+xml" in data or "<svg" in html or "<img" in html


def figures(nb):
    """(cell index, cell source, output) of every display_data output showing a figure."""
    return [(i, cell.source, out) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.output_type == "display_data" and is_figure(out)]


def png_size(raw):
    """The pixel size in a PNG's IHDR chunk."""
    assert raw[:8] == PNG_SIGNATURE, "not PNG data"
    assert raw[12:16] == b"IHDR"
    return struct.unpack(">II", raw[16:24])


def jupyterlab_renderers():
    """(rank, safe, mime types) of the renderer factories of the installed JupyterLab, read from
    its shipped bundle, sorted by rank as RenderMimeRegistry.preferredMimeType sees them."""
    static = Path(sys.prefix) / "share" / "jupyter" / "lab" / "static"
    bundles = sorted(static.glob("jlab_core.*.js"))
    assert bundles, f"no JupyterLab bundle in {static}"
    source = bundles[0].read_text(encoding="utf-8")
    found = re.findall(r"\{safe:(!0|!1),mimeTypes:\[([^\]]*)\],defaultRank:(\d+)", source)
    renderers = sorted((int(rank), safe == "!0", re.findall(r'"([^"]+)"', types)) for safe, types, rank in found)
    mimes = {m for _, _, types in renderers for m in types}
    assert {"text/html", "image/svg+xml", "image/png", "text/plain"} <= mimes, \
        f"could not read JupyterLab's renderer factories: {renderers}"
    return renderers


def preferred(renderers, bundle, trusted):
    """The MIME type JupyterLab renders of bundle: the output area asks for "any" when the
    output is trusted and "ensure" (safe renderers only) when not."""
    for _, safe, types in renderers:
        for mime in types:
            if mime in bundle and (trusted or safe):
                return mime
    return None


def test_every_figure_is_one_bundle_with_png_and_svg(executed):
    figs = figures(executed)
    shown = [i for i, cell in enumerate(executed.cells) if cell.cell_type == "code"
             and re.search(r"\bshow\(|\.Display(PNG)?\(\)|live\.New", cell.source)
             and not cell.source.lstrip().startswith("import")]
    assert shown and {i for i, _, _ in figs} >= set(shown), \
        f"cells {sorted(set(shown) - {i for i, _, _ in figs})} show no figure"
    sizes = []
    for i, source, out in figs:
        data, meta = out["data"], out.get("metadata", {})
        assert "text/html" not in data, f"cell {i}: a figure bundle with text/html, which an untrusted JupyterLab shows sanitized (no SVG)"
        assert "image/png" in data, f"cell {i}: figure without image/png: {sorted(data)}"
        raw = base64.b64decode(data["image/png"])
        width, height = png_size(raw)
        css = meta.get("image/png", {})
        assert css.get("width") and css.get("height"), f"cell {i}: no width/height metadata for the PNG: {meta}"
        assert (width, height) == (DISPLAY_SCALE * css["width"], DISPLAY_SCALE * css["height"]), \
            f"cell {i}: PNG of {width}x{height} pixels for a CSS size of {css}"
        assert data.get("text/plain", "").startswith("figure"), f"cell {i}: no text description: {data.get('text/plain')!r}"
        if ".DisplayPNG()" in source:
            assert "image/svg+xml" not in data, f"cell {i}: DisplayPNG sent an SVG"
            continue
        svg = data.get("image/svg+xml", "")
        assert "<svg" in svg and 'xmlns="http://www.w3.org/2000/svg"' in svg, f"cell {i}: no SVG form"
        sizes.append((i, css["width"], css["height"], len(raw), len(svg)))
    print("\ncell  CSS size   PNG bytes  SVG bytes")
    for i, w, h, png, svg in sizes:
        print(f"{i:4}  {w}x{h}  {png:9}  {svg:9}")


def test_jupyterlab_shows_svg_trusted_and_png_untrusted(executed):
    renderers = jupyterlab_renderers()
    # Why the bundle has no HTML: JupyterLab counts HTML as safe and ranks it first, so an
    # untrusted notebook shows a sanitized HTML form (where <svg> is removed), not the PNG.
    assert preferred(renderers, {"text/html": "", "image/png": ""}, trusted=False) == "text/html"
    for i, source, out in figures(executed):
        data = out["data"]
        if ".DisplayPNG()" in source:
            continue
        assert preferred(renderers, data, trusted=True) == "image/svg+xml", f"cell {i}: trusted JupyterLab"
        assert preferred(renderers, data, trusted=False) == "image/png", f"cell {i}: untrusted JupyterLab"


def test_html_export_embeds_every_figure(executed):
    body, _ = HTMLExporter(embed_images=True).from_notebook_node(executed)
    soup = BeautifulSoup(body, "html.parser")
    images = [img["src"] for area in soup.select("div.jp-OutputArea-output") for img in area.select("img")]
    svgs = [src for src in images if src.startswith("data:image/svg+xml;base64,")]
    pngs = [src for src in images if src.startswith("data:image/png;base64,")]
    figs = figures(executed)
    png_only = [f for f in figs if ".DisplayPNG()" in f[1]]
    assert len(svgs) == len(figs) - len(png_only), f"{len(svgs)} SVG images in the export for {len(figs) - len(png_only)} figures"
    assert len(pngs) == len(png_only), f"{len(pngs)} PNG images in the export for {len(png_only)} DisplayPNG figures"
    for src in svgs:
        assert base64.b64decode(src.split(",", 1)[1]).lstrip().startswith((b"<?xml", b"<svg")), src[:80]
    for src in pngs:
        png_size(base64.b64decode(src.split(",", 1)[1]))
