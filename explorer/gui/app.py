"""Create the QApplication and the window, and run the event loop."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QWidget

from explorer.files.resources import resource_path

__all__ = ["run"]


def _start_logging() -> None:
    """Log to ``explorer.log`` in the data folder, or to stderr when that folder cannot be used."""
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    from explorer.gui.safety import data_dir

    try:
        logging.basicConfig(filename=str(data_dir() / "explorer.log"), level=logging.INFO, format=fmt)
    except OSError as exc:
        logging.basicConfig(level=logging.WARNING, format=fmt)
        logging.getLogger("explorer").warning("no log file: %s", exc)


def run(args: argparse.Namespace, start: float) -> int:
    """Start the window and run the event loop; returns the exit code.

    The exception hook is installed before anything else is built, so an error while the
    window starts (a slot, a dialog) is reported in the crash dialog instead of ending the app.
    """
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from explorer.gui.safety import install_excepthook

    windows: list[QWidget] = []
    install_excepthook(lambda: windows[0] if windows else None)
    app.setApplicationName("Gradient Explorer")
    app.setOrganizationName("GradientExplorer")
    QApplication.setWindowIcon(QIcon(str(resource_path("icon.svg"))))
    _start_logging()
    from explorer.gui.mainwindow import MainWindow

    window = MainWindow(restore_settings=not args.no_restore)
    windows.append(window)
    if args.preset:
        window.controls.load_preset(args.preset)
        window.controller.stack.clear()
    window.show()
    if args.quit_after_first_draw:
        # Cold-start benchmark: report when the first result has been drawn, then quit.
        def _on_first_report(_report: object) -> None:
            window.repaint()
            print(f"first-draw {time.perf_counter() - start:.3f}", flush=True)
            QTimer.singleShot(0, window.close)

        window.recomputer.reportReady.connect(_on_first_report)
    return app.exec()
