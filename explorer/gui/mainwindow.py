"""MainWindow: builds, lays out and connects. It computes nothing."""

from __future__ import annotations

import html
import os
import platform

import numpy as np
import pyqtgraph as pg
from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QCursor, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QToolTip,
    QWidget,
)

from explorer import __version__
from explorer.app.document import SESSION_SUFFIX, Document
from explorer.app.edits import EditController
from explorer.app.jobs import Recomputer, SweepComputer, UserCodeJob
from explorer.app.report_text import cell_tooltip, explanation_html, summary_html
from explorer.app.state import Change, ExplorerState
from explorer.core import Report
from explorer.core.explain import CellExplanation
from explorer.core.sweep import SweepResult
from explorer.files.io import FileFormatError
from explorer.files.presets import get_preset
from explorer.files.resources import resource_path
from explorer.gui.controls_panel import ControlsPanel
from explorer.gui.grid_panel import GridPanel
from explorer.gui.maps_panel import ERROR_VIEWS, HeatmapPanel
from explorer.gui.safety import Autosaver
from explorer.gui.sweep_panel import SweepPanel
from explorer.gui.your_code_panel import UserCodePanel
from explorer.usercode.runner import UserCheck

__all__ = ["SETTINGS_VERSION", "MainWindow", "app_settings"]

ORGANIZATION = "GradientExplorer"
APPLICATION = "Gradient Explorer"
#: Bump when the saved window state's layout changes incompatibly.
SETTINGS_VERSION = 1
STATUS_TIMEOUT_MS = 8000
MIN_SIDE_PANEL_WIDTH = 250
#: Check settings remembered between runs.
_REMEMBERED = ("eps", "scheme", "dtype", "reduction", "label_smoothing", "ignore_index")


def app_settings() -> QSettings:
    """The app's QSettings; ``GRADIENT_EXPLORER_SETTINGS`` (a file path) overrides the location (tests)."""
    path = os.environ.get("GRADIENT_EXPLORER_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, "explorer")


class MainWindow(QMainWindow):
    """The explorer window. ``MainWindow()`` opens the origin question's problem, already computed."""

    def __init__(self, parent: QWidget | None = None, restore_settings: bool = True):
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle(APPLICATION)
        self.setWindowIcon(QIcon(str(resource_path("icon.svg"))))
        origin = get_preset("origin")
        self.state = ExplorerState(origin.logits, origin.labels, self)
        self.controller = EditController(self.state, self)
        self.recomputer = Recomputer(self.state, self)
        self.sweeper = SweepComputer(self.state, self)
        self.document = Document(self.controller, app_settings(), self)
        self.autosaver = Autosaver(self.state, parent=self)
        self.user_job = UserCodeJob(self)
        self.showing_user = False
        self.user_result_report: Report | None = None
        self.user_sweep_result: SweepResult | None = None
        self.report: Report | None = None
        with self.state.batch():
            self.state.set_settings(**origin.settings)

        self.grid = GridPanel(self.controller)
        self.heatmaps = HeatmapPanel()
        self.controls = ControlsPanel(self.controller)
        self.summary = QTextBrowser(objectName="summaryView")
        self.summary.setToolTip("Loss, largest errors, worst cell and the verdict")
        self.inspector = QTextBrowser(objectName="cellInspector")
        self.inspector.setToolTip("What the finite difference evaluated for the selected cell")
        self.inspector.setHtml("<p>Select a cell in the grid or click a heatmap.</p>")
        self.sweep_panel = SweepPanel(self.state)
        self.user_panel = UserCodePanel()
        for panel in (self.summary, self.inspector):
            panel.setMinimumWidth(MIN_SIDE_PANEL_WIDTH)

        splitter = QSplitter(Qt.Orientation.Vertical, objectName="centralSplitter")
        splitter.addWidget(self.grid)
        splitter.addWidget(self.heatmaps)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([190, 560])
        self.central_splitter = splitter
        self.setCentralWidget(splitter)
        self._controls_dock = self._dock(
            "Controls", "controlsDock", self.controls, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self._user_dock = self._dock("Your code", "userCodeDock", self.user_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tabifyDockWidget(self._controls_dock, self._user_dock)
        self._controls_dock.raise_()
        self._sweep_dock = self._dock(
            "Error vs eps", "sweepDock", self.sweep_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self._summary_dock = self._dock("Summary", "summaryDock", self.summary, Qt.DockWidgetArea.RightDockWidgetArea)
        self._inspector_dock = self._dock(
            "Cell inspector", "inspectorDock", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.tabifyDockWidget(self._summary_dock, self._inspector_dock)
        self._summary_dock.raise_()

        self._build_status_bar()
        self._build_actions()
        self._connect()
        self.resize(1280, 800)
        if restore_settings:
            self._restore_settings()
        self.controller.stack.clear()
        self._offer_restore()
        self.autosaver.start()
        self.setAcceptDrops(True)
        self._update_title()
        self.recomputer.schedule()
        self.sweeper.schedule()

    @property
    def _docks(self) -> tuple[QDockWidget, ...]:
        return (self._controls_dock, self._user_dock, self._sweep_dock, self._summary_dock, self._inspector_dock)

    # ----------------------------------------------------------------- build
    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self, objectName=name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.progress = QProgressBar(objectName="progressBar", maximumWidth=160)
        self.progress.setRange(0, 100)
        self.progress.setToolTip("Progress of the computation running in the background")
        self.cancel_button = QPushButton("Cancel", objectName="cancelButton")
        self.cancel_button.setToolTip("Stop the running computation (Esc)")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.timing_label = QLabel(objectName="timingLabel")
        self.timing_label.setToolTip("Time of the last computation")
        for w in (self.progress, self.cancel_button):
            w.setVisible(False)
            bar.addPermanentWidget(w)
        bar.addPermanentWidget(self.timing_label)

    def _action(self, text: str, slot: object, shortcut: QKeySequence | str | None = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        stack = self.controller.stack
        self.undo_action = stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence.StandardKey.Redo, QKeySequence("Ctrl+Shift+Z")])
        self.copy_action = self._action(
            "&Copy", self.grid.copy, QKeySequence.StandardKey.Copy, "Copy the selected logits as tab-separated text"
        )
        self.paste_action = self._action(
            "&Paste", self.grid.paste, QKeySequence.StandardKey.Paste, "Paste a block of numbers at the selected cell"
        )
        for a in (self.copy_action, self.paste_action):
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.grid.addAction(a)
        self.randomize_action = self._action(
            "&Randomize", self.controls.randomize, "Ctrl+R", "Fill the grid with random logits"
        )
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit, "Quit Gradient Explorer")
        self.cancel_action = self._action(
            "Cancel computation", self._on_cancel_clicked, "Esc", "Stop the running computation"
        )

        file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._action("&Open…", self._on_open, QKeySequence.StandardKey.Open,
                                        "Open a session or a logits file (.npy, .npz, .csv, .tsv, .txt)")  # fmt: skip
        self.save_action = self._action("&Save", self._on_save, QKeySequence.StandardKey.Save, "Save the session")
        self.save_as_action = self._action("Save &As…", self._on_save_as, QKeySequence("Ctrl+Shift+S"),
                                           "Save the session under a new name")  # fmt: skip
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        presets_menu = file_menu.addMenu("Load &preset")
        for index in range(1, self.controls.preset_combo.count()):
            name = self.controls.preset_combo.itemData(index)
            act = self._action(
                self.controls.preset_combo.itemText(index), lambda _=False, n=name: self.controls.load_preset(n)
            )
            presets_menu.addAction(act)
        file_menu.addSeparator()
        file_menu.addAction(self.save_action)
        file_menu.addAction(self.save_as_action)
        file_menu.addSeparator()
        export_menu = file_menu.addMenu("&Export plot")
        plots = {"dashboard": "Dashboard (all plots)…", "analytic": "Analytic gradient…",
                 "numeric": "Numeric gradient…", "error": "Error map…", "sweep": "Error versus eps…"}  # fmt: skip
        for what, text in plots.items():
            export_menu.addAction(self._action(text, lambda _=False, w=what: self.export_plot_dialog(w),
                                               tip="PNG, SVG or PDF"))  # fmt: skip
        self.export_data_action = self._action("Export &data…", self._on_export_data, tip="CSV or NPZ of every array")
        file_menu.addAction(self.export_data_action)
        self.copy_code_action = self._action("Copy as &code", self._on_copy_code, QKeySequence("Ctrl+Shift+C"),
                                             "Copy a runnable NumPy script that reproduces this check")  # fmt: skip
        file_menu.addAction(self.copy_code_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        self._rebuild_recent_menu()
        for view, what in ((self.heatmaps.analytic, "analytic"), (self.heatmaps.numeric, "numeric"),
                           (self.heatmaps.error, "error"), (self.sweep_panel.plot_widget, "sweep")):  # fmt: skip
            view.scene().contextMenu = []  # pyqtgraph's own export dialog is replaced by ours
            act = self._action("Export this plot…", lambda _=False, w=what: self.export_plot_dialog(w))
            view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
            view.addAction(act)

        edit_menu = self.menuBar().addMenu("&Edit")
        for a in (self.undo_action, self.redo_action):
            edit_menu.addAction(a)
        edit_menu.addSeparator()
        edit_menu.addAction(self.copy_action)
        edit_menu.addAction(self.paste_action)
        edit_menu.addSeparator()
        edit_menu.addAction(self.randomize_action)
        edit_menu.addAction(self.cancel_action)

        view_menu = self.menuBar().addMenu("&View")
        self.error_view_actions: dict[str, QAction] = {}
        for key, (text, _) in ERROR_VIEWS.items():
            act = self._action(f"Error map: {text}", lambda _=False, k=key: self.heatmaps.set_error_view(k))
            act.setCheckable(True)
            view_menu.addAction(act)
            self.error_view_actions[key] = act
        view_menu.addSeparator()
        for dock in self._docks:
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        view_menu.addAction(
            self._action("Reset &layout", self._reset_layout, tip="Put the panels back where they started")
        )

        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(
            self._action("&About Gradient Explorer", self._show_about, QKeySequence.StandardKey.HelpContents)
        )
        help_menu.addAction(self._action("About &Qt", QApplication.aboutQt))
        self._default_state = self.saveState(SETTINGS_VERSION)

    def _connect(self) -> None:
        self.recomputer.reportReady.connect(self._on_recomputer_report_ready)
        self.recomputer.cellExplained.connect(self._on_recomputer_cell_explained)
        self.recomputer.busyChanged.connect(self._on_job_busy_changed)
        self.recomputer.progressChanged.connect(self.progress.setValue)
        self.recomputer.failed.connect(self._on_job_failed)
        self.sweeper.sweepReady.connect(self._on_sweeper_sweep_ready)
        self.sweeper.busyChanged.connect(self._on_job_busy_changed)
        self.sweeper.progressChanged.connect(self.progress.setValue)
        self.sweeper.failed.connect(self._on_job_failed)
        self.sweep_panel.epsPicked.connect(self._on_sweep_panel_eps_picked)
        self.user_panel.runRequested.connect(self._on_user_panel_run_requested)
        self.user_panel.showBuiltinRequested.connect(self._show_builtin)
        self.user_job.finished.connect(self._on_user_job_finished)
        self.sweep_panel.modeChanged.connect(lambda mode: self.sweeper.configure(mode=mode))
        self.sweep_panel.overlayChanged.connect(lambda on: self.sweeper.configure(overlay=on))
        self.grid.message.connect(self.show_message)
        self.controls.message.connect(self.show_message)
        self.grid.currentCellChanged.connect(self._on_grid_current_cell_changed)
        self.heatmaps.cellClicked.connect(self._on_heatmap_cell_clicked)
        self.heatmaps.cellHovered.connect(self._on_heatmap_cell_hovered)
        self.heatmaps.view_combo.currentIndexChanged.connect(self._on_error_view_changed)
        self.state.changed.connect(self._on_state_changed)
        self.document.changed.connect(self._update_title)
        self.document.changed.connect(self._rebuild_recent_menu)
        self._on_error_view_changed()

    # ----------------------------------------------------------------- slots
    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, STATUS_TIMEOUT_MS)

    def _on_state_changed(self, change: Change) -> None:
        if change.shape:
            self.heatmaps.reset_levels()
        self._update_title()

    def _on_recomputer_report_ready(self, report: Report) -> None:
        self.report = report
        if self.showing_user:
            self.showing_user = False
            if self.sweeper.result is not None:
                self.sweep_panel.show_result(self.sweeper.result)
            self.user_panel.output.append("<p><i>The problem changed: the maps show the built-in check again. "
                                          "Check your code again to compare on the new logits.</i></p>")  # fmt: skip
        self.heatmaps.show_report(report)
        self.summary.setHtml(summary_html(report, self.recomputer.last_duration))
        self.timing_label.setText(f"{self.recomputer.last_duration * 1e3:.1f} ms")
        cell = self.grid.current_cell()
        self.heatmaps.set_selected(cell)
        if cell is None and self.sweeper.cell is None and report.worst:
            self.sweeper.configure(cell=(int(report.worst[0]), int(report.worst[1])))

    def _on_recomputer_cell_explained(self, explanation: CellExplanation | None) -> None:
        if explanation is None:
            self.inspector.setHtml("<p>Select a cell in the grid or click a heatmap.</p>")
        else:
            self.inspector.setHtml(explanation_html(explanation))

    # ------------------------------------------------------------ your code
    def _on_user_panel_run_requested(self, code: object, timeout_s: float) -> None:
        logits, labels, settings = self.state.snapshot()
        self.user_panel.set_running(True)
        self.user_panel.show_text(f"<p>Running your code (stopped after {timeout_s:g} s)…</p>")
        self.show_message("Running your code in a separate process…")
        cell = self.grid.current_cell() or (tuple(int(v) for v in self.report.worst) if self.report else (0, 0))
        self.user_job.start(code, logits, labels, settings, timeout_s, cell)

    def _on_user_job_finished(self, checked: UserCheck | None, error: object) -> None:
        self.user_panel.set_running(False)
        if error is not None or checked is None:
            details = getattr(error, "details", "")
            pre = f"<pre>{html.escape(details)}</pre>" if details else ""
            self.user_panel.show_text(f"<p style='color:#c62828'><b>{html.escape(str(error))}</b></p>{pre}"
                                      "<p>Your edits in the grid are untouched.</p>")  # fmt: skip
            self.show_message(f"Your code: {error}")
            return
        report, result, code = checked.report, checked.result, checked.code
        self.user_result_report = report
        self.user_sweep_result = checked.sweep
        if checked.sweep is not None:
            self.sweep_panel.show_result(checked.sweep)
        self.showing_user = True
        self.heatmaps.reset_levels()
        self.heatmaps.show_report(report)
        cmp = report.comparison
        verdict = (
            "<b style='color:#1a7f37'>PASS</b>"
            if cmp.ok
            else f"<b style='color:#c62828'>FAIL</b> ({cmp.n_failed} elements)"
        )
        extra = ""
        if checked.builtin_difference is not None:
            extra = (f"<br>max |your grad − built-in gradient ({report.settings.reduction})| = "
                     f"{checked.builtin_difference:.3g}")  # fmt: skip
        self.user_panel.show_text(
            f"<p>{verdict}: finite differences of <code>{html.escape(code.loss_name)}</code> vs "
            f"<code>{html.escape(code.grad_name)}</code>; max |num − yours| = {cmp.max_abs_err:.3g}, worst cell "
            f"{cmp.worst}.<br>Labels passed as {result.labels_shape}; ran in {result.duration_s:.2f} s.<br>"
            f"Whole-matrix quotient (L(x + eps) − L(x)) / eps = {result.whole_matrix_quotient:.3g} "
            f"(about 0: shift invariance){extra}</p><p>The maps show <b>your</b> gradient as “analytic”.</p>"
        )
        self.summary.setHtml("<p><b>Your code</b></p>" + summary_html(report))
        self.show_message("Your code checked: " + ("PASS" if cmp.ok else "FAIL"))

    @property
    def displayed_report(self) -> Report | None:
        """What the maps show: the user's results after "Check my code", else the built-in check."""
        return self.user_result_report if self.showing_user else self.report

    def _show_builtin(self) -> None:
        if self.sweeper.result is not None:
            self.sweep_panel.show_result(self.sweeper.result)
        if self.report is not None:
            self.showing_user = False
            self.heatmaps.reset_levels()
            self.heatmaps.show_report(self.report)
            self.summary.setHtml(summary_html(self.report, self.recomputer.last_duration))

    def _on_sweeper_sweep_ready(self, result: SweepResult) -> None:
        self.sweep_panel.show_result(result)

    def _on_sweep_panel_eps_picked(self, eps: float) -> None:
        try:
            self.controller.set_settings(text="Pick eps on the sweep", eps=eps)
        except ValueError as exc:
            self.show_message(f"eps unchanged: {exc}")
            return
        self.show_message(f"eps = {eps:g} (picked on the error-versus-eps plot)")

    def _on_job_busy_changed(self, _busy: bool) -> None:
        busy = self.recomputer.busy or self.sweeper.busy
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setValue(0)
            self.statusBar().showMessage("Computing in the background…")
        else:
            self.statusBar().clearMessage()

    def _on_job_failed(self, message: str) -> None:
        self.show_message(f"Computation failed: {message}")

    def _on_cancel_clicked(self) -> None:
        if self.recomputer.busy or self.sweeper.busy:
            self.recomputer.cancel()
            self.sweeper.cancel()
            self.show_message("Computation cancelled; the maps show the previous result")

    def _on_grid_current_cell_changed(self, i: int, j: int) -> None:
        self.heatmaps.set_selected((i, j))
        self.recomputer.set_cell((i, j))
        self.sweeper.configure(cell=(i, j))

    def _on_heatmap_cell_clicked(self, i: int, j: int) -> None:
        self.grid.select_cell(i, j)

    def _on_heatmap_cell_hovered(self, i: int, j: int) -> None:
        report = self.report
        if report is None or i < 0 or i >= report.grad_analytic.shape[0] or j >= report.grad_analytic.shape[1]:
            QToolTip.hideText()
            return
        text = cell_tooltip(report, i, j)
        self.statusBar().showMessage(text.replace("\n", "   "), STATUS_TIMEOUT_MS)
        QToolTip.showText(QCursor.pos(), text)

    def _on_error_view_changed(self, _index: int = 0) -> None:
        key = self.heatmaps.error_view
        for k, act in self.error_view_actions.items():
            act.setChecked(k == key)

    def _update_title(self) -> None:
        n, c = self.state.shape
        self.setWindowTitle(f"{self.document.title}[*] — {APPLICATION} — {n} × {c}")
        self.setWindowModified(self.document.modified)

    # ------------------------------------------------------------------ files
    def _offer_restore(self) -> None:
        """After an abnormal exit, offer the autosaved session."""
        leftover = self.autosaver.leftover()
        if leftover is None:
            return
        answer = QMessageBox.question(
            self, "Restore unsaved work?",
            "Gradient Explorer did not exit normally last time. Restore the work it autosaved?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )  # fmt: skip
        if answer != QMessageBox.StandardButton.Yes:
            self.autosaver.discard()
            return

        def apply(session: object) -> None:
            s = session.settings  # type: ignore[attr-defined]
            fields = {k: getattr(s, k) for k in s.__dataclass_fields__}
            self.controller.replace(session.logits, session.labels, text="Restore autosave", **fields)  # type: ignore[attr-defined]

        if self.autosaver.restore(apply):
            self.show_message("Restored the autosaved session (unsaved: save it to keep it)")
        else:
            self.show_message("The autosaved session was damaged and was not restored")

    def show_error(self, title: str, text: str) -> None:
        """A refused file or export: one clear message; nothing else changes."""
        self.show_message(text)
        QMessageBox.warning(self, title, text)

    def open_path(self, path: str) -> bool:
        try:
            what = self.document.open_any(path)
        except (FileFormatError, OSError) as exc:
            self.show_error("Cannot open file", str(exc))
            return False
        self.heatmaps.reset_levels()
        self.show_message(f"Opened {what} from {path}")
        return True

    def _on_open(self) -> None:
        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open",
            "",
            f"Sessions and logits (*{SESSION_SUFFIX} *.json *.npy *.npz *.csv *.tsv *.txt);;All files (*)",
        )
        if path:
            self.open_path(path)

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.document.recent()
        for path in recent:
            self.recent_menu.addAction(self._action(path, lambda _=False, p=path: self._on_open_recent(p)))
        self.recent_menu.setEnabled(bool(recent))

    def _on_open_recent(self, path: str) -> None:
        if self.maybe_save() and not self.open_path(path):
            self.document.forget(path)

    def save_to(self, path: str) -> bool:
        try:
            saved = self.document.save(path)
        except OSError as exc:
            self.show_error("Cannot save", f"{path}: {exc.strerror or exc}")
            return False
        self.show_message(f"Saved {saved}")
        return True

    def _on_save(self) -> bool:
        if self.document.path is None:
            return self._on_save_as()
        return self.save_to(str(self.document.path))

    def _on_save_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", f"session{SESSION_SUFFIX}",
                                              f"Sessions (*{SESSION_SUFFIX} *.json)")  # fmt: skip
        return bool(path) and self.save_to(path)

    def maybe_save(self) -> bool:
        """Ask before unsaved changes are lost; True when it is fine to go on."""
        if not self.document.modified:
            return True
        answer = QMessageBox.question(
            self, "Unsaved changes", f"Save the changes to {self.document.title}?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
        )  # fmt: skip
        if answer == QMessageBox.StandardButton.Save:
            return self._on_save()
        return answer == QMessageBox.StandardButton.Discard

    def export_plot(self, what: str, path: str) -> bool:
        from explorer.gui.plot_export import export_figure

        report = self.displayed_report
        if report is None:
            return False
        sweep = self.user_sweep_result if self.showing_user else self.sweeper.result
        try:
            export_figure(path, report, what, sweep=sweep, error_view=self.heatmaps.error_view)
        except (ValueError, OSError) as exc:
            self.show_error("Cannot export", str(exc))
            return False
        self.show_message(f"Exported {what} to {path}")
        return True

    def export_plot_dialog(self, what: str) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export plot", f"{what}.png", "PNG (*.png);;SVG (*.svg);;PDF (*.pdf)"
        )
        if path:
            self.export_plot(what, path)

    def export_data(self, path: str) -> bool:
        report = self.displayed_report
        if report is None:
            return False
        try:
            self.document.export_data(path, report)
        except (ValueError, OSError) as exc:
            self.show_error("Cannot export", str(exc))
            return False
        self.show_message(f"Exported data to {path}")
        return True

    def _on_export_data(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export data", "gradients.csv", "CSV (*.csv);;NumPy (*.npz)")
        if path:
            self.export_data(path)

    def _on_copy_code(self) -> None:
        QApplication.clipboard().setText(self.document.code())
        self.show_message("Copied a NumPy script that reproduces this check")

    def dragEnterEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if len(urls) == 1 and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and self.maybe_save():
            self.open_path(urls[0].toLocalFile())
            event.acceptProposedAction()

    def _reset_layout(self) -> None:
        self.restoreState(self._default_state, SETTINGS_VERSION)
        for dock in self._docks:
            dock.setVisible(True)

    def _show_about(self) -> None:
        QMessageBox.about(
            self,
            "About Gradient Explorer",
            f"<h3>Gradient Explorer {__version__}</h3>"
            "<p>Is my gradient right, and why does my finite-difference check say something else?</p>"
            f"<p>Python {platform.python_version()}, NumPy {np.__version__}, PySide6 {pyside_version}, "
            f"pyqtgraph {pg.__version__}</p>",
        )

    # -------------------------------------------------------------- settings
    def _restore_settings(self) -> None:
        st = app_settings()
        geometry = st.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = st.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state, SETTINGS_VERSION)
        splitter = st.value("window/splitter")
        if isinstance(splitter, QByteArray):
            self.central_splitter.restoreState(splitter)
        self.heatmaps.set_error_view(str(st.value("view/error", "abs")))
        mode_index = self.sweep_panel.mode_combo.findData(st.value("sweep/mode", "cell"))
        self.sweep_panel.mode_combo.setCurrentIndex(max(0, mode_index))
        self.sweep_panel.overlay_check.setChecked(str(st.value("sweep/overlay", "false")).lower() == "true")
        kind = st.value("random/kind")
        if kind is not None:
            self.controls.random_kind.setCurrentIndex(max(0, self.controls.random_kind.findData(kind)))
        self.controls.seed_spin.setValue(int(st.value("random/seed", 0) or 0))
        saved = {}
        for key in _REMEMBERED:
            value = st.value(f"check/{key}")
            if value is not None:
                saved[key] = value
        if saved:
            try:
                self.state.set_settings(**_typed_settings(saved))
            except (TypeError, ValueError):
                self.show_message("Saved settings were not valid and were ignored")

    def save_settings(self) -> None:
        st = app_settings()
        st.setValue("window/geometry", self.saveGeometry())
        st.setValue("window/state", self.saveState(SETTINGS_VERSION))
        st.setValue("window/splitter", self.central_splitter.saveState())
        st.setValue("view/error", self.heatmaps.error_view)
        st.setValue("sweep/mode", self.sweep_panel.mode)
        st.setValue("sweep/overlay", self.sweep_panel.overlay_check.isChecked())
        st.setValue("random/kind", self.controls.random_kind.currentData())
        st.setValue("random/seed", self.controls.seed_spin.value())
        s = self.state.settings
        for key in _REMEMBERED:
            st.setValue(f"check/{key}", getattr(s, key))
        st.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.autosaver.discard()  # a clean exit leaves no autosave behind
        self.save_settings()
        self.recomputer.shutdown()
        self.sweeper.shutdown()
        self.user_job.shutdown()
        super().closeEvent(event)


def _typed_settings(saved: dict[str, object]) -> dict[str, object]:
    """QSettings (INI) hands back strings: convert each remembered field to its type."""
    out: dict[str, object] = {}
    for key, value in saved.items():
        if key in ("eps", "label_smoothing"):
            out[key] = float(value)  # type: ignore[arg-type]
        elif key == "ignore_index":
            out[key] = int(value)  # type: ignore[call-overload]
        else:
            out[key] = str(value)
    return out
