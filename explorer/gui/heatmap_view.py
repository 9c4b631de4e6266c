"""Heatmap views whose rows line up with the grid, with a colorbar and level policies."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
import shiboken6
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFontMetricsF, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QWidget

from explorer.core.overview import MapLike
from explorer.gui.map_overview import OverviewSource, Reduction, overview_of
from explorer.gui.theme import LIGHT, Colors
from explorer.gui.ticks import _spacing_digits, apply_tick_format, format_ticks

__all__ = [
    "COLORMAPS",
    "DIVERGING",
    "DIVERGING_MAPS",
    "SEQUENTIAL",
    "SEQUENTIAL_MAPS",
    "ColorBar",
    "HeatmapView",
    "bar_ticks",
    "nice_ceil",
    "stable_levels",
]


def _diverging() -> pg.ColorMap:
    # Blue - white - red (ColorBrewer RdBu, reversed so positive is red).
    stops = [0.0, 0.25, 0.5, 0.75, 1.0]
    colors = [(33, 102, 172), (146, 197, 222), (247, 247, 247), (244, 165, 130), (178, 24, 43)]
    return pg.ColorMap(stops, colors, name="RdBu_r")


def _puor() -> pg.ColorMap:
    # Orange - white - purple (ColorBrewer PuOr): diverging, colour-blind safe, no red/green.
    colors = [(84, 39, 136), (178, 171, 210), (247, 247, 247), (253, 184, 99), (179, 88, 6)]
    return pg.ColorMap([0.0, 0.25, 0.5, 0.75, 1.0], colors, name="PuOr_r")


#: Colormap of the gradients (symmetric levels), and of the errors.
DIVERGING = _diverging()
SEQUENTIAL = pg.colormap.get("viridis")
#: Choices offered for the gradients (diverging) and the error (sequential): menu text -> map.
DIVERGING_MAPS: dict[str, pg.ColorMap] = {"Blue – red (RdBu)": DIVERGING, "Purple – orange (PuOr)": _puor(),
                                          "Cool – warm (CET-D1)": pg.colormap.get("CET-D1")}  # fmt: skip
SEQUENTIAL_MAPS: dict[str, pg.ColorMap] = {name.capitalize(): pg.colormap.get(name)
                                           for name in ("viridis", "cividis", "magma", "inferno")}  # fmt: skip
COLORMAPS = {**DIVERGING_MAPS, **SEQUENTIAL_MAPS}

#: Up to this many rows or columns, every cell gets a centred tick label.
MAX_LABELLED_TICKS = 32

#: Levels shrink only when the data uses less than this fraction of them.
SHRINK_FRACTION = 0.02
#: Space above and below a colour bar (px) so its end tick labels are not clipped.
BAR_END_MARGIN = 9
#: Width of a colour bar's painted strip (px).
BAR_WIDTH = 20
#: Cells smaller than this on screen (px) are not marked × / ○ one by one (the marks would cover the map);
#: a NaN cell still shows, in :data:`NAN_COLOR`, and the summary counts them.
MIN_MARK_PX = 7
#: A map over this many cells is not drawn while its view is hidden (nothing to see; the pixels decide later).
MAX_UNSEEN_CELLS = 1 << 20
#: Most cells whose marks are looked up at once (more cannot be MIN_MARK_PX wide on a screen).
MAX_MARKED_REGION = 1 << 18
#: Marks of a region: ``(r0, r1, c0, c1) -> bool mask of shape (r1 - r0, c1 - c0)``.
MarkSource = Callable[[int, int, int, int], NDArray]
#: What a NaN cell (transparent in the image) shows: the view's background, a grey no colour map uses.
NAN_COLOR = QColor(150, 150, 150)
#: A selected cell smaller than this on screen (px) also gets a ring of this size.
MIN_OUTLINE_PX = 10
#: Opacity of a map that shows the previous grid while the new one is checked.
OUTDATED_OPACITY = 0.3


def bar_ticks(lo: float, hi: float, max_ticks: int = 5) -> list[tuple[float, str]]:
    """Ticks of a colour bar: both ends and evenly spaced values between, in the one tick format.

    The division (4, 5, 2, 3 or 6 parts, at most ``max_ticks - 1``) with the shortest labels wins,
    so ``(0, 1.25e-9)`` reads ``0, 2.5e-10, 5e-10, …`` rather than ``3.125e-10`` steps.

    Examples
    --------
    >>> [t for _, t in bar_ticks(-1.0, 1.0)]
    ['-1.0', '-0.5', '0.0', '0.5', '1.0']
    >>> [t for _, t in bar_ticks(-20.0, -8.0)]
    ['-20', '-17', '-14', '-11', '-8']
    """
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        return []
    best: tuple[int, int, float] | None = None
    for parts in (4, 5, 2, 3, 6, 1):
        if parts > max(1, max_ticks - 1):
            continue
        step = (hi - lo) / parts
        _, extra = _spacing_digits(step)
        key = (extra, 0 if parts in (4, 5) else 1)
        if best is None or key < best[:2]:
            best = (*key, parts)  # type: ignore[assignment]
    parts = int(best[2]) if best is not None else 1
    values = [lo + (hi - lo) * k / parts for k in range(parts + 1)]
    values[-1] = hi
    return list(zip(values, format_ticks(values, (hi - lo) / parts), strict=True))


def nice_ceil(v: float) -> float:
    """Smallest "round" number (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten) >= v > 0.

    Examples
    --------
    >>> nice_ceil(0.37), nice_ceil(3e-9), nice_ceil(1.0000003)
    (0.4, 3e-09, 1.25)
    """
    if not v > 0 or not math.isfinite(v):
        return 1.0
    exp = math.floor(math.log10(v))
    for m in (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        cand = float(f"{m}e{exp}")
        if cand >= v * (1 - 1e-12):
            return cand
    return float(f"1e{exp + 1}")


def stable_levels(current: tuple[float, float] | None, lo: float, hi: float) -> tuple[float, float]:
    """Keep the current levels while the data stays inside them and uses a fair part of them.

    Returns new "nice" levels when the data leaves the current ones or shrinks far
    inside them (so levels do not jump on every keystroke).
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return current if current is not None else (0.0, 1.0)
    if current is not None:
        c_lo, c_hi = current
        span = c_hi - c_lo
        inside = c_lo <= lo and hi <= c_hi
        if inside and (hi - lo) >= SHRINK_FRACTION * span:
            return current
    return lo, hi


class ColorBar(pg.PlotItem):
    """A vertical bar painted with a colormap, with an axis of data values (no ImageItem).

    The bar is drawn in a fixed unit square and the axis is given the levels
    directly, so tiny ranges (errors of 1e-12) draw as well as large ones.
    """

    def __init__(self, cmap: pg.ColorMap, label: str = ""):
        super().__init__()
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.hideAxis("bottom")
        self.hideAxis("left")
        self.showAxis("right")
        axis = self.getAxis("right")
        axis.unlinkFromView()
        apply_tick_format(axis)  # one tick format on screen and in exports; no SI prefix
        # End labels may reach past the bar by half their height: the margins below leave room for them.
        axis.setStyle(hideOverlappingLabels=False, autoExpandTextSpace=False)
        self.layout.setContentsMargins(0, BAR_END_MARGIN, 0, BAR_END_MARGIN)
        if label:
            self.setLabel("right", label)
        self.setXRange(0, 1, padding=0)
        self.setYRange(0, 1, padding=0)
        self.getViewBox().setMaximumWidth(BAR_WIDTH)
        self.getViewBox().setMinimumWidth(12)
        self.rect_item = QGraphicsRectItem(0, 0, 1, 1)
        self.rect_item.setPen(QPen(Qt.PenStyle.NoPen))
        self.addItem(self.rect_item)
        self.set_colormap(cmap)
        self.levels = (0.0, 1.0)
        self._drawn = False
        #: The axis is at least this wide (a panel gives its bars one width, so linked maps line up).
        self.min_axis_width = 0
        self.needed_width = 0
        self.set_levels(0.0, 1.0)
        self.getViewBox().sigResized.connect(self._on_view_box_resized)

    def set_colormap(self, cmap: pg.ColorMap) -> None:
        """Paint the bar with ``cmap``."""
        self.rect_item.setBrush(QBrush(cmap.getGradient(QPointF(0.0, 0.0), QPointF(0.0, 1.0))))

    def set_levels(self, lo: float, hi: float) -> None:
        if not hi > lo:
            hi = lo + 1.0
        if (lo, hi) == self.levels and self._drawn:
            return  # unchanged: keep the axis's cached picture
        self._drawn = True
        self.levels = (lo, hi)
        axis = self.getAxis("right")
        axis.setRange(lo, hi)
        self._fit_ticks()

    def _fit_ticks(self) -> None:
        """Explicit ticks (both ends labelled) and an axis just wide enough for them, so the labels never
        reach the bar's title (the axis label beside them)."""
        axis = self.getAxis("right")
        lo, hi = self.levels
        height = self.getViewBox().height() or 200.0
        line = QFontMetricsF(axis.style["tickFont"] or axis.font()).height()
        ticks = bar_ticks(lo, hi, max(2, min(5, int(height // (2.2 * line)) + 1)))
        if ticks != getattr(self, "_ticks", None):
            self._ticks = ticks
            axis.setTicks([ticks, []])
        metrics = QFontMetricsF(axis.style["tickFont"] or axis.font())
        text = max((metrics.horizontalAdvance(t) for _, t in ticks), default=0.0)
        label = axis.label.boundingRect().height() if axis.label.isVisible() else 0.0
        ticks_width = text + axis.style["tickTextOffset"][0] + max(0, axis.style["tickLength"])
        self.needed_width = math.ceil(ticks_width + label + 4)
        width = max(self.needed_width, self.min_axis_width)
        if getattr(axis, "fixedWidth", None) != width:  # (not width(): a resize re-enters here)
            axis.setWidth(width)
            self.setMaximumWidth(BAR_WIDTH + width + 2)  # the bar and its axis side by side, no gap

    def _on_view_box_resized(self, *_args: object) -> None:
        self._fit_ticks()

    def set_min_axis_width(self, width: int) -> None:
        """Make the axis at least ``width`` px wide (bars side by side then have equal widths)."""
        if width != self.min_axis_width:
            self.min_axis_width = width
            self._fit_ticks()

    def apply_colors(self, colors: Colors) -> None:
        axis = self.getAxis("right")
        axis.setPen(colors.plot_foreground)
        axis.setTextPen(colors.plot_foreground)


class HeatmapView(pg.GraphicsLayoutWidget):
    """One image of an (N, C) array: row i of the image is row i of the grid.

    Holds exactly one ``pg.ImageItem`` (``self.image_item``, row-major, y inverted) and a
    :class:`ColorBar`. While the grid fits the view's pixels the item's ``image`` is the array
    shown, cell for cell; when it has more cells than pixels the item shows an overview of the
    visible part (:mod:`explorer.gui.map_overview`: each pixel the extreme of its cells, so no hot
    cell vanishes) and :attr:`data` keeps the full array.

    Signals
    -------
    cellHovered(int, int)
        The cell under the mouse, (-1, -1) when outside the image.
    cellClicked(int, int)
        A left click on a cell.
    """

    cellHovered = Signal(int, int)
    cellClicked = Signal(int, int)

    def __init__(self, title: str, cmap: pg.ColorMap, bar_label: str = "", parent: QWidget | None = None,
                 reduction: Reduction = "magnitude"):  # fmt: skip
        super().__init__(parent=parent)
        self.ci.setContentsMargins(2, 2, 2, 2)
        self._colors = LIGHT
        self._title = title
        self._outdated = False
        self.plot = self.addPlot(row=0, col=0, title=title)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()  # the window has a visible Reset view action instead of pyqtgraph's "A"
        self.plot.invertY(True)
        self.plot.setLabel("left", "sample")
        self.plot.setLabel("bottom", "class")
        self.plot.getViewBox().setDefaultPadding(0.0)
        self.plot.getViewBox().setBackgroundColor(NAN_COLOR)
        for name in ("left", "bottom"):
            apply_tick_format(self.plot.getAxis(name))
            # Ticks outside the data: inside (pyqtgraph's default) they cover the edge cells, a label column
            # at class 0 among them.
            self.plot.getAxis(name).setStyle(tickLength=4)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setColorMap(cmap)
        self.plot.addItem(self.image_item)
        self.cmap = cmap
        self.colorbar = ColorBar(cmap, bar_label)
        self._bar_label = bar_label
        self.addItem(self.colorbar, row=0, col=1)
        # The selected cell: a thick dark frame with a thin light one inside, visible on any colour.
        self._marker = QGraphicsRectItem(0, 0, 1, 1)
        self._marker_inner = QGraphicsRectItem(0, 0, 1, 1)
        for item, z in ((self._marker, 10), (self._marker_inner, 11)):
            item.setZValue(z)
            item.setVisible(False)
            self.plot.addItem(item)
        self._ring = pg.ScatterPlotItem(size=MIN_OUTLINE_PX + 4, symbol="s", brush=None)
        self._ring.setZValue(12)
        self.plot.addItem(self._ring)
        self.crosshair = (pg.InfiniteLine(angle=90, movable=False), pg.InfiniteLine(angle=0, movable=False))
        for line in self.crosshair:
            line.setZValue(8)
            line.setVisible(False)
            self.plot.addItem(line, ignoreBounds=True)
        self._shape: tuple[int, ...] = (0, 0)
        self._marks: dict[str, pg.ScatterPlotItem] = {}
        self._mark_sources: dict[str, MarkSource] = {}
        self._mark_keys: dict[str, tuple[int, int, int, int]] = {}
        self._hover = (-1, -1)
        self._selected: tuple[int, int] | None = None
        self.levels: tuple[float, float] | None = None
        #: The full array on show (the image item may hold an overview of it).
        self.data: MapLike | None = None
        self.reduction: Reduction = reduction
        self._overview: OverviewSource | None = None
        self._fixed_pixels: tuple[float, float] | None = None  # see draw_at
        self._tick_keys: dict[str, tuple[str, int | None]] = {}
        self._region_key: tuple[int, ...] | None = None
        self._overview_timer = QTimer(self, singleShot=True, interval=0)
        self._overview_timer.timeout.connect(self._on_overview_timer_timeout)
        self.plot.getViewBox().sigRangeChanged.connect(self._on_view_box_range_changed)
        self.plot.getViewBox().sigResized.connect(self._on_view_box_range_changed)
        self.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_scene_mouse_clicked)
        self.apply_colors(LIGHT)

    # ------------------------------------------------------------------ look
    def apply_colors(self, colors: Colors) -> None:
        """Background, axes, titles, crosshair and outline in the colours of a scheme."""
        self._colors = colors
        self.setBackground(colors.plot_background)
        fg = colors.plot_foreground
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(fg)
            axis.setTextPen(fg)
        self.colorbar.apply_colors(colors)
        self._show_title()
        self._marker.setPen(pg.mkPen(colors.outline_outer, width=4, cosmetic=True))
        self._marker_inner.setPen(pg.mkPen(colors.outline_inner, width=1.5, cosmetic=True))
        self._ring.setPen(pg.mkPen(colors.outline_inner, width=2))
        for line in self.crosshair:
            line.setPen(pg.mkPen(colors.crosshair, width=1, style=Qt.PenStyle.DashLine))
        for item in self._marks.values():
            item.setPen(pg.mkPen(fg, width=1.5))

    def set_colormap(self, cmap: pg.ColorMap) -> None:
        """Draw the image and its bar with ``cmap``."""
        self.cmap = cmap
        self.image_item.setColorMap(cmap)
        self.colorbar.set_colormap(cmap)

    # ------------------------------------------------------------------ data
    def set_image(self, image: MapLike, levels: tuple[float, float], overview: OverviewSource | None = None) -> None:
        """Show ``image`` with fixed ``levels`` (never auto-levels).

        ``overview`` answers for the image when it has more cells than pixels (a pyramid built with the
        report); by default one is made from ``image`` when first needed.
        """
        if self.data is not None and image is self.image_item.image and image is not self.data:
            image, overview = self.data, self._overview  # re-levelling what is on show (exports): the full array
        shape = image.shape
        self.levels = levels
        self.data = image
        self._overview = overview if overview is not None else overview_of(np.asarray(image), self.reduction)
        self._region_key = None
        self.colorbar.set_levels(*levels)
        if shape != self._shape:
            self._shape = shape
            vb = self.plot.getViewBox()
            vb.setLimits(xMin=0, xMax=shape[1], yMin=0, yMax=shape[0])
            self.plot.setXRange(0, shape[1], padding=0)
            self.plot.setYRange(0, shape[0], padding=0)
            self._label_ticks()
        self._refresh_overview()

    def _label_ticks(self) -> None:
        """Label cells at their centres when there are few (every k-th one, so the labels do not overlap at the
        view's pixels); pyqtgraph's own ticks otherwise."""
        if len(self._shape) < 2 or not shiboken6.isValid(self.plot.getAxis("left")):
            return  # nothing yet, or the plot was taken into an export's figure that is gone now
        vb = self.plot.getViewBox()
        (x0, x1), (y0, y1) = vb.viewRange()
        metrics = QFontMetricsF(self.font())
        for axis_name, count, span, pixels in (("bottom", self._shape[1], x1 - x0, vb.width()),
                                               ("left", self._shape[0], y1 - y0, vb.height())):  # fmt: skip
            if count > MAX_LABELLED_TICKS:
                ticks = None
            else:
                need = (metrics.horizontalAdvance(str(count - 1)) + 6) if axis_name == "bottom" else metrics.height()
                per_cell = pixels / max(span, 1e-9) if pixels > 0 else math.inf
                step = next(k for k in (1, 2, 5, 10, 20, 50) if k * per_cell >= need or k == 50)
                ticks = [[(k + 0.5, str(k)) for k in range(0, count, step)]]
            key = (axis_name, None if ticks is None else len(ticks[0]))
            if self._tick_keys.get(axis_name) != key:
                self._tick_keys[axis_name] = key
                self.plot.getAxis(axis_name).setTicks(ticks)

    def draw_at(self, height_px: float, width_px: float) -> None:
        """Draw the map for a plot area of ``height_px x width_px`` pixels off screen (a figure being exported:
        its plot was taken into the figure's layout), each pixel the extreme of its cells."""
        self._fixed_pixels = (float(height_px), float(width_px))
        self._region_key = None
        self._refresh_overview()

    def _view_pixels(self) -> tuple[float, float]:
        """Device pixels of the plot area (height, width); 0 when the view is not on screen."""
        if self._fixed_pixels is not None:
            return self._fixed_pixels
        if not self.isVisible():
            return 0.0, 0.0
        vb = self.plot.getViewBox()
        ratio = self.devicePixelRatioF()
        return vb.height() * ratio, vb.width() * ratio

    def _visible_cells(self) -> tuple[int, int, int, int]:
        n, c = self._shape[:2]
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        r0, r1 = max(0, math.floor(y0)), min(n, math.ceil(y1))
        c0, c1 = max(0, math.floor(x0)), min(c, math.ceil(x1))
        return r0, max(r1, r0 + 1), c0, max(c1, c0 + 1)

    @property
    def overview_factors(self) -> tuple[int, int]:
        """Cells per image pixel (down, across): (1, 1) when every cell is drawn."""
        return self._region_key[4:6] if self._region_key is not None else (1, 1)  # type: ignore[return-value]

    def _refresh_overview(self) -> None:
        """Draw the whole array when it fits the pixels, else the overview of the visible cells."""
        data = self.data
        if data is None or data.ndim != 2 or self._overview is None or self.levels is None:
            return  # nothing drawn yet, or levels forgotten for a new problem (the next report brings both)
        n, c = data.shape
        height, width = self._view_pixels()
        r0, r1, c0, c1 = self._visible_cells()
        if height <= 0 and n * c > MAX_UNSEEN_CELLS:
            return  # not on screen: a large map waits until it is shown (showEvent refreshes it)
        fits = height <= 0 or (r1 - r0 <= height and c1 - c0 <= width)
        if fits:
            key: tuple[int, ...] = (0, n, 0, c, 1, 1)
            if key != self._region_key:  # set_image forgets the key, so new data always lands here
                self.image_item.setImage(_drawable(data), autoLevels=False, levels=self.levels)
                self.image_item.setRect(QRectF(0, 0, c, n))
                self._region_key = key
            return
        region = self._overview.region(r0, r1, c0, c1, height, width)
        key = (region.row0, region.rows, region.col0, region.cols, *region.factors)
        if key == self._region_key:
            return
        self._region_key = key
        self.image_item.setImage(region.image, autoLevels=False, levels=self.levels)
        # The last block may be partial: the picture spans its blocks, clipped by the view's limits.
        self.image_item.setRect(QRectF(region.col0, region.row0, region.cols, region.rows))
        self._update_ring()

    def _on_overview_timer_timeout(self) -> None:
        self._refresh_overview()
        self._refresh_marks()
        self._label_ticks()

    def _on_view_box_range_changed(self, *_args: object) -> None:
        self._overview_timer.start()  # once per burst of pan/zoom events (the marks follow with the picture)
        self._update_ring()

    def showEvent(self, event: object) -> None:  # type: ignore[override]
        super().showEvent(event)  # type: ignore[arg-type]
        self._overview_timer.start()

    def reset_view(self) -> None:
        """Show the whole grid."""
        if len(self._shape) >= 2 and self._shape[0] and self._shape[1]:
            self.plot.getViewBox().setRange(xRange=(0, self._shape[1]), yRange=(0, self._shape[0]), padding=0)

    def show_cell(self, cell: tuple[int, int]) -> None:
        """Pan (keeping the zoom) so ``cell`` is inside the view, if it is not already."""
        i, j = cell
        vb = self.plot.getViewBox()
        (x0, x1), (y0, y1) = vb.viewRange()
        if x0 <= j and j + 1 <= x1 and y0 <= i and i + 1 <= y1:
            return
        w, h = x1 - x0, y1 - y0
        vb.setRange(xRange=(j + 0.5 - w / 2, j + 0.5 + w / 2), yRange=(i + 0.5 - h / 2, i + 0.5 + h / 2), padding=0)

    def set_title(self, title: str) -> None:
        self._title = title
        self._show_title()

    def _show_title(self) -> None:
        text = f"{self._title} (previous grid)" if self._outdated else self._title
        self.plot.setTitle(text, color=self._colors.plot_foreground.name())

    def set_outdated(self, outdated: bool) -> None:
        """Dim the map and say so in its title while it shows a problem the grid no longer holds (a file of
        another shape being checked in the background)."""
        if outdated == self._outdated:
            return
        self._outdated = outdated
        self.image_item.setOpacity(OUTDATED_OPACITY if outdated else 1.0)
        self._show_title()

    @property
    def title(self) -> str:
        return str(self.plot.titleLabel.text)

    def set_bar_label(self, label: str) -> None:
        if label != self._bar_label:
            self._bar_label = label
            self.colorbar.setLabel("right", label)
            self.colorbar._fit_ticks()

    def set_marks(self, cells: NDArray | MarkSource, symbol: str = "x") -> None:
        """Mark cells with a symbol: an (N, C) boolean mask, or a function ``(r0, r1, c0, c1) -> mask`` of a
        region (so a large map never forms its whole mask); an empty mask clears the marks.

        Only the visible cells are marked, and only while cells are at least :data:`MIN_MARK_PX` on screen
        (so at most a few thousand marks exist, whatever the grid's size).
        """
        if self._marks.get(symbol) is None:
            item = pg.ScatterPlotItem(size=9, pen=pg.mkPen(self._colors.plot_foreground, width=1.5), brush=None,
                                      symbol=symbol)  # fmt: skip
            item.setZValue(9)
            self.plot.addItem(item)
            self._marks[symbol] = item
        if callable(cells):
            self._mark_sources[symbol] = cells
        else:
            mask = np.asarray(cells, dtype=bool)
            self._mark_sources[symbol] = lambda r0, r1, c0, c1: mask[r0:r1, c0:c1]
        self._mark_keys.pop(symbol, None)
        self._refresh_marks()

    def _refresh_marks(self) -> None:
        """Put the marks of the visible cells on their items (nothing while cells are too small to mark)."""
        if not self._marks or not all(shiboken6.isValid(item) for item in self._marks.values()):
            return  # none, or the plot was taken into an export's figure that is gone now
        shown = self._cell_px() >= MIN_MARK_PX and len(self._shape) >= 2 and self._shape[0] > 0
        region = self._visible_cells() if shown else None
        if region is not None and (region[1] - region[0]) * (region[3] - region[2]) > MAX_MARKED_REGION:
            region = None  # not laid out yet (every cell "visible"): wait for the real view
        for symbol, item in self._marks.items():
            source = self._mark_sources.get(symbol)
            if region is None or source is None:
                item.setVisible(False)
                continue
            if self._mark_keys.get(symbol) != region:
                r0, r1, c0, c1 = region
                rows, cols = np.nonzero(source(r0, r1, c0, c1))
                item.setData(cols + (c0 + 0.5), rows + (r0 + 0.5))
                self._mark_keys[symbol] = region
            item.setVisible(True)

    def set_selected(self, cell: tuple[int, int] | None) -> None:
        """Outline the selected cell (or hide the outline)."""
        self._selected = cell
        visible = cell is not None
        self._marker.setVisible(visible)
        self._marker_inner.setVisible(visible)
        if cell is not None:
            i, j = cell
            self._marker.setRect(QRectF(j, i, 1, 1))
            self._marker_inner.setRect(QRectF(j, i, 1, 1))
        self._update_ring()

    def _cell_px(self) -> float:
        """The smaller side of a cell on screen (px); infinite before the view is laid out."""
        px = self.plot.getViewBox().viewPixelSize()
        return min(1 / px[0], 1 / px[1]) if px[0] > 0 and px[1] > 0 else math.inf

    def _update_ring(self) -> None:
        """A ring of fixed size around the selected cell when the cell itself is too small to see; per-cell
        marks only where cells are large enough for them."""
        cell_px = self._cell_px()
        if cell_px < MIN_MARK_PX:
            for item in self._marks.values():
                item.setVisible(False)
        cell = self._selected
        small = False
        if cell is not None:
            small = cell_px < MIN_OUTLINE_PX
        # A cell smaller than the outline's pens would be covered by them: then only the hollow ring around it.
        self._marker.setVisible(cell is not None and not small)
        self._marker_inner.setVisible(cell is not None and not small)
        if small and cell is not None:
            self._ring.setData([cell[1] + 0.5], [cell[0] + 0.5])
            self._ring.setVisible(True)
        else:
            self._ring.setVisible(False)

    def set_crosshair(self, cell: tuple[int, int] | None) -> None:
        """Dashed lines through the centre of ``cell`` (None hides them)."""
        for line in self.crosshair:
            line.setVisible(cell is not None)
        if cell is not None:
            self.crosshair[0].setValue(cell[1] + 0.5)
            self.crosshair[1].setValue(cell[0] + 0.5)

    # ----------------------------------------------------------------- mouse
    def cell_at(self, scene_pos: QPointF) -> tuple[int, int]:
        """Grid cell under a scene position, or (-1, -1)."""
        if not self.plot.getViewBox().sceneBoundingRect().contains(scene_pos):
            return -1, -1
        p = self.plot.getViewBox().mapSceneToView(scene_pos)
        i, j = math.floor(p.y()), math.floor(p.x())
        n, c = self._shape[:2] if len(self._shape) >= 2 else (0, 0)
        if 0 <= i < n and 0 <= j < c:
            return self._shown_cell(i, j)
        return -1, -1

    def _shown_cell(self, i: int, j: int) -> tuple[int, int]:
        """The cell whose value colours the pixel over cell ``(i, j)``: the cell itself when every cell is drawn,
        else the extreme cell of the pixel's block (so hover and click name what is seen)."""
        key, data = self._region_key, self.data
        if key is None or data is None or (key[4], key[5]) == (1, 1):
            return i, j
        row0, _rows, col0, _cols, fy, fx = key
        n, c = data.shape
        r0, c0 = row0 + ((i - row0) // fy) * fy, col0 + ((j - col0) // fx) * fx
        if not (0 <= r0 < n and 0 <= c0 < c):
            return i, j
        block = np.asarray(data[r0 : min(n, r0 + fy), c0 : min(c, c0 + fx)], dtype=np.float64)
        keys = np.abs(block) if self.reduction == "magnitude" else block
        keys = np.where(np.isnan(block), np.inf, keys)  # a NaN is the most extreme, as the overview draws it
        di, dj = np.unravel_index(int(np.argmax(keys)), block.shape)
        return r0 + int(di), c0 + int(dj)

    def _on_scene_mouse_moved(self, pos: QPointF) -> None:
        cell = self.cell_at(pos)
        if cell != self._hover:
            self._hover = cell
            self.cellHovered.emit(*cell)

    def leaveEvent(self, event: object) -> None:  # type: ignore[override]
        super().leaveEvent(event)  # type: ignore[arg-type]
        if self._hover != (-1, -1):
            self._hover = (-1, -1)
            self.cellHovered.emit(-1, -1)

    def _on_scene_mouse_clicked(self, event: object) -> None:
        if getattr(event, "button", lambda: None)() != Qt.MouseButton.LeftButton:
            return
        cell = self.cell_at(event.scenePos())  # type: ignore[attr-defined]
        if cell[0] >= 0:
            self.cellClicked.emit(*cell)


def _drawable(data: MapLike) -> NDArray:
    """The whole map as an array pyqtgraph draws (float32 or float64; a region map or a half-precision grid
    is formed in float64: only maps that fit the screen's pixels are drawn whole)."""
    if isinstance(data, np.ndarray) and data.dtype in (np.float32, np.float64):
        return data
    return np.asarray(data[:, :], dtype=np.float64)


def symmetric_limit(*arrays: NDArray) -> float:
    """Largest finite magnitude over arrays (0 if none)."""
    best = 0.0
    for a in arrays:
        finite = np.abs(a[np.isfinite(a)]) if a.size else a
        if finite.size:
            best = max(best, float(finite.max()))
    return best
