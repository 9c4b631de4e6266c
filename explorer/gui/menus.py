"""The window's actions and menus, built in one place (MainWindow only asks for them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QApplication, QMenu, QWidget

from explorer.gui.heatmap_view import DIVERGING_MAPS, SEQUENTIAL_MAPS
from explorer.gui.maps_panel import ERROR_VIEWS

if TYPE_CHECKING:
    from explorer.gui.mainwindow import MainWindow

__all__ = ["PLOTS", "PRECISIONS", "SHORTCUTS", "THEMES", "build_menus", "make_action"]

#: Exportable plots: key -> menu text.
PLOTS: dict[str, str] = {
    "dashboard": "Dashboard (all plots)…",
    "analytic": "Analytic gradient…",
    "numeric": "Numeric gradient…",
    "error": "Error map…",
    "sweep": "Error versus eps…",
}

#: View > Theme: scheme key -> menu text.
THEMES: dict[str, str] = {"system": "Follow the &system", "light": "&Light", "dark": "&Dark"}
#: View > Grid precision: significant digits offered.
PRECISIONS = (3, 4, 6, 8, 10, 17)
#: The window's shortcuts, as the user guide and the README list them: keys -> what they do.
SHORTCUTS: dict[str, str] = {
    "F1": "Open the user guide",
    "Ctrl+O / Ctrl+S / Ctrl+Shift+S": "Open, save, save as",
    "Ctrl+Z / Ctrl+Shift+Z": "Undo, redo",
    "Ctrl+C / Ctrl+V": "Copy, paste a block of logits (in the grid)",
    "Ctrl+R": "Random logits",
    "Ctrl+G": "Go to the worst cell (grid, maps, sweep)",
    "Ctrl+0": "Reset the maps' view (whole grid)",
    "Ctrl+Alt+C": "Copy the dashboard as an image",
    "Ctrl+Shift+C": "Copy the check as NumPy code",
    "Ctrl+Return": "Check my code (Your code panel)",
    "Esc": "Cancel the running computation",
    "Mouse wheel / drag on a map": "Zoom / pan all three maps together",
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


def redo_shortcuts() -> list[QKeySequence]:
    """The platform's redo keys plus Ctrl+Shift+Z and Ctrl+Y, each once (a key bound twice is ambiguous to Qt,
    which then runs neither: on X11 the platform's redo already is Ctrl+Shift+Z)."""
    keys: list[QKeySequence] = []
    for key in [*QKeySequence.keyBindings(QKeySequence.StandardKey.Redo), QKeySequence("Ctrl+Shift+Z"),
                QKeySequence("Ctrl+Y")]:  # fmt: skip
        if not key.isEmpty() and all(key != k for k in keys):
            keys.append(key)
    return keys


def build_menus(w: MainWindow) -> None:
    """Create the window's actions (as attributes of ``w``) and its File, Edit, View and Help menus."""
    files = w.files
    stack = w.controller.stack
    w.undo_action = stack.createUndoAction(w, "&Undo")
    w.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
    w.redo_action = stack.createRedoAction(w, "&Redo")
    w.redo_action.setShortcuts(redo_shortcuts())
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
    w.reset_view_action = make_action(w, "&Reset map view", w.views.reset_map_view, "Ctrl+0",
                                      "Show the whole grid on the three maps")  # fmt: skip
    w.worst_cell_action = make_action(w, "Go to &worst cell", w.views.go_to_worst_cell, "Ctrl+G",
                                      "Select the cell with the largest error and bring it into view")  # fmt: skip
    view_menu.addAction(w.reset_view_action)
    view_menu.addAction(w.worst_cell_action)
    view_menu.addSeparator()
    w.error_view_actions = {}
    for key, (text, _) in ERROR_VIEWS.items():
        act = make_action(w, f"Error map: {text}", lambda _=False, k=key: w.heatmaps.set_error_view(k))
        act.setCheckable(True)
        view_menu.addAction(act)
        w.error_view_actions[key] = act
    w.gradient_cmap_actions = _choice_menu(view_menu.addMenu("&Gradient colours"), list(DIVERGING_MAPS),
                                           w.heatmaps.gradient_cmap,
                                           lambda name: w.heatmaps.set_colormaps(gradient=name))  # fmt: skip
    w.error_cmap_actions = _choice_menu(view_menu.addMenu("&Error colours"), list(SEQUENTIAL_MAPS),
                                        w.heatmaps.error_cmap,
                                        lambda name: w.heatmaps.set_colormaps(error=name))  # fmt: skip
    w.precision_actions = _choice_menu(view_menu.addMenu("Grid &precision"), [str(d) for d in PRECISIONS],
                                       str(w.grid.precision), lambda d: w.grid.set_precision(int(d)),
                                       {str(d): f"{d} significant digits" for d in PRECISIONS})  # fmt: skip
    theme_menu = view_menu.addMenu("&Theme")
    w.theme_actions = _choice_menu(theme_menu, list(THEMES), w.themes.choice.value, w.views.set_theme, THEMES)
    view_menu.addSeparator()
    for dock in w.docks:
        view_menu.addAction(dock.toggleViewAction())
    view_menu.addSeparator()
    view_menu.addAction(make_action(w, "Reset &layout", w.reset_layout, tip="Put the panels back where they started"))

    help_menu = w.menuBar().addMenu("&Help")
    w.guide_action = make_action(w, "&User guide", w.views.show_guide, QKeySequence.StandardKey.HelpContents,
                                 "What each panel shows and how to read it")  # fmt: skip
    if w.guide_action.shortcut().isEmpty():
        w.guide_action.setShortcut(QKeySequence("F1"))
    help_menu.addAction(w.guide_action)
    help_menu.addSeparator()
    help_menu.addAction(make_action(w, "&About Gradient Explorer", lambda: show_about(w)))
    help_menu.addAction(make_action(w, "About &Qt", QApplication.aboutQt))


def _choice_menu(menu: QMenu, keys: list[str], current: str, choose: Callable[[str], object],
                 texts: dict[str, str] | None = None) -> dict[str, QAction]:  # fmt: skip
    """Exclusive, checkable actions in ``menu``, one per key; the chosen key is passed to ``choose``."""
    group = QActionGroup(menu)
    group.setExclusive(True)
    actions = {}
    for key in keys:
        act = QAction((texts or {}).get(key, key), menu)
        act.setCheckable(True)
        act.setChecked(key == current)
        act.triggered.connect(lambda _=False, k=key: choose(k))
        group.addAction(act)
        menu.addAction(act)
        actions[key] = act
    return actions


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
