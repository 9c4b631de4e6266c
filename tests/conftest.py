"""Test configuration: offscreen Qt by default, deterministic hypothesis profiles."""

from __future__ import annotations

import os

# Must happen before any QApplication exists: without a display (and without this),
# Qt aborts the whole test run. Tests that need a real window start Xvfb themselves.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own settings file, so no test sees another's (or the user's) settings."""
    monkeypatch.setenv("GRADIENT_EXPLORER_SETTINGS", str(tmp_path / "settings.ini"))  # type: ignore[operator]
    monkeypatch.setenv("GRADIENT_EXPLORER_DATA", str(tmp_path / "data"))  # type: ignore[operator]


@pytest.fixture
def window(qtbot):  # type: ignore[no-untyped-def]
    """The real MainWindow, shown, with its first report drawn."""
    from explorer.gui import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.recomputer.reportReady, timeout=5000):
        w.show()
    yield w
    w.recomputer.shutdown()


@pytest.fixture
def shown(qtbot, window):  # type: ignore[no-untyped-def]
    """``shown("summary" | "inspector" | "worst")``: the view with its dock tab brought forward and refreshed.

    The three share one dock area as tabs, and a view behind another tab is refreshed only when it is shown.
    """
    from explorer.gui.shown_refresh import on_screen

    def bring(name: str):  # type: ignore[no-untyped-def]
        view = {"summary": window.summary, "inspector": window.inspector, "worst": window.worst_cells}[name]
        getattr(window.layout_docks, name).raise_()
        qtbot.waitUntil(lambda: on_screen(view) and not view._shown.stale, timeout=3000)
        return view

    return bring


@pytest.fixture
def inspector(shown):  # type: ignore[no-untyped-def]
    """The window's cell inspector, its tab in front (see :func:`shown`)."""
    return shown("inspector")


@pytest.fixture(autouse=True)
def dialogs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Modal message boxes would block a test run: record them instead, and answer questions with
    ``dialogs.answer`` (Discard unless a test sets it)."""
    from PySide6.QtWidgets import QMessageBox

    class Recorder(list):  # type: ignore[type-arg]
        answer = QMessageBox.StandardButton.Discard

    recorder = Recorder()

    def record(kind: str):  # type: ignore[no-untyped-def]
        def show(_parent: object, title: str, text: str, *args: object, **kwargs: object) -> object:
            recorder.append((kind, title, text))
            return recorder.answer if kind == "question" else QMessageBox.StandardButton.Ok

        return show

    for kind in ("question", "warning", "critical", "information"):
        monkeypatch.setattr(QMessageBox, kind, staticmethod(record(kind)))
    return recorder
