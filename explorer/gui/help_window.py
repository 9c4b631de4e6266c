"""The user guide (F1): ``resources/guide/index.html`` in a browser with a find field."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QKeySequence, QShortcut, QTextDocument
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from explorer.files.resources import resource_path

__all__ = ["GUIDE", "GuideWindow", "shortcuts_html"]

#: The guide's page among the resources.
GUIDE = "guide/index.html"


def shortcuts_html() -> str:
    """The shortcut table the guide shows (from :data:`explorer.gui.menus.SHORTCUTS`, so it cannot drift)."""
    from explorer.gui.menus import SHORTCUTS

    rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in SHORTCUTS.items())
    return f"<table cellspacing='4'>{rows}</table>"


class GuideWindow(QDialog):
    """A non-modal window with the user guide (``guideBrowser``) and a find field (``guideFind``).

    Enter or F3 finds the next match, Shift+Enter or Shift+F3 the previous one; the search wraps.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("guideWindow")
        self.setWindowTitle("Gradient Explorer — user guide")
        self.setModal(False)
        self.browser = QTextBrowser(objectName="guideBrowser")
        self.browser.setOpenExternalLinks(True)
        path = resource_path(GUIDE)
        text = path.read_text(encoding="utf-8").replace("<!--SHORTCUTS-->", shortcuts_html())
        self.browser.document().setBaseUrl(QUrl.fromLocalFile(str(path)))
        self.browser.setHtml(text)
        self.find_edit = QLineEdit(objectName="guideFind")
        self.find_edit.setPlaceholderText("Find in the guide (Enter: next, Shift+Enter: previous)")
        self.find_edit.setClearButtonEnabled(True)
        self.find_edit.returnPressed.connect(self.find_next)
        self.find_edit.textChanged.connect(self._on_find_edit_text_changed)
        self.status = QLabel(objectName="guideFindStatus")
        previous = QPushButton("Previous")
        previous.clicked.connect(self.find_previous)
        following = QPushButton("Next")
        following.clicked.connect(self.find_next)
        QShortcut(QKeySequence.StandardKey.FindNext, self, self.find_next)
        QShortcut(QKeySequence.StandardKey.FindPrevious, self, self.find_previous)
        QShortcut(QKeySequence("Shift+Return"), self.find_edit, self.find_previous)
        QShortcut(QKeySequence.StandardKey.Find, self, self.find_edit.setFocus)
        bar = QHBoxLayout()
        bar.addWidget(self.find_edit, 1)
        bar.addWidget(previous)
        bar.addWidget(following)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.status)
        layout.addWidget(self.browser, 1)
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        if screen is not None:
            self.resize(min(760, screen.width() - 40), min(820, screen.height() - 60))

    def find_text(self, text: str, backward: bool = False) -> bool:
        """Select the next (or previous) occurrence of ``text``, wrapping around; False when there is none."""
        if not text:
            self.status.setText("")
            return False
        flags = QTextDocument.FindFlag.FindBackward if backward else QTextDocument.FindFlag(0)
        found = self.browser.find(text, flags)
        if not found:  # wrap around
            cursor = self.browser.textCursor()
            cursor.movePosition(cursor.MoveOperation.End if backward else cursor.MoveOperation.Start)
            self.browser.setTextCursor(cursor)
            found = self.browser.find(text, flags)
        self.status.setText("" if found else f"“{text}” is not in the guide")
        return found

    def find_next(self) -> bool:
        return self.find_text(self.find_edit.text())

    def find_previous(self) -> bool:
        return self.find_text(self.find_edit.text(), backward=True)

    def _on_find_edit_text_changed(self, text: str) -> None:
        cursor = self.browser.textCursor()
        cursor.setPosition(min(cursor.selectionStart(), cursor.selectionEnd()))
        self.browser.setTextCursor(cursor)
        if text:
            self.find_text(text)
        else:
            self.status.setText("")

    def keyPressEvent(self, event: object) -> None:  # type: ignore[override]
        if getattr(event, "key", lambda: None)() == Qt.Key.Key_Escape:
            self.close()
            return
        super().keyPressEvent(event)  # type: ignore[arg-type]
