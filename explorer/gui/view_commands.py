"""View commands of the window: go to the worst cell, reset the maps, the user guide, the theme."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from explorer.gui.mainwindow import MainWindow

__all__ = ["ViewCommands"]


class ViewCommands(QObject):
    """What the View and Help menus do, on one window."""

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.w = window
        self._guide: QWidget | None = None

    def go_to_worst_cell(self) -> None:
        """Select the cell with the largest error (failing first) and bring it into view everywhere."""
        w = self.w
        report = w.display.report
        if report is None or report.grad_analytic.ndim != 2:
            w.show_message("No result yet: nothing to go to")
            return
        cells = report.worst_cells(1)
        if not len(cells):
            return
        cell = (int(cells[0][0]), int(cells[0][1]))
        w.display.select(cell)
        w.grid.select_cell(*cell)
        w.heatmaps.show_cell(cell)
        values = w.display.values_at(cell)
        if values is not None:
            w.show_message(f"Worst cell: sample {cell[0]}, class {cell[1]}, |error| {values.abs_err:.3g}")

    def reset_map_view(self) -> None:
        """Show the whole grid on the three maps."""
        self.w.heatmaps.reset_view()

    def sync_actions(self) -> None:
        """Check the View menu's choices that are in force (after settings were restored)."""
        w = self.w
        for actions, current in ((w.gradient_cmap_actions, w.heatmaps.gradient_cmap),
                                 (w.error_cmap_actions, w.heatmaps.error_cmap),
                                 (w.precision_actions, str(w.grid.precision)),
                                 (w.theme_actions, w.themes.choice.value)):  # fmt: skip
            for key, act in actions.items():
                act.setChecked(key == current)

    def show_guide(self) -> None:
        """F1: the user guide, searchable, beside the window."""
        from explorer.gui.help_window import GuideWindow

        if self._guide is None:
            self._guide = GuideWindow(self.w)
        self._guide.show()
        if QGuiApplication.platformName() != "offscreen":  # (offscreen cannot raise windows, and says so)
            self._guide.raise_()
            self._guide.activateWindow()

    def set_theme(self, choice: str) -> None:
        """Follow the system's colour scheme (``"system"``) or force ``"light"`` or ``"dark"``."""
        w = self.w
        w.themes.set_choice(choice)
        for key, act in w.theme_actions.items():
            act.setChecked(key == w.themes.choice.value)
