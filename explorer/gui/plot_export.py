"""Plot export: PNG (chosen width and DPI), SVG and PDF of the maps, the sweep, or a dashboard;
and copying a figure to the clipboard.

Exporters are functions of (what, path): they never open dialogs (the dialog is in
:mod:`explorer.gui.export_dialog`). The figure is made of the screen's own view code:
the heatmaps are :class:`~explorer.gui.maps_panel.HeatmapPanel`'s views, fed the same
report (and, from the window, the levels on screen), so levels and the ○ / × marks are
the screen's; the sweep is drawn by the screen's :class:`~explorer.gui.sweep_panel.SweepArtist`.

Vector output is painted by Qt (``QSvgGenerator`` at 96 dpi, where Qt's logical pixels
and the document's units agree) and then rewritten by :func:`explorer.gui.svg_writer.clean_qt_svg`
so it renders the same in Qt, Chromium and librsvg: strokes in user units, crisp heatmap
cells, text as text. The PDF is that same cleaned drawing, painted by ``QSvgRenderer`` onto a
``QPdfWriter`` page of the figure's size, so the SVG and the PDF cannot differ. pyqtgraph's
own SVG exporter is not used: it misplaces images in these figures (and raises with
PySide6 >= 6.11).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QIODevice,
    QMarginsF,
    QMimeData,
    QRect,
    QRectF,
    QSize,
    QSizeF,
    Qt,
)
from PySide6.QtGui import QGuiApplication, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter
from PySide6.QtSvg import QSvgGenerator, QSvgRenderer

from explorer.app.jobs import MapOverviews
from explorer.app.report_text import verdict_of
from explorer.core import NOISE_MULTIPLE, Report, eps_sweep
from explorer.core.sweep import SweepResult
from explorer.files.atomic import atomic_write
from explorer.gui.heatmap_view import HeatmapView
from explorer.gui.maps_panel import ERROR_VIEWS, HeatmapPanel
from explorer.gui.svg_writer import clean_qt_svg
from explorer.gui.sweep_panel import SCHEME_COLORS, draw_sweep
from explorer.gui.ticks import apply_tick_format

__all__ = [
    "DEFAULT_DPI",
    "EXPORT_SUFFIXES",
    "FIGURE_WHATS",
    "MAX_PNG_PIXELS",
    "build_figure",
    "copy_figure",
    "copy_widget",
    "export_figure",
    "export_item",
    "figure_size",
    "render_svg",
    "screen_levels",
    "settings_caption",
]

EXPORT_SUFFIXES = (".png", ".svg", ".pdf")
FIGURE_WHATS = ("dashboard", "analytic", "numeric", "error", "sweep")
#: Figure size in logical pixels (and PDF points at 96 dpi: 1 px = 0.75 pt).
FIGURE_SIZE = {"dashboard": (1200, 900), "sweep": (800, 560)}
DEFAULT_SIZE = (760, 520)
#: Resolution of the logical pixel: a PNG at this DPI is the figure's own size.
DEFAULT_DPI = 96.0
#: Largest PNG written (width x height), about 400 MB of pixels.
MAX_PNG_PIXELS = 100_000_000
MAP_KEYS = ("analytic", "numeric", "error")


def figure_size(what: str) -> tuple[int, int]:
    """Logical size (pixels at 96 dpi) of a figure."""
    return FIGURE_SIZE.get(what, DEFAULT_SIZE)


def _rule(report: Report) -> str:
    """The tolerance that decided, in a few words (the summary says it in full)."""
    if report.tolerance_mode == "noise":
        return f"noise verdict, {NOISE_MULTIPLE:g} x the expected error"
    atol, rtol = report.settings.tolerances
    return f"atol {atol:g}, rtol {rtol:g}"


def settings_caption(report: Report, separator: str = "; ") -> str:
    """The settings and the verdict, printed under every figure (``separator`` between settings and results)."""
    s = report.settings
    n, c = report.logits.shape
    verdict = verdict_of(report).text  # the verdict every view shows (CANNOT TELL included)
    extra = ""
    if s.weight is not None:
        extra += ", class weights"
    if s.ignore_index != -100:
        extra += f", ignore_index = {s.ignore_index}"
    return (
        f"{n} x {c}, {s.dtype}, {s.scheme}, eps = {s.eps:g}, reduction = {s.reduction}, "
        f"label smoothing = {s.label_smoothing:g}{extra}, perturb = {s.perturb}{separator}loss = {report.loss:.6g}; "
        f"max |num - ana| = {report.comparison.max_abs_err:.3g}; {verdict} ({_rule(report)})"
    )


def default_sweep(report: Report) -> SweepResult:
    """The sweep of the report's worst cell (what the headless export draws)."""
    cell = tuple(int(v) for v in report.worst) if report.worst else (0, 0)
    s = report.settings
    sweep = eps_sweep(report.logits, report.labels, cell, **s.loss_kwargs)  # type: ignore[arg-type]
    return SweepResult("cell", cell, {s.dtype: sweep}, s.dtype, s.scheme, s.eps, False)  # type: ignore[arg-type]


def screen_levels(panel: HeatmapPanel) -> dict[str, tuple[float, float]]:
    """The levels the window's maps show now (so an export matches the screen)."""
    out = {}
    for key, view in zip(MAP_KEYS, panel.views, strict=True):
        if view.levels is not None:
            out[key] = (float(view.levels[0]), float(view.levels[1]))
    return out


# ------------------------------------------------------------------ the screen's views
def _screen_maps(report: Report, error_view: str, levels: Mapping[str, tuple[float, float]] | None,
                 titles: Mapping[str, str] | None,
                 overviews: MapOverviews | None = None) -> tuple[HeatmapPanel, dict[str, HeatmapView]]:  # fmt: skip
    """The three maps drawn by the screen's own code (levels, marks), ready to be taken into a figure."""
    # No display model: the export feeds its report to the panel directly (with the window's pyramids for it).
    panel = HeatmapPanel(overviews=overviews)
    panel.set_error_view(error_view)
    panel.show_report(report)
    views = dict(zip(MAP_KEYS, panel.views, strict=True))
    for key, lv in (levels or {}).items():
        view = views.get(key)
        if view is not None and view.image_item.image is not None:
            view.set_image(view.image_item.image, (float(lv[0]), float(lv[1])))
    for key, title in (titles or {}).items():
        if key in views:
            views[key].plot.setTitle(title)
    return panel, views


def _take(view: HeatmapView) -> tuple[pg.PlotItem, pg.PlotItem]:
    """Move a view's plot and colour bar out of its own scene (into a figure's layout)."""
    for item in (view.plot, view.colorbar):
        view.ci.removeItem(item)
    return view.plot, view.colorbar


def build_figure(report: Report, what: str = "dashboard", sweep: SweepResult | None = None,
                 error_view: str = "abs", levels: Mapping[str, tuple[float, float]] | None = None,
                 screen: HeatmapPanel | None = None) -> pg.GraphicsLayoutWidget:  # fmt: skip
    """A figure (not shown): the maps and/or the sweep with titles, colour bars and a caption.

    Parameters
    ----------
    report : Report
    what : str
        One of :data:`FIGURE_WHATS`.
    sweep : SweepResult, optional
        The curves to draw (default: the worst cell's sweep).
    error_view : str
        A key of :data:`~explorer.gui.maps_panel.ERROR_VIEWS`.
    levels : mapping, optional
        ``{"analytic" | "numeric" | "error": (lo, hi)}``: fixed levels.
    screen : HeatmapPanel, optional
        The window's maps: their levels, titles and error view are copied, so the export matches the screen.
    """
    titles: dict[str, str] = {}
    overviews = None
    if screen is not None:
        overviews = getattr(getattr(screen.display, "recomputer", None), "overviews", None)
        error_view = screen.error_view
        levels = {**screen_levels(screen), **(levels or {})}
        titles = {key: str(view.plot.titleLabel.text) for key, view in zip(MAP_KEYS, screen.views, strict=True)}
    if what not in FIGURE_WHATS:
        raise ValueError(f"unknown figure {what!r}; expected one of {', '.join(FIGURE_WHATS)}")
    if error_view not in ERROR_VIEWS:
        raise ValueError(f"unknown error view {error_view!r}; expected one of {', '.join(ERROR_VIEWS)}")
    fig = pg.GraphicsLayoutWidget()
    fig.setBackground("w")
    fig.resize(*figure_size(what))
    layout = fig.ci
    row = 0
    if what == "dashboard":  # single plots carry their own title: said once
        layout.addLabel("<b>Gradient check</b>", row=0, col=0, colspan=6, size="13pt", color="k")
        row = 1
    if what != "sweep":
        panel, views = _screen_maps(report, error_view, levels, titles, overviews)
        fig.source_panel = panel  # type: ignore[attr-defined]  # keeps the views' Python objects alive
        keys = MAP_KEYS if what == "dashboard" else (what,)
        for k, key in enumerate(keys):
            plot, bar = _take(views[key])
            if key == "error" and "error" not in titles:
                plot.setTitle(ERROR_VIEWS[error_view][0])
            layout.addItem(plot, row=row, col=2 * k)
            layout.addItem(bar, row=row, col=2 * k + 1)
        row += 1
    if what in ("sweep", "dashboard"):
        result = sweep if sweep is not None else default_sweep(report)
        plot = layout.addPlot(row=row, col=0, colspan=6)
        plot.setLogMode(x=True, y=True)
        plot.setLabel("bottom", "eps")
        plot.setLabel("left", "|numeric − analytic|")
        draw_sweep(plot, result, report.settings.scheme, not result.user)
        line = pg.InfiniteLine(math.log10(report.settings.eps), angle=90, pen=pg.mkPen((200, 30, 30), width=2))
        plot.addItem(line, ignoreBounds=True)
        where = "grid maximum" if result.cell is None else f"sample {result.cell[0]}, class {result.cell[1]}"
        plot.setTitle(f"Error versus eps, {where} (● measured best, ★ predicted)")
        key = "   ".join(
            f"<span style='color:rgb{SCHEME_COLORS[name]}'><b>{'▶ ' if name == report.settings.scheme else ''}"
            f"{name}</b></span>"
            for name in result.sweeps[result.dtype].errors
        )
        layout.addLabel(key, row=row + 1, col=0, colspan=6, size="9pt")
        row += 2
    caption = settings_caption(report, "; " if what == "dashboard" else "<br>")
    layout.addLabel(caption, row=row, col=0, colspan=6, size="9pt", color="k")
    for item in fig.scene().items():
        if isinstance(item, pg.AxisItem):
            apply_tick_format(item)
    w, h = figure_size(what)
    minimum = layout.effectiveSizeHint(Qt.SizeHint.MinimumSize)
    w, h = max(w, math.ceil(minimum.width())), max(h, math.ceil(minimum.height()))
    layout.setGeometry(QRectF(0, 0, w, h))  # lay the figure out at its size without showing a window
    layout.layout.activate()
    if what != "sweep":
        for key in keys:  # each map as many pixels as its plot has in the figure: a pixel shows its cells' extreme
            vb = views[key].plot.getViewBox()
            views[key].draw_at(vb.height(), vb.width())
    return fig


# ------------------------------------------------------------------ rendering
def _has_segment(item: pg.PlotCurveItem) -> bool:
    x, y = item.getData()
    if x is None or y is None or len(x) < 2:
        return False
    finite = np.isfinite(np.asarray(x, dtype=float)) & np.isfinite(np.asarray(y, dtype=float))
    return bool(np.any(finite[1:] & finite[:-1]))


@contextmanager
def _export_mode(scene: object, painter: QPainter, scale: float) -> Iterator[None]:
    """pyqtgraph's export mode on every item (symbols as shapes, not cached pixmaps), curves as one
    path each (not hundreds of segments), and curves with nothing to draw hidden (an all-NaN model
    line is an empty path, which PDF tools report as a closepath without a current point)."""
    opts = {"antialias": True, "background": pg.mkColor("w"), "painter": painter, "resolutionScale": scale}
    exported, hidden, modes = [], [], []
    for item in scene.items():  # type: ignore[attr-defined]
        if isinstance(item, pg.PlotCurveItem):
            modes.append((item, item.opts.get("segmentedLineMode", "auto")))
            item.setSegmentedLineMode("off")
            if item.isVisible() and not _has_segment(item):
                item.setVisible(False)
                hidden.append(item)
        if hasattr(item, "setExportMode"):
            item.setExportMode(True, opts)
            exported.append(item)
    try:
        yield
    finally:
        for item in exported:
            item.setExportMode(False)
        for item in hidden:
            item.setVisible(True)
        for item, mode in modes:
            item.setSegmentedLineMode(mode)


def _render_svg_bytes(item: pg.GraphicsObject) -> tuple[bytes, QRectF]:
    scene = item.scene()
    source = item.sceneBoundingRect()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    generator = QSvgGenerator()
    generator.setOutputDevice(buffer)
    generator.setResolution(96)
    size = QSize(math.ceil(source.width()), math.ceil(source.height()))
    generator.setSize(size)
    generator.setViewBox(QRect(0, 0, size.width(), size.height()))
    generator.setTitle("Gradient Explorer")
    painter = QPainter(generator)
    with _export_mode(scene, painter, 1.0):
        scene.render(painter, QRectF(0, 0, source.width(), source.height()), source)
    painter.end()
    buffer.close()
    return clean_qt_svg(bytes(data.data())), source


def render_svg(item: pg.GraphicsObject) -> bytes:
    """A graphics item (a figure's layout, a plot) as a cleaned SVG document."""
    return _render_svg_bytes(item)[0]


def _paint_svg(svg: bytes, painter: QPainter, target: QRectF) -> None:
    renderer = QSvgRenderer(QByteArray(svg))
    if not renderer.isValid():
        raise OSError("the figure could not be drawn (invalid SVG)")
    renderer.render(painter, target)


def _render_png(item: pg.GraphicsObject, width: int, dpi: float) -> QImage:
    """The cleaned SVG drawing, rasterised ``width`` pixels wide (text and marks scale with it)."""
    svg, source = _render_svg_bytes(item)
    h = max(1, round(width * source.height() / max(source.width(), 1.0)))
    if width * h > MAX_PNG_PIXELS:
        raise ValueError(f"a PNG of {width} x {h} pixels is too large (at most {MAX_PNG_PIXELS:,} pixels)")
    image = QImage(width, h, QImage.Format.Format_ARGB32)
    if image.isNull():
        raise OSError(f"not enough memory for a {width} x {h} image")
    image.fill(Qt.GlobalColor.white)
    dots_per_metre = round(dpi / 0.0254)
    image.setDotsPerMeterX(dots_per_metre)
    image.setDotsPerMeterY(dots_per_metre)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    _paint_svg(svg, painter, QRectF(0, 0, width, h))
    painter.end()
    return image


def _write_atomically(out: Path, data: bytes) -> None:
    """One writer for every file the app saves: atomic, and with the user's umask (mkstemp gave 0600)."""
    atomic_write(out, data)


def _pdf_bytes(svg: bytes, source: QRectF) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setResolution(96)  # the only resolution at which logical pixels map 1:1 onto the page
    size_pt = QSizeF(source.width() * 0.75, source.height() * 0.75)
    writer.setPageLayout(QPageLayout(QPageSize(size_pt, QPageSize.Unit.Point), QPageLayout.Orientation.Portrait,
                                     QMarginsF(0, 0, 0, 0)))  # fmt: skip
    writer.setTitle("Gradient Explorer")
    writer.setCreator("Gradient Explorer")
    painter = QPainter(writer)
    _paint_svg(svg, painter, QRectF(0, 0, source.width(), source.height()))
    painter.end()
    buffer.close()
    return bytes(data.data())


def export_item(item: pg.GraphicsObject, path: str | Path, width: int | None = None,
                dpi: float = DEFAULT_DPI) -> Path:  # fmt: skip
    """Write a graphics item (a figure's layout, a plot) to PNG, SVG or PDF by the path's suffix.

    Parameters
    ----------
    item : pyqtgraph GraphicsObject
    path : str or Path
    width : int, optional
        PNG width in pixels; default: the item's width scaled by ``dpi / 96``.
    dpi : float
        PNG resolution tag (and the default width's scale). SVG and PDF are vector, 96 user
        units per inch, the figure's own size.

    Returns
    -------
    Path
        The file written (atomically: a failed export leaves no partial file).
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise ValueError(f"{out.name}: unknown plot format {out.suffix or '(none)'}; use .png, .svg or .pdf")
    if not out.parent.is_dir():
        raise ValueError(f"folder {out.parent} does not exist")
    if not (math.isfinite(dpi) and 10 <= dpi <= 2400):
        raise ValueError(f"DPI {dpi:g} is outside 10..2400")
    if suffix == ".png":
        w = int(width) if width else round(item.sceneBoundingRect().width() * dpi / DEFAULT_DPI)
        if w < 16:
            raise ValueError(f"width {w} is below 16 pixels")
        image = _render_png(item, w, dpi)
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        ok = image.save(buffer, "PNG")
        buffer.close()
        if not ok:
            raise OSError(f"could not encode {out.name}")
        _write_atomically(out, bytes(data.data()))
    else:
        svg, source = _render_svg_bytes(item)
        _write_atomically(out, svg if suffix == ".svg" else _pdf_bytes(svg, source))
    return out


@contextmanager
def _figure(report: Report, what: str, sweep: SweepResult | None, error_view: str,
            levels: Mapping[str, tuple[float, float]] | None,
            screen: HeatmapPanel | None) -> Iterator[pg.GraphicsLayoutWidget]:  # fmt: skip
    fig = build_figure(report, what, sweep, error_view, levels, screen)
    try:
        yield fig
    finally:
        panel = getattr(fig, "source_panel", None)
        fig.close()
        fig.deleteLater()
        if panel is not None:
            panel.deleteLater()


def export_figure(path: str | Path, report: Report, what: str = "dashboard", width: int | None = None,
                  sweep: SweepResult | None = None, error_view: str = "abs", dpi: float = DEFAULT_DPI,
                  levels: Mapping[str, tuple[float, float]] | None = None,
                  screen: HeatmapPanel | None = None) -> Path:  # fmt: skip
    """Build the figure and write it (PNG, SVG or PDF by suffix); see :func:`build_figure` and :func:`export_item`."""
    with _figure(report, what, sweep, error_view, levels, screen) as fig:
        return export_item(fig.ci, path, width, dpi)


# ------------------------------------------------------------------ clipboard
def _png_bytes(image: QImage) -> QByteArray:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return data


def copy_figure(report: Report, what: str = "dashboard", sweep: SweepResult | None = None,
                error_view: str = "abs", screen: HeatmapPanel | None = None,
                scale: float = 2.0) -> QMimeData:  # fmt: skip
    """Put a figure on the clipboard as an image (``scale`` x its size) and as SVG (for vector editors)."""
    with _figure(report, what, sweep, error_view, None, screen) as fig:
        w = round(fig.ci.sceneBoundingRect().width() * scale)
        image = _render_png(fig.ci, w, DEFAULT_DPI * scale)
        svg = render_svg(fig.ci)
    mime = QMimeData()
    mime.setImageData(image)
    mime.setData("image/png", _png_bytes(image))
    mime.setData("image/svg+xml", QByteArray(svg))
    QGuiApplication.clipboard().setMimeData(mime)
    return mime


def copy_widget(widget: object, scale: float | None = None) -> QImage:
    """Put a widget (a plot, the whole dashboard of the window) on the clipboard as it looks now.

    pyqtgraph views are re-rendered at ``scale`` (default: the screen's device pixel ratio) with
    the export settings; other widgets are grabbed.
    """
    if isinstance(widget, pg.GraphicsView):
        item = widget.centralWidget if widget.centralWidget is not None else widget.sceneObj.itemsBoundingRect()
        ratio = scale or widget.devicePixelRatioF()
        w = max(16, round(widget.width() * ratio))
        image = _render_png(item, w, DEFAULT_DPI * ratio)
    else:
        image = widget.grab().toImage()  # type: ignore[attr-defined]
    mime = QMimeData()
    mime.setImageData(image)
    QGuiApplication.clipboard().setMimeData(mime)
    return image
