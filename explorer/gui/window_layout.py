"""The window's layout: the grid and maps in the middle, panels in docks that scroll on small screens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QSplitter, QWidget

if TYPE_CHECKING:
    from explorer.gui.mainwindow import MainWindow

__all__ = ["LEFT_SHARE", "MIN_SIDE_PANEL_WIDTH", "RIGHT_SHARE", "Docks", "build_layout", "share_width"]

#: Narrowest the side panels may get (px): small screens (1024 x 600, or 960 x 540 at 200 %) still fit.
MIN_SIDE_PANEL_WIDTH = 220
#: Shares of the window's width the Controls and the right-hand docks start with.
LEFT_SHARE, RIGHT_SHARE = 0.26, 0.3


@dataclass(frozen=True)
class Docks:
    controls: QDockWidget
    user: QDockWidget
    sweep: QDockWidget
    summary: QDockWidget
    inspector: QDockWidget
    worst: QDockWidget

    @property
    def all(self) -> tuple[QDockWidget, ...]:
        return (self.controls, self.user, self.sweep, self.summary, self.inspector, self.worst)


def _scrolled(widget: QWidget) -> QScrollArea:
    """Panels taller or wider than a small screen scroll inside their dock instead of pushing the window."""
    area = QScrollArea()
    area.setObjectName(f"{widget.objectName() or 'panel'}Scroll")
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    return area


def _dock(w: QMainWindow, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
    dock = QDockWidget(title, w)
    dock.setObjectName(name)
    dock.setWidget(widget)
    w.addDockWidget(area, dock)
    return dock


def build_layout(w: MainWindow) -> Docks:
    """Put the window's widgets in place; returns the docks."""
    splitter = QSplitter(Qt.Orientation.Vertical, objectName="centralSplitter")
    splitter.addWidget(w.grid)
    splitter.addWidget(w.heatmaps)
    splitter.setStretchFactor(0, 1)
    splitter.setStretchFactor(1, 3)
    splitter.setSizes([190, 560])
    w.central_splitter = splitter
    w.setCentralWidget(splitter)
    left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
    docks = Docks(
        _dock(w, "Controls", "controlsDock", _scrolled(w.controls), left),
        _dock(w, "Your code", "userCodeDock", _scrolled(w.user_panel), left),
        _dock(w, "Error vs eps", "sweepDock", w.sweep_panel, right),
        _dock(w, "Summary", "summaryDock", w.summary, right),
        _dock(w, "Cell inspector", "inspectorDock", w.inspector, right),
        _dock(w, "Worst cells", "worstCellsDock", w.worst_cells, right),
    )
    w.tabifyDockWidget(docks.controls, docks.user)
    docks.controls.raise_()
    w.tabifyDockWidget(docks.summary, docks.inspector)
    w.tabifyDockWidget(docks.inspector, docks.worst)
    docks.summary.raise_()
    for dock in docks.all:
        dock.setMinimumWidth(MIN_SIDE_PANEL_WIDTH)
    w.setDockOptions(w.dockOptions() | QMainWindow.DockOption.AllowTabbedDocks)
    return docks


def share_width(w: MainWindow) -> None:
    """Side panels get a fair share of the width (the maps keep the largest part)."""
    width = w.width()
    left = max(MIN_SIDE_PANEL_WIDTH, min(w.controls.sizeHint().width() + 20, round(width * LEFT_SHARE)))
    # Room for the controls' narrowest layout (labels above fields) when it fits in 30 % of the width.
    left = max(left, min(w.controls.minimumSizeHint().width() + 24, round(width * 0.3)))
    right = max(MIN_SIDE_PANEL_WIDTH, round(width * RIGHT_SHARE))
    docks = w.layout_docks
    w.resizeDocks([docks.controls, docks.sweep], [left, right], Qt.Orientation.Horizontal)
