"""The open document: which file the session belongs to, whether it is modified, recent files.

Qt-aware (it watches the undo stack's clean state) but opens no dialogs; the
window asks the user and calls these methods. File problems raise
:class:`~explorer.files.io.FileFormatError` and leave the state untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QObject, QSettings, Signal

from explorer.app.edits import EditController
from explorer.core import Report, default_eps
from explorer.files.arrays import read_npy_header
from explorer.files.io import (
    FileFormatError,
    FileTooLargeError,
    GridLimits,
    code_snippet,
    export_csv,
    export_npz,
    load_logits,
    load_session,
    save_session,
)
from explorer.files.limits import GRID_LIMITS
from explorer.files.loaders import logits_file_dtype
from explorer.files.safe_read import open_regular

__all__ = ["MAX_RECENT", "SESSION_SUFFIX", "WINDOW_LIMITS", "Document", "ReadLogits", "precheck_logits", "read_logits"]

SESSION_SUFFIX = ".gradexp.json"
MAX_RECENT = 8
#: The largest grid the window edits (N <= 8192, C <= 262,144, N x C <= 2**25); files are checked
#: against it before their values are read.
WINDOW_LIMITS: GridLimits = GRID_LIMITS


def _too_large_for_window(exc: FileTooLargeError) -> FileFormatError:
    return FileFormatError(f"{exc} that the window edits")


@dataclass(frozen=True)
class ReadLogits:
    """A logits file read and checked, not yet in the grid (see :meth:`Document.adopt_logits`)."""

    path: Path
    logits: NDArray
    labels: NDArray | None
    #: The float dtype the file stores its logits in (None for text files): the check's dtype on adoption.
    stored: str | None


def read_logits(path: str | Path, labels_path: str | Path | None = None,
                labels_column: str | None = None) -> ReadLogits:  # fmt: skip
    """Read a logits file for the window: limits checked before its values are read, every value finite.

    No Qt and no state: a worker thread may call it (a large file is read off the GUI thread).
    Raises :class:`FileFormatError` with one sentence.
    """
    try:
        logits, labels = load_logits(
            path, labels_path=labels_path, labels_column=labels_column, limits=WINDOW_LIMITS, keep_float=True
        )
    except FileTooLargeError as exc:
        raise _too_large_for_window(exc) from None
    if not np.all(np.isfinite(logits)):
        bad = np.argwhere(~np.isfinite(logits))[0]
        raise FileFormatError(f"{Path(path).name}: the value at row {bad[0]}, class {bad[1]} is not a finite number")
    stored = logits_file_dtype(path)
    if stored is None and Path(path).suffix.lower() == ".npz" and logits.dtype.name in ("float16", "float32",
                                                                                         "float64"):  # fmt: skip
        stored = logits.dtype.name
    return ReadLogits(Path(path), logits, None if labels is None else np.asarray(labels), stored)


def precheck_logits(path: str | Path) -> None:
    """What can be said of a logits file at once, before it is read: a ``.npy`` file's declared shape and dtype
    (its header, a few hundred bytes). Raises :class:`FileFormatError` as :func:`read_logits` would."""
    p = Path(path)
    if p.suffix.lower() != ".npy":
        return
    try:
        with open_regular(p) as f:  # never blocks (a FIFO swapped in is refused), one sentence for a folder
            read_npy_header(f, p.name, WINDOW_LIMITS)
    except FileTooLargeError as exc:
        raise _too_large_for_window(exc) from None


class Document(QObject):
    """Signals: ``changed()`` when the path, the modified flag or the recent list change."""

    changed = Signal()

    def __init__(self, controller: EditController, settings: QSettings, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self.state = controller.state
        self._settings = settings
        self.path: Path | None = None
        controller.stack.cleanChanged.connect(self._on_stack_clean_changed)

    # ----------------------------------------------------------------- state
    @property
    def modified(self) -> bool:
        return not self.controller.stack.isClean()

    @property
    def title(self) -> str:
        return self.path.name if self.path else "Untitled"

    def recent(self) -> list[str]:
        value = self._settings.value("files/recent", [])
        items = [value] if isinstance(value, str) else list(value) if isinstance(value, list | tuple) else []
        return [p for p in items if p][:MAX_RECENT]

    def _remember(self, path: Path) -> None:
        items = [str(path)] + [p for p in self.recent() if p != str(path)]
        self._settings.setValue("files/recent", items[:MAX_RECENT])
        self.changed.emit()

    def forget(self, path: str) -> None:
        self._settings.setValue("files/recent", [p for p in self.recent() if p != path])
        self.changed.emit()

    def _on_stack_clean_changed(self, _clean: bool) -> None:
        self.changed.emit()

    # ---------------------------------------------------------------- files
    def open_session(self, path: str | Path) -> None:
        """Replace the problem with a session file (undoable), as one transaction.

        The file is read and validated completely (values, shape, labels, settings
        against the grid) before anything changes; a refused file raises
        :class:`FileFormatError` and leaves the state, the undo stack, the file name
        and so the title as they were.
        """
        p = Path(path)
        try:
            session = load_session(p, limits=WINDOW_LIMITS)
        except FileTooLargeError as exc:
            raise _too_large_for_window(exc) from None
        fields = session.settings.to_mapping()
        try:
            self.controller.replace(session.logits, session.labels, text=f"Open {p.name}", **fields)  # type: ignore[arg-type]
        except ValueError as exc:  # state.replace validates everything before it changes anything
            raise FileFormatError(f"{p.name}: {exc}") from None
        self.path = p
        self.controller.stack.setClean()
        self._remember(self.path)

    def save(self, path: str | Path | None = None) -> Path:
        """Save the session (to ``path``, or to the current file). Atomic."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("no file name to save to")
        logits, labels, settings = self.state.snapshot()
        save_session(target, logits, labels, settings)
        self.path = target
        self.controller.stack.setClean()
        self._remember(target)
        return target

    def open_logits(self, path: str | Path, labels_path: str | Path | None = None,
                    labels_column: str | None = None) -> tuple[int, int]:  # fmt: skip
        """Load logits (and labels when the file has them) into the grid (undoable).

        The file's declared shape is checked against :data:`WINDOW_LIMITS` before its
        values are read; a refused file changes nothing. :func:`read_logits` and
        :meth:`adopt_logits` are its two halves (the first needs no GUI thread).
        """
        return self.adopt_logits(read_logits(path, labels_path, labels_column))

    def adopt_logits(self, read: ReadLogits) -> tuple[int, int]:
        """Put logits read by :func:`read_logits` into the grid (undoable); a refusal changes nothing."""
        logits, labels, path = read.logits, read.labels, read.path
        n, c = logits.shape
        if labels is None:
            current = self.state.labels
            labels = current[:n] if len(current) >= n else np.zeros(n, dtype=np.int64)
            labels = np.where((labels >= c) & (labels != self.state.settings.ignore_index), 0, labels)
        # A file that stores its logits in a float dtype is checked in that dtype (a model's float32 or bfloat16
        # logits; the window says so), a text file in the dtype chosen.
        stored = read.stored
        extra: dict[str, object] = {}
        chosen = self.state.settings
        if stored is not None and stored != chosen.dtype:
            extra["dtype"] = stored
            if chosen.eps == default_eps(chosen.scheme, chosen.dtype):
                # The step was the old dtype's default, not one the user chose: the new dtype's default goes with
                # it (float64's 1e-5 in float32 rounds most of the gradient away, and the check could not tell).
                extra["eps"] = default_eps(chosen.scheme, stored)
        try:
            # The array was just read and is not kept elsewhere: the grid takes it over (no copy of a large file).
            self.controller.replace(logits, labels, text=f"Open logits {path.name}", owned=True, **extra)
        except ValueError as exc:
            raise FileFormatError(f"{path.name}: {exc}") from None
        self._remember(path)
        return n, c

    def open_any(self, path: str | Path) -> str:
        """Open a session or a logits file by its name; returns what was opened."""
        name = str(path).lower()
        if name.endswith(".json") or name.endswith(".gradexp.npz"):
            self.open_session(path)
            return "session"
        n, c = self.open_logits(path)
        s = self.state.settings
        return f"{n} x {c} logits, checked in {s.dtype} with eps {s.eps:g}"

    @staticmethod
    def export_data(path: str | Path, report: Report) -> Path:
        out = Path(path)
        if out.suffix.lower() == ".csv":
            export_csv(out, report)
        elif out.suffix.lower() == ".npz":
            export_npz(out, report)
        else:
            raise ValueError(f"{out.name}: data exports are .csv or .npz")
        return out

    def code(self) -> str:
        return code_snippet(*self.state.snapshot())
