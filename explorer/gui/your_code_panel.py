"""The "Your code" panel: an editor for the user's loss and gradient, a gallery of classic bugs, and results."""

from __future__ import annotations

import html
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QKeySequence, QShortcut, QSyntaxHighlighter, QTextCharFormat
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from explorer.usercode.gallery import MUTANTS
from explorer.usercode.runner import DEFAULT_TIMEOUT_S, UserCode

__all__ = ["PythonHighlighter", "UserCodePanel"]

# Qt lays out a wrapped paragraph holding one long unbroken line in quadratic time (measured offscreen: 16 KiB
# 0.1 s, 64 KiB 1.8 s, 128 KiB 6.5 s), so the output never gets more than this much HTML.
MAX_PANEL_CHARS = 24 * 1024
MAX_MESSAGE_CHARS = 2000  # of the one-line message in show_error
MAX_DETAILS_CHARS = 12 * 1024  # of a traceback or output in show_error (the tail is kept)

RIGHTS_WARNING = (
    "Your code runs in a separate Python process, with your own user rights (it can do anything you "
    "can), and is stopped after the time limit. Only run code you trust."
)


KEYWORDS = (
    r"\b(def|return|import|from|as|if|elif|else|for|while|in|not|and|or|is|None|True|False|lambda|with|"
    r"class|try|except|raise|pass|break|continue|global|yield)\b"
)


class PythonHighlighter(QSyntaxHighlighter):
    """Keywords, strings, comments and numbers."""

    RULES = (
        (KEYWORDS, "#0b5394", True),
        (r"\b[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?\b", "#a64d79", False),
        (r"(\"[^\"]*\"|'[^']*')", "#38761d", False),
        (r"#[^\n]*", "#7f7f7f", False),
    )

    def __init__(self, document: object):
        super().__init__(document)  # type: ignore[arg-type]
        self._rules = []
        for pattern, colour, bold in self.RULES:
            fmt = QTextCharFormat()
            fmt.setForeground(QColor(colour))
            if bold:
                fmt.setFontWeight(QFont.Weight.Bold)
            self._rules.append((re.compile(pattern), fmt))

    def highlightBlock(self, text: str) -> None:
        for regex, fmt in self._rules:
            for m in regex.finditer(text):
                self.setFormat(m.start(), m.end() - m.start(), fmt)


def _cut(text: str, head: int, tail: int) -> str:
    """``text`` if it has at most ``head + tail`` characters, else its first ``head`` and last ``tail`` characters
    around a note of how many were cut."""
    cut = len(text) - head - tail
    if cut <= 0:
        return text
    return f"{text[:head]}\n[... {cut} characters cut ...]\n{text[len(text) - tail :]}"


class UserCodePanel(QWidget):
    """Signals: ``runRequested(UserCode, float)`` (code, time limit in s), ``showBuiltinRequested()``."""

    runRequested = Signal(object, float)
    showBuiltinRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.warning = QLabel(RIGHTS_WARNING, objectName="userCodeWarning", wordWrap=True)
        self.warning.setStyleSheet("color: #8a4b00;")
        self.gallery = QComboBox(objectName="mutantCombo")
        self.gallery.addItem("Load an example…", None)
        for m in MUTANTS.values():
            self.gallery.addItem(m.title, m.name)
            self.gallery.setItemData(self.gallery.count() - 1, m.explanation, Qt.ItemDataRole.ToolTipRole)
        self.gallery.setToolTip("The correct gradient and common bugs, each with its error signature")
        self.gallery.activated.connect(self._on_gallery_activated)
        self.editor = QPlainTextEdit(objectName="userCodeEdit")
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.editor.setPlaceholderText(
            "import numpy as np\n\ndef loss(logits, labels): ...\n\ndef grad(logits, labels): ..."
        )
        self.editor.setToolTip("Define loss(logits, labels) -> scalar or per-row vector, and grad(logits, labels)")
        self.highlighter = PythonHighlighter(self.editor.document())
        self.loss_name = QLineEdit("loss", objectName="lossNameEdit")
        self.loss_name.setToolTip("Name of your loss function (a per-row vector is summed)")
        self.grad_name = QLineEdit("grad", objectName="gradNameEdit")
        self.grad_name.setToolTip("Name of your gradient function (returns an array shaped like the logits)")
        self.timeout = QDoubleSpinBox(objectName="timeoutSpin", minimum=0.5, maximum=600.0, value=DEFAULT_TIMEOUT_S,
                                      suffix=" s", decimals=1)  # fmt: skip
        self.timeout.setToolTip("Your code is stopped after this long")
        self.open_button = QPushButton("Open file…", objectName="openUserCodeButton")
        self.open_button.setToolTip("Load a .py file into the editor")
        self.open_button.clicked.connect(self._on_open_clicked)
        self.run_button = QPushButton("Check my code", objectName="runUserCodeButton")
        self.run_button.setToolTip("Compare finite differences of your loss with your gradient (Ctrl+Return)")
        self.run_button.clicked.connect(self.request_run)
        QShortcut(QKeySequence("Ctrl+Return"), self.editor, activated=self.request_run)
        self.builtin_button = QPushButton("Show the built-in check", objectName="showBuiltinButton")
        self.builtin_button.setToolTip("Back to the app's own analytic gradient in the maps")
        self.builtin_button.clicked.connect(self.showBuiltinRequested)
        self.output = QTextBrowser(objectName="userCodeOutput")
        self.output.setToolTip("Results of your code, or what went wrong")

        form = QFormLayout()
        names = QHBoxLayout()
        names.addWidget(QLabel("loss"))
        names.addWidget(self.loss_name)
        names.addWidget(QLabel("grad"))
        names.addWidget(self.grad_name)
        form.addRow("Functions", names)
        form.addRow("Time limit", self.timeout)
        buttons = QHBoxLayout()
        for b in (self.open_button, self.run_button, self.builtin_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.warning)
        layout.addWidget(self.gallery)
        layout.addWidget(self.editor, 3)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.output, 2)

    def code(self) -> UserCode:
        return UserCode(self.editor.toPlainText(), self.loss_name.text().strip(), self.grad_name.text().strip())

    def request_run(self) -> None:
        if not self.editor.toPlainText().strip():
            self.show_text("<p>Write or load a loss and a gradient function first.</p>")
            return
        self.runRequested.emit(self.code(), float(self.timeout.value()))

    def load_example(self, name: str) -> None:
        m = MUTANTS[name]
        self.editor.setPlainText(m.source)
        self.loss_name.setText("loss")
        self.grad_name.setText("grad")
        self.show_text(f"<p><b>{html.escape(m.title)}</b>: {html.escape(m.explanation)}</p>")

    def _on_gallery_activated(self, index: int) -> None:
        name = self.gallery.itemData(index)
        if name:
            self.load_example(str(name))

    def _on_open_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open your code", "", "Python (*.py);;All files (*)")
        if path:
            self.load_file(path)

    def load_file(self, path: str) -> bool:
        try:
            with open(path, encoding="utf-8") as f:
                self.editor.setPlainText(f.read())
        except (OSError, UnicodeDecodeError) as exc:
            self.show_text(f"<p style='color:#c62828'>Cannot read {html.escape(path)}: {html.escape(str(exc))}</p>")
            return False
        return True

    def show_text(self, text: str) -> None:
        """Show ``text`` (HTML). Longer than :data:`MAX_PANEL_CHARS`, it is shown as preformatted plain text instead,
        its beginning and its end with a note of what was cut, so a huge message cannot freeze the window."""
        if len(text) <= MAX_PANEL_CHARS:
            self.output.setHtml(text)
            return
        plain = html.unescape(re.sub(r"<[^>]*>", " ", text))
        self.output.setHtml(f"<pre>{html.escape(_cut(plain, MAX_PANEL_CHARS // 4, MAX_PANEL_CHARS // 2))}</pre>")

    def show_error(self, message: str, details: str = "", note: str = "") -> None:
        """A failure: the message in red (its beginning), the tail of ``details`` (a traceback, output) below,
        then ``note``; all plain text, escaped and capped here."""
        body = f"<p style='color:#c62828'><b>{html.escape(_cut(message, MAX_MESSAGE_CHARS, 0))}</b></p>"
        if details:
            body += f"<pre>{html.escape(_cut(details, 0, MAX_DETAILS_CHARS))}</pre>"
        if note:
            body += f"<p>{html.escape(note)}</p>"
        self.show_text(body)

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.run_button.setText("Running…" if running else "Check my code")
