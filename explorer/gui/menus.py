"""The window's actions and menus, built in one place (MainWindow only asks for them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QWidget

from explorer.gui.maps_panel import ERROR_VIEWS

if TYPE_CHECKING:
    from explorer.gui.mainwindow import MainWindow

__all__ = ["PLOTS", "build_menus", "make_action"]

#: Exportable plots: key -> menu text.
PLOTS: dict[str, str] = {
    "dashboard": "Dashboard (all plots)…",
    "analytic": "Analytic gradient…",
    "numeric": "Numeric gradient…",
    "error": "Error map…",
    "sweep": "Error versus eps…",
}

Shortcut = QKeySequence | QKeySequence.StandardKey | str | None


def make_action(parent: QWidget, text: str, slot: Callable[..., object], shortcut: Shortcut = None,
                tip: str = "") -> QAction:  # fmt: skip
    """A QAction with an optional shortcut and a status/tool tip, connected to ``slot``."""
    action = QAction(text, parent)
    if shortcut is not None:
        action.setShortcut(shortcut if isinstance(shortcut, QKeySequence) else QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    action.triggered.connect(slot)
    return action


def build_menus(w: MainWindow) -> None:
    """Create the window's actions (as attributes of ``w``) and its File, Edit, View and Help menus."""
    files = w.files
    stack = w.controller.stack
    w.undo_action = stack.createUndoAction(w, "&Undo")
    w.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
    w.redo_action = stack.createRedoAction(w, "&Redo")
    w.redo_action.setShortcuts([QKeySequence(QKeySequence.StandardKey.Redo), QKeySequence("Ctrl+Shift+Z")])
    w.copy_action = make_action(w, "&Copy", w.grid.copy, QKeySequence.StandardKey.Copy,
                                "Copy the selected logits as tab-separated text")  # fmt: skip
    w.paste_action = make_action(w, "&Paste", w.grid.paste, QKeySequence.StandardKey.Paste,
                                 "Paste a block of numbers at the selected cell")  # fmt: skip
    for a in (w.copy_action, w.paste_action):
        a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        w.grid.addAction(a)
    w.randomize_action = make_action(w, "&Randomize", w.controls.randomize, "Ctrl+R",
                                     "Fill the grid with random logits")  # fmt: skip
    w.quit_action = make_action(w, "&Quit", w.close, QKeySequence.StandardKey.Quit, "Quit Gradient Explorer")
    w.cancel_action = make_action(w, "Cancel computation", w.cancel_jobs, "Esc", "Stop the running computation")

    file_menu = w.menuBar().addMenu("&File")
    w.open_action = make_action(w, "&Open…", files.on_open, QKeySequence.StandardKey.Open,
                                "Open a session or a logits file (.npy, .npz, .csv, .tsv, .txt)")  # fmt: skip
    w.save_action = make_action(w, "&Save", files.on_save, QKeySequence.StandardKey.Save, "Save the session")
    w.save_as_action = make_action(w, "Save &As…", files.on_save_as, "Ctrl+Shift+S",
                                   "Save the session under a new name")  # fmt: skip
    file_menu.addAction(w.open_action)
    w.recent_menu = file_menu.addMenu("Open &Recent")
    files.bind_recent_menu(w.recent_menu)
    presets_menu = file_menu.addMenu("Load &preset")
    combo = w.controls.preset_combo
    for index in range(1, combo.count()):
        name = combo.itemData(index)
        presets_menu.addAction(make_action(w, combo.itemText(index), lambda _=False, n=name: w.controls.load_preset(n)))
    file_menu.addSeparator()
    file_menu.addAction(w.save_action)
    file_menu.addAction(w.save_as_action)
    file_menu.addSeparator()
    export_menu = file_menu.addMenu("&Export plot")
    for what, text in PLOTS.items():
        export = make_action(w, text, lambda _=False, k=what: files.export_plot_dialog(k), tip="PNG, SVG or PDF")
        export_menu.addAction(export)
    w.copy_plot_action = make_action(w, "Copy &dashboard", lambda: files.copy_plot("dashboard"), "Ctrl+Alt+C",
                                     "Copy all plots as one image (and SVG) to the clipboard")  # fmt: skip
    file_menu.addAction(w.copy_plot_action)
    w.export_data_action = make_action(w, "Export &data…", files.on_export_data, tip="CSV or NPZ of every array")
    file_menu.addAction(w.export_data_action)
    w.copy_code_action = make_action(w, "Copy as &code", files.on_copy_code, "Ctrl+Shift+C",
                                     "Copy a runnable NumPy script that reproduces this check")  # fmt: skip
    file_menu.addAction(w.copy_code_action)
    file_menu.addSeparator()
    file_menu.addAction(w.quit_action)
    plots = ((w.heatmaps.analytic, "analytic"), (w.heatmaps.numeric, "numeric"), (w.heatmaps.error, "error"),
             (w.sweep_panel.plot_widget, "sweep"))  # fmt: skip
    for view, what in plots:
        view.scene().contextMenu = []  # pyqtgraph's own export dialog is replaced by ours
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        view.addAction(make_action(w, "Export this plot…", lambda _=False, k=what: files.export_plot_dialog(k)))
        view.addAction(make_action(w, "Copy this plot", lambda _=False, k=what: files.copy_plot(k)))

    edit_menu = w.menuBar().addMenu("&Edit")
    for entry in (w.undo_action, w.redo_action, None, w.copy_action, w.paste_action, None, w.randomize_action,
                  w.cancel_action):  # fmt: skip
        if entry is None:
            edit_menu.addSeparator()
        else:
            edit_menu.addAction(entry)

    view_menu = w.menuBar().addMenu("&View")
    w.error_view_actions = {}
    for key, (text, _) in ERROR_VIEWS.items():
        act = make_action(w, f"Error map: {text}", lambda _=False, k=key: w.heatmaps.set_error_view(k))
        act.setCheckable(True)
        view_menu.addAction(act)
        w.error_view_actions[key] = act
    view_menu.addSeparator()
    for dock in w.docks:
        view_menu.addAction(dock.toggleViewAction())
    view_menu.addSeparator()
    view_menu.addAction(make_action(w, "Reset &layout", w.reset_layout, tip="Put the panels back where they started"))

    help_menu = w.menuBar().addMenu("&Help")
    help_menu.addAction(make_action(w, "&About Gradient Explorer", lambda: show_about(w)))
    help_menu.addAction(make_action(w, "About &Qt", QApplication.aboutQt))


def show_about(parent: QWidget) -> None:
    """The About box: what the app is for, and the versions it runs on."""
    import platform

    import numpy as np
    import pyqtgraph as pg
    from PySide6 import __version__ as pyside_version
    from PySide6.QtWidgets import QMessageBox

    from explorer import __version__

    QMessageBox.about(parent, "About Gradient Explorer", f"<h3>Gradient Explorer {__version__}</h3><p>Is my "
                      "gradient right, and why does my finite-difference check say something else?</p><p>Python "
                      f"{platform.python_version()}, NumPy {np.__version__}, PySide6 {pyside_version}, pyqtgraph "
                      f"{pg.__version__}</p>")  # fmt: skip
