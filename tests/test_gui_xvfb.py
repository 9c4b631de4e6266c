"""The real window on an X server (Xvfb, the xcb platform), driven by real X key and mouse events."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("xvfb_harness.py")
ROOT = HARNESS.parent.parent

pytestmark = pytest.mark.xvfb


@pytest.fixture
def x_display(tmp_path: Path):  # type: ignore[no-untyped-def]
    if shutil.which("Xvfb") is None or shutil.which("xdotool") is None:
        pytest.skip("Xvfb and xdotool are not installed (CI installs them: see .ci/run)")
    from xvfb_harness import start_xvfb

    proc, display = start_xvfb()
    yield display
    proc.terminate()
    proc.wait(timeout=10)


def _read_json(proc: subprocess.Popen) -> dict:
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError("the window exited without reporting: " + (proc.stderr.read() if proc.stderr else ""))


def test_real_window_typing_changes_the_heatmaps(x_display: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DISPLAY": x_display,
        "QT_QPA_PLATFORM": "xcb",
        "GRADIENT_EXPLORER_SETTINGS": str(tmp_path / "settings.ini"),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    shot = tmp_path / "xvfb-window.png"
    with subprocess.Popen(
        [sys.executable, str(HARNESS), str(shot), "120"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            ready = _read_json(proc)
            assert ready["platform"] == "xcb"
            subprocess.run(
                ["xdotool", "mousemove", str(ready["x"]), str(ready["y"]), "click", "1"], env=env, check=True
            )
            subprocess.run(["xdotool", "type", "--delay", "30", "120"], env=env, check=True)
            subprocess.run(["xdotool", "key", "Return"], env=env, check=True)
            done = _read_json(proc)
            assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
    assert done["done"] and done["value"] == 120.0
    assert done["changed"] == [True, True, True]
    assert shot.stat().st_size > 10_000
    from PySide6.QtGui import QImage

    image = QImage(str(shot))
    assert (image.width(), image.height()) == (1280, 800)
    colours = {image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 37)}
    assert len(colours) > 20  # a drawn window, not a blank screen
    saved = os.environ.get("GRADIENT_EXPLORER_SCREENSHOT")
    if saved:
        shutil.copy(shot, saved)


def test_real_window_a_raised_summary_tab_shows_the_new_numbers(x_display: str, tmp_path: Path) -> None:
    """On X11 raising the summary's tab repaints only its content widget (it covers the scroll area's viewport):
    the summary, edited while behind the inspector's tab, stayed stale when brought forward."""
    env = {
        **os.environ,
        "DISPLAY": x_display,
        "QT_QPA_PLATFORM": "xcb",
        "GRADIENT_EXPLORER_SETTINGS": str(tmp_path / "settings.ini"),
        "GRADIENT_EXPLORER_DATA": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    out = subprocess.run([sys.executable, str(HARNESS.with_name("xvfb_tabs.py"))], env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    line = next((s for s in out.stdout.splitlines() if s.startswith("{")), None)
    assert line is not None, out.stderr
    result = json.loads(line)
    assert result["platform"] == "xcb" and result["summary_hidden"]
    assert result["summary_current"], result
