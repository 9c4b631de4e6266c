"""Item models over ExplorerState: the logits grid and the labels column.

Models never open dialogs and never compute gradients. ``setData`` parses, asks
the EditController to apply the change, and returns False (emitting
``rejected(message)``) for bad input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont

from explorer.app.edits import EditController
from explorer.app.state import Change
from explorer.core import resolve_dtype
from explorer.files.numbers import parse_number
from explorer.gui.theme import LIGHT, Colors, current_colors, theme_manager

__all__ = [
    "DEFAULT_PRECISION",
    "LABEL_CELL_COLOR",
    "REFUSED_FLASH_MS",
    "LabelsModel",
    "LogitsModel",
    "check_cell_values",
    "format_value",
    "largest_cell_value",
]

#: Background of each row's label cell in the grid (the light theme's; see :class:`~explorer.gui.theme.Colors`).
LABEL_CELL_COLOR = LIGHT.label_cell
#: Significant digits the grid shows by default (the editor always shows the full value).
DEFAULT_PRECISION = 6
#: How long a refused cell stays marked.
REFUSED_FLASH_MS = 1500

_Index = QModelIndex | QPersistentModelIndex


def largest_cell_value(dtype: str) -> float:
    """Largest finite magnitude a logit may hold when the check runs in ``dtype``.

    Parameters
    ----------
    dtype : str
        A dtype name the core accepts (``float16``, ``bfloat16``, ``float32``, ``float64``).

    Returns
    -------
    float
        For example 65504.0 for float16.
    """
    dt = resolve_dtype(dtype)
    try:
        return float(np.finfo(dt).max)
    except ValueError:  # ml_dtypes (bfloat16) have their own finfo
        import ml_dtypes

        return float(ml_dtypes.finfo(dt).max)


def check_cell_values(values: ArrayLike, dtype: str, what: str = "the pasted block") -> None:
    """The one rule for what a logit cell accepts, typed or pasted: a finite number the dtype can hold.

    Parameters
    ----------
    values : array_like
        One value (typed) or a 2-D block (pasted).
    dtype : str
        The check's dtype name.
    what : str
        Where a bad value of a block was, for the message.

    Raises
    ------
    ValueError
        Naming the first bad value (and its row and column within a block).
    """
    a = np.asarray(values, dtype=np.float64)
    limit = largest_cell_value(dtype)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(a) <= limit)  # NaN compares False: refused as well
    if not np.any(bad):
        return
    if a.ndim == 0:
        v, where = float(a), ""
    else:
        first = tuple(int(k) for k in np.argwhere(bad)[0])
        v = float(a[first])
        where = f" at row {first[0]}, column {first[-1]} of {what}" if a.ndim == 2 else f" in {what}"
    if not np.isfinite(v):
        raise ValueError(f"{v!r}{where} is not a finite number")
    raise ValueError(f"{v:g}{where} overflows {dtype} (largest finite {limit:g})")


def format_value(v: float, digits: int = DEFAULT_PRECISION) -> str:
    """Display text of a logit with ``digits`` significant digits (``%g``: no trailing zeros).

    Examples
    --------
    >>> format_value(-0.13245678), format_value(-0.13245678, 3), format_value(120.0)
    ('-0.132457', '-0.132', '120')
    """
    return f"{v:.{digits}g}"


class _StateModel(QAbstractTableModel):
    """Shared: state notifications, theme colours, and the brief mark of a refused cell."""

    rejected = Signal(str)
    #: A refused edit at (row, column): views may bring it into view.
    refusedAt = Signal(int, int)

    def __init__(self, controller: EditController, parent: Any = None):
        super().__init__(parent)
        self.controller = controller
        self.state = controller.state
        self._shape = self.state.shape
        self._colors = current_colors()
        self._refused: tuple[int, int] | None = None
        self._refused_timer = QTimer(self)
        self._refused_timer.setSingleShot(True)
        self._refused_timer.setInterval(REFUSED_FLASH_MS)
        self._refused_timer.timeout.connect(self._on_refused_timer_timeout)
        self.state.changed.connect(self._on_state_changed)
        theme_manager().changed.connect(self._on_theme_changed)

    @property
    def refused_cell(self) -> tuple[int, int] | None:
        """The cell marked as refused right now (None when no mark shows)."""
        return self._refused

    def _refuse(self, row: int, col: int, message: str) -> None:
        """Report a refused edit and mark its cell for :data:`REFUSED_FLASH_MS`."""
        self._clear_refused()
        self._refused = (row, col)
        self._refused_timer.start()
        self._emit_colors(row, col, row, col)
        self.rejected.emit(message)
        self.refusedAt.emit(row, col)

    def _clear_refused(self) -> None:
        cell, self._refused = self._refused, None
        if cell is not None and cell[0] < self.rowCount() and cell[1] < self.columnCount():
            self._emit_colors(cell[0], cell[1], cell[0], cell[1])

    def _on_refused_timer_timeout(self) -> None:
        self._clear_refused()

    def _emit_colors(self, r0: int, c0: int, r1: int, c1: int) -> None:
        roles = [Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole]
        self.dataChanged.emit(self.index(r0, c0), self.index(r1, c1), roles)

    def _on_theme_changed(self, colors: Colors) -> None:
        self._colors = colors
        n, c = self.rowCount(), self.columnCount()
        if n and c:
            self._emit_colors(0, 0, n - 1, c - 1)

    def _colours(self, background: QColor | None, text: QColor | None, role: int, cell: tuple[int, int]) -> Any:
        """Background and text colours of a cell: the refused mark wins, else the given ones."""
        if self._refused == cell:
            background, text = self._colors.refused_cell, self._colors.label_text
        if role == Qt.ItemDataRole.BackgroundRole:
            return QBrush(background) if background is not None else None
        return QBrush(text) if text is not None else None

    def _on_state_changed(self, change: Change) -> None:
        raise NotImplementedError

    def _reset_if_shape_changed(self) -> bool:
        if self.state.shape != self._shape:
            self.beginResetModel()
            self._shape = self.state.shape
            self.endResetModel()
            return True
        return False


class LogitsModel(_StateModel):
    """Rows are samples, columns are classes; EditRole data is the float value.

    The display text has :attr:`precision` significant digits (:meth:`set_precision`).
    """

    precision = DEFAULT_PRECISION

    def set_precision(self, digits: int) -> None:
        """Show ``digits`` significant digits (1 … 17) in every cell."""
        digits = min(max(int(digits), 1), 17)
        if digits == self.precision:
            return
        self.precision = digits
        n, c = self.rowCount(), self.columnCount()
        if n and c:
            self.dataChanged.emit(self.index(0, 0), self.index(n - 1, c - 1), [Qt.ItemDataRole.DisplayRole])

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else self._shape[0]

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else self._shape[1]

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        i, j = index.row(), index.column()
        if not (0 <= i < self._shape[0] and 0 <= j < self._shape[1]):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return format_value(float(self.state.logits[i, j]), self.precision)
        if role == Qt.ItemDataRole.EditRole:
            return float(self.state.logits[i, j])
        if role == Qt.ItemDataRole.ToolTipRole:
            label = int(self.state.labels[i])
            mark = " (this row's label)" if label == j else ""
            return f"sample {i}, class {j}{mark}: {float(self.state.logits[i, j])!r}"
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        label = int(self.state.labels[i])
        if role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole):
            colors = self._colors
            if label == j:
                return self._colours(colors.label_cell, colors.label_text, role, (i, j))
            if not 0 <= label < self._shape[1]:
                return self._colours(colors.ignored_cell, colors.ignored_text, role, (i, j))
            return self._colours(None, None, role, (i, j))
        if role == Qt.ItemDataRole.FontRole and label == j:
            font = QFont()
            font.setBold(True)
            return font
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return str(section)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"class {section}" if orientation == Qt.Orientation.Horizontal else f"sample {section}"
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        i, j = index.row(), index.column()
        try:
            v = parse_number(str(value), what="logit") if isinstance(value, str) else float(value)
            check_cell_values(v, self.state.settings.dtype)
            self.controller.set_logit(i, j, v)
        except (ValueError, TypeError) as exc:
            self._refuse(i, j, f"Cell ({i}, {j}) unchanged: {exc}")
            return False
        return True

    def _on_state_changed(self, change: Change) -> None:
        if change.shape and self._reset_if_shape_changed():
            return
        n, c = self._shape
        if change.logits is not None:
            r0, c0, r1, c1 = change.logits
            self.dataChanged.emit(self.index(r0, c0), self.index(min(r1, n) - 1, min(c1, c) - 1))
        if change.labels and n and c:
            roles = [Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.FontRole,
                     Qt.ItemDataRole.ToolTipRole]  # fmt: skip
            self.dataChanged.emit(self.index(0, 0), self.index(n - 1, c - 1), roles)


class LabelsModel(_StateModel):
    """One column: each row's label (class index, or the ignore index); EditRole data is the int."""

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else self._shape[0]

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else 1

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.column() != 0 or not 0 <= index.row() < self._shape[0]:
            return None
        label = int(self.state.labels[index.row()])
        if role == Qt.ItemDataRole.DisplayRole:
            return str(label) if 0 <= label < self._shape[1] else f"{label} (ignored)"
        if role == Qt.ItemDataRole.EditRole:
            return label
        if role == Qt.ItemDataRole.ToolTipRole:
            return (
                f"Label of sample {index.row()}: a class index 0..{self._shape[1] - 1}, "
                f"or {self.state.settings.ignore_index} (the ignore index) to leave the row out"
            )
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole):
            colors = self._colors
            if 0 <= label < self._shape[1]:
                return self._colours(colors.label_cell, colors.label_text, role, (index.row(), 0))
            return self._colours(colors.ignored_cell, colors.ignored_text, role, (index.row(), 0))
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return "label" if orientation == Qt.Orientation.Horizontal else str(section)
        if role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Horizontal:
            return "The target class of each sample"
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        i = index.row()
        try:
            if isinstance(value, str):
                text = value.strip().removesuffix("(ignored)").strip()
                v = parse_number(text, what="label")
            else:
                v = float(value)
            if v != int(v):
                raise ValueError(f"{value!r} is not a whole number")
            self.controller.set_label(i, int(v))
        except (ValueError, TypeError, OverflowError) as exc:
            self._refuse(i, 0, f"Label of row {i} unchanged: {exc}")
            return False
        return True

    def _on_state_changed(self, change: Change) -> None:
        if change.shape and self._reset_if_shape_changed():
            return
        if change.labels or "ignore_index" in change.settings:
            n = self._shape[0]
            if n:
                self.dataChanged.emit(self.index(0, 0), self.index(n - 1, 0))
