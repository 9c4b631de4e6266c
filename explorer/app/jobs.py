"""Recomputation: the only place where numerics run for the window.

``BackgroundJob`` holds the mechanics: it listens to ``ExplorerState.changed``,
debounces with a single-shot timer, takes a snapshot and calls the core, on the
GUI thread when the work takes well under a frame and in a worker thread
otherwise (with progress and cancel). Every request carries a generation number:
a result or progress report from an older generation is dropped, and a running
worker stops at its next block once it is superseded.

``Recomputer`` turns the state into a :class:`~explorer.core.Report` (and explains
the selected cell); ``SweepComputer`` turns it into error-versus-eps curves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QObject, QTimer, Signal

from explorer.app.state import Change, ExplorerState
from explorer.core import DTYPE_NAMES, Report, check_gradient, eps_sweep, resolve_dtype
from explorer.core.digest import digest
from explorer.core.explain import CellExplanation, explain_cell
from explorer.core.overview import MapLike, Pyramid
from explorer.core.partial import RowPatch, compute_rows, prepare, row_local_refusal
from explorer.core.sweep import SweepResult

__all__ = [
    "DEBOUNCE_MS",
    "OVERVIEW_THRESHOLD",
    "SWEEP_MODES",
    "WORKER_THRESHOLD",
    "BackgroundJob",
    "MapOverviews",
    "Recomputer",
    "SweepComputer",
    "SweepResult",
    "report_matches_state",
]

#: Coalescing of bursts of changes: 0 runs the check once the changes already queued are handled (a paste, a
#: slider's burst of events); a longer wait only delays an edit (newest wins for work in the worker).
DEBOUNCE_MS = 0
#: Grids with more elements than this are checked in the worker thread.
WORKER_THRESHOLD = 100_000
#: The sweep waits for a pause in editing: it is not on the path from a keystroke to the heatmaps.
SWEEP_DEBOUNCE_MS = 80
#: Sweep modes: one cell, or the maximum over the whole grid (always in the worker).
SWEEP_MODES = ("cell", "grid")
#: Per-cell work (inspector, one-cell sweep) reads one row; rows wider than this run in the worker thread.
CELL_WORKER_THRESHOLD = 65_536
#: Grids with more cells than this get overviews (more cells than a map has screen pixels).
OVERVIEW_THRESHOLD = 1 << 18

Progress = Callable[[float], None]


@dataclass(frozen=True)
class MapOverviews:
    """Overviews of a report's maps, for drawing grids with more cells than pixels (see :mod:`explorer.core.overview`).

    Attributes
    ----------
    report : Report
        The report whose arrays the pyramids are built on (their level 0 *is* the report's array).
    analytic, numeric : Pyramid
        ``"signed_extreme"`` of ``grad_analytic`` and ``grad_numeric``: each pixel the value of largest magnitude.
    abs_err, rel_err, tolerance : Pyramid
        ``"abs_max"`` of the error maps and of the tolerance: each pixel the largest value it covers (log10 is
        monotone: take the log of the pixel). A NaN (an overflowed row) is the most extreme value in all five.
        Their level 0 is a :class:`~explorer.core.overview.RegionMap` of the report: formed region by region.

    Use ``overviews.numeric.view(rows, cols, (h, w))`` for an image of at most ``h x w`` pixels and its
    pixel -> cell ranges, and ``pyramid.extreme_cell(view, p, q)`` for the cell a hovered pixel shows.
    """

    report: Report
    analytic: Pyramid
    numeric: Pyramid
    abs_err: Pyramid
    rel_err: Pyramid
    tolerance: Pyramid

    #: The error maps, each read from the report's gradients region by region (never formed whole).
    ERROR_MAPS = ("abs_err", "rel_err", "tolerance")

    @classmethod
    def build(cls, report: Report, progress: Progress | None = None) -> MapOverviews:
        """All five pyramids of ``report`` (O(N C), in row blocks); ``progress`` may raise to abandon the work."""
        maps: list[tuple[MapLike, str]] = [(report.grad_analytic, "signed_extreme"),
                                           (report.grad_numeric, "signed_extreme")]  # fmt: skip
        maps += [(report.region_map(name), "abs_max") for name in cls.ERROR_MAPS]
        out = []
        for k, (array, kind) in enumerate(maps):
            out.append(Pyramid.build(array, kind))
            if progress is not None:
                progress((k + 1) / len(maps))
        return cls(report, *out)

    def updated(self, report: Report, rows: slice, inplace: bool = False) -> MapOverviews:
        """The overviews of ``report``, which differs from :attr:`report` only in ``rows``: O(rows x C).

        ``inplace=True`` rewrites the pyramids' blocks in place (for a report whose arrays were written in place).
        """
        return MapOverviews(
            report,
            self.analytic.updated(report.grad_analytic, rows, inplace),
            self.numeric.updated(report.grad_numeric, rows, inplace),
            *(getattr(self, name).updated(report.region_map(name), rows, inplace) for name in self.ERROR_MAPS),
        )

    @property
    def nbytes(self) -> int:
        """Bytes the pyramids hold above the report's own arrays."""
        return sum(getattr(self, name).nbytes for name in ("analytic", "numeric", *self.ERROR_MAPS))


class _Superseded(Exception):
    """Raised inside a worker whose request is no longer the newest."""


class _Relay(QObject):
    """Lives in the GUI thread; worker threads emit through it (queued delivery)."""

    done = Signal(int, object, float)
    error = Signal(int, str)
    progress = Signal(int, float)
    calls = Signal(int, int, int)  # (generation, calls done, calls planned) of the user's loss


class BackgroundJob(QObject):
    """Debounced, generation-checked computation on the GUI thread or a worker thread.

    Signals
    -------
    busyChanged(bool)
        A worker computation started or ended.
    progressChanged(int)
        Percent done of the running worker computation.
    failed(str)
        The computation raised ValueError; the message is for the status bar.
    """

    busyChanged = Signal(bool)
    progressChanged = Signal(int)
    failed = Signal(str)

    def __init__(self, state: ExplorerState, parent: QObject | None = None):
        super().__init__(parent)
        self.state = state
        self.last_duration = 0.0
        self._generation = 0
        self._latest_lock = threading.Lock()
        self._latest = 0
        self._busy = False
        #: The running worker computation reads the state's own logits array (no copy): subclasses drop it
        #: (bump the generation) when the state changes under it.
        self._reads_state = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=type(self).__name__)
        self._relay = _Relay(self)
        self._relay.done.connect(self._on_worker_done)
        self._relay.error.connect(self._on_worker_error)
        self._relay.progress.connect(self._on_worker_progress)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        state.changed.connect(self._on_state_changed)

    # ------------------------------------------------------------ subclasses
    def _request(self) -> tuple[Callable[[Progress | None], object], bool] | None:
        """The work for the current state (a function of a progress callback) and whether it needs the worker."""
        raise NotImplementedError

    def _publish(self, result: object, duration: float) -> None:
        raise NotImplementedError

    # --------------------------------------------------------------- control
    def schedule(self) -> None:
        """Ask for a computation soon (restarts the debounce timer)."""
        self._timer.start()

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def pending(self) -> bool:
        """A computation is scheduled or running: the last result may not describe the state yet."""
        return self._busy or self._timer.isActive()

    def cancel(self) -> None:
        """Abandon the running worker computation (its result will be dropped)."""
        self._bump_generation()
        self._set_busy(False)

    def shutdown(self) -> None:
        """Stop the timer and the worker thread (called when the window closes)."""
        self._timer.stop()
        self._bump_generation()
        self._executor.shutdown(wait=True, cancel_futures=True)

    # ----------------------------------------------------------------- slots
    def _on_state_changed(self, _change: Change) -> None:
        self.schedule()

    def _on_timer_timeout(self) -> None:
        request = self._request()
        generation = self._bump_generation()
        if request is None:
            self._set_busy(False)
            return
        work, in_worker = request
        if in_worker:
            self._set_busy(True)
            self.progressChanged.emit(0)
            self._executor.submit(self._work, generation, work)
            return
        start = time.perf_counter()
        try:
            result = work(None)
        except ValueError as exc:
            self._set_busy(False)
            self.failed.emit(str(exc))
            return
        self._set_busy(False)
        self._publish(result, time.perf_counter() - start)

    def _on_worker_done(self, generation: int, result: object, duration: float) -> None:
        if generation != self._generation:
            return  # superseded while it was being computed
        self._set_busy(False)
        self._publish(result, duration)

    def _on_worker_error(self, generation: int, message: str) -> None:
        if generation != self._generation:
            return
        self._set_busy(False)
        self.failed.emit(message)

    def _on_worker_progress(self, generation: int, fraction: float) -> None:
        if generation == self._generation:
            self.progressChanged.emit(round(100 * fraction))

    # --------------------------------------------------------------- helpers
    def _bump_generation(self) -> int:
        self._generation += 1
        with self._latest_lock:
            self._latest = self._generation
        return self._generation

    def _is_latest(self, generation: int) -> bool:
        with self._latest_lock:
            return generation == self._latest

    def _work(self, generation: int, work: Callable[[Progress | None], object]) -> None:
        """Runs in the worker thread."""

        shown = [-1.0]

        def progress(fraction: float) -> None:
            if not self._is_latest(generation):
                raise _Superseded  # checked at every call: a superseded run stops at its next piece
            if fraction - shown[0] >= 0.01 or fraction >= 1.0:  # a percent at a time: a check of a large grid
                shown[0] = fraction  # reports thousands of pieces, each a queued call on the GUI thread
                self._relay.progress.emit(generation, fraction)

        if not self._is_latest(generation):
            return  # superseded while it waited behind an older run: nothing to do
        start = time.perf_counter()
        try:
            result = work(progress)
        except _Superseded:
            return
        except (ValueError, MemoryError) as exc:
            self._relay.error.emit(generation, str(exc) or type(exc).__name__)
            return
        self._relay.done.emit(generation, result, time.perf_counter() - start)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busyChanged.emit(busy)


class Recomputer(BackgroundJob):
    """Turns state changes into :class:`~explorer.core.Report` objects (and overviews of large maps).

    An edit that changed only some rows of logits (and labels that keep the mean's
    denominator) is checked row-locally from the last report
    (:func:`explorer.core.partial.update_rows`, bit-identical to a full check); anything
    else (settings, shape, ``evaluate="loss"``, ``perturb="all"``) runs the full check.
    Grids over :data:`OVERVIEW_THRESHOLD` cells also get :class:`MapOverviews`, built (or
    updated for the changed rows) in the same worker run: :attr:`overviews` is set before
    ``reportReady`` is emitted and belongs to :attr:`report` (``overviews.report is report``).

    Signals
    -------
    reportReady(Report)
        A new result for the current state.
    cellExplained(object)
        A :class:`~explorer.core.explain.CellExplanation` for the selected cell (or None).

    :attr:`explanation` is the selected cell's explanation in :attr:`report` when ``reportReady`` is
    emitted, or None while it is computed in the worker (``cellExplained`` follows). An edit of other
    rows keeps it (a cell's explanation reads its own row and the labels, which a row-local edit keeps
    the mean's denominator of), so an ordinary edit explains nothing again.
    """

    reportReady = Signal(object)
    cellExplained = Signal(object)

    def __init__(self, state: ExplorerState, parent: QObject | None = None, worker_threshold: int = WORKER_THRESHOLD):
        super().__init__(state, parent)
        self.worker_threshold = worker_threshold
        self.report: Report | None = None
        self.overviews: MapOverviews | None = None
        #: How the last published report was computed: "full" or "rows" (row-local), for tests and benchmarks.
        self.last_path = ""
        # Changes since the state the published report describes, and since the last request.
        self._since_report: Change | None = None
        self._since_request: Change | None = None
        self._cell: tuple[int, int] | None = None
        self._cell_timer = QTimer(self)
        self._cell_timer.setSingleShot(True)
        self._cell_timer.setInterval(0)
        self._cell_timer.timeout.connect(self._on_cell_timer_timeout)
        #: The selected cell's explanation in :attr:`report` (None: no cell, or being computed).
        self.explanation: CellExplanation | None = None
        self._explained: tuple[Report, tuple[int, int]] | None = None  # what self.explanation describes
        self._explain_generation = 0
        self._explain_relay = _Relay(self)
        self._explain_relay.done.connect(self._on_explain_done)

    def set_cell(self, cell: tuple[int, int] | None) -> None:
        """Select the cell to explain; its explanation follows soon."""
        if cell != self._cell:
            self._cell = cell
            self._cell_timer.start()

    def shutdown(self) -> None:
        self._cell_timer.stop()
        super().shutdown()

    def _on_state_changed(self, change: Change) -> None:
        if self.busy and (change.data or self._reads_state):
            # The running check read the problem as it was (a row-local one writes its rows back into the report,
            # which may share the state's array; a full one of a large grid reads the state's own logits): drop
            # it, or its older values would be published over the new ones. A new one follows.
            self._bump_generation()
        for name in ("_since_report", "_since_request"):
            old = getattr(self, name)
            setattr(self, name, change if old is None else old.merged(change))
        super()._on_state_changed(change)

    def _row_local(self) -> tuple[Report, NDArray] | None:
        """The base report and the edited rows when the pending changes allow a row-local update (O(N))."""
        base, dirty = self.report, self._since_report
        if base is None or dirty is None or dirty.shape or dirty.settings:
            return None
        n, c = self.state.shape
        if row_local_refusal(base, (n, c), self.state.labels, self.state.settings) is not None:
            return None
        block = dirty.logits
        rows = np.arange(block[0], block[2], dtype=np.intp) if block is not None else np.zeros(0, dtype=np.intp)
        return base, rows

    def _request(self) -> tuple[Callable[[Progress | None], object], bool]:
        n, c = self.state.shape
        big = n * c > OVERVIEW_THRESHOLD
        local = self._row_local()
        self._since_request = None
        self._reads_state = False
        if local is not None:
            base, rows = local
            block, labels, settings = self.state.rows_snapshot(rows)
            old_overviews = self.overviews if self.overviews is not None and self.overviews.report is base else None

            def partial(progress: Progress | None) -> tuple[RowPatch, MapOverviews | None, str]:
                # O(rows x C) here; the patch is written into the report's arrays on the GUI thread (in
                # place: no copy of the grid, no fresh allocation of its size per edit).
                patch = compute_rows(base, block, labels, rows, settings, progress)
                return patch.ranked(), old_overviews, "rows"  # the worst cells ranked here, not on the GUI thread

            return partial, n * c > self.worker_threshold
        # A large grid is checked on the state's own array (no copy of it); a change drops the run (above). The
        # report then shares the array with the state: an edit's row-local update writes the same rows into it.
        self._reads_state = big
        logits, labels, settings = self.state.live_snapshot() if big else self.state.snapshot()

        def full(progress: Progress | None) -> tuple[Report, MapOverviews | None, str]:
            if not big:
                report = check_gradient(logits, labels, settings, progress)
                digest(report)  # the summary's whole-grid facts, here rather than on the GUI thread
                report.keep_ranking()  # and the worst cells
                return report, None, "full"
            part = None if progress is None else (lambda f: progress(0.8 * f))
            report = check_gradient(logits, labels, settings, part)
            prepare(report)  # per-row summaries: the next edit is row-local and O(N) for the totals
            digest(report)
            report.keep_ranking()
            overviews = MapOverviews.build(report, None if progress is None else (lambda f: progress(0.8 + 0.2 * f)))
            return report, overviews, "full"

        return full, logits.size > self.worker_threshold

    def _publish(self, result: object, duration: float) -> None:
        assert isinstance(result, tuple)
        report, overviews, path = result
        # A row-local update's base, and the rows whose inputs it found changed (edited logits, new labels).
        base, changed = (report.base, report.changed) if isinstance(report, RowPatch) else (None, None)
        if isinstance(report, RowPatch):
            # Only the newest request publishes, so the patch's base is still self.report, and no worker
            # job reads it now: write the changed rows in place (O(rows x C)) and replace it.
            patch = report
            report = patch.apply(inplace=True)
            n, c = report.logits.shape
            if n * c <= OVERVIEW_THRESHOLD:
                overviews = None
            elif overviews is None:  # not expected: a large grid's full check always builds them
                overviews = MapOverviews.build(report)
            else:
                overviews = overviews.updated(report, patch.rows, inplace=True)  # nothing for no rows
        assert isinstance(report, Report)
        self.report = report
        self.overviews = overviews
        self.last_path = path
        self._since_report = self._since_request
        self.last_duration = duration
        cell = self._cell
        explained = self._explained
        kept = (
            base is not None and changed is not None and cell is not None and explained is not None
            and explained[0] is base and explained[1] == cell and not bool(np.any(changed == cell[0]))
        )  # fmt: skip
        if kept and cell is not None:  # the edit left the cell's row alone: its explanation holds, bit for bit
            self._explained = (report, cell)
            self.reportReady.emit(report)
            return
        inline = self._explain_inline()  # before the report goes out: the views show both at once
        self.reportReady.emit(report)
        if inline:
            self.cellExplained.emit(self.explanation)

    def _on_cell_timer_timeout(self) -> None:
        if self._explain_inline():
            self.cellExplained.emit(self.explanation)

    def _explain_inline(self) -> bool:
        """Explain the selected cell in :attr:`report`: O(C) work, here for ordinary rows (True), in the worker
        for very wide ones (False: :attr:`explanation` is None until ``cellExplained``)."""
        self._cell_timer.stop()  # this explains the cell selected now
        self._explain_generation += 1  # a worker's explanation of an older report or cell is dropped
        report, cell = self.report, self._cell
        self.explanation, self._explained = None, None
        if report is None or cell is None:
            return True
        n, c = report.logits.shape
        if not (0 <= cell[0] < n and 0 <= cell[1] < c):
            return True
        at: tuple[Report, tuple[int, int]] = (report, cell)
        if c <= CELL_WORKER_THRESHOLD or report.settings.perturb == "all":
            self.explanation, self._explained = _explain_or_none(*at), at
            return True
        generation = self._explain_generation

        def work() -> None:
            self._explain_relay.done.emit(generation, (at, _explain_or_none(*at)), 0.0)

        self._executor.submit(work)
        return False

    def _on_explain_done(self, generation: int, result: object, _duration: float) -> None:
        if generation == self._explain_generation:
            assert isinstance(result, tuple)
            at, explanation = result
            self.explanation, self._explained = explanation, at
            self.cellExplained.emit(explanation)


def _explain_or_none(report: Report, cell: tuple[int, int]) -> CellExplanation | None:
    try:
        return explain_cell(report.logits, report.labels, cell, report.settings)
    except ValueError:
        return None


class SweepComputer(BackgroundJob):
    """Error-versus-eps curves for the selected cell (GUI thread, a few ms) or the grid maximum (worker).

    Signals
    -------
    sweepReady(SweepResult)
    """

    sweepReady = Signal(object)

    def __init__(self, state: ExplorerState, parent: QObject | None = None):
        super().__init__(state, parent)
        self._timer.setInterval(SWEEP_DEBOUNCE_MS)
        self.mode = "cell"
        self.overlay = False
        self.cell: tuple[int, int] | None = None
        self.result: SweepResult | None = None

    #: Settings that do not change the curves (the panel redraws its markers for them).
    _NOT_SWEPT = frozenset({"atol", "rtol"})

    def _on_state_changed(self, change: Change) -> None:
        if self._reads_state and self.busy and change.data:
            self._bump_generation()  # the running sweep reads the state's own logits: drop it (a new one follows)
        names = change.settings - self._NOT_SWEPT
        if not self.overlay:
            names -= {"scheme"}  # every scheme is swept already
        if self.mode == "grid":
            names -= {"eps"}  # the grid maximum is not tied to one step; a new eps only moves the line
        if change.data or names:
            self.schedule()

    def configure(
        self, mode: str | None = None, overlay: bool | None = None, cell: tuple[int, int] | None = None
    ) -> None:
        """Change what is swept; recomputes soon."""
        if mode is not None:
            if mode not in SWEEP_MODES:
                raise ValueError(f"unknown sweep mode {mode!r}")
            self.mode = mode
        if overlay is not None:
            self.overlay = overlay
        if cell is not None:
            self.cell = cell
        self.schedule()

    def _request(self) -> tuple[Callable[[Progress | None], object], bool] | None:
        # The state's own array (no copy of a large grid per sweep): in the worker, a change drops the run (above).
        logits, labels, settings = self.state.live_snapshot()
        n, c = logits.shape
        cell = self.cell if self.cell is not None and self.cell[0] < n and self.cell[1] < c else (0, 0)
        mode, overlay = self.mode, self.overlay
        kw = settings.loss_kwargs

        def work(progress: Progress | None) -> SweepResult:
            with np.errstate(over="ignore"):
                x = logits.astype(resolve_dtype(settings.dtype), copy=False)  # stored in that dtype already
            target = None if mode == "grid" else cell
            # The current eps is on the grid exactly, so the curve passes through the map's value there.
            perturb, here, evaluate = settings.perturb, settings.eps, settings.evaluate
            sweeps = {settings.dtype: eps_sweep(x, labels, target, progress=progress, perturb=perturb,
                                                evaluate=evaluate, include_eps=here, **kw)}  # fmt: skip
            if overlay:
                for dtype in DTYPE_NAMES:
                    if dtype != settings.dtype:
                        with np.errstate(over="ignore"):
                            xd = logits.astype(resolve_dtype(dtype))
                        sweeps[dtype] = eps_sweep(xd, labels, target, schemes=[settings.scheme], perturb=perturb,
                                                  evaluate=evaluate, include_eps=here, **kw)  # fmt: skip
            return SweepResult(mode, None if mode == "grid" else cell, sweeps, settings.dtype, settings.scheme,
                               settings.eps, overlay)  # fmt: skip

        in_worker = mode == "grid" or settings.perturb == "all" or logits.shape[1] > CELL_WORKER_THRESHOLD
        self._reads_state = in_worker
        return work, in_worker

    def _publish(self, result: object, duration: float) -> None:
        assert isinstance(result, SweepResult)
        self.result = result
        self.last_duration = duration
        self.sweepReady.emit(result)


def report_matches_state(report: Report | None, state: ExplorerState) -> bool:
    """True when ``report`` was computed from the state's current logits, labels and settings."""
    if report is None:
        return False
    logits, labels, settings = state.snapshot()
    with np.errstate(over="ignore"):
        rounded = logits.astype(settings.dtype)
    return (
        report.settings == settings
        and report.logits.shape == logits.shape
        and np.array_equal(report.logits, rounded, equal_nan=True)
        and np.array_equal(report.labels, labels)
    )


class UserCodeJob(QObject):
    """Runs the user's code (in its own process, via :mod:`explorer.usercode.runner`) from a worker thread.

    A newer run, :meth:`cancel` and :meth:`shutdown` stop the running one: its whole process group is
    stopped by the runner. Every run ends with ``finished``, whatever happened in the worker.

    Signals
    -------
    finished(object, object)
        ``(UserCheck or None, UserCodeError or None)`` for the newest request; older ones are dropped.
    busyChanged(bool)
    callsDone(int, int)
        Calls of the user's loss done so far and planned, while a long run goes on (about twice a second).
    """

    finished = Signal(object, object)
    busyChanged = Signal(bool)
    callsDone = Signal(int, int)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="UserCodeJob")
        self._relay = _Relay(self)
        self._relay.done.connect(self._on_worker_done)
        self._relay.calls.connect(self._on_worker_calls)
        self._generation = 0
        self._cancel = threading.Event()
        self.busy = False

    def start(self, code: object, logits: np.ndarray, labels: np.ndarray, settings: object, timeout_s: float,
              sweep_cell: tuple[int, int] | None = None) -> None:  # fmt: skip
        from explorer.usercode.runner import UserCodeError, check_user_code

        self._cancel.set()  # a newer run supersedes the running one
        self._cancel = cancel = threading.Event()
        self._generation += 1
        generation = self._generation

        def calls(done: int, planned: int) -> None:
            self._relay.calls.emit(generation, done, planned)

        def work() -> None:
            try:
                checked = check_user_code(code, logits, labels, settings, timeout_s, sweep_cell, cancel,  # type: ignore[arg-type]
                                          progress=calls)  # fmt: skip
                payload: tuple = (checked, None)
            except UserCodeError as exc:
                payload = (None, exc)
            except ValueError as exc:
                payload = (None, UserCodeError("bad", str(exc)))
            except Exception as exc:
                payload = (None, UserCodeError("crash", f"checking your code failed unexpectedly: {exc!r}"))
            self._relay.done.emit(generation, payload, 0.0)

        self._set_busy(True)
        self._executor.submit(work)

    def cancel(self) -> None:
        """Stop the running check (its processes are stopped; the result is dropped)."""
        from explorer.usercode.runner import UserCodeError

        if not self.busy:
            return
        self._cancel.set()
        self._generation += 1
        self._set_busy(False)
        self.finished.emit(None, UserCodeError("cancelled", "the check of your code was cancelled"))

    def _on_worker_calls(self, generation: int, done: int, planned: int) -> None:
        if generation == self._generation and self.busy:
            self.callsDone.emit(done, planned)

    def _on_worker_done(self, generation: int, payload: tuple, _duration: float) -> None:
        if generation != self._generation:
            return
        self._set_busy(False)
        self.finished.emit(*payload)

    def _set_busy(self, busy: bool) -> None:
        if busy != self.busy:
            self.busy = busy
            self.busyChanged.emit(busy)

    def shutdown(self) -> None:
        """Stop the user's processes now (the window is closing)."""
        self._generation += 1
        self._cancel.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
