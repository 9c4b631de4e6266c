"""The worst cells of the shown report: a sortable table (``worstCellsTable``); a click selects the cell.

The rows come from the core's ranking (:meth:`explorer.core.Report.worst_cells`: failing cells
first, each group by ``|numeric − analytic|``), so the table, the summary's worst cell and the
CLI's list agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableView, QVBoxLayout, QWidget

from explorer.app.display import Display, DisplayChange
from explorer.app.report_text import element_verdict, verdict_of
from explorer.core import Report
from explorer.gui.shown_refresh import RefreshWhenShown

__all__ = ["VERDICTS", "WORST_CELLS_SHOWN", "WorstCellsModel", "WorstCellsPanel"]

#: How many cells the table lists.
WORST_CELLS_SHOWN = 200
COLUMNS = ("rank", "sample", "class", "analytic", "numeric", "|error|", "relative", "verdict")
VERDICT_COLUMN = COLUMNS.index("verdict")
#: The verdict column's words, in the order it sorts by (failing cells first, then the ones the check cannot tell).
VERDICTS = ("FAIL", "blind", "pass")
#: Sort key role: the raw number of a cell (display text sorts as strings).
SORT_ROLE = Qt.ItemDataRole.UserRole

_Index = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()


class WorstCellsModel(QAbstractTableModel):
    """One row per listed cell: rank, sample, class, both gradients, both errors and the verdict."""

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self._rows: list[tuple[int, int, int, float, float, float, float, int]] = []
        self._texts: list[tuple[str, ...]] = []
        self.report: Report | None = None

    def set_report(self, report: Report | None, k: int = WORST_CELLS_SHOWN) -> None:
        """List the ``k`` worst cells of ``report`` (none when it is None); the views are told only when the
        listed rows changed (an edit elsewhere in a large grid leaves them as they were)."""
        old = self._rows
        self.report = report
        rows = self._rows_of(report, k)
        if rows == old:
            return
        texts = [tuple(_text(v, c) for c, v in enumerate(row)) for row in rows]
        if len(rows) == len(old) and all(a[:3] == b[:3] for a, b in zip(rows, old, strict=True)):
            # The same cells in the same order (an edit elsewhere changed their values): update in place, which
            # costs the views far less than a reset (no new layout, no re-sort of every row).
            self._rows, self._texts = rows, texts
            changed = [r for r, (a, b) in enumerate(zip(rows, old, strict=True)) if a != b]
            self.dataChanged.emit(self.index(changed[0], 0), self.index(changed[-1], len(COLUMNS) - 1))
            return
        self.beginResetModel()
        self._rows, self._texts = rows, texts
        self.endResetModel()

    @staticmethod
    def _rows_of(report: Report | None, k: int) -> list[tuple[int, int, int, float, float, float, float, int]]:
        rows: list[tuple[int, int, int, float, float, float, float, int]] = []
        if report is not None and report.grad_analytic.ndim == 2:
            cells = report.worst_cells(k)
            if len(cells):
                i, j = cells[:, 0], cells[:, 1]
                ana = report.grad_analytic[i, j].astype(np.float64)
                num = report.grad_numeric[i, j].astype(np.float64)
                cmp = report.comparison  # the listed cells of the error maps (never the whole maps)
                abs_err, rel_err = cmp.at("abs_err", i, j), cmp.at("rel_err", i, j)
                tolerance = cmp.at("tolerance", i, j, report.grad_analytic)
                passed = report.comparison.passed[i, j]
                columns = zip(i, j, ana, num, abs_err, rel_err, passed, tolerance, strict=True)
                rows = [
                    (rank + 1, int(a), int(b), float(x), float(y), float(e), float(r),
                     VERDICTS.index(element_verdict(bool(p), float(t), float(x))))
                    for rank, (a, b, x, y, e, r, p, t) in enumerate(columns)
                ]  # fmt: skip
        return rows

    def cell(self, row: int) -> tuple[int, int]:
        """The grid cell listed in ``row``."""
        r = self._rows[row]
        return r[1], r[2]

    def rowCount(self, parent: _Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._rows) and 0 <= index.column() < len(COLUMNS)):
            return None
        value = self._rows[index.row()][index.column()]
        if role == SORT_ROLE:
            return value if index.column() == VERDICT_COLUMN else float(value)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._texts[index.row()][index.column()]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            i, j = self.cell(index.row())
            if index.column() == VERDICT_COLUMN and value == VERDICTS.index("blind"):
                return (f"sample {i}, class {j} passes only as its tolerance is as large as its gradient: the check "
                        "cannot tell here (a larger eps, another scheme or a wider dtype sharpens it)")  # fmt: skip
            return f"sample {i}, class {j}: click to select it on the grid and the maps"
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section] if 0 <= section < len(COLUMNS) else None
        return None


def _text(value: object, column: int) -> str:
    """A listed value as the table shows it."""
    if column == VERDICT_COLUMN:
        return VERDICTS[int(value)]  # type: ignore[call-overload]
    if isinstance(value, int):
        return str(value)
    return f"{value:.3g}" if column >= 5 else f"{value:.6g}"


class WorstCellsPanel(QWidget):
    """The table of the worst cells, sortable by any column, with a line saying how many fail.

    Signals
    -------
    cellChosen(int, int)
        The user clicked (or moved the current row to) a listed cell.
    """

    cellChosen = Signal(int, int)

    def __init__(self, display: Display | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.display = display
        self.model = WorstCellsModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView(objectName="worstCellsTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        # Columns sized once for the widest text each can hold (not measured from the rows on every report,
        # which read every cell through the model after each edit); the user may drag them wider.
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        metrics = self.table.fontMetrics()
        for c, name in enumerate(COLUMNS):
            widest = {0: "99999", 1: "8191", 2: "262143", 7: "blind"}.get(c, "-8.88889e-308")
            pad = 4 * metrics.horizontalAdvance("0")
            self.table.setColumnWidth(c, max(metrics.horizontalAdvance(name), metrics.horizontalAdvance(widest)) + pad)
        self.table.setToolTip("The worst cells, failing ones first; click a column to sort, a row to select the cell")
        self.table.clicked.connect(self._on_table_clicked)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_current_row_changed)
        self.caption = QLabel(objectName="worstCellsCaption")
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.caption)
        layout.addWidget(self.table, 1)
        self._choosing = False
        self._outdated = False
        self._shown = RefreshWhenShown(self, lambda: self.show_report(self.display.report if self.display else None))
        if display is not None:
            self._shown.stale = True  # nothing listed yet
            display.changed.connect(self._on_display_changed)

    def _on_display_changed(self, change: DisplayChange) -> None:
        assert self.display is not None
        if (change.report or change.source) and self.display.report is not self.model.report:
            self._shown.request()  # a hidden tab is listed when it is shown: an edit then costs nothing here

    def set_outdated(self, outdated: bool) -> None:
        """Say that the list is of the previous grid while a grid of another shape is checked."""
        if outdated != self._outdated:
            self._outdated = outdated
            self.show_report(self.model.report)

    def show_report(self, report: Report | None) -> None:
        self.model.set_report(report)
        self._show_caption(report)
        if self._outdated and report is not None:
            self.caption.setText(f"The previous grid: the new one is being checked. {self.caption.text()}")

    def _show_caption(self, report: Report | None) -> None:
        if report is None:
            self.caption.setText("Computing…")
            return
        cmp = report.comparison
        listed = self.model.rowCount()
        verdict = verdict_of(report)  # the summary's word, so the two cannot disagree
        if cmp.n_failed:
            self.caption.setText(f"FAIL: {cmp.n_failed:,} of {cmp.passed.size:,} elements fail; the {listed} worst, "
                                 "failing first")  # fmt: skip
        elif not verdict.ok:
            self.caption.setText(f"{verdict.word}: {verdict.detail}. The {listed} largest errors; \"blind\" marks "
                                 "cells that pass only as their tolerance is as large as their gradient")  # fmt: skip
        else:
            self.caption.setText(f"PASS: every element passes; the {listed} largest errors")

    def _choose(self, proxy_index: QModelIndex) -> None:
        if proxy_index.isValid():
            row = self.proxy.mapToSource(proxy_index).row()
            self.cellChosen.emit(*self.model.cell(row))

    def _on_table_clicked(self, index: QModelIndex) -> None:
        self._choose(index)

    def _on_table_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._choose(current)
