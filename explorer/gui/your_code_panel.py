"""The "Your code" panel: an editor for the user's loss and gradient, a gallery of classic bugs, and results."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from PySide6.QtCore import QRect, QSize, QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QShortcut,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from explorer.app.report_text import html_colors
from explorer.gui.theme import theme_manager
from explorer.usercode.child import defined_functions
from explorer.usercode.gallery import MUTANTS
from explorer.usercode.runner import DEFAULT_TIMEOUT_S, UserCode, UserResult

__all__ = ["CodeEditor", "PythonHighlighter", "UserCodePanel"]

NAMES_DEBOUNCE_MS = 300  # after the last keystroke, the function names offered are re-read from the code
MAX_OUTPUT_SHOWN = 8 * 1024  # of what the user's code printed, per stream (the tail)

# Qt lays out a wrapped paragraph holding one long unbroken line in quadratic time (measured offscreen: 16 KiB
# 0.1 s, 64 KiB 1.8 s, 128 KiB 6.5 s), so the output never gets more than this much HTML.
MAX_PANEL_CHARS = 24 * 1024
MAX_MESSAGE_CHARS = 2000  # of the one-line message in show_error
MAX_DETAILS_CHARS = 12 * 1024  # of a traceback or output in show_error (the tail is kept)
MAX_PANEL_TIMEOUT_S = 3600.0  # the time limit's spin box goes up to an hour

RIGHTS_WARNING = (
    "Your code runs in a separate Python process, with your own user rights (it can do anything you "
    "can), and is stopped after the time limit. Only run code you trust."
)


KEYWORDS = (
    r"\b(def|return|import|from|as|if|elif|else|for|while|in|not|and|or|is|None|True|False|lambda|with|"
    r"class|try|except|raise|pass|break|continue|global|yield)\b"
)


class PythonHighlighter(QSyntaxHighlighter):
    """Keywords, strings, comments and numbers, in colours that keep 4.5:1 contrast on a light and a dark editor."""

    #: (pattern, colour on light, colour on dark, bold).
    RULES = (
        (KEYWORDS, "#0b5394", "#79b8ff", True),
        (r"\b[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?\b", "#a64d79", "#f0a0d0", False),
        (r"(\"[^\"]*\"|'[^']*')", "#38761d", "#85e89d", False),
        (r"#[^\n]*", "#6a6a6a", "#a8a8a8", False),
    )

    def __init__(self, document: object):
        super().__init__(document)  # type: ignore[arg-type]
        self._rules: list[tuple[re.Pattern[str], QTextCharFormat]] = []
        self.set_dark(False)

    def set_dark(self, dark: bool) -> None:
        """Use the colours for a dark (or light) editor background, and re-colour the text."""
        self._rules = []
        for pattern, light, dark_colour, bold in self.RULES:
            fmt = QTextCharFormat()
            fmt.setForeground(QColor(dark_colour if dark else light))
            if bold:
                fmt.setFontWeight(QFont.Weight.Bold)
            self._rules.append((re.compile(pattern), fmt))
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:
        for regex, fmt in self._rules:
            for m in regex.finditer(text):
                self.setFormat(m.start(), m.end() - m.start(), fmt)


class _LineNumbers(QWidget):
    """The gutter of a :class:`CodeEditor`."""

    def __init__(self, editor: CodeEditor):
        super().__init__(editor)
        self.editor = editor

    def sizeHint(self) -> QSize:
        return QSize(self.editor.gutter_width(), 0)

    def paintEvent(self, event: QPaintEvent) -> None:
        self.editor.paint_gutter(event)


class CodeEditor(QPlainTextEdit):
    """A plain-text code editor with line numbers in a gutter and no line wrapping."""

    def __init__(self, parent: QWidget | None = None, **kwargs: object):
        super().__init__(parent, **kwargs)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.gutter = _LineNumbers(self)
        self.blockCountChanged.connect(self._on_block_count_changed)
        self.updateRequest.connect(self._on_update_request)
        self._on_block_count_changed()

    def gutter_width(self) -> int:
        digits = len(str(max(1, self.blockCount())))
        return 8 + self.fontMetrics().horizontalAdvance("9") * max(2, digits)

    def _on_block_count_changed(self, _count: int = 0) -> None:
        self.setViewportMargins(self.gutter_width(), 0, 0, 0)

    def _on_update_request(self, rect: QRect, dy: int) -> None:
        if dy:
            self.gutter.scroll(0, dy)
        else:
            self.gutter.update(0, rect.y(), self.gutter.width(), rect.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        r = self.contentsRect()
        self.gutter.setGeometry(QRect(r.left(), r.top(), self.gutter_width(), r.height()))

    def paint_gutter(self, event: QPaintEvent) -> None:
        painter = QPainter(self.gutter)
        palette = self.palette()
        painter.fillRect(event.rect(), palette.alternateBase())
        painter.setPen(palette.placeholderText().color())
        block = self.firstVisibleBlock()
        top = round(self.blockBoundingGeometry(block).translated(self.contentOffset()).top())
        height = self.fontMetrics().height()
        while block.isValid() and top <= event.rect().bottom():
            bottom = top + round(self.blockBoundingRect(block).height())
            if block.isVisible() and bottom >= event.rect().top():
                painter.drawText(0, top, self.gutter.width() - 4, height, Qt.AlignmentFlag.AlignRight,
                                 str(block.blockNumber() + 1))  # fmt: skip
            block, top = block.next(), bottom
        painter.end()

    def replace_all(self, text: str) -> None:
        """Replace the whole text as one step of the editor's undo stack (Ctrl+Z brings the old text back)."""
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(text)
        cursor.endEditBlock()


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
        self._on_theme_changed()
        theme_manager().changed.connect(self._on_theme_changed)
        self.gallery = QComboBox(objectName="mutantCombo")
        self.gallery.addItem("Load an example…", None)
        for m in MUTANTS.values():
            self.gallery.addItem(m.title, m.name)
            self.gallery.setItemData(self.gallery.count() - 1, m.explanation, Qt.ItemDataRole.ToolTipRole)
        self.gallery.setToolTip("The correct gradient and common bugs, each with its error signature")
        self.gallery.activated.connect(self._on_gallery_activated)
        self.editor = CodeEditor(objectName="userCodeEdit")
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.editor.setPlaceholderText(
            "import numpy as np\n\ndef loss(logits, labels): ...\n\ndef grad(logits, labels): ..."
        )
        self.editor.setToolTip("Define loss(logits, labels) -> scalar or per-row vector, and grad(logits, labels), "
                               "in NumPy, PyTorch or JAX")  # fmt: skip
        self.highlighter = PythonHighlighter(self.editor.document())
        self._on_theme_changed()
        self.function_names = QStringListModel(self)
        self.loss_name = QLineEdit("loss", objectName="lossNameEdit")
        self.loss_name.setToolTip("Name of your loss function (a per-row vector is summed); the functions your code "
                                  "defines are offered as you type")  # fmt: skip
        self.grad_name = QLineEdit("grad", objectName="gradNameEdit")
        self.grad_name.setPlaceholderText("empty: autodiff")
        self.grad_name.setToolTip("Name of your gradient function (returns an array shaped like the logits). Leave "
                                  "it empty for PyTorch or JAX code to check the framework's autodiff of the loss "
                                  "(your custom backward or custom_vjp)")  # fmt: skip
        for edit in (self.loss_name, self.grad_name):
            completer = QCompleter(self.function_names, edit)
            completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
            completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
            edit.setCompleter(completer)
            edit.setMinimumWidth(edit.fontMetrics().horizontalAdvance("grad_softmax_crossentropy") + 24)
        self._names_timer = QTimer(self, singleShot=True, interval=NAMES_DEBOUNCE_MS)
        self._names_timer.timeout.connect(self.refresh_function_names)
        self.editor.textChanged.connect(self._names_timer.start)
        self.timeout = QDoubleSpinBox(objectName="timeoutSpin", minimum=0.5, maximum=MAX_PANEL_TIMEOUT_S,
                                      value=DEFAULT_TIMEOUT_S, suffix=" s", decimals=1)  # fmt: skip
        self.timeout.setToolTip("Your code is stopped after this long. A loss that returns one number is called "
                                "for every element (131,073 times at 64 x 512 with the noise verdict); a run "
                                "stopped at the limit says how far it got and what limit would do")  # fmt: skip
        self.retry_button = QPushButton(objectName="retryLongerButton", visible=False)
        self.retry_button.setToolTip("Set the time limit to what the stopped run needed, and check again")
        self.retry_button.clicked.connect(self._on_retry_clicked)
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
        self._retry_s = 0.0
        layout = QVBoxLayout(self)
        layout.addWidget(self.warning)
        layout.addWidget(self.gallery)
        layout.addWidget(self.editor, 3)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.retry_button)
        layout.addWidget(self.output, 2)

    def code(self) -> UserCode:
        return UserCode(self.editor.toPlainText(), self.loss_name.text().strip(), self.grad_name.text().strip())

    def request_run(self) -> None:
        if not self.editor.toPlainText().strip():
            self.show_text("<p>Write or load a loss and a gradient function first.</p>")
            return
        found = self.refresh_function_names()
        if found:  # the code parses: a name it does not define is told now, with the functions it does define
            for what, edit in (("loss", self.loss_name), ("gradient", self.grad_name)):
                name = edit.text().strip()
                if (name or what == "loss") and name not in found:
                    self.show_error(f"Your code defines no {what} function named {name!r}; it defines "
                                    f"{', '.join(found)}. Type one of them in the {what} field.")  # fmt: skip
                    return
        self.runRequested.emit(self.code(), float(self.timeout.value()))

    def refresh_function_names(self) -> list[str]:
        """Offer the functions the code defines (parsed with ``ast``) in the name fields; fill a field whose
        name the code does not define when exactly one function fits it. Returns the names found."""
        self._names_timer.stop()
        found = defined_functions(self.editor.toPlainText())
        self.function_names.setStringList(found)
        if found:
            self._guess(self.loss_name, found, lambda n: ("loss" in n or "entropy" in n) and "grad" not in n)
            if self.grad_name.text().strip():
                self._guess(self.grad_name, found, lambda n: "grad" in n)
        return found

    @staticmethod
    def _guess(edit: QLineEdit, found: list[str], fits: Callable[[str], bool]) -> None:
        if edit.text().strip() in found:
            return
        candidates = [n for n in found if fits(n.lower())]
        if len(candidates) == 1:
            edit.setText(candidates[0])

    def load_example(self, name: str) -> bool:
        """Put a gallery example in the editor, asking first when the editor holds other code; undoable (Ctrl+Z).

        Returns False when the user kept their code."""
        m = MUTANTS[name]
        current = self.editor.toPlainText()
        if current.strip() and current != m.source:
            answer = QMessageBox.question(
                self, "Load an example",
                f"Replace the code in the editor with the example “{m.title}”? (Edit ▸ Undo, Ctrl+Z in the "
                "editor, brings your code back.)",
                QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel,
            )  # fmt: skip
            if answer != QMessageBox.StandardButton.Discard:
                return False
        self.editor.replace_all(m.source)
        self.loss_name.setText("loss")
        self.grad_name.setText(m.grad_name)
        self.refresh_function_names()
        self.show_text(f"<p><b>{html.escape(m.title)}</b>: {html.escape(m.explanation)}</p><p><i>The maps still "
                       "show the previous check until you press Check my code.</i></p>")  # fmt: skip
        return True

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
                self.editor.replace_all(f.read())
        except (OSError, UnicodeDecodeError) as exc:
            fail = html_colors()["fail"]
            self.show_text(f"<p style='color:{fail}'>Cannot read {html.escape(path)}: {html.escape(str(exc))}</p>")
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

    def _on_theme_changed(self, _colors: object = None) -> None:
        """The warning's and the code's colours follow the theme (4.5:1 on light and on dark)."""
        self.warning.setStyleSheet(f"color: {html_colors()['warn']};")
        if hasattr(self, "highlighter"):
            self.highlighter.set_dark(self.editor.palette().base().color().lightness() < 128)

    def show_error(self, message: str, details: str = "", note: str = "") -> None:
        """A failure: the message in red (its beginning), the tail of ``details`` (a traceback, output) below,
        then ``note``; all plain text, escaped and capped here."""
        body = f"<p style='color:{html_colors()['fail']}'><b>{html.escape(_cut(message, MAX_MESSAGE_CHARS, 0))}</b></p>"
        if details:
            body += f"<pre>{html.escape(_cut(details, 0, MAX_DETAILS_CHARS))}</pre>"
        if note:
            body += f"<p>{html.escape(note)}</p>"
        self.show_text(body)

    def append_run_facts(self, result: UserResult) -> None:
        """Below the verdict: which gradient was checked, the dtype the code received, and what it printed
        (the tails, capped and escaped)."""
        parts = [f"<p>Gradient checked: <b>{html.escape(result.gradient)}</b>; your code received "
                 f"{html.escape(result.framework)} {html.escape(result.dtype)} logits.</p>",
                 f"<p>Numeric gradient: {html.escape(result.numeric_method)}.</p>"]  # fmt: skip
        for name, text in (("printed", result.stdout), ("wrote to stderr", result.stderr)):
            if text.strip():
                parts.append(f"<p>Your code {name}:</p><pre>{html.escape(_cut(text, 0, MAX_OUTPUT_SHOWN))}</pre>")
        self.output.append("".join(parts))

    def offer_time_limit(self, seconds: float | None) -> None:
        """After a run stopped at its time limit: a button that checks again with ``seconds`` (hidden if None)."""
        self._retry_s = 0.0 if seconds is None else min(float(seconds), self.timeout.maximum())
        self.retry_button.setText(f"Check again with a {self._retry_s:g} s time limit")
        self.retry_button.setVisible(seconds is not None)

    def _on_retry_clicked(self) -> None:
        self.timeout.setValue(self._retry_s)
        self.request_run()

    def set_running(self, running: bool) -> None:
        if running:
            self.offer_time_limit(None)
        self.run_button.setEnabled(not running)
        self.run_button.setText("Running…" if running else "Check my code")
