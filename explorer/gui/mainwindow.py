"""MainWindow: builds, lays out and connects. It computes, validates, saves and draws nothing itself.

What is on screen has one owner, :class:`~explorer.app.display.Display`; every view reads it.
Menus are built by :mod:`explorer.gui.menus`, file commands live in
:mod:`explorer.gui.file_commands`, remembered settings in :mod:`explorer.gui.window_settings`.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QCloseEvent, QCursor, QIcon, QShowEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QMessageBox, QSplitter, QToolTip, QWidget

from explorer.app.display import Display, DisplayChange, Source
from explorer.app.document import Document
from explorer.app.edits import EditController
from explorer.app.jobs import Recomputer, SweepComputer, UserCodeJob
from explorer.app.report_text import cell_tooltip
from explorer.app.state import Change, ExplorerState
from explorer.core import Report
from explorer.files.presets import get_preset
from explorer.files.resources import resource_path
from explorer.gui.controls_panel import ControlsPanel
from explorer.gui.file_commands import FileCommands
from explorer.gui.grid_panel import GridPanel
from explorer.gui.job_status import JobStatus
from explorer.gui.maps_panel import HeatmapPanel
from explorer.gui.menus import build_menus
from explorer.gui.safety import Autosaver
from explorer.gui.sweep_panel import SweepPanel
from explorer.gui.text_views import InspectorView, SummaryView
from explorer.gui.theme import initial_choice, theme_manager
from explorer.gui.user_runs import UserRuns
from explorer.gui.view_commands import ViewCommands
from explorer.gui.window_layout import build_layout, share_width
from explorer.gui.window_settings import (
    SETTINGS_VERSION,
    app_settings,
    fit_to_screen,
    initial_size,
    restore_window,
    save_window,
)
from explorer.gui.worst_cells import WorstCellsPanel
from explorer.gui.your_code_panel import UserCodePanel

__all__ = ["SETTINGS_VERSION", "MainWindow", "app_settings"]

APPLICATION = "Gradient Explorer"


class MainWindow(QMainWindow):
    """The explorer window. ``MainWindow()`` opens the origin question's problem, already computed."""

    # Actions, created by explorer.gui.menus.build_menus.
    undo_action: QAction
    redo_action: QAction
    copy_action: QAction
    paste_action: QAction
    randomize_action: QAction
    quit_action: QAction
    cancel_action: QAction
    open_action: QAction
    save_action: QAction
    save_as_action: QAction
    export_data_action: QAction
    copy_plot_action: QAction
    copy_code_action: QAction
    recent_menu: QMenu
    error_view_actions: dict[str, QAction]
    theme_actions: dict[str, QAction]
    gradient_cmap_actions: dict[str, QAction]
    error_cmap_actions: dict[str, QAction]
    precision_actions: dict[str, QAction]
    reset_view_action: QAction
    worst_cell_action: QAction
    guide_action: QAction
    central_splitter: QSplitter

    def __init__(self, parent: QWidget | None = None, restore_settings: bool = True):
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle(APPLICATION)
        self.setWindowIcon(QIcon(str(resource_path("icon.svg"))))
        origin = get_preset("origin")
        self.state = ExplorerState(origin.logits, origin.labels, self)
        with self.state.batch():
            self.state.set_settings(**origin.settings)
        self.controller = EditController(self.state, self)
        self.recomputer = Recomputer(self.state, self)
        self.sweeper = SweepComputer(self.state, self)
        self.user_job = UserCodeJob(self)
        self.display = Display(self.recomputer, self.sweeper, self)
        self.document = Document(self.controller, app_settings(), self)
        self.autosaver = Autosaver(self.state, parent=self)
        self.files = FileCommands(self)

        self.grid = GridPanel(self.controller)
        self.heatmaps = HeatmapPanel(self.display)
        self.controls = ControlsPanel(self.controller)
        self.summary = SummaryView(self.display)
        self.inspector = InspectorView(self.display)
        self.sweep_panel = SweepPanel(self.state, self.display)
        self.user_panel = UserCodePanel()
        self.worst_cells = WorstCellsPanel(self.display)
        self.themes = theme_manager()
        self.themes.set_choice(initial_choice(app_settings().value("view/theme") if restore_settings else None))
        self.layout_docks = build_layout(self)
        self.status = JobStatus(self.statusBar(), (self.recomputer, self.sweeper), self.user_job)
        self.progress, self.cancel_button = self.status.progress, self.status.cancel_button
        self.user_runs = UserRuns(self.user_panel, self.user_job, self.display, self.state, self.show_message)
        self.views = ViewCommands(self)
        build_menus(self)
        self._default_state = self.saveState(SETTINGS_VERSION)
        self._connect()
        self.resize(initial_size(self.screen().availableGeometry()))
        self.share_width()
        # The docks' widths take effect once the window is laid out: again at the first show, unless a
        # remembered layout is restored.
        self._share_at_show = not (restore_settings and app_settings().contains("window/state"))
        if restore_settings:
            restore_window(self)
        fit_to_screen(self)
        self.views.sync_actions()
        self.controller.stack.clear()
        self._offer_restore()
        self.autosaver.start()
        self.setAcceptDrops(True)
        self._update_title()
        self.recomputer.schedule()
        self.sweeper.schedule()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._share_at_show:
            self._share_at_show = False
            QTimer.singleShot(0, self.share_width)

    # ------------------------------------------------------------------ build
    def share_width(self) -> None:
        """Side panels get a fair share of the width (the maps keep the largest part)."""
        share_width(self)

    @property
    def docks(self) -> tuple[QDockWidget, ...]:
        return self.layout_docks.all

    def _connect(self) -> None:
        self.display.changed.connect(self._on_display_changed)
        self.sweep_panel.epsPicked.connect(self._on_sweep_panel_eps_picked)
        self.sweep_panel.modeChanged.connect(lambda mode: self.sweeper.configure(mode=mode))
        self.sweep_panel.overlayChanged.connect(lambda on: self.sweeper.configure(overlay=on))
        self.grid.message.connect(self.show_message)
        self.controls.message.connect(self.show_message)
        self.grid.currentCellChanged.connect(lambda i, j: self.display.select((i, j)))
        self.heatmaps.cellClicked.connect(lambda i, j: self.display.select((i, j)))
        self.heatmaps.worstRequested.connect(self.views.go_to_worst_cell)
        self.worst_cells.cellChosen.connect(lambda i, j: self.display.select((i, j)))
        self.heatmaps.cellHovered.connect(self._on_heatmap_cell_hovered)
        self.heatmaps.view_combo.currentIndexChanged.connect(self._on_error_view_changed)
        self.state.changed.connect(self._on_state_changed)
        self.recomputer.busyChanged.connect(self._on_recomputer_busy_changed)
        self.document.changed.connect(self._update_title)
        self.controller.historyTrimmed.connect(self.show_message)
        self._on_error_view_changed()

    # ------------------------------------------------------------------ reading
    @property
    def report(self) -> Report | None:
        """The built-in check's latest report (the display model says what is shown)."""
        return self.display.builtin_report

    # ------------------------------------------------------------------ slots
    def show_message(self, text: str) -> None:
        self.status.show(text)

    def show_error(self, title: str, text: str) -> None:
        """A refused file or export: one clear message; nothing else changes."""
        self.show_message(text)
        QMessageBox.warning(self, title, text)

    def _on_state_changed(self, change: Change) -> None:
        # Levels stay put while you type; a new problem or new settings (eps, dtype, scheme) choose fresh ones,
        # or a 10x smaller error would sit dark on the old scale.
        if change.shape:
            self._sync_outdated()
        if change.shape or change.settings:
            self.heatmaps.reset_levels()
        if change.shape:  # the title names the size; the modified flag follows the undo stack (document.changed)
            self._update_title()

    def _on_recomputer_busy_changed(self, _busy: bool) -> None:
        self._sync_outdated()

    def _sync_outdated(self) -> None:
        """The maps show a grid of another shape than the state's (a large file checked in the background, or a
        check cancelled): dimmed and titled so. Not while a check on the GUI thread is about to replace them."""
        report = self.display.report
        r = self.recomputer
        about_to = r.pending and not r.busy  # an inline check runs on the next turn: no dimmed frame between
        outdated = report is not None and report.grad_analytic.shape != self.state.shape and not about_to
        self.heatmaps.set_outdated(outdated)
        self.summary.set_outdated(outdated)  # the worst cells' caption says it from the same flag
        self.worst_cells.set_outdated(outdated)

    def _on_display_changed(self, change: DisplayChange) -> None:
        self._sync_outdated()
        display = self.display
        if change.report and display.source is Source.BUILTIN:
            self.status.set_duration(self.recomputer.last_duration)
        # A new cell, or a new report after a load (the grid's reset lost its current cell): the grid follows,
        # and scrolls the cell into view.
        if (change.cell or change.report) and display.cell is not None and display.cell != self.grid.current_cell():
            self.grid.select_cell(*display.cell)

    def _on_sweep_panel_eps_picked(self, eps: float) -> None:
        try:
            self.controller.set_settings(text="Pick eps on the sweep", eps=eps)
        except ValueError as exc:
            self.show_message(f"eps unchanged: {exc}")
            return
        self.show_message(f"eps = {eps:g} (picked on the error-versus-eps plot)")

    def cancel_jobs(self) -> None:
        """Esc / Cancel: abandon the running background computations, user-code checks and file being read."""
        self.files.cancel_read()
        self.status.cancel()

    _on_cancel_clicked = cancel_jobs

    def _on_heatmap_cell_hovered(self, i: int, j: int) -> None:
        values = self.display.values_at((i, j)) if i >= 0 else None
        if values is None:
            QToolTip.hideText()
            return
        text = cell_tooltip(values, "yours" if self.display.source is Source.USER else "analytic")
        self.status.show_passing(text.replace("\n", "   "))  # a read-out, not a message to bring back later
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
        """After an abnormal exit, offer each autosave whose window is gone (newest first)."""
        buttons = QMessageBox.StandardButton
        offered: set[object] = set()
        while (path := self.autosaver.leftover()) is not None and path not in offered:
            offered.add(path)
            answer = QMessageBox.question(self, "Restore unsaved work?", "Gradient Explorer did not exit normally. "
                                          "Restore the work it autosaved?", buttons.Yes | buttons.No)  # fmt: skip
            if answer != buttons.Yes:
                self.autosaver.decline()
                continue

            def apply(session: object) -> None:
                fields = session.settings.to_mapping()  # type: ignore[attr-defined]
                self.controller.replace(session.logits, session.labels, text="Restore autosave", **fields)  # type: ignore[attr-defined]

            if self.autosaver.restore(apply):
                self.show_message("Restored the autosaved session (unsaved: save it to keep it)")
                return
            self.show_message(self.autosaver.problem)

    # Kept for scripts and tests: the file commands, on the window.
    def open_path(self, path: str) -> bool:
        return self.files.open_path(path)

    def save_to(self, path: str) -> bool:
        return self.files.save_to(path)

    def maybe_save(self) -> bool:
        return self.files.maybe_save()

    def export_plot(self, what: str, path: str) -> bool:
        return self.files.export_plot(what, path)

    def export_data(self, path: str) -> bool:
        return self.files.export_data(path)

    def _on_copy_code(self) -> None:
        self.files.on_copy_code()

    def dragEnterEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if len(urls) == 1 and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and self.maybe_save():
            self.open_path(urls[0].toLocalFile())
            event.acceptProposedAction()

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, SETTINGS_VERSION)
        for dock in self.docks:
            dock.setVisible(True)
        fit_to_screen(self)

    def set_theme(self, choice: str) -> None:
        self.views.set_theme(choice)

    def save_settings(self) -> None:
        save_window(self)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.autosaver.release()  # a clean exit leaves no autosave (and no lock) behind
        self.grid.shutdown()
        self.files.shutdown()
        self.save_settings()
        self.recomputer.shutdown()
        self.sweeper.shutdown()
        self.user_job.shutdown()
        super().closeEvent(event)
