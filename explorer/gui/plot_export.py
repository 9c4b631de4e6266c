"""Plot export: PNG (chosen size and DPI), SVG and PDF of the maps, the sweep, or a dashboard.

Exporters are functions of (what, path): they never open dialogs. The figure is
built in its own scene from a Report (and a sweep), so the window, its right-click
menus and the headless command line all draw the same thing.

Vector output: SVG and PDF are painted by Qt itself (QSvgGenerator, QPdfWriter),
the same way the screen is, both at 96 dpi, the only resolution at which Qt's
logical pixels and the document's units agree (QSvgGenerator defaults to 90 and
would shift everything). Text stays text. pyqtgraph's own SVG exporter is not used:
it misplaces images and drops gradient fills in these figures (and it raises with
PySide6 >= 6.11). Heatmap images are upsampled with nearest-neighbour while a vector
file is written, so viewers that smooth embedded images still show crisp cells.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QMarginsF, QRect, QRectF, QSize, QSizeF, Qt
from PySide6.QtGui import QImage, QPageLayout, QPageSize, QPainter, QPdfWriter
from PySide6.QtSvg import QSvgGenerator

from explorer.core import Report, eps_sweep
from explorer.core.sweep import SweepResult
from explorer.gui.heatmap_view import DIVERGING, SEQUENTIAL, ColorBar, nice_ceil, symmetric_limit
from explorer.gui.maps_panel import ERROR_VIEWS, error_image
from explorer.gui.sweep_panel import SCHEME_COLORS, draw_sweep

__all__ = ["EXPORT_SUFFIXES", "FIGURE_WHATS", "build_figure", "export_figure", "export_item", "settings_caption"]

EXPORT_SUFFIXES = (".png", ".svg", ".pdf")
FIGURE_WHATS = ("dashboard", "analytic", "numeric", "error", "sweep")
#: Figure size in logical pixels (and PDF points at 96 dpi: 1 px = 0.75 pt).
FIGURE_SIZE = {"dashboard": (1200, 900), "sweep": (800, 560)}
DEFAULT_SIZE = (760, 520)


def settings_caption(report: Report) -> str:
    s = report.settings
    n, c = report.logits.shape
    atol, rtol = s.tolerances
    verdict = "PASS" if report.ok else f"FAIL ({report.comparison.n_failed} elements)"
    return (
        f"{n} x {c}, {s.dtype}, {s.scheme}, eps = {s.eps:g}, reduction = {s.reduction}, "
        f"label smoothing = {s.label_smoothing:g}, perturb = {s.perturb}; loss = {report.loss:.6g}; "
        f"max |num - ana| = {report.comparison.max_abs_err:.3g}; {verdict} (atol {atol:g}, rtol {rtol:g})"
    )


def _heatmap(layout: pg.GraphicsLayout, row: int, col: int, title: str, image: np.ndarray,
             levels: tuple[float, float], cmap: pg.ColorMap, label: str) -> None:  # fmt: skip
    plot = layout.addPlot(row=row, col=col, title=title)
    plot.invertY(True)
    plot.setLabel("left", "sample")
    plot.setLabel("bottom", "class")
    plot.getViewBox().setDefaultPadding(0.0)
    item = pg.ImageItem(axisOrder="row-major")
    item.setColorMap(cmap)
    item.setImage(image, autoLevels=False, levels=levels)
    plot.addItem(item)
    n, c = image.shape
    plot.setXRange(0, c, padding=0)
    plot.setYRange(0, n, padding=0)
    for axis, count in (("bottom", c), ("left", n)):
        if count <= 32:
            plot.getAxis(axis).setTicks([[(k + 0.5, str(k)) for k in range(count)]])
    bar = ColorBar(cmap, label)
    bar.set_levels(*levels)
    layout.addItem(bar, row=row, col=col + 1)


def _gradient_levels(report: Report) -> tuple[float, float]:
    lim = symmetric_limit(report.grad_analytic.astype(np.float64), report.grad_numeric.astype(np.float64))
    top = nice_ceil(lim) if lim > 0 else 1.0
    return -top, top


def _error_levels(image: np.ndarray, view: str) -> tuple[float, float]:
    finite = image[np.isfinite(image)]
    if view.startswith("log"):
        lo = math.floor(float(finite.min())) if finite.size else -20.0
        hi = math.ceil(float(finite.max())) if finite.size else 0.0
        return float(lo), float(max(hi, lo + 1))
    top = float(finite.max()) if finite.size else 1.0
    return 0.0, nice_ceil(top) if top > 0 else 1.0


def default_sweep(report: Report) -> SweepResult:
    """The sweep of the report's worst cell (what the headless export draws)."""
    cell = tuple(int(v) for v in report.worst) if report.worst else (0, 0)
    s = report.settings
    sweep = eps_sweep(report.logits, report.labels, cell, **s.loss_kwargs)  # type: ignore[arg-type]
    return SweepResult("cell", cell, {s.dtype: sweep}, s.dtype, s.scheme, s.eps, False)  # type: ignore[arg-type]


def build_figure(report: Report, what: str = "dashboard", sweep: SweepResult | None = None,
                 error_view: str = "abs") -> pg.GraphicsLayoutWidget:  # fmt: skip
    """A figure (not shown) with titles, colorbars and a caption of the settings."""
    if what not in FIGURE_WHATS:
        raise ValueError(f"unknown figure {what!r}; expected one of {', '.join(FIGURE_WHATS)}")
    if error_view not in ERROR_VIEWS:
        raise ValueError(f"unknown error view {error_view!r}")
    fig = pg.GraphicsLayoutWidget()
    fig.setBackground("w")
    fig.resize(*FIGURE_SIZE.get(what, DEFAULT_SIZE))
    layout = fig.ci
    title = {"dashboard": "Gradient check", "analytic": "Analytic gradient", "numeric": "Numeric gradient",
             "error": ERROR_VIEWS[error_view][0], "sweep": "Error versus eps"}[what]  # fmt: skip
    layout.addLabel(f"<b>{title}</b>", row=0, col=0, colspan=6, size="13pt", color="k")
    levels = _gradient_levels(report)
    err = error_image(report, error_view)
    maps = {
        "analytic": ("Analytic gradient", report.grad_analytic.astype(np.float64), levels, DIVERGING, "∂L/∂x"),
        "numeric": ("Numeric gradient", report.grad_numeric.astype(np.float64), levels, DIVERGING, "∂L/∂x"),
        "error": (
            ERROR_VIEWS[error_view][0],
            err,
            _error_levels(err, error_view),
            SEQUENTIAL,
            ERROR_VIEWS[error_view][1],
        ),
    }
    if what in maps:
        _heatmap(layout, 1, 0, *maps[what])
    if what == "dashboard":
        for k, key in enumerate(("analytic", "numeric", "error")):
            _heatmap(layout, 1, 2 * k, *maps[key])
    if what in ("sweep", "dashboard"):
        result = sweep if sweep is not None else default_sweep(report)
        plot = layout.addPlot(row=2 if what == "dashboard" else 1, col=0, colspan=6)
        plot.setLogMode(x=True, y=True)
        plot.setLabel("bottom", "eps")
        plot.setLabel("left", "|numeric − analytic|")
        for axis in ("left", "bottom"):
            plot.getAxis(axis).enableAutoSIPrefix(False)
        draw_sweep(plot, result, report.settings.scheme)
        line = pg.InfiniteLine(math.log10(report.settings.eps), angle=90, pen=pg.mkPen((200, 30, 30), width=2))
        plot.addItem(line, ignoreBounds=True)
        where = "grid maximum" if result.cell is None else f"sample {result.cell[0]}, class {result.cell[1]}"
        plot.setTitle(f"Error versus eps, {where} (● measured best, ★ predicted)")
        key = "   ".join(
            f"<span style='color:rgb{SCHEME_COLORS[name]}'><b>{'▶ ' if name == report.settings.scheme else ''}"
            f"{name}</b></span>"
            for name in result.sweeps[result.dtype].errors
        )
        layout.addLabel(key, row=(3 if what == "dashboard" else 2), col=0, colspan=6, size="9pt")
    layout.addLabel(settings_caption(report), row=4, col=0, colspan=6, size="9pt", color="k")
    return fig


#: While a vector file is written, each heatmap cell becomes at least this many image pixels.
CRISP_PIXELS_PER_CELL = 16
CRISP_MAX_PIXELS = 4_000_000


@contextmanager
def _crisp_images(scene: object) -> Iterator[None]:
    """Temporarily upsample every ImageItem (nearest neighbour) so vector viewers cannot blur cells."""
    saved = []
    for item in scene.items():  # type: ignore[attr-defined]
        if not isinstance(item, pg.ImageItem) or item.image is None or item.image.ndim != 2:
            continue
        image = item.image
        n, c = image.shape
        k = max(1, min(CRISP_PIXELS_PER_CELL, int(math.sqrt(CRISP_MAX_PIXELS / max(n * c, 1)))))
        if k == 1:
            continue
        saved.append((item, image, item.getLevels()))
        item.setImage(np.repeat(np.repeat(image, k, axis=0), k, axis=1), autoLevels=False, levels=item.getLevels())
        item.setRect(QRectF(0, 0, c, n))
    try:
        yield
    finally:
        for item, image, levels in saved:
            item.setImage(image, autoLevels=False, levels=levels)
            item.setRect(QRectF(0, 0, image.shape[1], image.shape[0]))


def export_item(item: pg.GraphicsObject, path: str | Path, width: int | None = None, dpi: float = 96.0) -> Path:
    """Write a graphics item (a figure's layout, a plot) to PNG, SVG or PDF by the path's suffix.

    PNG: ``width`` pixels wide (default: the item's size), tagged with ``dpi``.
    SVG: pyqtgraph's exporter (text stays text). PDF: QPdfWriter at 96 dpi, one page
    the size of the item.
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise ValueError(f"{out.name}: unknown plot format {out.suffix or '(none)'}; use .png, .svg or .pdf")
    scene = item.scene()
    source = item.sceneBoundingRect()
    if suffix == ".png":
        w = int(width or source.width())
        h = max(1, round(w * source.height() / max(source.width(), 1.0)))
        image = QImage(w, h, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.white)
        dots_per_metre = round(dpi / 0.0254)
        image.setDotsPerMeterX(dots_per_metre)
        image.setDotsPerMeterY(dots_per_metre)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        scene.render(painter, QRectF(0, 0, w, h), source)
        painter.end()
        if not image.save(str(out)):
            raise OSError(f"could not write {out}")
    elif suffix == ".svg":
        generator = QSvgGenerator()
        generator.setFileName(str(out))
        generator.setResolution(96)
        size = QSize(math.ceil(source.width()), math.ceil(source.height()))
        generator.setSize(size)
        generator.setViewBox(QRect(0, 0, size.width(), size.height()))
        generator.setTitle("Gradient Explorer")
        painter = QPainter(generator)
        with _crisp_images(scene):
            scene.render(painter, QRectF(0, 0, source.width(), source.height()), source)
        painter.end()
    else:
        writer = QPdfWriter(str(out))
        writer.setResolution(96)  # the only resolution at which logical pixels map 1:1 onto the page
        size_pt = QSizeF(source.width() * 0.75, source.height() * 0.75)
        layout = QPageLayout(QPageSize(size_pt, QPageSize.Unit.Point), QPageLayout.Orientation.Portrait,
                             QMarginsF(0, 0, 0, 0))  # fmt: skip
        writer.setPageLayout(layout)
        writer.setTitle("Gradient Explorer")
        writer.setCreator("Gradient Explorer")
        painter = QPainter(writer)
        with _crisp_images(scene):
            scene.render(painter, QRectF(0, 0, source.width(), source.height()), source)
        painter.end()
    if not out.exists() or out.stat().st_size == 0:
        raise OSError(f"could not write {out}")
    return out


def export_figure(path: str | Path, report: Report, what: str = "dashboard", width: int | None = None,
                  sweep: SweepResult | None = None, error_view: str = "abs", dpi: float = 96.0) -> Path:  # fmt: skip
    """Build the figure and write it (PNG, SVG or PDF by suffix)."""
    fig = build_figure(report, what, sweep, error_view)
    w, h = FIGURE_SIZE.get(what, DEFAULT_SIZE)
    fig.ci.setGeometry(QRectF(0, 0, w, h))  # lay the figure out at its size without showing a window
    fig.ci.layout.activate()
    try:
        return export_item(fig.ci, path, width, dpi)
    finally:
        fig.close()
        fig.deleteLater()
