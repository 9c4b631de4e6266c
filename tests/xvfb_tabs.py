"""Child process for test_gui_xvfb: a dock tab brought forward on a real X server shows the current numbers.

Prints one JSON line: whether the summary and the inspector, each edited behind another tab and then raised,
show the new report's numbers (on X11 a raised tab may repaint only the summary's content widget).
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from explorer.gui import MainWindow
    from explorer.gui.shown_refresh import on_screen

    w = MainWindow(restore_settings=False)
    w.resize(1024, 600)
    w.show()
    result: dict[str, object] = {}
    steps: list = []

    def later(ms: int, fn) -> None:  # type: ignore[no-untyped-def]
        QTimer.singleShot(ms, fn)

    def step_hide_summary() -> None:
        w.layout_docks.inspector.raise_()
        later(300, step_edit)

    def step_edit() -> None:
        result["summary_hidden"] = not on_screen(w.summary)
        w.controller.set_logit(0, int(w.state.labels[0]), -40.0)
        later(600, step_raise)

    def step_raise() -> None:
        result["loss"] = f"Loss: {w.display.report.loss:.10g}"
        w.layout_docks.summary.raise_()
        later(1500, finish)

    def finish() -> None:
        text = w.summary.toPlainText()
        result["summary_current"] = result["loss"] in text
        result["platform"] = app.platformName()
        print(json.dumps(result), flush=True)
        w.controller.stack.setClean()
        w.close()
        app.quit()

    w.recomputer.reportReady.connect(lambda _r: steps or (steps.append(1), later(300, step_hide_summary)))
    QTimer.singleShot(30_000, app.quit)
    app.exec()
    return 0 if result else 1


if __name__ == "__main__":
    sys.exit(main())
