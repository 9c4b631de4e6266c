"""The editable grid: a labels column beside the logits table, with copy and paste."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLocale, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QGuiApplication
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
from explorer.files.numbers import format_block, parse_block
from explorer.gui.table_models import LabelsModel, LogitsModel

__all__ = ["GridPanel", "NumberDelegate"]

CELL_WIDTH = 64


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
    """

    message = Signal(str)
    currentCellChanged = Signal(int, int)

    def __init__(self, controller: EditController, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.logits_model = LogitsModel(controller, self)
        self.labels_model = LabelsModel(controller, self)
        self.logits_model.rejected.connect(self.message)
        self.labels_model.rejected.connect(self.message)

        self.labels_view = QTableView(objectName="labelsTable")
        self.labels_view.setModel(self.labels_model)
        self.labels_view.setToolTip("Each sample's label (class index); its cell is highlighted in the grid")
        self.labels_view.setFixedWidth(110)
        self.labels_view.setVerticalScrollBarPolicy(self.labels_view.verticalScrollBarPolicy().ScrollBarAlwaysOff)
        self.labels_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)

        self.logits_view = QTableView(objectName="logitsTable")
        self.logits_view.setModel(self.logits_model)
        self.logits_view.setItemDelegate(NumberDelegate(self.logits_view))
        self.logits_view.setToolTip("Logits: rows are samples, columns are classes. Type a number and press Enter.")
        self.logits_view.horizontalHeader().setDefaultSectionSize(CELL_WIDTH)
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
        # The two tables scroll together.
        self.logits_view.verticalScrollBar().valueChanged.connect(self.labels_view.verticalScrollBar().setValue)
        self.labels_view.verticalScrollBar().valueChanged.connect(self.logits_view.verticalScrollBar().setValue)
        self.logits_view.selectionModel().currentChanged.connect(self._on_logits_current_changed)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.labels_view)
        layout.addWidget(self.logits_view, 1)

    # -------------------------------------------------------------- selection
    def select_cell(self, i: int, j: int) -> None:
        index = self.logits_model.index(i, j)
        if index.isValid():
            self.logits_view.setCurrentIndex(index)
            self.logits_view.scrollTo(index)

    def current_cell(self) -> tuple[int, int] | None:
        index = self.logits_view.currentIndex()
        return (index.row(), index.column()) if index.isValid() else None

    def _on_logits_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.currentCellChanged.emit(current.row(), current.column())

    # -------------------------------------------------------------- clipboard
    def _selected_rect(self) -> tuple[int, int, int, int] | None:
        indexes = self.logits_view.selectionModel().selectedIndexes()
        if not indexes:
            cur = self.logits_view.currentIndex()
            if not cur.isValid():
                return None
            indexes = [cur]
        rows = [ix.row() for ix in indexes]
        cols = [ix.column() for ix in indexes]
        return min(rows), min(cols), max(rows) + 1, max(cols) + 1

    def copy(self) -> None:
        """Copy the selection's bounding block as tab-separated text."""
        rect = self._selected_rect()
        if rect is None:
            self.message.emit("Nothing selected to copy")
            return
        r0, c0, r1, c1 = rect
        QGuiApplication.clipboard().setText(format_block(self.controller.state.logits[r0:r1, c0:c1]))
        self.message.emit(f"Copied {r1 - r0} x {c1 - c0} values")

    def paste(self, text: str | None = None) -> None:
        """Paste a block at the selection's top-left corner (one value fills the whole selection)."""
        text = QGuiApplication.clipboard().text() if text is None else text
        rect = self._selected_rect() or (0, 0, 1, 1)
        r0, c0, r1, c1 = rect
        try:
            block = parse_block(text)
            if block.shape == (1, 1) and (r1 - r0, c1 - c0) != (1, 1):
                block = np.full((r1 - r0, c1 - c0), block[0, 0])
            self.controller.set_block(r0, c0, block, text=f"Paste {block.shape[0]} x {block.shape[1]}")
        except ValueError as exc:
            self.message.emit(f"Nothing pasted: {exc}")
            return
        self.message.emit(f"Pasted {block.shape[0]} x {block.shape[1]} values at ({r0}, {c0})")
