"""Exports look the same in every viewer: each SVG rendered by Qt, librsvg and (when installed) Chromium,
and each PDF by poppler, matches the PNG export of the same figure; heatmap cells keep the colour map's
colour; the PDF tools print nothing; strokes, titles, marks and tick labels are as on screen."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

from explorer.app.report_text import affected_cells
from explorer.core import CheckSettings, Report, check_gradient
from explorer.files.presets import get_preset
from explorer.gui.plot_export import build_figure, export_figure, export_item
from explorer.gui.svg_writer import clean_qt_svg
from explorer.gui.ticks import format_ticks

SVG = "{http://www.w3.org/2000/svg}"
#: Mean |difference| per channel (0..255) between two renderings, after 4 x 4 block averaging:
#: text rasterised by two engines differs at glyph edges; a blurred or band-stroked drawing is far above.
MAX_MEAN_DIFF = 4.0
#: Largest difference per channel of a cell centre's colour from the colour map's value.
MAX_CELL_DIFF = 3
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def report_for(preset: str, **changes: object) -> Report:
    p = get_preset(preset)
    return check_gradient(p.logits, p.labels, CheckSettings.from_mapping({**p.settings, **changes}))


def as_array(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    raw = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes()).reshape(image.height(), -1)
    return raw[:, : 4 * image.width()].reshape(image.height(), image.width(), 4)[..., 2::-1].astype(float)  # RGB


def block_mean(a: np.ndarray, k: int = 4) -> np.ndarray:
    h, w = (a.shape[0] // k) * k, (a.shape[1] // k) * k
    return a[:h, :w].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))


def qt_render(svg: Path, w: int, h: int) -> QImage:
    renderer = QSvgRenderer(str(svg))
    assert renderer.isValid()
    image = QImage(w, h, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.white)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, w, h))
    painter.end()
    return image


def rsvg_render(svg: Path, w: int, h: int, out: Path) -> QImage:
    res = subprocess.run(["rsvg-convert", "-w", str(w), "-h", str(h), "-b", "white", "-o", str(out), str(svg)],
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0 and res.stderr == "", res.stderr
    return QImage(str(out))


def chromium_render(svg: Path, w: int, h: int, out: Path) -> QImage:
    assert CHROMIUM is not None
    subprocess.run([CHROMIUM, "--headless", "--disable-gpu", f"--window-size={w},{h}", f"--screenshot={out}",
                    svg.as_uri()], capture_output=True, check=True, timeout=60)  # fmt: skip
    return QImage(str(out))


def cell_centres(fig, report: Report) -> list[tuple[QPointF, tuple[int, int, int], str]]:  # type: ignore[no-untyped-def]
    """Figure coordinates of every finite cell's centre in each map, with the colour map's colour there."""
    import pyqtgraph as pg

    origin = fig.ci.sceneBoundingRect().topLeft()
    out = []
    for item in fig.scene().items():
        if not isinstance(item, pg.ImageItem) or item.image is None:
            continue
        lo, hi = item.getLevels()
        cmap = item.getColorMap()
        image = item.image
        for i in range(image.shape[0]):
            for j in range(image.shape[1]):
                v = float(image[i, j])
                if not math.isfinite(v):
                    continue
                rgba = cmap.map(np.clip((v - lo) / (hi - lo), 0, 1), mode="byte")
                centre = item.mapToScene(QPointF(j + 0.5, i + 0.5)) - origin
                out.append((centre, tuple(int(c) for c in np.ravel(rgba)[:3]), f"{i},{j}"))
    return out


@pytest.mark.parametrize(("preset", "what"), [("origin", "dashboard"), ("origin", "error"), ("huge_gaps", "analytic"),
                                              ("float16_overflow", "dashboard"), ("near_tie", "sweep")])  # fmt: skip
def test_svg_renders_like_the_png_in_every_viewer(qapp, tmp_path: Path, preset: str, what: str) -> None:
    report = report_for(preset)
    fig = build_figure(report, what)
    try:
        png = export_item(fig.ci, tmp_path / "f.png")
        svg = export_item(fig.ci, tmp_path / "f.svg")
        centres = cell_centres(fig, report)
    finally:
        fig.close()
    reference = QImage(str(png))
    w, h = reference.width(), reference.height()
    ref = as_array(reference)
    renders = {"qt": qt_render(svg, w, h)}
    if shutil.which("rsvg-convert"):
        renders["librsvg"] = rsvg_render(svg, w, h, tmp_path / "rsvg.png")
    if CHROMIUM:
        renders["chromium"] = chromium_render(svg, w, h, tmp_path / "chromium.png")
    for name, image in renders.items():
        assert (image.width(), image.height()) == (w, h), name
        got = as_array(image)
        diff = float(np.abs(block_mean(got) - block_mean(ref)).mean())
        assert diff < MAX_MEAN_DIFF, f"{name}: mean difference {diff:.2f} from the PNG export"
        for centre, expected, cell in centres:
            x, y = round(centre.x() - 0.5), round(centre.y() - 0.5)
            colour = got[y, x]
            assert np.abs(colour - expected).max() <= MAX_CELL_DIFF, f"{name}: cell {cell} is {colour}, not {expected}"
    if what != "sweep":
        assert centres, "no heatmap cells were found"


def test_svg_strokes_are_in_user_units_and_curves_are_one_path(qapp, tmp_path: Path) -> None:
    out = export_figure(tmp_path / "s.svg", report_for("origin"), "sweep")
    text = out.read_text()
    assert "vector-effect" not in text and "<polyline" not in text
    root = ET.parse(out).getroot()
    for g in root.iter(f"{SVG}g"):
        if g.get("stroke", "none") != "none" and g.get("transform", "matrix(1,0,0,1,0,0)").split(",")[:4] != [
            "matrix(1", "0", "0", "1"
        ]:  # fmt: skip
            shapes = [c for c in g if c.tag in (f"{SVG}path", f"{SVG}polyline", f"{SVG}line")]
            assert not shapes, "a stroke inside a scaling transform: librsvg would scale its width"
    # The current scheme's curve (central, width 3) is one path of every eps, not hundreds of segments.
    central = [g for g in root.iter(f"{SVG}g") if g.get("stroke") == "#0072b2" and g.get("stroke-width") == "3"]
    paths = [p for g in central for p in g if p.tag == f"{SVG}path"]
    assert len(paths) == 1 and paths[0].get("d", "").count("L") >= 40
    assert root.get("viewBox") == "0 0 800 560" and root.get("width", "").endswith("mm")


def test_heatmap_cells_are_rectangles_and_titles_appear_once(qapp, tmp_path: Path) -> None:
    report = report_for("origin")
    out = export_figure(tmp_path / "a.svg", report, "analytic")
    root = ET.parse(out).getroot()
    assert root.find(f".//{SVG}image") is None
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert sum("Analytic gradient" in t for t in texts) == 1  # the title once
    crisp = [g for g in root.iter(f"{SVG}g") if g.get("shape-rendering") == "crispEdges"]
    assert len(crisp) == 1 and len(list(crisp[0])) >= report.logits.shape[0]


def test_vanished_and_nan_marks_are_exported(qapp, tmp_path: Path) -> None:
    for preset, view, dtype in (("origin", "error", "float64"), ("float16_overflow", "analytic", "float16")):
        report = report_for(preset, dtype=dtype)
        nonfinite, vanished = affected_cells(report)
        expected = int(nonfinite.sum()) if view == "analytic" else int(vanished.sum()) + int(nonfinite.sum())
        assert expected > 0
        root = ET.parse(export_figure(tmp_path / f"{preset}.svg", report, view)).getroot()
        marks = [p for g in root.iter(f"{SVG}g") if g.get("stroke") == "#000000" and g.get("stroke-width") == "1.5"
                 for p in g if p.tag == f"{SVG}path"]  # fmt: skip
        assert len(marks) == expected, (preset, len(marks), expected)


@pytest.mark.parametrize("preset", ["origin", "huge_gaps", "float16_overflow"])
@pytest.mark.parametrize("what", ["dashboard", "error", "sweep"])
def test_pdf_is_clean_in_poppler_and_qpdf(qapp, tmp_path: Path, preset: str, what: str) -> None:
    for tool in ("pdftoppm", "qpdf", "pdffonts", "pdfinfo"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (CI installs poppler-utils and qpdf)")
    report = report_for(preset)
    pdf = export_figure(tmp_path / "f.pdf", report, what)
    png = export_figure(tmp_path / "f.png", report, what)
    for cmd in (["pdftoppm", "-png", "-r", "96", str(pdf), str(tmp_path / "page")], ["pdffonts", str(pdf)],
                ["pdfinfo", str(pdf)]):  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0 and res.stderr == "", f"{cmd[0]}: {res.stderr}"
    check = subprocess.run(["qpdf", "--check", str(pdf)], capture_output=True, text=True)
    assert check.returncode == 0 and check.stderr == "" and "WARNING" not in check.stdout, check.stdout + check.stderr
    page, reference = QImage(str(tmp_path / "page-1.png")), QImage(str(png))
    assert abs(page.width() - reference.width()) <= 1 and abs(page.height() - reference.height()) <= 1
    h, w = min(page.height(), reference.height()), min(page.width(), reference.width())
    diff = float(np.abs(block_mean(as_array(page)[:h, :w]) - block_mean(as_array(reference)[:h, :w])).mean())
    assert diff < MAX_MEAN_DIFF, f"poppler's page differs from the PNG by {diff:.2f}"


def test_png_width_and_dpi(qapp, tmp_path: Path) -> None:
    report = report_for("origin")
    out = export_figure(tmp_path / "d.png", report, "dashboard", dpi=192)
    image = QImage(str(out))
    assert (image.width(), image.height()) == (2400, 1800)
    assert round(image.dotsPerMeterX() * 0.0254) == 192
    out = export_figure(tmp_path / "w.png", report, "sweep", width=500, dpi=300)
    image = QImage(str(out))
    assert image.width() == 500 and round(image.dotsPerMeterX() * 0.0254) == 300
    with pytest.raises(ValueError, match="DPI"):
        export_figure(tmp_path / "x.png", report, "sweep", dpi=0.5)


def test_one_tick_format_everywhere(qapp, tmp_path: Path) -> None:
    assert format_ticks([-20, -15, -10, -5, 0], 5, log=True) == ["1e-20", "1e-15", "1e-10", "1e-05", "1e+00"]
    assert format_ticks([-3, -2, -1, 0], 1, log=True) == ["0.001", "0.01", "0.1", "1"]
    assert format_ticks([0.0, 5e-11, 1e-10, 1.5e-10], 5e-11) == ["0", "5e-11", "1e-10", "1.5e-10"]
    assert format_ticks([-1.0, -0.5, 0.0, 0.5, 1.0], 0.5) == ["-1.0", "-0.5", "0.0", "0.5", "1.0"]
    root = ET.parse(export_figure(tmp_path / "d.svg", report_for("origin"), "dashboard")).getroot()
    labels = ["".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")]
    assert not any(re.search("[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]", t) for t in labels), "superscript tick labels"
    assert "1e-10" in labels and "0.0001" not in labels  # the log axes are all scientific


def test_clean_qt_svg_drops_empty_paths_and_flattens_strokes() -> None:
    qt = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><g stroke="#000000" stroke-width="2" '
          b'transform="matrix(2,0,0,3,1,1)"><path vector-effect="non-scaling-stroke" d="M0,0 M1,1 M2,2"/>'
          b'<polyline vector-effect="non-scaling-stroke" points="0,0 1,1 "/></g></svg>')  # fmt: skip
    root = ET.fromstring(clean_qt_svg(qt))
    paths = list(root.iter(f"{SVG}path"))
    assert [p.get("d") for p in paths] == ["M1,1 L3,4"]
    assert all(g.get("transform") is None for g in root.iter(f"{SVG}g") if list(g))
