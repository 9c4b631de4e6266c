"""Wires the "Your code" panel to the user-code job and the display model."""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import QObject

from explorer.app.display import Display
from explorer.app.jobs import UserCodeJob
from explorer.app.report_text import user_result_html, verdict_of
from explorer.app.state import ExplorerState
from explorer.gui.your_code_panel import UserCodePanel
from explorer.usercode.runner import UserCheck

__all__ = ["UserRuns"]


class UserRuns(QObject):
    """Run requests from the panel go to the job (on a snapshot of the state); results go to the display."""

    def __init__(self, panel: UserCodePanel, job: UserCodeJob, display: Display, state: ExplorerState,
                 message: Callable[[str], None]):  # fmt: skip
        super().__init__(panel)
        self.panel, self.job, self.display, self.state, self.message = panel, job, display, state, message
        panel.runRequested.connect(self._on_panel_run_requested)
        panel.showBuiltinRequested.connect(display.show_builtin)
        job.finished.connect(self._on_job_finished)
        job.callsDone.connect(self._on_job_calls_done)
        self._limit_s = 0.0
        display.notice.connect(self._on_display_notice)

    def _on_panel_run_requested(self, code: object, timeout_s: float) -> None:
        logits, labels, settings = self.state.snapshot()
        self._limit_s = timeout_s
        self.panel.set_running(True)
        self.panel.show_text(f"<p>Running your code (stopped after {timeout_s:g} s)…</p>")
        self.message("Running your code in a separate process…")
        self.job.start(code, logits, labels, settings, timeout_s, self.display.cell or (0, 0))

    def _on_job_calls_done(self, done: int, planned: int) -> None:
        """A long run's progress, in the panel and the status bar (Esc stops it)."""
        share = f" ({100 * done / planned:.0f}%)" if planned > 0 else ""
        text = f"Running your code: {done:,} of {planned:,} calls of your loss{share}; Esc stops it"
        self.panel.show_text(f"<p>{html.escape(text)} (time limit {self._limit_s:g} s)…</p>")
        self.message(text)

    def _on_job_finished(self, checked: UserCheck | None, error: object) -> None:
        self.panel.set_running(False)
        if error is not None or checked is None:
            details = str(getattr(error, "details", ""))
            self.panel.show_error(str(error), details, "Your edits in the grid are untouched.")
            self.panel.offer_time_limit(getattr(error, "suggested_timeout_s", None))
            self.message(f"Your code: {error}")
            return
        self.display.show_user(checked)
        self.panel.show_text(user_result_html(checked))
        self.panel.append_run_facts(checked.result)
        self.message("Your code checked: " + verdict_of(checked.report).text)

    def _on_display_notice(self, text: str) -> None:
        self.panel.output.append(f"<p><i>{html.escape(text)}</i></p>")
        self.message(text)
