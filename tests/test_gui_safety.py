"""Crash safety: autosave and restore after an abnormal exit; the global exception hook keeps the app alive."""

from __future__ import annotations

import sys

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


def _leave_autosave() -> tuple[np.ndarray, np.ndarray, CheckSettings]:
    x = np.arange(8.0).reshape(2, 4)
    y = np.array([3, 1])
    s = CheckSettings(eps=1e-3, scheme="forward", reduction="mean")
    save_session(safety.data_dir() / safety.AUTOSAVE_NAME, x, y, s)
    return x, y, s


def test_next_start_offers_to_restore_the_autosave(qtbot, dialogs) -> None:
    x, y, _ = _leave_autosave()
    dialogs.answer = QMessageBox.StandardButton.Yes
    w = MainWindow()
    qtbot.addWidget(w)
    assert dialogs[0][0] == "question" and "Restore" in dialogs[0][1]
    np.testing.assert_array_equal(w.state.logits, x)
    np.testing.assert_array_equal(w.state.labels, y)
    assert w.state.settings.scheme == "forward"
    assert w.document.modified  # restored work is unsaved until the user saves it
    qtbot.waitUntil(lambda: report_matches_state(w.report, w.state), timeout=5000)
    w.recomputer.shutdown()


def test_declining_the_restore_discards_the_autosave(qtbot, dialogs) -> None:
    _leave_autosave()
    dialogs.answer = QMessageBox.StandardButton.No
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.state.shape == (3, 10)
    assert not (safety.data_dir() / safety.AUTOSAVE_NAME).exists()
    w.recomputer.shutdown()


def test_a_damaged_autosave_is_set_aside(qtbot, dialogs) -> None:
    (safety.data_dir() / safety.AUTOSAVE_NAME).write_text('{"format": "gradient-explorer-session", "vers')
    dialogs.answer = QMessageBox.StandardButton.Yes
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.state.shape == (3, 10)
    assert "damaged" in w.statusBar().currentMessage()
    assert (safety.data_dir() / "autosave.gradexp.bad").exists()
    w.recomputer.shutdown()


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
