"""Child process for test_gui_xvfb: the real window on an X server, reporting what happens.

Prints one JSON line when ready (the screen position of a logits cell), then one when
the typed value has reached the state and all three heatmaps show a new result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

TIMEOUT_MS = 40_000


def start_xvfb(width: int = 1280, height: int = 800) -> tuple[subprocess.Popen, str]:
    """Start Xvfb on a free display (it picks the number and reports it); returns the process and ':N'."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not report a display number")
    return proc, f":{number}"


SETTLE_MS = 400


def main() -> int:
    import numpy as np
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    screenshot, target = sys.argv[1], float(sys.argv[2])
    app = QApplication(sys.argv[:1])
    from explorer.app.jobs import report_matches_state
    from explorer.gui import MainWindow

    w = MainWindow(restore_settings=False)
    w.move(0, 0)
    w.show()
    w.raise_()
    w.activateWindow()
    views = (w.heatmaps.analytic, w.heatmaps.numeric, w.heatmaps.error)
    first: list[np.ndarray] = []
    result = {"code": 1}

    def finish(payload: dict, code: int) -> None:
        print(json.dumps(payload), flush=True)
        result["code"] = code
        w.controller.stack.setClean()  # no "save changes?" prompt in a test run
        w.close()
        app.quit()

    def on_report(_report: object) -> None:
        if not first:
            first.extend(v.image_item.image.copy() for v in views)
            view = w.grid.logits_view
            view.scrollTo(view.model().index(0, 0))  # the worst cell may have been scrolled into view
            rect = view.visualRect(view.model().index(0, 0))
            centre = view.viewport().mapToGlobal(rect.center())
            print(
                json.dumps({"ready": True, "x": centre.x(), "y": centre.y(), "platform": app.platformName()}),
                flush=True,
            )
            return
        if w.state.logits[0, 0] == target and report_matches_state(w.report, w.state):
            changed = [not np.array_equal(a, v.image_item.image) for a, v in zip(first, views, strict=True)]

            def grab() -> None:  # after the deferred repaints reached the X server
                w.screen().grabWindow(0, 0, 0, w.width(), w.height()).save(screenshot)
                finish({"done": True, "changed": changed, "value": float(w.state.logits[0, 0])}, 0)

            QTimer.singleShot(SETTLE_MS, grab)

    w.recomputer.reportReady.connect(on_report)
    QTimer.singleShot(TIMEOUT_MS, lambda: finish({"done": False, "value": float(w.state.logits[0, 0])}, 1))
    app.exec()
    return result["code"]


if __name__ == "__main__":
    sys.exit(main())
