"""Crash safety: autosave and restore after an abnormal exit; the global exception hook keeps the app alive."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox

from explorer.app.jobs import report_matches_state
from explorer.core import CheckSettings
from explorer.files.io import load_session, save_session
from explorer.gui import MainWindow, safety


def test_changes_are_autosaved_and_a_clean_exit_removes_the_file(qtbot, window: MainWindow) -> None:
    window.autosaver._timer.setInterval(30)
    window.grid.logits_model.setData(window.grid.logits_model.index(2, 3), "-7.5")
    path = window.autosaver.path
    qtbot.waitUntil(path.exists, timeout=3000)
    saved = load_session(path)
    np.testing.assert_array_equal(saved.logits, window.state.logits)
    assert path.parent == safety.data_dir()
    window.close()  # the dialogs fixture discards the unsaved changes
    assert not path.exists()


def _leave_autosave(name: str = "autosave-0123abcd.gradexp.json") -> tuple[np.ndarray, np.ndarray, CheckSettings]:
    """An autosave left by a window that is gone (no lock file: its owner ended without unlocking)."""
    x = np.arange(8.0).reshape(2, 4)
    y = np.array([3, 1])
    s = CheckSettings(eps=1e-3, scheme="forward", reduction="mean")
    save_session(safety.data_dir() / name, x, y, s)
    return x, y, s


@pytest.mark.parametrize("name", ["autosave-0123abcd.gradexp.json", "autosave.gradexp.json"])
def test_next_start_offers_to_restore_the_autosave(qtbot, dialogs, name: str) -> None:
    x, y, _ = _leave_autosave(name)
    dialogs.answer = QMessageBox.StandardButton.Yes
    w = MainWindow()
    qtbot.addWidget(w)
    assert dialogs[0][0] == "question" and "Restore" in dialogs[0][1]
    np.testing.assert_array_equal(w.state.logits, x)
    np.testing.assert_array_equal(w.state.labels, y)
    assert w.state.settings.scheme == "forward"
    assert w.document.modified  # restored work is unsaved until the user saves it
    # The restored work is kept by the new window's own autosave; the old file is gone.
    assert not (safety.data_dir() / name).exists()
    np.testing.assert_array_equal(load_session(w.autosaver.path).logits, x)
    qtbot.waitUntil(lambda: report_matches_state(w.report, w.state), timeout=5000)
    w.recomputer.shutdown()


def test_declining_the_restore_discards_the_autosave(qtbot, dialogs) -> None:
    _leave_autosave()
    dialogs.answer = QMessageBox.StandardButton.No
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.state.shape == (3, 10)
    assert not list(safety.data_dir().glob("autosave*.gradexp.json"))
    w.recomputer.shutdown()


def _deeply_nested(path: Path) -> None:
    path.write_text('{"format": "gradient-explorer-session", "logits": ' + "[" * 200_000 + "]" * 200_000 + "}")


def _huge_integer(path: Path) -> None:
    path.write_text(
        '{"format": "gradient-explorer-session", "version": 1, "logits": [[' + "9" * 5000 + ', 1]], "labels": [0]}'
    )


def _damaged(path: Path) -> None:
    path.write_text('{"format": "gradient-explorer-session", "vers')


CRAFTED = {"deep nesting": _deeply_nested, "5000-digit integer": _huge_integer, "truncated": _damaged}


@pytest.mark.parametrize("folder_in_the_way", [False, True], ids=["", "folder in the way"])
@pytest.mark.parametrize("craft", CRAFTED.values(), ids=CRAFTED.keys())
def test_a_crafted_autosave_is_set_aside_and_the_window_starts(
    qtbot, dialogs, craft: Callable[[Path], None], folder_in_the_way: bool
) -> None:
    folder = safety.data_dir()
    craft(folder / "autosave.gradexp.json")
    if folder_in_the_way:
        (folder / "autosave.gradexp.bad").mkdir()
    dialogs.answer = QMessageBox.StandardButton.Yes
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.state.shape == (3, 10)
    assert "damaged" in w.statusBar().currentMessage()
    assert not (folder / "autosave.gradexp.json").exists()
    aside = folder / ("autosave.gradexp.bad-1" if folder_in_the_way else "autosave.gradexp.bad")
    assert aside.is_file()
    assert "set aside as " + aside.name in w.autosaver.problem
    w.recomputer.shutdown()


def test_start_up_survives_a_crafted_autosave_in_a_real_process(tmp_path: Path) -> None:
    """``python -m explorer`` with a hostile autosave and a folder where it would be set aside."""
    data = tmp_path / "data"
    data.mkdir()
    _huge_integer(data / "autosave.gradexp.json")
    (data / "autosave.gradexp.bad").mkdir()
    script = (
        "import sys\n"
        "from PySide6.QtWidgets import QMessageBox\n"
        "B = QMessageBox.StandardButton\n"
        "QMessageBox.question = staticmethod(lambda _p, title, *a, **k: B.Yes if 'Restore' in title else B.Discard)\n"
        "for kind in ('warning', 'critical', 'information'):\n"
        "    setattr(QMessageBox, kind, staticmethod(lambda *a, **k: B.Ok))\n"
        "from explorer.cli import main\n"
        "sys.exit(main(['--quit-after-first-draw', '--no-restore']))\n"
    )
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "GRADIENT_EXPLORER_DATA": str(data),
        "GRADIENT_EXPLORER_SETTINGS": str(tmp_path / "settings.ini"),
    }
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "first-draw" in out.stdout
    assert "Traceback" not in out.stderr
    assert (data / "autosave.gradexp.bad-1").is_file()
    assert not (data / "autosave.gradexp.json").exists()
    assert "not restored" in (data / "explorer.log").read_text()


@pytest.fixture
def crash_dialogs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(safety, "show_crash_dialog", lambda _parent, message, details: shown.append((message, details)))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    return shown


def test_exception_hook_logs_shows_and_writes_a_report(crash_dialogs: list) -> None:
    hook = safety.install_excepthook(lambda: None)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        hook(*sys.exc_info())
    ((message, details),) = crash_dialogs
    assert message == "RuntimeError: boom"
    assert "Traceback" in details and "Gradient Explorer" in details
    assert "RuntimeError: boom" in (safety.data_dir() / "last-error.txt").read_text()


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_slot_does_not_stop_the_app(qtbot, window: MainWindow, crash_dialogs: list) -> None:
    safety.install_excepthook(lambda: window)

    def broken_slot() -> None:
        raise ZeroDivisionError("a bug")

    QTimer.singleShot(0, broken_slot)
    qtbot.waitUntil(lambda: len(crash_dialogs) == 1, timeout=3000)
    assert crash_dialogs[0][0] == "ZeroDivisionError: a bug"
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        window.grid.logits_model.setData(window.grid.logits_model.index(0, 0), "5")
    assert window.report.logits[0, 0] == 5.0
