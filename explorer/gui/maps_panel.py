"""The three heatmaps (analytic, numeric, error) and how a Report becomes images."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSplitter, QToolButton, QVBoxLayout, QWidget

from explorer.app.display import Display, DisplayChange, Source
from explorer.app.jobs import MapOverviews
from explorer.app.report_text import affected_cells
from explorer.core import Report
from explorer.core.digest import digest
from explorer.core.overview import RegionMap
from explorer.gui.heatmap_view import (
    DIVERGING,
    DIVERGING_MAPS,
    SEQUENTIAL,
    SEQUENTIAL_MAPS,
    HeatmapView,
    nice_ceil,
    stable_levels,
)
from explorer.gui.map_overview import PyramidOverview
from explorer.gui.theme import Colors, theme_manager

__all__ = ["ERROR_VIEWS", "HeatmapPanel", "error_image"]

#: Error views: key -> (menu text, colorbar label).
ERROR_VIEWS: dict[str, tuple[str, str]] = {
    "abs": ("|numeric − analytic|", "|error|"),
    "rel": ("Relative error", "relative error"),
    "log_abs": ("log10 |numeric − analytic|", "log10 |error|"),
    "log_rel": ("log10 relative error", "log10 rel. error"),
    "log_tol": ("log10 tolerance", "log10 tolerance"),
}
#: Floor of the log views: exact zeros are drawn at this exponent.
LOG_FLOOR = -20.0
#: The map each error view shows (a name of :meth:`explorer.core.Report.region_map`).
ERROR_MAPS: dict[str, str] = {"abs": "abs_err", "log_abs": "abs_err", "rel": "rel_err", "log_rel": "rel_err",
                              "log_tol": "tolerance"}  # fmt: skip


def error_image(report: Report, view: str) -> NDArray:
    """The array the error heatmap shows for a view key of :data:`ERROR_VIEWS`."""
    err = {"tolerance": report.tolerance_map, "abs_err": report.abs_err, "rel_err": report.rel_err}[ERROR_MAPS[view]]
    return error_image_values(err, view)


def error_image_values(err: NDArray, view: str) -> NDArray:
    """Errors as a view shows them: as they are, or log10 with exact zeros at :data:`LOG_FLOOR`
    (monotone, so it maps a pyramid's pixel maxima to the view's maxima too)."""
    if not view.startswith("log"):
        return err
    with np.errstate(divide="ignore"):
        logged = np.log10(err)
    return np.where(np.isneginf(logged), LOG_FLOOR, np.maximum(logged, LOG_FLOOR))


def _log_value(v: float) -> float:
    """One error as the log views show it (see :func:`error_image_values`); NaN stays NaN."""
    if math.isnan(v):
        return v
    return LOG_FLOOR if v <= 0 else max(math.log10(v), LOG_FLOOR)


class HeatmapPanel(QWidget):
    """Analytic and numeric gradients (shared symmetric levels, diverging map) and the error (sequential map).

    The three maps zoom and pan together, share a crosshair at the hovered cell and outline the
    selected cell. ``display=None`` builds the maps for an export (light colours, no display model).

    Signals
    -------
    cellHovered(int, int), cellClicked(int, int)
        Forwarded from any of the three maps.
    worstRequested()
        The "Worst cell" button.
    """

    cellHovered = Signal(int, int)
    cellClicked = Signal(int, int)
    worstRequested = Signal()

    def __init__(self, display: Display | None = None, parent: QWidget | None = None,
                 overviews: MapOverviews | None = None):  # fmt: skip
        super().__init__(parent)
        self.display = display
        #: Pyramids to draw from without a display model (an export of the window's report uses the window's).
        self.overviews = overviews
        self.analytic = HeatmapView("Analytic gradient", DIVERGING, "∂L/∂x", reduction="magnitude")
        self.analytic.setObjectName("analyticHeatmap")
        self.numeric = HeatmapView("Numeric gradient", DIVERGING, "∂L/∂x", reduction="magnitude")
        self.numeric.setObjectName("numericHeatmap")
        self.error = HeatmapView("Error", SEQUENTIAL, "|error|", reduction="max")
        self.error.setObjectName("errorHeatmap")
        # Not tool tips: hovering a map shows the cell's numbers, which a widget tool tip would replace.
        for view, text in ((self.analytic, "Closed-form gradient of the loss; red is positive, blue negative"),
                           (self.numeric, "Finite-difference gradient, on the same colour scale as the analytic one"),
                           (self.error, "Where the two disagree; choose the measure above the map")):  # fmt: skip
            view.setWhatsThis(text)
            view.setStatusTip(text)
        self.view_combo = QComboBox()
        self.view_combo.setObjectName("errorViewCombo")
        for key, (text, _) in ERROR_VIEWS.items():
            self.view_combo.addItem(text, key)
        self.view_combo.setToolTip("What the error map shows")
        self.view_combo.currentIndexChanged.connect(self._on_view_combo_changed)

        self.worst_button = QToolButton(objectName="worstCellButton", text="Worst cell")
        self.worst_button.setToolTip("Select the cell with the largest error and bring it into view (Ctrl+G)")
        self.worst_button.clicked.connect(self.worstRequested)
        self.reset_button = QToolButton(objectName="resetViewButton", text="Reset view")
        self.reset_button.setToolTip("Show the whole grid on all three maps (Ctrl+0)")
        self.reset_button.clicked.connect(self.reset_view)

        header = QHBoxLayout()
        header.setContentsMargins(2, 0, 2, 0)
        header.addWidget(QLabel("Error map:"))
        header.addWidget(self.view_combo)
        header.addStretch(1)
        header.addWidget(self.worst_button)
        header.addWidget(self.reset_button)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setObjectName("heatmapSplitter")
        splitter.setChildrenCollapsible(False)
        for view in self.views:
            splitter.addWidget(view)
            view.cellHovered.connect(self._on_view_cell_hovered)
            view.cellClicked.connect(self.cellClicked)
        # Zoom and pan together on screen: the numeric and error maps follow the analytic one's view box.
        # (Not in an export's panel: its plots move into a figure and the panel is deleted, and a link
        # between view boxes of different scenes outliving one of them crashes Qt.)
        if display is not None:
            for view in (self.numeric, self.error):
                view.plot.setXLink(self.analytic.plot)
                view.plot.setYLink(self.analytic.plot)
        self.gradient_cmap = next(iter(DIVERGING_MAPS))
        self.error_cmap = next(iter(SEQUENTIAL_MAPS))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(splitter, 1)
        self.splitter = splitter
        self._report: Report | None = None
        self._source = Source.BUILTIN
        if display is not None:  # figures for export draw a report directly with show_report
            display.changed.connect(self._on_display_changed)
            manager = theme_manager()
            manager.changed.connect(self.apply_colors)
            self.apply_colors(manager.colors)

    def apply_colors(self, colors: Colors) -> None:
        """Restyle the maps for a colour scheme (exports keep the light one)."""
        for view in self.views:
            view.apply_colors(colors)

    def set_colormaps(self, gradient: str | None = None, error: str | None = None) -> None:
        """Choose the gradients' diverging map and the error's sequential map by name
        (keys of :data:`~explorer.gui.heatmap_view.DIVERGING_MAPS` and ``SEQUENTIAL_MAPS``)."""
        if gradient in DIVERGING_MAPS:
            self.gradient_cmap = gradient
            for view in (self.analytic, self.numeric):
                view.set_colormap(DIVERGING_MAPS[gradient])
        if error in SEQUENTIAL_MAPS:
            self.error_cmap = error
            self.error.set_colormap(SEQUENTIAL_MAPS[error])

    def reset_view(self) -> None:
        """Show the whole grid on all three maps (they are linked)."""
        self.analytic.reset_view()

    def show_cell(self, cell: tuple[int, int]) -> None:
        """Pan the linked maps so ``cell`` is in view (the zoom stays)."""
        self.analytic.show_cell(cell)

    def set_crosshair(self, cell: tuple[int, int] | None) -> None:
        for view in self.views:
            view.set_crosshair(cell)

    def _on_view_cell_hovered(self, i: int, j: int) -> None:
        self.set_crosshair((i, j) if i >= 0 else None)
        self.cellHovered.emit(i, j)

    def _on_display_changed(self, change: DisplayChange) -> None:
        display = self.display
        assert display is not None
        if change.source and display.source is not self._source:
            self._source = display.source
            user = display.source is Source.USER
            self.analytic.set_title(display.gradient_title)
            self.numeric.set_title("Numeric gradient of your loss" if user else "Numeric gradient")
            self.reset_levels()
        if (change.report or change.source) and display.report is not None and display.report is not self._report:
            self.show_report(display.report)
        if change.cell or change.report or change.source:
            self.set_selected(display.cell)
        if change.cell and display.cell is not None:
            self.show_cell(display.cell)

    def set_outdated(self, outdated: bool) -> None:
        """Dim the three maps, saying so in their titles, while they show the previous grid."""
        for view in self.views:
            view.set_outdated(outdated)

    @property
    def views(self) -> tuple[HeatmapView, HeatmapView, HeatmapView]:
        return self.analytic, self.numeric, self.error

    @property
    def error_view(self) -> str:
        return str(self.view_combo.currentData())

    def set_error_view(self, key: str) -> None:
        index = self.view_combo.findData(key)
        if index >= 0:
            self.view_combo.setCurrentIndex(index)

    def reset_levels(self) -> None:
        """Forget the kept levels (new problem): the next report chooses fresh ones."""
        for v in self.views:
            v.levels = None

    def show_report(self, report: Report) -> None:
        """Draw a report: images with levels chosen on purpose.

        A grid with pyramids (over :data:`~explorer.app.jobs.OVERVIEW_THRESHOLD` cells) is drawn from the
        report's own arrays and region maps: nothing of the grid's size is formed here.
        """
        self._report = report
        pyramids = self._pyramids(report)
        big = bool(pyramids)
        ana = report.grad_analytic if big else report.grad_analytic.astype(np.float64)
        num = report.grad_numeric if big else report.grad_numeric.astype(np.float64)
        extent = digest(report).totals().extent
        kept = stable_levels(self.analytic.levels, -extent, extent)
        top = nice_ceil(extent) if extent > 0 else 1.0
        levels = kept if kept == self.analytic.levels else (-top, top)
        self.analytic.set_image(ana, levels, pyramids.get("analytic"))
        self.numeric.set_image(num, levels, pyramids.get("numeric"))
        self._draw_error()
        def nonfinite(r0: int, r1: int, c0: int, c1: int) -> NDArray:
            return affected_cells(report, slice(r0, r1), slice(c0, c1))[0]

        def vanished(r0: int, r1: int, c0: int, c1: int) -> NDArray:
            mask = affected_cells(report, slice(r0, r1), slice(c0, c1))[1]
            return mask if report.settings.perturb == "element" else np.zeros_like(mask)

        for view in self.views:
            view.set_marks(nonfinite, "x")
        self.error.set_marks(vanished, "o")
        self._align_bars()

    def _align_bars(self) -> None:
        """One colour-bar width for the three maps, so their plots are equally wide and the linked views
        show the same columns."""
        if self.display is None:
            return
        width = max(view.colorbar.needed_width for view in self.views)
        for view in self.views:
            view.colorbar.set_min_axis_width(width)

    def _draw_error(self) -> None:
        report = self._report
        if report is None:
            return
        view = self.error_view
        pyramids = self._pyramids(report)
        name = ERROR_MAPS[view]
        image: NDArray | RegionMap
        if pyramids:
            values = report.region_map(name)
            image = RegionMap(values.shape, lambda rows, cols: error_image_values(values[rows, cols], view))
        else:
            image = error_image(report, view)
        lo, hi = digest(report).totals().ranges[name]  # the finite values' range, formed with the report
        if view.startswith("log"):
            lo, hi = (_log_value(v) for v in (lo, hi))
            if math.isnan(lo):
                lo, hi = LOG_FLOOR, 0.0
            proposed = (float(math.floor(lo)), float(max(math.ceil(hi), math.floor(lo) + 1)))
        else:
            top = hi if math.isfinite(hi) and hi > 0 else 1.0
            proposed = (0.0, nice_ceil(top))
            lo = 0.0
        current = self.error.levels
        kept = stable_levels(current, lo, hi) if current is not None else None
        levels = kept if kept is not None and kept == current else proposed
        self.error.set_image(image, levels, pyramids.get("error"))
        self.error.set_bar_label(ERROR_VIEWS[view][1])

    def _pyramids(self, report: Report) -> dict[str, PyramidOverview]:
        """The maps' overviews from the pyramids the recomputer built with this report (in its worker), or
        none (the maps then build their own when a grid outgrows its pixels)."""
        overviews = getattr(self.display.recomputer, "overviews", None) if self.display is not None else self.overviews
        if overviews is None or getattr(overviews, "report", None) is not report:
            return {}
        view = self.error_view
        error = getattr(overviews, ERROR_MAPS[view])
        to_log = (lambda img: error_image_values(img, view)) if view.startswith("log") else None
        return {"analytic": PyramidOverview(report.grad_analytic, "magnitude", overviews.analytic),
                "numeric": PyramidOverview(report.grad_numeric, "magnitude", overviews.numeric),
                "error": PyramidOverview(error.base, "max", error, to_log)}  # fmt: skip

    def _on_view_combo_changed(self, _index: int) -> None:
        self.error.levels = None
        self._draw_error()
        self._align_bars()

    def set_selected(self, cell: tuple[int, int] | None) -> None:
        for v in self.views:
            v.set_selected(cell)
