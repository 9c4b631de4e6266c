"""Heatmap views whose rows line up with the grid, with a colorbar and level policies."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QWidget

from explorer.gui.ticks import apply_tick_format

__all__ = ["DIVERGING", "SEQUENTIAL", "HeatmapView", "nice_ceil", "stable_levels"]


def _diverging() -> pg.ColorMap:
    # Blue - white - red (ColorBrewer RdBu, reversed so positive is red).
    stops = [0.0, 0.25, 0.5, 0.75, 1.0]
    colors = [(33, 102, 172), (146, 197, 222), (247, 247, 247), (244, 165, 130), (178, 24, 43)]
    return pg.ColorMap(stops, colors, name="RdBu_r")


#: Colormap of the gradients (symmetric levels), and of the errors.
DIVERGING = _diverging()
SEQUENTIAL = pg.colormap.get("viridis")

#: Up to this many rows or columns, every cell gets a centred tick label.
MAX_LABELLED_TICKS = 32

#: Levels shrink only when the data uses less than this fraction of them.
SHRINK_FRACTION = 0.02


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
        axis.setWidth(56)
        if label:
            self.setLabel("right", label)
        self.setMaximumWidth(90)
        self.setXRange(0, 1, padding=0)
        self.setYRange(0, 1, padding=0)
        rect = QGraphicsRectItem(0, 0, 1, 1)
        rect.setPen(QPen(Qt.PenStyle.NoPen))
        rect.setBrush(QBrush(cmap.getGradient(QPointF(0.0, 0.0), QPointF(0.0, 1.0))))
        self.addItem(rect)
        self.levels = (0.0, 1.0)
        self._drawn = False
        self.set_levels(0.0, 1.0)

    def set_levels(self, lo: float, hi: float) -> None:
        if not hi > lo:
            hi = lo + 1.0
        if (lo, hi) == self.levels and self._drawn:
            return  # unchanged: keep the axis's cached picture
        self._drawn = True
        self.levels = (lo, hi)
        self.getAxis("right").setRange(lo, hi)


class HeatmapView(pg.GraphicsLayoutWidget):
    """One image of an (N, C) array: row i of the image is row i of the grid.

    Holds exactly one ``pg.ImageItem`` (``self.image_item``, row-major, y inverted)
    whose ``image`` is the array shown, and a :class:`ColorBar`.

    Signals
    -------
    cellHovered(int, int)
        The cell under the mouse, (-1, -1) when outside the image.
    cellClicked(int, int)
        A left click on a cell.
    """

    cellHovered = Signal(int, int)
    cellClicked = Signal(int, int)

    def __init__(self, title: str, cmap: pg.ColorMap, bar_label: str = "", parent: QWidget | None = None):
        super().__init__(parent=parent)
        self.setBackground("w")
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.plot = self.addPlot(row=0, col=0, title=title)
        self.plot.setMenuEnabled(False)
        self.plot.invertY(True)
        self.plot.setLabel("left", "sample")
        self.plot.setLabel("bottom", "class")
        self.plot.getViewBox().setDefaultPadding(0.0)
        for name in ("left", "bottom"):
            apply_tick_format(self.plot.getAxis(name))
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setColorMap(cmap)
        self.plot.addItem(self.image_item)
        self.colorbar = ColorBar(cmap, bar_label)
        self._bar_label = bar_label
        self.addItem(self.colorbar, row=0, col=1)
        self._marker = QGraphicsRectItem(0, 0, 1, 1)
        self._marker.setPen(pg.mkPen(QColor(0, 0, 0), width=2, cosmetic=True))
        self._marker.setZValue(10)
        self._marker.setVisible(False)
        self.plot.addItem(self._marker)
        self._shape: tuple[int, ...] = (0, 0)
        self._marks: dict[str, pg.ScatterPlotItem] = {}
        self._hover = (-1, -1)
        self.levels: tuple[float, float] | None = None
        self.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_scene_mouse_clicked)

    # ------------------------------------------------------------------ data
    def set_image(self, image: NDArray, levels: tuple[float, float]) -> None:
        """Show ``image`` with fixed ``levels`` (never auto-levels)."""
        shape = image.shape
        self.levels = levels
        self.image_item.setImage(image, autoLevels=False, levels=levels)
        self.colorbar.set_levels(*levels)
        if shape != self._shape:
            self._shape = shape
            self.plot.setXRange(0, shape[1], padding=0)
            self.plot.setYRange(0, shape[0], padding=0)
            for axis_name, count in (("bottom", shape[1]), ("left", shape[0])):
                ticks = [[(k + 0.5, str(k)) for k in range(count)]] if count <= MAX_LABELLED_TICKS else None
                self.plot.getAxis(axis_name).setTicks(ticks)

    def set_title(self, title: str) -> None:
        self.plot.setTitle(title)

    @property
    def title(self) -> str:
        return str(self.plot.titleLabel.text)

    def set_bar_label(self, label: str) -> None:
        if label != self._bar_label:
            self._bar_label = label
            self.colorbar.setLabel("right", label)

    def set_marks(self, cells: np.ndarray, symbol: str = "x") -> None:
        """Mark cells (an (N, C) boolean mask) with a symbol; an empty mask clears the marks."""
        if self._marks.get(symbol) is None:
            item = pg.ScatterPlotItem(size=9, pen=pg.mkPen(0, 0, 0, width=1.5), brush=None, symbol=symbol)
            item.setZValue(9)
            self.plot.addItem(item)
            self._marks[symbol] = item
        rows, cols = np.nonzero(cells)
        self._marks[symbol].setData(cols + 0.5, rows + 0.5)

    def set_selected(self, cell: tuple[int, int] | None) -> None:
        """Outline the selected cell (or hide the outline)."""
        if cell is None:
            self._marker.setVisible(False)
            return
        i, j = cell
        self._marker.setRect(QRectF(j, i, 1, 1))
        self._marker.setVisible(True)

    # ----------------------------------------------------------------- mouse
    def cell_at(self, scene_pos: QPointF) -> tuple[int, int]:
        """Grid cell under a scene position, or (-1, -1)."""
        if not self.plot.sceneBoundingRect().contains(scene_pos):
            return -1, -1
        p = self.plot.getViewBox().mapSceneToView(scene_pos)
        i, j = math.floor(p.y()), math.floor(p.x())
        n, c = self._shape[:2] if len(self._shape) >= 2 else (0, 0)
        if 0 <= i < n and 0 <= j < c:
            return i, j
        return -1, -1

    def _on_scene_mouse_moved(self, pos: QPointF) -> None:
        cell = self.cell_at(pos)
        if cell != self._hover:
            self._hover = cell
            self.cellHovered.emit(*cell)

    def _on_scene_mouse_clicked(self, event: object) -> None:
        if getattr(event, "button", lambda: None)() != Qt.MouseButton.LeftButton:
            return
        cell = self.cell_at(event.scenePos())  # type: ignore[attr-defined]
        if cell[0] >= 0:
            self.cellClicked.emit(*cell)


def symmetric_limit(*arrays: NDArray) -> float:
    """Largest finite magnitude over arrays (0 if none)."""
    best = 0.0
    for a in arrays:
        finite = np.abs(a[np.isfinite(a)]) if a.size else a
        if finite.size:
            best = max(best, float(finite.max()))
    return best
