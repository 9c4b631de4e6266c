"""Recomputer: the only place where numerics run for the window.

It listens to ``ExplorerState.changed``, debounces with a single-shot timer,
takes a snapshot and calls the core. Small grids are computed on the GUI thread
(they take well under a frame); large ones in a worker thread with progress and
cancel. Every request carries a generation number: a result or progress report
from an older generation is dropped, and a running worker stops at its next
block once it is superseded.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QObject, QTimer, Signal

from explorer.core import CheckSettings, Report, check_gradient
from explorer.core.explain import CellExplanation, explain_cell
from explorer.state import Change, ExplorerState

__all__ = ["DEBOUNCE_MS", "WORKER_THRESHOLD", "Recomputer"]

#: Coalescing window for bursts of changes (slider drags, key repeat).
DEBOUNCE_MS = 2
#: Grids with more elements than this are computed in the worker thread.
WORKER_THRESHOLD = 100_000


class _Superseded(Exception):
    """Raised inside a worker whose request is no longer the newest."""


class _Relay(QObject):
    """Lives in the GUI thread; worker threads emit through it (queued delivery)."""

    done = Signal(int, object, float)
    error = Signal(int, str)
    progress = Signal(int, float)


class Recomputer(QObject):
    """Turns state changes into :class:`~explorer.core.Report` objects.

    Signals
    -------
    reportReady(Report)
        A new result for the current state.
    cellExplained(object)
        A :class:`~explorer.core.explain.CellExplanation` for the selected cell (or None).
    busyChanged(bool)
        A worker computation started or ended.
    progressChanged(int)
        Percent done of the running worker computation.
    failed(str)
        The computation raised; the message is for the status bar.
    """

    reportReady = Signal(object)
    cellExplained = Signal(object)
    busyChanged = Signal(bool)
    progressChanged = Signal(int)
    failed = Signal(str)

    def __init__(self, state: ExplorerState, parent: QObject | None = None, worker_threshold: int = WORKER_THRESHOLD):
        super().__init__(parent)
        self.state = state
        self.worker_threshold = worker_threshold
        self.report: Report | None = None
        self.last_duration = 0.0
        self._cell: tuple[int, int] | None = None
        self._generation = 0
        self._latest_lock = threading.Lock()
        self._latest = 0
        self._busy = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradient-check")
        self._future: Future | None = None
        self._relay = _Relay(self)
        self._relay.done.connect(self._on_worker_done)
        self._relay.error.connect(self._on_worker_error)
        self._relay.progress.connect(self._on_worker_progress)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._cell_timer = QTimer(self)
        self._cell_timer.setSingleShot(True)
        self._cell_timer.setInterval(0)
        self._cell_timer.timeout.connect(self._on_cell_timer_timeout)
        state.changed.connect(self._on_state_changed)

    # ----------------------------------------------------------------- control
    def schedule(self) -> None:
        """Ask for a recomputation soon (restarts the debounce timer)."""
        self._timer.start()

    def set_cell(self, cell: tuple[int, int] | None) -> None:
        """Select the cell to explain; its explanation follows soon."""
        if cell != self._cell:
            self._cell = cell
            self._cell_timer.start()

    @property
    def busy(self) -> bool:
        return self._busy

    def cancel(self) -> None:
        """Abandon the running worker computation (its result will be dropped)."""
        self._bump_generation()
        self._set_busy(False)

    def shutdown(self) -> None:
        """Stop timers and the worker thread (called when the window closes)."""
        self._timer.stop()
        self._cell_timer.stop()
        self._bump_generation()
        self._executor.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------- slots
    def _on_state_changed(self, change: Change) -> None:
        self.schedule()

    def _on_timer_timeout(self) -> None:
        logits, labels, settings = self.state.snapshot()
        generation = self._bump_generation()
        if logits.size > self.worker_threshold:
            self._set_busy(True)
            self.progressChanged.emit(0)
            self._future = self._executor.submit(self._work, generation, logits, labels, settings)
            return
        start = time.perf_counter()
        try:
            report = check_gradient(logits, labels, settings)
        except ValueError as exc:
            self.failed.emit(str(exc))
            return
        self._publish(report, time.perf_counter() - start)

    def _on_cell_timer_timeout(self) -> None:
        self._explain()

    def _on_worker_done(self, generation: int, report: Report, duration: float) -> None:
        if generation != self._generation:
            return  # superseded while it was being computed
        self._set_busy(False)
        self._publish(report, duration)

    def _on_worker_error(self, generation: int, message: str) -> None:
        if generation != self._generation:
            return
        self._set_busy(False)
        self.failed.emit(message)

    def _on_worker_progress(self, generation: int, fraction: float) -> None:
        if generation == self._generation:
            self.progressChanged.emit(round(100 * fraction))

    # ----------------------------------------------------------------- helpers
    def _bump_generation(self) -> int:
        self._generation += 1
        with self._latest_lock:
            self._latest = self._generation
        return self._generation

    def _is_latest(self, generation: int) -> bool:
        with self._latest_lock:
            return generation == self._latest

    def _work(self, generation: int, logits: NDArray, labels: NDArray, settings: CheckSettings) -> None:
        """Runs in the worker thread."""

        def progress(fraction: float) -> None:
            if not self._is_latest(generation):
                raise _Superseded
            self._relay.progress.emit(generation, fraction)

        start = time.perf_counter()
        try:
            report = check_gradient(logits, labels, settings, progress=progress)
        except _Superseded:
            return
        except (ValueError, MemoryError) as exc:
            self._relay.error.emit(generation, str(exc) or type(exc).__name__)
            return
        self._relay.done.emit(generation, report, time.perf_counter() - start)

    def _publish(self, report: Report, duration: float) -> None:
        self.report = report
        self.last_duration = duration
        self.reportReady.emit(report)
        self._explain()

    def _explain(self) -> None:
        report = self.report
        cell = self._cell
        if report is None or cell is None:
            self.cellExplained.emit(None)
            return
        n, c = report.logits.shape
        if not (0 <= cell[0] < n and 0 <= cell[1] < c):
            self.cellExplained.emit(None)
            return
        try:
            explanation: CellExplanation | None = explain_cell(report.logits, report.labels, report.settings, cell)
        except ValueError:
            explanation = None
        self.cellExplained.emit(explanation)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busyChanged.emit(busy)


def report_matches_state(report: Report, state: ExplorerState) -> bool:
    """True when ``report`` was computed from the state's current logits, labels and settings."""
    logits, labels, settings = state.snapshot()
    with np.errstate(over="ignore"):
        rounded = logits.astype(settings.dtype)
    return (
        report.settings == settings
        and report.logits.shape == logits.shape
        and np.array_equal(report.logits, rounded, equal_nan=True)
        and np.array_equal(report.labels, labels)
    )
