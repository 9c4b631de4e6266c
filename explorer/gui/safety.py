"""Nothing a user does should crash the app or lose their work.

* :func:`install_excepthook`: an exception that escapes anyway (a bug) is logged,
  shown in a dialog with a copyable report, and the app keeps running.
* :class:`Autosaver`: the session is saved to the user's data folder a few seconds
  after changes (atomically); a clean exit removes it, so a file left behind means
  the last run ended abnormally and the next start offers to restore it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, QStandardPaths, QTimer
from PySide6.QtWidgets import QMessageBox, QWidget

from explorer import __version__
from explorer.app.state import Change, ExplorerState
from explorer.files.io import FileFormatError, load_session, save_session

__all__ = ["AUTOSAVE_MS", "Autosaver", "crash_report", "data_dir", "install_excepthook"]

log = logging.getLogger("explorer")

#: Delay after the last change before the session is autosaved.
AUTOSAVE_MS = 3000
AUTOSAVE_NAME = "autosave.gradexp.json"


def data_dir() -> Path:
    """The user's data folder for the app (``GRADIENT_EXPLORER_DATA`` overrides it, for tests)."""
    override = os.environ.get("GRADIENT_EXPLORER_DATA")
    base = (
        Path(override)
        if override
        else Path(
            QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
            or Path.home() / ".gradient-explorer"
        )
    )
    base.mkdir(parents=True, exist_ok=True)
    return base


def crash_report(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> str:
    """Plain text for a bug report: versions and the traceback."""
    import numpy as np
    import pyqtgraph as pg
    from PySide6 import __version__ as pyside_version

    lines = traceback.format_exception(exc_type, exc, tb)
    return (
        f"Gradient Explorer {__version__}, Python {platform.python_version()}, NumPy {np.__version__}, "
        f"PySide6 {pyside_version}, pyqtgraph {pg.__version__}, {platform.platform()}\n\n" + "".join(lines)
    )


def show_crash_dialog(parent: QWidget | None, message: str, details: str) -> None:
    """The dialog of the exception hook (a function so tests can replace it)."""
    box = QMessageBox(QMessageBox.Icon.Critical, "Unexpected error",
                      f"Something went wrong: {message}\n\nYour work is kept; you can go on. "
                      "The details below can be copied into a bug report.", parent=parent)  # fmt: skip
    box.setDetailedText(details)
    box.exec()


def install_excepthook(parent: Callable[[], QWidget | None]) -> Callable[..., None]:
    """Route uncaught exceptions to the log and a dialog instead of ending the app. Returns the hook."""

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        details = crash_report(exc_type, exc, tb)
        log.error("uncaught exception\n%s", details)
        try:
            (data_dir() / "last-error.txt").write_text(details, encoding="utf-8")
        except OSError:
            log.exception("could not write the error report")
        show_crash_dialog(parent(), f"{exc_type.__name__}: {exc}", details)

    sys.excepthook = hook
    return hook


class Autosaver(QObject):
    """Saves the session a few seconds after each change; tells whether the last run left one behind."""

    def __init__(self, state: ExplorerState, folder: Path | None = None, parent: QObject | None = None,
                 delay_ms: int = AUTOSAVE_MS):  # fmt: skip
        super().__init__(parent)
        self.state = state
        self.path = (folder or data_dir()) / AUTOSAVE_NAME
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.save_now)
        self._armed = False

    def leftover(self) -> Path | None:
        """The autosave of a run that did not exit cleanly, if any."""
        return self.path if self.path.exists() else None

    def restore(self, apply: Callable[[object], None]) -> bool:
        """Load the leftover autosave and hand it to ``apply``; a bad file is set aside, not loaded."""
        try:
            session = load_session(self.path)
        except FileFormatError as exc:
            log.warning("autosave not restored: %s", exc)
            self.path.replace(self.path.with_suffix(".bad"))
            return False
        apply(session)
        return True

    def start(self) -> None:
        """Begin watching for changes (after any restore decision)."""
        if not self._armed:
            self._armed = True
            self.state.changed.connect(self._on_state_changed)

    def _on_state_changed(self, _change: Change) -> None:
        self._timer.start()

    def save_now(self) -> None:
        try:
            save_session(self.path, *self.state.snapshot())
        except OSError:
            log.exception("autosave failed")

    def discard(self) -> None:
        """A clean exit: no autosave is left behind."""
        self._timer.stop()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
