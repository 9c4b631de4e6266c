"""The editable grid: a labels column beside the logits table, with copy and paste.

Paste checks the size of the clipboard text before reading a single number (rows and
columns are estimated from line breaks and the first row), refuses a block that cannot
fit with one message, and parses large text (over :data:`ASYNC_PASTE_CHARS` characters
or :data:`ASYNC_PASTE_CELLS` values) in a worker thread; the window stays responsive and
the block lands as one undoable step. A newer paste or any edit supersedes a paste that
is still being read. Pasted values obey the same rule as typed ones
(:func:`~explorer.gui.table_models.check_cell_values`).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QLocale, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QFontMetrics, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

from explorer.app.edits import EditController
from explorer.app.state import MAX_CLASSES, MAX_SAMPLES, Change
from explorer.files.numbers import format_block, parse_block
from explorer.gui.table_models import LabelsModel, LogitsModel, check_cell_values, format_value

__all__ = [
    "ASYNC_PASTE_CELLS",
    "ASYNC_PASTE_CHARS",
    "GridPanel",
    "NumberDelegate",
    "column_width",
    "estimate_block_shape",
    "parse_block_in_chunks",
    "text_width",
    "width_sample",
]

#: Narrowest logit column (px), so a column of zeros can still be clicked.
CELL_WIDTH = 36
#: Column widths are measured on at most this many cells (all of them in smaller grids; in larger ones
#: the extremes of every column and an even sample): measuring is O(1) in the grid's size.
WIDTH_SAMPLE_CELLS = 4096
#: Values per piece when the extremes of a large grid are found (bounded scratch memory: 1 MiB; the pass runs
#: beside a check in the worker, and 1 << 20 added 8 MiB to the window's peak at 32 x 262,144).
EXTREMES_CHUNK = 1 << 17
#: Padding added to the widest text of a column (px): the cell's margins and the focus frame.
CELL_PADDING = 14
#: Grids with more cells than this find the extremes for their column width in a worker thread (one pass over
#: 2^25 cells is about 60 ms, more than a turn of the event loop should take).
WIDTH_WORKER_CELLS = 1 << 22
#: Pasted text longer than this (characters) is parsed in a worker thread.
ASYNC_PASTE_CHARS = 1_000_000
#: Pasted text with more values than this (estimated) is parsed in a worker thread.
ASYNC_PASTE_CELLS = 100_000
#: The worker parses large tables in pieces of about this many characters, so no single call
#: holds the interpreter lock for long (the window keeps drawing) and a superseded paste stops early.
PASTE_CHUNK_CHARS = 256 * 1024

_NONBLANK_LINE = re.compile(r"[^\s\x00]")
_BLANK_LINE = re.compile(r"\n[^\S\n]*(?=\n)")
_TOKEN = re.compile(r"[^\s,;\[\]()]+")
_LINE_NO = re.compile(r"^line (\d+)")
_NUMPY_WORDS = re.compile(r"array\(|dtype\s*=\s*[\w.]+")


def estimate_block_shape(text: str, max_rows: int = MAX_SAMPLES, max_cols: int = MAX_CLASSES) -> tuple[int, int]:
    """Rows x columns of pasted text, estimated without parsing it.

    Rows are the lines (blank lines are discounted only when there seem to be more than
    ``max_rows``; for a printed NumPy array, rows are its inner ``[``); columns are the
    values of the first row, counted in at most ``64 * (max_cols + 1)`` characters of it.
    The estimate costs a few passes over the text in C, never a parse.

    Parameters
    ----------
    text : str
    max_rows : int
        Rows that fit: above it, blank lines are counted out exactly.
    max_cols : int
        Counting the first row stops past this many columns.

    Returns
    -------
    (rows, cols) : tuple of int
        ``(0, 0)`` for text without any non-blank character.

    Examples
    --------
    >>> estimate_block_shape("1\\t2\\t3\\n4\\t5\\t6\\n")
    (2, 3)
    >>> estimate_block_shape("array([[ 1.5, -2. ],\\n       [ 3. ,  4. ]])")
    (2, 2)
    """
    if "[" in text:  # a printed NumPy array (``in`` is a fast memchr; ``count`` only then)
        rows = max(text.count("[") - 1, 1)
        start = text.rfind("[", 0, text.find("]") if "]" in text else len(text)) + 1
        end = text.find("]", start)
        first = text[start : end if end >= 0 else len(text)]
    else:
        match = _NONBLANK_LINE.search(text)
        if match is None:
            return 0, 0
        end = len(text)
        while text[end - 1].isspace():  # stops: there is a non-blank character
            end -= 1
        rows, pos = 1, text.find("\n", match.start(), end)
        while pos >= 0 and rows <= max_rows:  # at most max_rows + 1 fast finds, not a pass over all the text
            rows += 1
            pos = text.find("\n", pos + 1, end)
        if rows > max_rows:  # only then: count every line, and discount blank ones
            rows = text.count("\n", match.start(), end) + 1 - len(_BLANK_LINE.findall(text, match.start(), end))
        end = text.find("\n", match.start())
        first = text[match.start() : end if end >= 0 else len(text)]
    first = _NUMPY_WORDS.sub(" ", first[: 64 * (max_cols + 1)])
    cols = len(_TOKEN.findall(first))
    return (rows, cols) if cols else (0, 0)


def parse_block_in_chunks(
    text: str,
    max_cells: int,
    cancelled: Callable[[], bool] = lambda: False,
    progress: Callable[[float], None] = lambda _done: None,
) -> NDArray | None:
    """:func:`~explorer.files.numbers.parse_block` over pieces of whole lines; None when ``cancelled()``.

    A printed NumPy array (rows may wrap over lines) and short text are parsed in one piece.
    ``progress`` is called with the fraction of the text read after each piece.

    Raises
    ------
    ValueError
        As ``parse_block`` (line numbers count from the start of ``text``), or for rows of
        different lengths in different pieces.
    """
    if len(text) <= PASTE_CHUNK_CHARS or "[" in text or "(" in text:
        return parse_block(text, max_cells=max_cells)
    parts: list[NDArray] = []
    cells = 0
    first_line = pos = 0
    while pos < len(text):
        if cancelled():
            return None
        end = text.find("\n", pos + PASTE_CHUNK_CHARS)
        end = len(text) if end < 0 else end + 1
        chunk = text[pos:end]
        if _NONBLANK_LINE.search(chunk):
            try:
                block = parse_block(chunk, max_cells=max_cells)
            except ValueError as exc:
                raise ValueError(_renumber(str(exc), first_line)) from None
            if parts and block.shape[1] != parts[0].shape[1]:
                widths = f"{parts[0].shape[1]}, {block.shape[1]}"
                raise ValueError(f"the pasted rows have different lengths ({widths}): not a rectangle")
            cells += block.size
            if cells > max_cells:
                raise ValueError(f"the pasted block has more than {max_cells} values")
            parts.append(block)
        first_line += chunk.count("\n")
        pos = end
        progress(pos / len(text))
    if not parts:
        raise ValueError("the clipboard holds no numbers")
    return parts[0] if len(parts) == 1 else np.vstack(parts)


def _renumber(message: str, shift: int) -> str:
    """``line N: ...`` of a piece, as a line number of the whole text."""
    return _LINE_NO.sub(lambda m: f"line {int(m.group(1)) + shift}", message, count=1)


def _extreme_values(flat: NDArray) -> NDArray:
    """The smallest and largest finite values and ± the smallest nonzero magnitude of ``flat`` (1-D), in float64.

    One pass over pieces of :data:`EXTREMES_CHUNK` values, so a 32 x 262,144 grid costs a few milliseconds and
    no copy of the grid (its text is widest at these values: the longest exponents, signs and leading zeros).
    """
    lo, hi, tiny = math.inf, -math.inf, math.inf
    work = np.float64 if flat.dtype == np.float64 else np.float32  # exact for every stored dtype, half the bytes
    for start in range(0, flat.size, EXTREMES_CHUNK):
        chunk = np.asarray(flat[start : start + EXTREMES_CHUNK], dtype=work)
        a, b = float(chunk.min()), float(chunk.max())
        if not (math.isfinite(a) and math.isfinite(b)):  # rare: leave out what is not a number
            chunk = chunk[np.isfinite(chunk)]
            if not chunk.size:
                continue
            a, b = float(chunk.min()), float(chunk.max())
        lo, hi = min(lo, a), max(hi, b)
        magnitude = np.abs(chunk)
        tiny = min(tiny, float(np.min(magnitude, where=magnitude != 0, initial=np.inf)))
    found = [v for v in (lo, hi, -tiny, -max(abs(lo), abs(hi))) if math.isfinite(v)]
    return np.array(found, dtype=np.float64)


def column_width(values: NDArray, metrics: QFontMetrics, digits: int, bold: bool = False) -> int:
    """Width (px) that shows every value of ``values`` formatted with ``digits`` significant digits.

    Values are measured on a bounded sample (:data:`WIDTH_SAMPLE_CELLS`): all of them when few,
    else the smallest and largest values, the smallest magnitude (negated) and an even stride
    through the rest (the text's length grows with the exponent and the sign, which the extremes
    cover). The extremes take one pass in pieces, never a copy of the grid.

    Parameters
    ----------
    values : ndarray
        Any shape; float.
    metrics : QFontMetrics
        Of the table's font.
    digits : int
        Significant digits shown.
    bold : bool
        Leave room for bold text (the label cells).

    Returns
    -------
    int
    """
    return text_width(width_sample(values), metrics, digits, bold)


def width_sample(values: NDArray) -> NDArray:
    """The values whose text is the widest a column of ``values`` needs (float64, at most about
    :data:`WIDTH_SAMPLE_CELLS` + 4): all of them when few, else an even stride and the extremes. No Qt:
    a worker thread may find them."""
    flat = np.asarray(values).ravel()
    if flat.size > WIDTH_SAMPLE_CELLS:
        sample = np.asarray(flat[:: max(1, flat.size // WIDTH_SAMPLE_CELLS)], dtype=np.float64)
        return np.concatenate([sample[np.isfinite(sample)], _extreme_values(flat)])
    return np.array(flat, dtype=np.float64)  # a copy: it is kept, and the grid changes under it


def text_width(sample: NDArray, metrics: QFontMetrics, digits: int, bold: bool = False) -> int:
    """Width (px) of the widest of ``sample`` formatted with ``digits`` significant digits, padded."""
    texts = {format_value(float(v), digits) for v in sample} or {"0"}
    widest = max(metrics.horizontalAdvance(t) for t in texts)
    if bold:
        widest = int(widest * 1.12) + 2
    return max(CELL_WIDTH, widest + CELL_PADDING)


class _PasteRelay(QObject):
    """Carries a worker's parse result (and a large grid's width sample) to the GUI thread (queued signals)."""

    parsed = Signal(int, object, str)
    progress = Signal(int, int)
    measured = Signal(int, object)


class NumberDelegate(QStyledItemDelegate):
    """A line editor in the C locale showing the full-precision value.

    It does not block keystrokes with a validator: the model parses on commit and
    explains a refusal in the status bar (a validator would silently eat the key).
    """

    def createEditor(
        self, parent: QWidget, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QWidget:
        editor = QLineEdit(parent)
        editor.setLocale(QLocale.c())
        editor.setFrame(False)
        return editor

    def setEditorData(self, editor: QWidget, index: QModelIndex | QPersistentModelIndex) -> None:
        value = index.data(Qt.ItemDataRole.EditRole)
        if isinstance(editor, QLineEdit):
            editor.setText(repr(float(value)) if isinstance(value, float) else str(value))
            editor.selectAll()

    def setModelData(self, editor: QWidget, model: object, index: QModelIndex | QPersistentModelIndex) -> None:
        if isinstance(editor, QLineEdit):
            model.setData(index, editor.text())  # type: ignore[attr-defined]


class GridPanel(QWidget):
    """``labelsTable`` and ``logitsTable`` side by side, scrolling together.

    Signals
    -------
    message(str)
        Status-bar text (refused edits, paste results).
    currentCellChanged(int, int)
        The logits table's current cell.
    pasteFinished(bool)
        A paste read in the background ended: True when it was applied, False when it was
        refused or superseded.
    """

    message = Signal(str)
    currentCellChanged = Signal(int, int)
    pasteFinished = Signal(bool)

    def __init__(self, controller: EditController, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self._paste_generation = 0
        self._pending_paste: tuple[int, int, int, int, int] | None = None  # generation, r0, c0, r1, c1
        self._paste_future: Future | None = None
        self._paste_executor: ThreadPoolExecutor | None = None
        self._paste_relay = _PasteRelay(self)
        self._paste_relay.parsed.connect(self._on_paste_parsed)
        self._paste_relay.progress.connect(self._on_paste_progress)
        self._paste_relay.measured.connect(self._on_width_measured)
        self._width_generation = 0
        #: The values whose text is the widest (see width_sample) of the grid as last measured: a change of
        #: precision measures their text again without a pass over the grid.
        self._width_sample: NDArray | None = None
        self._typed_meanwhile: list[NDArray] = []
        self._measuring = False  # a width measurement is running in the worker
        controller.state.changed.connect(self._on_state_changed)
        self.logits_model = LogitsModel(controller, self)
        self.labels_model = LabelsModel(controller, self)
        self.logits_model.rejected.connect(self.message)
        self.labels_model.rejected.connect(self.message)
        self.logits_model.refusedAt.connect(self._on_logits_model_refused_at)
        self.labels_model.refusedAt.connect(self._on_labels_model_refused_at)
        # Widths are re-measured once per burst of changes (a paste, a preset), after the views reset.
        self._width_timer = QTimer(self, singleShot=True, interval=0)
        self._width_timer.timeout.connect(self.fit_columns)
        self._follow_label_row: int | None = None

        self.labels_view = QTableView(objectName="labelsTable")
        self.labels_view.setModel(self.labels_model)
        self.labels_view.setToolTip("Each sample's label (class index); its cell is highlighted in the grid")
        self.labels_view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.labels_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.labels_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)

        self.logits_view = QTableView(objectName="logitsTable")
        self.logits_view.setModel(self.logits_model)
        self.logits_view.setItemDelegate(NumberDelegate(self.logits_view))
        self.logits_view.setToolTip("Logits: rows are samples, columns are classes. Type a number and press Enter.")
        # Every logit column is as wide as the widest value (one default size, no size per column): a grid of
        # 262,144 columns lays out, scrolls and resizes in constant time.
        self.logits_view.horizontalHeader().setMinimumSectionSize(8)
        self.logits_view.horizontalHeader().setDefaultSectionSize(CELL_WIDTH)
        self.logits_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.logits_view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        edit_triggers = (
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.AnyKeyPressed
        )
        self.logits_view.setEditTriggers(edit_triggers)
        self.labels_view.setEditTriggers(edit_triggers)
        for view in (self.labels_view, self.logits_view):
            view.verticalHeader().setDefaultSectionSize(22)
            view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        # The two tables scroll together, by pixels, over the logits' range: the labels' viewport is taller (it has
        # no horizontal scroll bar), so its own range is shorter and would clamp the logits back by a row; by items,
        # the last row would sit at each viewport's bottom, and the two tables' rows would not line up.
        for view in (self.labels_view, self.logits_view):
            view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        logits_rows, label_rows = self.logits_view.verticalScrollBar(), self.labels_view.verticalScrollBar()
        logits_rows.rangeChanged.connect(self._on_rows_range_changed)
        label_rows.rangeChanged.connect(self._on_rows_range_changed)
        logits_rows.valueChanged.connect(label_rows.setValue)
        label_rows.valueChanged.connect(logits_rows.setValue)
        self.logits_view.selectionModel().currentChanged.connect(self._on_logits_current_changed)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.labels_view)
        layout.addWidget(self.logits_view, 1)
        self.fit_columns()

    def _on_rows_range_changed(self, *_range: int) -> None:
        """Give the labels' rows the logits' scroll range (each table lays itself out and sets its own)."""
        logits_rows, label_rows = self.logits_view.verticalScrollBar(), self.labels_view.verticalScrollBar()
        if (label_rows.minimum(), label_rows.maximum()) != (logits_rows.minimum(), logits_rows.maximum()):
            label_rows.setRange(logits_rows.minimum(), logits_rows.maximum())
        if label_rows.value() != logits_rows.value():
            label_rows.setValue(logits_rows.value())

    # ---------------------------------------------------------------- columns
    @property
    def precision(self) -> int:
        """Significant digits the grid shows."""
        return self.logits_model.precision

    def set_precision(self, digits: int) -> None:
        """Show ``digits`` significant digits and size the columns to fit them."""
        self.logits_model.set_precision(digits)
        if self._width_sample is not None:  # the widest values are known: only their text is measured again
            self._set_logit_width(self._width_sample)
        else:
            self.fit_columns()

    def fit_columns(self) -> None:
        """Size the logit columns to their widest text, and the label column to its numbers.

        One width for every logit column (measured on a bounded sample and one pass over the
        extremes), set once as the header's default: the header is in ``Fixed`` mode, so every
        column takes it at once and nothing is done per column (262,144 of them at most). Over
        :data:`WIDTH_WORKER_CELLS` cells the pass runs in a worker thread and the width follows.
        """
        state = self.controller.state
        self._width_generation += 1  # a measurement still running in the worker is for an older grid
        self._width_sample = None
        self._typed_meanwhile = []
        self._measuring = state.logits.size > WIDTH_WORKER_CELLS
        if self._measuring:
            generation, logits = self._width_generation, state.logits
            # The worker reads the live array: an edit meanwhile widens its own column (_widen_for) anyway.
            self._executor().submit(lambda: self._paste_relay.measured.emit(generation, width_sample(logits)))
        else:
            self._set_logit_width(width_sample(state.logits))
        self._fit_label_column()

    def _on_width_measured(self, generation: int, sample: object) -> None:
        if generation == self._width_generation:
            assert isinstance(sample, np.ndarray)
            # Values typed while the worker measured may be missing from its pass: they are added.
            self._measuring = False
            self._set_logit_width(np.concatenate([sample, *self._typed_meanwhile]))
            self._typed_meanwhile = []

    def _executor(self) -> ThreadPoolExecutor:
        if self._paste_executor is None:
            self._paste_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="grid")
        return self._paste_executor

    def _set_logit_width(self, sample: NDArray) -> None:
        self._width_sample = sample
        view = self.logits_view
        width = text_width(sample, QFontMetrics(view.font()), self.precision, bold=True)
        header = view.horizontalHeader()
        if header.defaultSectionSize() != width:
            current = view.currentIndex()
            shown = current.isValid() and view.viewport().rect().intersects(view.visualRect(current))
            header.setDefaultSectionSize(width)
            if shown:  # the current cell was in view (a load scrolls to it): it stays there at the new width
                view.scrollTo(current)

    def _fit_label_column(self) -> None:
        state = self.controller.state
        n, c = state.shape
        labels_metrics = QFontMetrics(self.labels_view.font())
        lo, hi = (int(state.labels.min()), int(state.labels.max())) if n else (0, 0)
        texts = [str(v) for v in (lo, hi, c - 1)]
        if lo < 0 or hi >= c:
            texts.append(f"{lo if lo < 0 else hi} (ignored)")
        texts.append(str(self.labels_model.headerData(0, Qt.Orientation.Horizontal)))
        label_width = max(labels_metrics.horizontalAdvance(t) for t in texts) + CELL_PADDING
        frame = 2 * self.labels_view.frameWidth() + self.labels_view.verticalHeader().sizeHint().width()
        self.labels_view.setFixedWidth(label_width + frame)

    # -------------------------------------------------------------- selection
    def select_cell(self, i: int, j: int) -> None:
        index = self.logits_model.index(i, j)
        if index.isValid():
            self.logits_view.setCurrentIndex(index)
            self.logits_view.scrollTo(index)

    @staticmethod
    def _block_cells(block: tuple[int, int, int, int] | None) -> int:
        return 0 if block is None else (block[2] - block[0]) * (block[3] - block[1])

    def _widen_for(self, block: tuple[int, int, int, int]) -> None:
        """Widen the columns if the changed values need more room (a single edit never narrows them)."""
        r0, c0, r1, c1 = block
        values = self.controller.state.logits[r0:r1, c0:c1]
        typed = width_sample(values)
        header = self.logits_view.horizontalHeader()
        width = text_width(typed, QFontMetrics(self.logits_view.font()), self.precision, bold=True)
        if self._measuring:  # the worker's pass may miss this value: its result gets it too, and it shows now
            self._typed_meanwhile.append(typed)
            if width > header.defaultSectionSize():
                header.setDefaultSectionSize(width)
            return
        if self._width_sample is not None:  # kept for a change of precision, with what was typed since
            kept = np.concatenate([self._width_sample, typed])
            self._width_sample = kept if kept.size <= 4 * WIDTH_SAMPLE_CELLS else None
        if width > header.defaultSectionSize():
            if self._width_sample is not None:
                self._set_logit_width(self._width_sample)  # wider by what was typed: no pass over the grid
            else:
                self.fit_columns()

    def keep_current_in_view(self) -> None:
        """Scroll so the current cell is visible (after a load, a reset or a label change)."""
        index = self.logits_view.currentIndex()
        if index.isValid():
            self.logits_view.scrollTo(index)
        else:
            self.logits_view.scrollToTop()
            self.logits_view.horizontalScrollBar().setValue(0)

    def _on_logits_model_refused_at(self, i: int, j: int) -> None:
        self.logits_view.scrollTo(self.logits_model.index(i, j))

    def _on_labels_model_refused_at(self, i: int, _j: int) -> None:
        self.labels_view.scrollTo(self.labels_model.index(i, 0))

    def current_cell(self) -> tuple[int, int] | None:
        index = self.logits_view.currentIndex()
        return (index.row(), index.column()) if index.isValid() else None

    def _on_logits_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.currentCellChanged.emit(current.row(), current.column())

    # -------------------------------------------------------------- clipboard
    def _selected_rect(self) -> tuple[int, int, int, int] | None:
        """Bounding block of the selection (its ranges, never one index per cell: a whole row is 262,144 cells)."""
        ranges = list(self.logits_view.selectionModel().selection())
        if not ranges:
            cur = self.logits_view.currentIndex()
            if not cur.isValid():
                return None
            return cur.row(), cur.column(), cur.row() + 1, cur.column() + 1
        return (min(r.top() for r in ranges), min(r.left() for r in ranges),
                max(r.bottom() for r in ranges) + 1, max(r.right() for r in ranges) + 1)  # fmt: skip

    def copy(self) -> None:
        """Copy the selection's bounding block as tab-separated text."""
        rect = self._selected_rect()
        if rect is None:
            self.message.emit("Nothing selected to copy")
            return
        r0, c0, r1, c1 = rect
        QGuiApplication.clipboard().setText(format_block(self.controller.state.logits[r0:r1, c0:c1]))
        self.message.emit(f"Copied {r1 - r0} x {c1 - c0} values")

    @property
    def paste_pending(self) -> bool:
        """True while pasted text is being read in the background."""
        return self._pending_paste is not None

    def paste(self, text: str | None = None) -> None:
        """Paste a block at the selection's top-left corner (one value fills the whole selection).

        Small text is applied at once; large text is read in a worker thread and applied
        when it is read (see :attr:`pasteFinished`). Refusals go to :attr:`message`.
        """
        text = QGuiApplication.clipboard().text() if text is None else text
        self._supersede_paste("an earlier paste was dropped: a newer one replaces it")
        rect = self._selected_rect() or (0, 0, 1, 1)
        r0, c0, r1, c1 = rect
        n, c = self.controller.state.shape
        rows, cols = estimate_block_shape(text, max_rows=n - r0, max_cols=c - c0)
        if (rows, cols) == (0, 0):
            self.message.emit("Nothing pasted: the clipboard holds no numbers")
            return
        fill = (rows, cols) == (1, 1)
        if not fill and (rows > n - r0 or cols > c - c0):
            self.message.emit(self._too_big_message(rows, cols, r0, c0))
            return
        max_cells = max((n - r0) * (c - c0), 1)
        if len(text) <= ASYNC_PASTE_CHARS and rows * cols <= ASYNC_PASTE_CELLS:
            try:
                block = parse_block(text, max_cells=max_cells)
            except ValueError as exc:
                self.message.emit(f"Nothing pasted: {exc}")
                return
            self._apply_paste(block, r0, c0, r1, c1)
            return
        self._paste_generation += 1
        generation = self._paste_generation
        self._pending_paste = (generation, r0, c0, r1, c1)
        self._paste_future = self._executor().submit(self._parse_in_worker, generation, text, max_cells)
        self.message.emit(f"Reading the pasted block (about {rows} x {cols} values)...")

    def _parse_in_worker(self, generation: int, text: str, max_cells: int) -> None:
        """Runs in the worker thread: parse, then hand the result to the GUI thread."""
        block: NDArray | None = None
        error = ""

        def superseded() -> bool:
            pending = self._pending_paste  # one read of a reference: safe from this thread
            return pending is None or pending[0] != generation

        reported = [0]

        def progress(done: float) -> None:
            percent = int(done * 100) // 10 * 10
            if percent > reported[0] and percent < 100:
                reported[0] = percent
                with contextlib.suppress(RuntimeError):
                    self._paste_relay.progress.emit(generation, percent)

        try:
            block = parse_block_in_chunks(text, max_cells, superseded, progress)
        except (ValueError, OverflowError, MemoryError) as exc:
            error = str(exc) or type(exc).__name__
        if block is None and not error:
            return  # superseded: nothing to deliver
        with contextlib.suppress(RuntimeError):  # the panel was deleted while the text was read
            self._paste_relay.parsed.emit(generation, block, error)

    def _on_paste_progress(self, generation: int, percent: int) -> None:
        pending = self._pending_paste
        if pending is not None and pending[0] == generation:
            self.message.emit(f"Reading the pasted block... {percent}%")

    def _on_paste_parsed(self, generation: int, block: NDArray | None, error: str) -> None:
        pending = self._pending_paste
        if pending is None or pending[0] != generation:
            return  # superseded: already reported
        self._pending_paste = None
        self._paste_future = None
        if block is None:
            self.message.emit(f"Nothing pasted: {error}")
            self.pasteFinished.emit(False)
            return
        _, r0, c0, r1, c1 = pending
        self.pasteFinished.emit(self._apply_paste(block, r0, c0, r1, c1))

    def _apply_paste(self, block: NDArray, r0: int, c0: int, r1: int, c1: int) -> bool:
        """Check the block with the typing rule and apply it as one undoable step."""
        try:
            if block.shape == (1, 1) and (r1 - r0, c1 - c0) != (1, 1):
                block = np.full((r1 - r0, c1 - c0), block[0, 0])
            check_cell_values(block, self.controller.state.settings.dtype)
            self.controller.set_block(r0, c0, block, text=f"Paste {block.shape[0]} x {block.shape[1]}")
        except ValueError as exc:
            self.message.emit(f"Nothing pasted: {exc}")
            return False
        self.message.emit(f"Pasted {block.shape[0]} x {block.shape[1]} values at ({r0}, {c0})")
        return True

    def _too_big_message(self, rows: int, cols: int, r0: int, c0: int) -> str:
        n, c = self.controller.state.shape
        width = str(cols) if cols <= c - c0 else f"more than {c - c0}"
        text = (
            f"Nothing pasted: the clipboard holds {rows} rows of {width} values, but from cell ({r0}, {c0}) "
            f"only {n - r0} x {c - c0} fit the {n} x {c} grid"
        )
        if rows > MAX_SAMPLES or cols > MAX_CLASSES:
            return text + f" (the largest grid is {MAX_SAMPLES} x {MAX_CLASSES})"
        return text + " (resize the grid first)"

    def _supersede_paste(self, reason: str) -> None:
        if self._pending_paste is None:
            return
        self._pending_paste = None
        if self._paste_future is not None:
            self._paste_future.cancel()  # only stops it if it has not started; a running parse is ignored
            self._paste_future = None
        self.message.emit(f"Nothing pasted: {reason}")
        self.pasteFinished.emit(False)

    def _on_state_changed(self, change: Change) -> None:
        self._supersede_paste("the grid changed while the pasted text was being read")
        if (change.shape or change.labels or "dtype" in change.settings
                or self._block_cells(change.logits) > WIDTH_SAMPLE_CELLS):  # fmt: skip
            self._width_timer.start()  # a new grid, new values in another dtype or a big paste: measure again
        elif change.logits is not None:
            self._widen_for(change.logits)  # a typed value: only that cell can need more room
        if change.labels and not change.shape:
            # A changed label moves the row's highlighted cell: show it (the current row's, else the first changed).
            current = self.labels_view.currentIndex()
            if not current.isValid():
                current = self.logits_view.currentIndex()
            row = current.row() if current.isValid() else 0
            labels = self.controller.state.labels
            if 0 <= row < labels.size and 0 <= int(labels[row]) < self.controller.state.shape[1]:
                self.logits_view.scrollTo(self.logits_model.index(row, int(labels[row])))
        elif change.shape:
            QTimer.singleShot(0, self.keep_current_in_view)

    def shutdown(self) -> None:
        """Drop a pending paste and stop the worker thread (when the window closes)."""
        self._supersede_paste("the window closed")
        if self._paste_executor is not None:
            self._paste_executor.shutdown(wait=False, cancel_futures=True)
            self._paste_executor = None
