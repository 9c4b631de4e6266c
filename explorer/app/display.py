"""The display model: the one owner of what is on screen.

Every view (the three maps, the hover tooltip, the cell inspector, the sweep plot and
its caption, the summary, the status bar, the exports) reads :class:`Display`; none
keeps its own copy of a result. What it holds:

* the **source**: the built-in cross-entropy check, or the user's own code;
* that source's :class:`~explorer.core.Report` and :class:`~explorer.core.sweep.SweepResult`;
* the **selected cell**, and the built-in check's explanation of it.

Values shown in two places come from one accessor (:meth:`Display.values_at`), so the
map, the tooltip, the inspector header and the summary cannot disagree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from explorer.app.jobs import Recomputer, SweepComputer
from explorer.core import Report
from explorer.core.explain import CellExplanation
from explorer.core.sweep import SweepResult
from explorer.usercode.runner import UserCheck

__all__ = ["CellValues", "Display", "DisplayChange", "Source"]


class Source(enum.Enum):
    """Whose gradient the views show."""

    BUILTIN = "builtin"
    USER = "user"


@dataclass(frozen=True)
class DisplayChange:
    """What one ``Display.changed`` notification covers."""

    source: bool = False
    report: bool = False
    sweep: bool = False
    cell: bool = False
    explanation: bool = False


@dataclass(frozen=True)
class CellValues:
    """One cell of the shown report: the numbers every view prints for it.

    Attributes
    ----------
    cell : (i, j)
    analytic, numeric : float
        The maps' values at the cell (float64 of the report's arrays).
    abs_err, rel_err : float
    passed : bool
        The verdict of this element.
    tolerance : float
        Its tolerance under the verdict in force (noise: a multiple of its expected error).
    """

    cell: tuple[int, int]
    analytic: float
    numeric: float
    abs_err: float
    rel_err: float
    passed: bool
    tolerance: float = float("nan")


class Display(QObject):
    """What is on screen: source, report, sweep, selected cell and its explanation.

    Signals
    -------
    changed(DisplayChange)
        Once per logical change; the flags say what changed.
    notice(str)
        A sentence for the user (e.g. the user's results were replaced because the problem changed).
    """

    changed = Signal(object)
    notice = Signal(str)

    def __init__(self, recomputer: Recomputer, sweeper: SweepComputer, parent: QObject | None = None):
        super().__init__(parent)
        self.recomputer = recomputer
        self.sweeper = sweeper
        self._source = Source.BUILTIN
        self._builtin_report: Report | None = None
        self._builtin_sweep: SweepResult | None = None
        self._user: UserCheck | None = None
        self._cell: tuple[int, int] | None = None
        self._explanation: CellExplanation | None = None
        recomputer.reportReady.connect(self._on_recomputer_report_ready)
        recomputer.cellExplained.connect(self._on_recomputer_cell_explained)
        sweeper.sweepReady.connect(self._on_sweeper_sweep_ready)

    # ---------------------------------------------------------------- reading
    @property
    def source(self) -> Source:
        return self._source

    @property
    def user_check(self) -> UserCheck | None:
        """The user's last results (shown when the source is :attr:`Source.USER`)."""
        return self._user

    @property
    def report(self) -> Report | None:
        """The report the views show."""
        if self._source is Source.USER and self._user is not None:
            return self._user.report
        return self._builtin_report

    @property
    def builtin_report(self) -> Report | None:
        return self._builtin_report

    @property
    def sweep(self) -> SweepResult | None:
        """The error-versus-eps curves the views show."""
        if self._source is Source.USER and self._user is not None:
            return self._user.sweep
        return self._builtin_sweep

    @property
    def cell(self) -> tuple[int, int] | None:
        """The selected cell (outlined on every map, explained by the inspector, swept in cell mode)."""
        return self._cell

    @property
    def explanation(self) -> CellExplanation | None:
        """The built-in check's evaluation of the selected cell (None for the user's code, or no cell)."""
        if self._source is Source.USER:
            return None
        e = self._explanation
        return e if e is not None and e.cell == self._cell else None

    @property
    def duration(self) -> float:
        if self._source is Source.USER and self._user is not None:
            return float(self._user.result.duration_s)
        return float(self.recomputer.last_duration)

    @property
    def source_name(self) -> str:
        """How the views name the shown gradient's origin."""
        if self._source is Source.USER and self._user is not None:
            code = self._user.code
            if not code.grad_name:  # no grad function: the framework's autodiff of the loss is checked
                return f"your code ({code.loss_name}, gradient by autodiff)"
            return f"your code ({code.loss_name} / {code.grad_name})"
        return "built-in cross-entropy"

    @property
    def gradient_title(self) -> str:
        """Title of the map of the gradient being checked."""
        return "Your gradient" if self._source is Source.USER else "Analytic gradient"

    def values_at(self, cell: tuple[int, int] | None) -> CellValues | None:
        """The shown report's numbers at ``cell`` (None when there is no report or the cell is off the grid)."""
        report = self.report
        if report is None or cell is None:
            return None
        i, j = int(cell[0]), int(cell[1])
        n, c = report.grad_analytic.shape
        if not (0 <= i < n and 0 <= j < c):
            return None
        cmp, at = report.comparison, (slice(i, i + 1), slice(j, j + 1))  # one cell of each map, not the maps
        return CellValues(
            (i, j),
            float(report.grad_analytic[i, j]),
            float(report.grad_numeric[i, j]),
            float(cmp.region("abs_err", *at)[0, 0]),
            float(cmp.region("rel_err", *at)[0, 0]),
            bool(cmp.passed[i, j]),
            float(cmp.region("tolerance", *at, report.grad_analytic)[0, 0]),
        )

    # ---------------------------------------------------------------- writing
    def select(self, cell: tuple[int, int] | None) -> None:
        """Select a cell everywhere (None clears the selection)."""
        if cell is not None:
            cell = (int(cell[0]), int(cell[1]))
            report = self._builtin_report
            if report is not None:
                n, c = report.grad_analytic.shape
                if not (0 <= cell[0] < n and 0 <= cell[1] < c):
                    return
        if cell == self._cell:
            return
        self._cell = cell
        self.recomputer.set_cell(cell)
        if cell is not None:
            self.sweeper.configure(cell=cell)
        self.changed.emit(DisplayChange(cell=True, explanation=True))

    def show_user(self, check: UserCheck) -> None:
        """Show the user's code's results (from the user-code job)."""
        self._user = check
        self._source = Source.USER
        self.changed.emit(DisplayChange(source=True, report=True, sweep=True, explanation=True))

    def show_builtin(self) -> None:
        """Show the built-in check again."""
        if self._source is Source.BUILTIN:
            return
        self._source = Source.BUILTIN
        self.changed.emit(DisplayChange(source=True, report=True, sweep=True, explanation=True))

    # ------------------------------------------------------------------ slots
    def _on_recomputer_report_ready(self, report: Report) -> None:
        previous = self._builtin_report
        self._builtin_report = report
        # The recomputer's explanation belongs to this report (None while it is computed): never an older one.
        explained = self.recomputer.explanation is not self._explanation
        self._explanation = self.recomputer.explanation
        change = DisplayChange(report=True, explanation=explained)
        if self._source is Source.USER:
            # The problem changed under the user's results: they no longer describe the grid.
            self._source = Source.BUILTIN
            change = DisplayChange(source=True, report=True, sweep=True, explanation=True)
            self.notice.emit(
                "The problem changed: the maps show the built-in check again. "
                "Check your code again to compare on the new logits."
            )
        n, c = report.grad_analytic.shape
        cell = self._cell
        new_shape = previous is None or previous.grad_analytic.shape != (n, c)
        if cell is not None and (new_shape or not (cell[0] < n and cell[1] < c)):
            cell = None  # a problem of another shape (a file opened, a resize): its worst cell is selected
        if cell is None:
            cell = _first_selection(report)
        if cell != self._cell:
            self._cell = cell
            self.recomputer.set_cell(cell)
            if cell is not None:
                self.sweeper.configure(cell=cell)
            change = DisplayChange(change.source, True, change.sweep, True, True)
        self.changed.emit(change)

    def _on_recomputer_cell_explained(self, explanation: CellExplanation | None) -> None:
        if explanation is self._explanation:
            return  # shown with its report already
        self._explanation = explanation
        self.changed.emit(DisplayChange(explanation=True))

    def _on_sweeper_sweep_ready(self, result: SweepResult) -> None:
        self._builtin_sweep = result
        if self._source is Source.BUILTIN:
            self.changed.emit(DisplayChange(sweep=True))


def _first_selection(report: Report) -> tuple[int, int] | None:
    """The cell selected when nothing is: the worst cell (largest error), else the first one."""
    worst = report.worst
    if len(worst) == 2:
        return int(worst[0]), int(worst[1])
    n, c = report.grad_analytic.shape
    return (0, 0) if n and c else None
