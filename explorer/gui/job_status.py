"""The status bar's job widgets: progress, Cancel, the time of the last check, and the hover read-out."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

from explorer.app.jobs import BackgroundJob, UserCodeJob

__all__ = ["STATUS_TIMEOUT_MS", "JobStatus"]

STATUS_TIMEOUT_MS = 8000


class JobStatus(QObject):
    """Shows the background jobs in a status bar; Cancel (and Esc, through :meth:`cancel`) stops them."""

    def __init__(self, bar: QStatusBar, jobs: tuple[BackgroundJob, ...], user_job: UserCodeJob):
        super().__init__(bar)
        self.bar = bar
        self.jobs = jobs
        self.user_job = user_job
        self.progress = QProgressBar()
        self.progress.setObjectName("progressBar")
        self.progress.setMaximumWidth(160)
        self.progress.setRange(0, 100)
        self.progress.setToolTip("Progress of the computation running in the background")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setToolTip("Stop the running computation (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        self._said = ("", 0.0)
        self.timing_label = QLabel()
        self.timing_label.setObjectName("timingLabel")
        self.timing_label.setToolTip("Time of the last computation")
        for w in (self.progress, self.cancel_button):
            w.setVisible(False)
            bar.addPermanentWidget(w)
        bar.addPermanentWidget(self.timing_label)
        for job in jobs:
            job.busyChanged.connect(self._on_job_busy_changed)
            job.progressChanged.connect(self.progress.setValue)
            job.failed.connect(lambda message: self.show(f"Computation failed: {message}"))

    def show(self, text: str) -> None:
        self._said = (text, time.monotonic())
        self.bar.showMessage(text, STATUS_TIMEOUT_MS)

    def show_passing(self, text: str) -> None:
        """A read-out (the hovered cell's numbers): shown now, not brought back after background work."""
        self.bar.showMessage(text, STATUS_TIMEOUT_MS)

    def _recent(self) -> tuple[str, int] | None:
        """The last message and the milliseconds it has left, while it has some."""
        text, at = self._said
        left = STATUS_TIMEOUT_MS - round((time.monotonic() - at) * 1e3)
        return (text, left) if text and left > 0 else None

    def set_duration(self, seconds: float) -> None:
        self.timing_label.setText(f"{seconds * 1e3:.1f} ms")

    def _on_job_busy_changed(self, _busy: bool) -> None:
        busy = any(job.busy for job in self.jobs)
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        # A message said just before (what was opened, in which dtype) stays: the work is named after it, and it
        # comes back alone when the work ends, until its time is up.
        recent = self._recent()
        if busy:
            self.progress.setValue(0)
            self.bar.showMessage("Computing in the background…" if recent is None
                                 else f"{recent[0]} · computing in the background…")  # fmt: skip
        elif recent is not None:
            self.bar.showMessage(*recent)
        else:
            self.bar.clearMessage()

    def cancel(self) -> None:
        """Abandon the running computations (the maps keep the previous result)."""
        if any(job.busy for job in self.jobs):
            for job in self.jobs:
                job.cancel()
            self.show("Computation cancelled; the maps show the previous result")
        if self.user_job.busy:
            self.user_job.cancel()
            self.show("The check of your code was cancelled")
