"""Nothing a user does should crash the app or lose their work.

* :func:`install_excepthook`: an exception that escapes anyway (a bug) is logged,
  shown in a dialog with a copyable report, and the app keeps running.
* :class:`~explorer.app.autosave.Autosaver` (re-exported here): each window autosaves
  to its own locked file; a file left behind by a window that is gone is offered at
  the next start.
"""

from __future__ import annotations

import logging
import platform
import sys
import traceback
from collections.abc import Callable
from types import TracebackType

from PySide6.QtWidgets import QMessageBox, QWidget

from explorer import __version__
from explorer.app.autosave import AUTOSAVE_MS, Autosaver, data_dir

__all__ = ["AUTOSAVE_MS", "Autosaver", "crash_report", "data_dir", "install_excepthook"]

log = logging.getLogger("explorer")


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
