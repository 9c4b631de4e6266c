"""The summary and the cell inspector: text views of the display model."""

from __future__ import annotations

from PySide6.QtWidgets import QTextBrowser, QWidget

from explorer.app.display import Display, DisplayChange, Source
from explorer.app.report_text import explanation_html, summary_html, user_cell_html

__all__ = ["InspectorView", "SummaryView"]

NO_CELL_HTML = "<p>Select a cell in the grid or click a heatmap.</p>"


class SummaryView(QTextBrowser):
    """Loss, largest errors, worst cell, verdict and notes of the shown report (``summaryView``)."""

    def __init__(self, display: Display, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("summaryView")
        self.setToolTip("Loss, largest errors, worst cell and the verdict")
        self.display = display
        display.changed.connect(self._on_display_changed)

    def _on_display_changed(self, change: DisplayChange) -> None:
        if change.report or change.source:
            self.refresh()

    def refresh(self) -> None:
        report = self.display.report
        if report is None:
            self.setHtml("<p>Computing…</p>")
            return
        self.setHtml(summary_html(report, self.display.duration, self.display.source_name))


class InspectorView(QTextBrowser):
    """What the finite difference evaluated for the selected cell (``cellInspector``)."""

    def __init__(self, display: Display, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("cellInspector")
        self.setToolTip("What the finite difference evaluated for the selected cell")
        self.display = display
        self.setHtml(NO_CELL_HTML)
        display.changed.connect(self._on_display_changed)

    def _on_display_changed(self, change: DisplayChange) -> None:
        if change.explanation or change.cell or change.source or change.report:
            self.refresh()

    def refresh(self) -> None:
        display = self.display
        values = display.values_at(display.cell)
        if values is None:
            self.setHtml(NO_CELL_HTML)
        elif display.source is Source.USER:
            self.setHtml(user_cell_html(values, display.source_name))
        elif display.explanation is not None:
            self.setHtml(explanation_html(display.explanation))
        else:
            i, j = values.cell
            self.setHtml(f"<h3>Sample {i}, class {j}</h3><p>Explaining…</p>")
