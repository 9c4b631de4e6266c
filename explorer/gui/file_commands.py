"""File commands of the window: open, save, recent files, exports, Copy as code, the close question.

Dialogs live here (never in models); the work is the document's and the exporters'.
Everything exported reads the display model, so a file shows what the screen shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu, QMessageBox

from explorer.app.document import SESSION_SUFFIX
from explorer.files.io import FileFormatError

if TYPE_CHECKING:
    from explorer.gui.mainwindow import MainWindow

__all__ = ["FileCommands"]

OPEN_FILTER = f"Sessions and logits (*{SESSION_SUFFIX} *.json *.npy *.npz *.csv *.tsv *.txt);;All files (*)"


class FileCommands(QObject):
    """Open, save and export for one window."""

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.window = window
        self.document = window.document
        self._recent_menu: QMenu | None = None
        self.document.changed.connect(self._rebuild_recent_menu)

    # ------------------------------------------------------------------ open
    def open_path(self, path: str) -> bool:
        """Open a session or a logits file; a refused file shows one message and changes nothing."""
        try:
            what = self.document.open_any(path)
        except (FileFormatError, OSError) as exc:
            self.window.show_error("Cannot open file", str(exc))
            return False
        self.window.heatmaps.reset_levels()
        self.window.show_message(f"Opened {what} from {path}")
        return True

    def on_open(self) -> None:
        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(self.window, "Open", "", OPEN_FILTER)
        if path:
            self.open_path(path)

    def bind_recent_menu(self, menu: QMenu) -> None:
        """Fill ``menu`` with the recent files each time it opens (and now)."""
        self._recent_menu = menu
        menu.aboutToShow.connect(self._rebuild_recent_menu)
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        from explorer.gui.menus import make_action

        menu = self._recent_menu
        if menu is None or not shiboken6.isValid(menu):  # the window is being torn down
            return
        menu.clear()
        recent = self.document.recent()
        for path in recent:
            menu.addAction(make_action(self.window, path, lambda _=False, p=path: self._on_open_recent(p)))
        if not recent:
            menu.addAction("(none)").setEnabled(False)

    def _on_open_recent(self, path: str) -> None:
        if self.maybe_save() and not self.open_path(path):
            self.document.forget(path)

    # ------------------------------------------------------------------ save
    def save_to(self, path: str) -> bool:
        try:
            saved = self.document.save(path)
        except OSError as exc:
            self.window.show_error("Cannot save", f"{path}: {exc.strerror or exc}")
            return False
        self.window.show_message(f"Saved {saved}")
        return True

    def on_save(self) -> bool:
        if self.document.path is None:
            return self.on_save_as()
        return self.save_to(str(self.document.path))

    def on_save_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save session", f"session{SESSION_SUFFIX}",
                                              f"Sessions (*{SESSION_SUFFIX} *.json)")  # fmt: skip
        return bool(path) and self.save_to(path)

    def maybe_save(self) -> bool:
        """Ask before unsaved changes are lost; True when it is fine to go on."""
        if not self.document.modified:
            return True
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(self.window, "Unsaved changes", f"Save the changes to {self.document.title}?",
                                      buttons.Save | buttons.Discard | buttons.Cancel)  # fmt: skip
        if answer == buttons.Save:
            return self.on_save()
        return answer == buttons.Discard

    # ---------------------------------------------------------------- export
    def export_plot(self, what: str, path: str, width: int | None = None, dpi: float | None = None) -> bool:
        """Export a plot of what the display shows (PNG, SVG or PDF by suffix), with the screen's levels and marks."""
        from explorer.gui.plot_export import DEFAULT_DPI, export_figure

        display = self.window.display
        report = display.report
        if report is None:
            return False
        try:
            export_figure(path, report, what, width=width, dpi=dpi or DEFAULT_DPI, sweep=display.sweep,
                          screen=self.window.heatmaps)  # fmt: skip
        except (ValueError, OSError) as exc:
            self.window.show_error("Cannot export", str(exc))
            return False
        self.window.show_message(f"Exported {what} to {path}")
        return True

    def export_plot_dialog(self, what: str) -> None:
        """Ask for a file, a format, a width and a DPI, then export."""
        from explorer.gui.export_dialog import ask_export

        request = ask_export(what, self.window)
        if request is not None:
            self.export_plot(what, str(request.path), request.width, request.dpi)

    def copy_plot(self, what: str) -> None:
        """Put a plot (or the dashboard) on the clipboard as an image and as SVG."""
        from explorer.gui.plot_export import copy_figure

        display = self.window.display
        if display.report is None:
            return
        copy_figure(display.report, what, sweep=display.sweep, screen=self.window.heatmaps)
        self.window.show_message(f"Copied the {what} plot (image and SVG) to the clipboard")

    def export_data(self, path: str) -> bool:
        report = self.window.display.report
        if report is None:
            return False
        try:
            self.document.export_data(path, report)
        except (ValueError, OSError) as exc:
            self.window.show_error("Cannot export", str(exc))
            return False
        self.window.show_message(f"Exported data to {path}")
        return True

    def on_export_data(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Export data", "gradients.csv",
                                              "CSV (*.csv);;NumPy (*.npz)")  # fmt: skip
        if path:
            self.export_data(path)

    def on_copy_code(self) -> None:
        QApplication.clipboard().setText(self.document.code())
        self.window.show_message("Copied a NumPy script that reproduces this check")
