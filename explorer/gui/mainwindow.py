"""MainWindow: builds, lays out and connects. It computes, validates, saves and draws nothing itself.

What is on screen has one owner, :class:`~explorer.app.display.Display`; every view reads it.
Menus are built by :mod:`explorer.gui.menus`, file commands live in
:mod:`explorer.gui.file_commands`, remembered settings in :mod:`explorer.gui.window_settings`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QCursor, QGuiApplication, QIcon
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QMainWindow,
    QMenu,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QToolTip,
    QWidget,
)

from explorer.app.display import Display, Source
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
#: Narrowest the side panels may get (px): small screens (1024 x 600, or 960 x 540 at 200 %) still fit.
MIN_SIDE_PANEL_WIDTH = 220
#: Shares of the window's width the Controls and the right-hand docks start with.
LEFT_SHARE, RIGHT_SHARE = 0.26, 0.3


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
        self.display = Display(self.recomputer, self.sweeper, self.user_job, self)
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
        self._guide: QWidget | None = None
        self.themes = theme_manager()
        self.themes.set_choice(initial_choice(app_settings().value("view/theme") if restore_settings else None))
        self._build_layout()
        self.status = JobStatus(self.statusBar(), (self.recomputer, self.sweeper), self.user_job)
        self.progress, self.cancel_button = self.status.progress, self.status.cancel_button
        self.user_runs = UserRuns(self.user_panel, self.user_job, self.display, self.state, self.show_message)
        build_menus(self)
        self._default_state = self.saveState(SETTINGS_VERSION)
        self._connect()
        self.resize(initial_size(self.screen().availableGeometry()))
        self.share_width()
        if restore_settings:
            restore_window(self)
        fit_to_screen(self)
        self._sync_view_actions()
        self.controller.stack.clear()
        self._offer_restore()
        self.autosaver.start()
        self.setAcceptDrops(True)
        self._update_title()
        self.recomputer.schedule()
        self.sweeper.schedule()

    # ------------------------------------------------------------------ build
    def _build_layout(self) -> None:
        splitter = QSplitter(Qt.Orientation.Vertical, objectName="centralSplitter")
        splitter.addWidget(self.grid)
        splitter.addWidget(self.heatmaps)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([190, 560])
        self.central_splitter = splitter
        self.setCentralWidget(splitter)
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        # Panels taller or wider than a small screen scroll inside their dock instead of pushing the window.
        self._controls_dock = self._dock("Controls", "controlsDock", self._scrolled(self.controls), left)
        self._user_dock = self._dock("Your code", "userCodeDock", self._scrolled(self.user_panel), left)
        self.tabifyDockWidget(self._controls_dock, self._user_dock)
        self._controls_dock.raise_()
        self._sweep_dock = self._dock("Error vs eps", "sweepDock", self.sweep_panel, right)
        self._summary_dock = self._dock("Summary", "summaryDock", self.summary, right)
        self._inspector_dock = self._dock("Cell inspector", "inspectorDock", self.inspector, right)
        self._worst_dock = self._dock("Worst cells", "worstCellsDock", self.worst_cells, right)
        self.tabifyDockWidget(self._summary_dock, self._inspector_dock)
        self.tabifyDockWidget(self._inspector_dock, self._worst_dock)
        self._summary_dock.raise_()
        for dock in self.docks:
            dock.setMinimumWidth(MIN_SIDE_PANEL_WIDTH)
        self.setDockOptions(self.dockOptions() | QMainWindow.DockOption.AllowTabbedDocks)

    def share_width(self) -> None:
        """Side panels get a fair share of the width (the maps keep the largest part)."""
        width = self.width()
        left = max(MIN_SIDE_PANEL_WIDTH, min(self.controls.sizeHint().width() + 20, round(width * LEFT_SHARE)))
        right = max(MIN_SIDE_PANEL_WIDTH, round(width * RIGHT_SHARE))
        self.resizeDocks([self._controls_dock, self._sweep_dock], [left, right], Qt.Orientation.Horizontal)

    @staticmethod
    def _scrolled(widget: QWidget) -> QScrollArea:
        area = QScrollArea()
        area.setObjectName(f"{widget.objectName() or 'panel'}Scroll")
        area.setWidget(widget)
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.Shape.NoFrame)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        return area

    @property
    def docks(self) -> tuple[QDockWidget, ...]:
        return (self._controls_dock, self._user_dock, self._sweep_dock, self._summary_dock, self._inspector_dock,
                self._worst_dock)  # fmt: skip

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        self.display.changed.connect(self._on_display_changed)
        self.sweep_panel.epsPicked.connect(self._on_sweep_panel_eps_picked)
        self.sweep_panel.modeChanged.connect(lambda mode: self.sweeper.configure(mode=mode))
        self.sweep_panel.overlayChanged.connect(lambda on: self.sweeper.configure(overlay=on))
        self.grid.message.connect(self.show_message)
        self.controls.message.connect(self.show_message)
        self.grid.currentCellChanged.connect(lambda i, j: self.display.select((i, j)))
        self.heatmaps.cellClicked.connect(lambda i, j: self.display.select((i, j)))
        self.heatmaps.worstRequested.connect(self.go_to_worst_cell)
        self.worst_cells.cellChosen.connect(lambda i, j: self.display.select((i, j)))
        self.heatmaps.cellHovered.connect(self._on_heatmap_cell_hovered)
        self.heatmaps.view_combo.currentIndexChanged.connect(self._on_error_view_changed)
        self.state.changed.connect(self._on_state_changed)
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
        if change.shape:
            self.heatmaps.reset_levels()
        self._update_title()

    def _on_display_changed(self, change: object) -> None:
        display = self.display
        if getattr(change, "report", False) and display.source is Source.BUILTIN:
            self.status.set_duration(self.recomputer.last_duration)
        # A new cell, or a new report after a load (the grid's reset lost its current cell): the grid follows,
        # and scrolls the cell into view.
        moved = getattr(change, "cell", False) or getattr(change, "report", False)
        if moved and display.cell is not None and display.cell != self.grid.current_cell():
            self.grid.select_cell(*display.cell)

    def go_to_worst_cell(self) -> None:
        """Select the cell with the largest error (failing first) and bring it into view everywhere."""
        report = self.display.report
        if report is None or report.grad_analytic.ndim != 2:
            self.show_message("No result yet: nothing to go to")
            return
        cells = report.worst_cells(1)
        if not len(cells):
            return
        cell = (int(cells[0][0]), int(cells[0][1]))
        self.display.select(cell)
        self.grid.select_cell(*cell)
        self.heatmaps.show_cell(cell)
        values = self.display.values_at(cell)
        if values is not None:
            self.show_message(f"Worst cell: sample {cell[0]}, class {cell[1]}, |error| {values.abs_err:.3g}")

    def reset_map_view(self) -> None:
        """Show the whole grid on the three maps."""
        self.heatmaps.reset_view()

    def _on_sweep_panel_eps_picked(self, eps: float) -> None:
        try:
            self.controller.set_settings(text="Pick eps on the sweep", eps=eps)
        except ValueError as exc:
            self.show_message(f"eps unchanged: {exc}")
            return
        self.show_message(f"eps = {eps:g} (picked on the error-versus-eps plot)")

    def cancel_jobs(self) -> None:
        """Esc / Cancel: abandon the running background computations and user-code checks."""
        self.status.cancel()

    _on_cancel_clicked = cancel_jobs

    def _on_heatmap_cell_hovered(self, i: int, j: int) -> None:
        values = self.display.values_at((i, j)) if i >= 0 else None
        if values is None:
            QToolTip.hideText()
            return
        text = cell_tooltip(values, "yours" if self.display.source is Source.USER else "analytic")
        self.status.show(text.replace("\n", "   "))
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

    def _sync_view_actions(self) -> None:
        """Check the View menu's choices that are in force (after settings were restored)."""
        for actions, current in ((self.gradient_cmap_actions, self.heatmaps.gradient_cmap),
                                 (self.error_cmap_actions, self.heatmaps.error_cmap),
                                 (self.precision_actions, str(self.grid.precision)),
                                 (self.theme_actions, self.themes.choice.value)):  # fmt: skip
            for key, act in actions.items():
                act.setChecked(key == current)

    def show_guide(self) -> None:
        """F1: the user guide, searchable, beside the window."""
        from explorer.gui.help_window import GuideWindow

        if self._guide is None:
            self._guide = GuideWindow(self)
        self._guide.show()
        if QGuiApplication.platformName() != "offscreen":  # (offscreen cannot raise windows, and says so)
            self._guide.raise_()
            self._guide.activateWindow()

    def set_theme(self, choice: str) -> None:
        """Follow the system's colour scheme (``"system"``) or force ``"light"`` or ``"dark"``."""
        self.themes.set_choice(choice)
        for key, act in self.theme_actions.items():
            act.setChecked(key == self.themes.choice.value)

    def save_settings(self) -> None:
        save_window(self)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.autosaver.release()  # a clean exit leaves no autosave (and no lock) behind
        self.grid.shutdown()
        self.save_settings()
        self.recomputer.shutdown()
        self.sweeper.shutdown()
        self.user_job.shutdown()
        super().closeEvent(event)
