"""The real window on Xvfb at 1024 x 600, 1280 x 720 and 1920 x 1080, light and dark, and at 150 % and 200 %.

Each configuration runs the window in a child process (this file, run as a script) on an X server of
that size. The child waits for the first result and the first sweep, then checks what is on screen
and prints one JSON line:

* every visible widget lies inside the screen (its visible part, so a scrolled panel's content counts
  only where it shows);
* no two visible sibling widgets overlap;
* no tick label overlaps another tick label of its axis or the axis title, and none is clipped by its
  view (scene rectangles of what pyqtgraph draws);
* label and number text meets 4.5:1 contrast against its background (labels, buttons, check boxes,
  the grid's cells, the plots' axes and titles, the coloured rich text).

Screenshots are kept under the test's tmp dir, or in ``GRADIENT_EXPLORER_SCREENSHOTS`` (a folder) when
set; README's pictures come from there (``docs/screenshot.png``, ``docs/screenshot-dark.png``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
SIZES = ((1024, 600), (1280, 720), (1920, 1080))
#: (screen, theme, QT_SCALE_FACTOR) of every run.
CONFIGS = [(size, theme, 1) for size in SIZES for theme in ("light", "dark")] + [((1920, 1080), "light", 2),
                                                                                  ((1920, 1080), "dark", 1.5)]
SETTLE_MS = 300
TIMEOUT_MS = 40_000
MIN_CONTRAST = 4.5
#: Text whose colour is set in a file another engineer owns, with the change requested (issue 13 report):
#: explorer/gui/your_code_panel.py styles its warning ``color: #8a4b00`` whatever the theme.
PENDING_ELSEWHERE: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------- the child
def _rect_tuple(r: object) -> list[float]:
    return [round(r.x(), 1), round(r.y(), 1), round(r.width(), 1), round(r.height(), 1)]  # type: ignore[attr-defined]


def _name(w: object) -> str:
    return f"{type(w).__name__}({w.objectName() or '-'})"  # type: ignore[attr-defined]


def check_geometry(window: object) -> dict[str, list]:
    """Widgets outside the screen, and overlapping visible siblings."""
    from PySide6.QtCore import QRect
    from PySide6.QtWidgets import QWidget

    screen = window.screen().geometry()  # type: ignore[attr-defined]
    outside, overlaps = [], []
    widgets = [window, *window.findChildren(QWidget)]  # type: ignore[attr-defined]
    for w in widgets:
        if not w.isVisible() or (w.isWindow() and w is not window):
            continue
        visible = w.visibleRegion().boundingRect()
        if visible.isEmpty():
            continue
        top_left = w.mapToGlobal(visible.topLeft())
        area = QRect(top_left, visible.size())
        if not screen.contains(area):
            outside.append([_name(w), _rect_tuple(area)])
    for parent in widgets:
        if not parent.isVisible():
            continue
        # Shown: visible and not wholly covered or clipped (a dock behind another dock's tab is "visible" but
        # parked outside the window, where nothing shows it).
        kids = [k for k in parent.children() if isinstance(k, QWidget) and k.isVisible() and not k.isWindow()]
        kids = [k for k in kids if k.width() > 0 and k.height() > 0 and not k.visibleRegion().isEmpty()]
        for a_index, a in enumerate(kids):
            for b in kids[a_index + 1 :]:
                common = a.geometry().intersected(b.geometry())
                if common.width() > 1 and common.height() > 1:
                    overlaps.append([_name(parent), _name(a), _name(b), _rect_tuple(common)])
    return {"outside": outside, "overlaps": overlaps}


def check_ticks(window: object) -> list[str]:
    """Tick labels that overlap each other or their axis title, or are clipped by their view."""
    import pyqtgraph as pg
    from PySide6.QtGui import QImage, QPainter

    problems = []
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        for view in window.findChildren(pg.GraphicsView):  # type: ignore[attr-defined]
            if not view.isVisible() or view.width() < 20 or view.height() < 20:
                continue
            shown = view.mapToScene(view.viewport().rect()).boundingRect().adjusted(-0.5, -0.5, 0.5, 0.5)
            for item in view.scene().items():
                if not isinstance(item, pg.AxisItem) or not item.isVisible() or not item.style["showValues"]:
                    continue
                specs = item.generateDrawSpecs(painter)
                if specs is None:
                    continue
                rects = [(item.mapRectToScene(r), t) for r, _flags, t in specs[2] if t]
                where = f"{view.objectName() or type(view).__name__}/{item.orientation}"
                for k, (r, t) in enumerate(rects):
                    if not shown.contains(r):
                        problems.append(f"{where}: tick {t!r} clipped {_rect_tuple(r)} outside {_rect_tuple(shown)}")
                    for r2, t2 in rects[k + 1 :]:
                        if r.intersects(r2) and r.intersected(r2).width() > 0.5 and r.intersected(r2).height() > 0.5:
                            problems.append(f"{where}: ticks {t!r} and {t2!r} overlap")
                    if item.label.isVisible() and item.label.toPlainText().strip():
                        title = item.label.sceneBoundingRect().adjusted(2, 2, -2, -2)
                        if r.intersects(title):
                            problems.append(f"{where}: tick {t!r} overlaps the title {item.label.toPlainText()!r}")
    finally:
        painter.end()
    return problems


def check_contrast(window: object) -> list[str]:
    """Text colours against their backgrounds, below 4.5:1."""
    import pyqtgraph as pg
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QAbstractButton, QComboBox, QLabel, QTableView, QTextBrowser

    from explorer.app.report_text import html_colors
    from explorer.gui.theme import contrast_ratio

    low = []

    def need(what: str, fg: QColor, bg: QColor) -> None:
        ratio = contrast_ratio(fg, bg)
        if ratio < MIN_CONTRAST and not what.startswith(PENDING_ELSEWHERE):
            low.append(f"{what}: {fg.name()} on {bg.name()} = {ratio:.2f}")

    for w in window.findChildren(QLabel) + window.findChildren(QAbstractButton) + window.findChildren(QComboBox):  # type: ignore[attr-defined]
        if w.isVisible():
            pal = w.palette()
            fg_role, bg_role = w.foregroundRole(), w.backgroundRole()
            need(_name(w), pal.color(fg_role), pal.color(bg_role))
    for table in window.findChildren(QTableView):  # type: ignore[attr-defined]
        if not table.isVisible() or table.model() is None:
            continue
        model, pal = table.model(), table.palette()
        for row in range(min(model.rowCount(), 12)):
            for col in range(min(model.columnCount(), 12)):
                index = model.index(row, col)
                bg = model.data(index, Qt.ItemDataRole.BackgroundRole)
                fg = model.data(index, Qt.ItemDataRole.ForegroundRole)
                bg_c = bg.color() if bg is not None else pal.color(QPalette.ColorRole.Base)
                fg_c = fg.color() if fg is not None else pal.color(QPalette.ColorRole.Text)
                need(f"{table.objectName()}[{row},{col}]", fg_c, bg_c)
    for browser in window.findChildren(QTextBrowser):  # type: ignore[attr-defined]
        base = browser.palette().color(QPalette.ColorRole.Base)
        need(f"{browser.objectName()} text", browser.palette().color(QPalette.ColorRole.Text), base)
        for key, colour in html_colors().items():
            need(f"{browser.objectName()} {key} text", QColor(colour), base)
    for view in window.findChildren(pg.GraphicsView):  # type: ignore[attr-defined]
        if not view.isVisible():
            continue
        background = view.backgroundBrush().color()
        for item in view.scene().items():
            if isinstance(item, pg.AxisItem) and item.isVisible():
                need(f"{view.objectName()}/{item.orientation} ticks", item.textPen().color(), background)
            elif isinstance(item, pg.LabelItem) and item.isVisible() and item.text:
                need(f"{view.objectName()} title {item.text!r}", QColor(item.opts.get("color") or "#000"), background)
            elif isinstance(item, pg.TextItem) and item.isVisible():
                need(f"{view.objectName()} text {item.toPlainText()!r}", item.color, background)
    return low


def child(shot: str) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from explorer.gui import MainWindow

    w = MainWindow(restore_settings=False)
    w.show()
    state = {"code": 1, "report": False, "sweep": False, "done": False}

    def finish(payload: dict, code: int) -> None:
        if state["done"]:
            return
        state["done"] = True
        print(json.dumps(payload), flush=True)
        state["code"] = code
        w.controller.stack.setClean()
        w.close()
        app.quit()

    def measure() -> None:
        screen = w.screen()
        w.screen().grabWindow(0).save(shot)
        payload = {
            "screen": [screen.geometry().width(), screen.geometry().height()],
            "dpr": screen.devicePixelRatio(),
            "window": [w.frameGeometry().width(), w.frameGeometry().height()],
            "minimum": [w.minimumSizeHint().width(), w.minimumSizeHint().height()],
            "dark": w.themes.dark,
            **check_geometry(w),
            "ticks": check_ticks(w),
            "contrast": check_contrast(w),
        }
        finish(payload, 0)

    def ready() -> None:
        if state["report"] and state["sweep"]:
            QTimer.singleShot(SETTLE_MS, measure)

    def on_display_changed(change: object) -> None:
        if getattr(change, "report", False) and w.display.report is not None:
            state["report"] = True
        if getattr(change, "sweep", False) and w.display.sweep is not None:
            state["sweep"] = True
        ready()

    w.display.changed.connect(on_display_changed)
    QTimer.singleShot(TIMEOUT_MS, lambda: finish({"timeout": True}, 1))
    app.exec()
    return int(state["code"])


# ---------------------------------------------------------------------------------------------- the tests
pytestmark = pytest.mark.xvfb


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run every configuration once (one X server per screen size) and collect the children's reports."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (CI installs it: see .ci/run)")
    sys.path.insert(0, str(HERE.parent))
    from xvfb_harness import start_xvfb

    folder = Path(os.environ.get("GRADIENT_EXPLORER_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    for size in SIZES:
        proc, display = start_xvfb(*size)
        try:
            for config in [c for c in CONFIGS if c[0] == size]:
                _, theme, scale = config
                shot = folder / f"window-{size[0]}x{size[1]}-{theme}{f'-x{scale}' if scale != 1 else ''}.png"
                settings = tmp_path_factory.mktemp("settings") / "settings.ini"
                env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "GRADIENT_EXPLORER_THEME": theme,
                       "QT_SCALE_FACTOR": str(scale), "GRADIENT_EXPLORER_SETTINGS": str(settings),
                       "GRADIENT_EXPLORER_DATA": str(settings.parent / "data"),
                       "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}  # fmt: skip
                run = subprocess.run([sys.executable, str(HERE), str(shot)], env=env, capture_output=True, text=True,
                                     timeout=90)  # fmt: skip
                lines = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
                results[config] = {"report": json.loads(lines[-1]) if lines else None, "shot": shot,
                                   "stderr": run.stderr[-3000:], "code": run.returncode}  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return results


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c[0][0]}x{c[0][1]}-{c[1]}-x{c[2]}")
def test_window_fits_reads_and_does_not_overlap(screenshots: dict, config: tuple) -> None:
    result = screenshots[config]
    report = result["report"]
    assert result["code"] == 0 and report is not None and not report.get("timeout"), result["stderr"]
    (width, height), theme, scale = config
    logical = [round(width / scale), round(height / scale)]
    assert report["screen"] == logical
    assert report["dpr"] == scale
    assert report["dark"] == (theme == "dark")
    assert report["window"][0] <= logical[0] and report["window"][1] <= logical[1]
    assert report["outside"] == [], report["outside"]
    assert report["overlaps"] == [], report["overlaps"]
    assert report["ticks"] == [], report["ticks"]
    assert report["contrast"] == [], report["contrast"]
    shot = result["shot"]
    from PySide6.QtGui import QImage

    image = QImage(str(shot))
    assert (image.width(), image.height()) == (width, height)
    step = max(1, width // 40)
    colours = {image.pixel(x, y) for x in range(0, width, step) for y in range(0, height, step)}
    assert len(colours) > 20  # a drawn window, not a blank screen


if __name__ == "__main__":
    sys.exit(child(sys.argv[1]))
