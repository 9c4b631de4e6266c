"""The summary and the cell inspector: text views of the display model.

Both are rebuilt only while on screen (they share a dock area as tabs, see
:mod:`explorer.gui.shown_refresh`), and only what changed is set again: laying out a rich-text
document costs a few milliseconds, more than an edit's computation on an ordinary grid.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication, QTextDocumentFragment
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QScrollArea, QTextBrowser, QVBoxLayout, QWidget

from explorer.app.display import Display, DisplayChange, Source
from explorer.app.report_text import explanation_html, summary_parts, user_cell_html
from explorer.gui.shown_refresh import RefreshWhenShown
from explorer.gui.theme import theme_manager

__all__ = ["InspectorView", "SummaryView"]

NO_CELL_HTML = "<p>Select a cell in the grid or click a heatmap.</p>"


class SummaryView(QScrollArea):
    """Loss, largest errors, worst cell, verdict and notes of the shown report (``summaryView``).

    One label per value in a grid, so an edit re-lays-out and repaints only the values that changed
    (a rich-text document of the whole summary cost about 4 ms an edit to lay out and paint, a quarter
    of the edit's budget at 32 x 100). :meth:`toPlainText` gives the whole text.
    """

    def __init__(self, display: Display, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("summaryView")
        self.setToolTip("Loss, largest errors, worst cell and the verdict")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.display = display
        body = QWidget(objectName="summaryBody")
        # A grid, not a form: a form's labels sat a few pixels below the first line of a wrapped value.
        self._grid = QGridLayout()
        self._grid.setColumnStretch(1, 1)
        self._grid.setHorizontalSpacing(12)
        self._grid.setVerticalSpacing(4)
        self._rows: dict[str, QLabel] = {}
        self._row_names: list[QLabel] = []
        self._names: tuple[str, ...] = ()
        self._notes = _label("summaryNotes")
        self._timing = _label("summaryTiming")
        self._outdated = _label("summaryOutdated")
        self._outdated.setText("<i>The previous grid: the new one is being checked.</i>")
        self._outdated.setVisible(False)
        outer = QVBoxLayout(body)
        outer.addWidget(self._outdated)
        outer.addLayout(self._grid)
        outer.addWidget(self._notes)
        outer.addWidget(self._timing)
        outer.addStretch(1)
        self.setWidget(body)
        copy = QAction("Copy summary", self)
        copy.triggered.connect(lambda: QGuiApplication.clipboard().setText(self.toPlainText()))
        self.addAction(copy)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self._shown = RefreshWhenShown(self, self.refresh)
        display.changed.connect(self._on_display_changed)
        theme_manager().changed.connect(self._shown.request)  # the verdict's colours are the theme's
        self.refresh()

    def _on_display_changed(self, change: DisplayChange) -> None:
        if change.report or change.source:
            self._shown.request()

    def refresh(self) -> None:
        report = self.display.report
        if report is None:
            self._show((), ("<p>Computing…</p>",), "")
            return
        parts = summary_parts(report, self.display.duration, self.display.source_name)
        self._show(parts.rows, parts.notes, parts.timing)

    def _show(self, rows: tuple[tuple[str, str], ...], notes: tuple[str, ...], timing: str) -> None:
        names = tuple(name for name, _ in rows)
        if names != self._names:  # another set of rows (a source named or not): the rows again
            for label in [*self._row_names, *self._rows.values()]:
                self._grid.removeWidget(label)
                label.deleteLater()
            self._rows, self._row_names = {}, []
            for k, name in enumerate(names):
                title = _label(None)
                title.setWordWrap(False)
                title.setText(f"<b>{html.escape(name)}</b>")
                value = _label(None)
                value.setToolTip(name)
                self._grid.addWidget(title, k, 0, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
                self._grid.addWidget(value, k, 1, Qt.AlignmentFlag.AlignTop)
                self._row_names.append(title)
                self._rows[name] = value
            self._names = names
        for name, text in rows:
            _set_text(self._rows[name], text)
        _set_text(self._notes, "".join(notes))
        self._notes.setVisible(bool(notes))
        _set_text(self._timing, f"<small>{html.escape(timing)}</small>" if timing else "")

    def set_outdated(self, outdated: bool) -> None:
        """Say that the summary describes the previous grid while a grid of another shape is checked."""
        self._outdated.setVisible(outdated)

    def toPlainText(self) -> str:  # the name QTextEdit gives it
        """The summary as text, one "name: value" line per row, then the notes and the computing time."""
        lines = [_plain(self._outdated.text())] if self._outdated.isVisibleTo(self) else []
        lines += [f"{name}: {_plain(self._rows[name].text())}" for name in self._names]
        if self._notes.isVisibleTo(self):
            lines.append(_plain(self._notes.text()))
        if self._timing.text():
            lines.append(_plain(self._timing.text()))
        return "\n".join(lines)


def _label(name: str | None) -> QLabel:
    label = QLabel()
    if name:
        label.setObjectName(name)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)  # a right-click reaches "Copy summary"
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    return label


def _set_text(label: QLabel, text: str) -> None:
    if label.text() != text:  # an unchanged value is neither laid out nor repainted again
        label.setText(text)


def _plain(rich: str) -> str:
    return QTextDocumentFragment.fromHtml(rich).toPlainText()


class InspectorView(QTextBrowser):
    """What the finite difference evaluated for the selected cell (``cellInspector``); its HTML is set only when
    it changed."""

    def __init__(self, display: Display, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("cellInspector")
        self.setToolTip("What the finite difference evaluated for the selected cell")
        self.display = display
        self._html = ""
        self._shown = RefreshWhenShown(self, self.refresh)
        display.changed.connect(self._on_display_changed)
        theme_manager().changed.connect(self._shown.request)  # the verdict's colours are the theme's
        self.refresh()

    def _on_display_changed(self, change: DisplayChange) -> None:
        if change.explanation or change.cell or change.source or change.report:
            self._shown.request()

    def refresh(self) -> None:
        html = self.html()
        if html != self._html:
            self._html = html
            self.setHtml(html)

    def html(self) -> str:
        """The HTML the inspector shows for the display model now."""
        display = self.display
        values = display.values_at(display.cell)
        if values is None:
            return NO_CELL_HTML
        if display.source is Source.USER:
            return user_cell_html(values, display.source_name)
        if display.explanation is not None:
            return explanation_html(display.explanation)
        i, j = values.cell
        return f"<h3>Sample {i}, class {j}</h3><p>Explaining…</p>"
