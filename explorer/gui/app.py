"""Create the QApplication and the window, and run the event loop."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from explorer.files.resources import resource_path

__all__ = ["run"]


def run(args: argparse.Namespace, start: float) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Gradient Explorer")
    app.setOrganizationName("GradientExplorer")
    app.setWindowIcon(QIcon(str(resource_path("icon.svg"))))
    from explorer.gui.mainwindow import MainWindow
    from explorer.gui.safety import data_dir, install_excepthook

    logging.basicConfig(filename=str(data_dir() / "explorer.log"), level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    window = MainWindow(restore_settings=not args.no_restore)
    install_excepthook(lambda: window)
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
