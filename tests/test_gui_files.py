"""Files from the window: sessions, recent files, modified mark, close prompt, bad files, exports, drag and drop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QMessageBox

from explorer.app.jobs import report_matches_state
from explorer.files.io import load_session, read_csv_export
from explorer.gui import MainWindow

HEAD = '{"format": "gradient-explorer-session", "version": '


def _snapshot(w: MainWindow) -> tuple:
    x, y, s = w.state.snapshot()
    return x, y, s, w.controller.stack.count(), w.document.path


def _assert_same(a: tuple, b: tuple) -> None:
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2:] == b[2:]


def test_save_open_round_trip_title_and_recent(qtbot, window: MainWindow, tmp_path: Path) -> None:
    window.grid.logits_model.setData(window.grid.logits_model.index(0, 0), "12.5")
    window.controls.smoothing_spin.setValue(0.2)
    assert window.isWindowModified() and "Untitled[*]" in window.windowTitle()
    path = tmp_path / "mine.gradexp.json"
    assert window.save_to(str(path))
    assert not window.isWindowModified() and window.windowTitle().startswith("mine.gradexp.json[*]")
    saved = _snapshot(window)
    window.controls.randomize()
    assert window.isWindowModified()
    assert window.open_path(str(path))
    x, y, s = window.state.snapshot()
    np.testing.assert_array_equal(x, saved[0])
    np.testing.assert_array_equal(y, saved[1])
    assert s == saved[2] and s.label_smoothing == 0.2
    assert not window.isWindowModified()
    assert window.document.recent()[0] == str(path)
    assert window.recent_menu.actions()[0].text() == str(path)
    assert load_session(path).settings == s


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("trunc.gradexp.json", HEAD + '1, "logits": [[1, 2]', "not valid JSON"),
        ("shape.gradexp.json", HEAD + '1, "logits": [1, 2], "labels": [0]}', "N x C"),
        ("label.gradexp.json", HEAD + '1, "logits": [[1, 2]], "labels": [5]}', "label 5"),
        ("text.gradexp.json", HEAD + '1, "logits": [["x"]], "labels": [0]}', "numbers"),
        ("newer.gradexp.json", HEAD + '7, "logits": [[1]], "labels": [0]}', "newer"),
        ("ragged.csv", "1,2\n3\n", "different numbers"),
        ("nan.csv", "1,nan\n2,3\n", "not a finite number"),
        ("huge.npy", None, "8192 x 262144"),
    ],
)  # fmt: skip
def test_bad_files_change_nothing_and_say_why(window: MainWindow, dialogs, tmp_path: Path, name: str,
                                              content: str | None, fragment: str) -> None:  # fmt: skip
    path = tmp_path / name
    if content is None:
        np.save(path, np.zeros((9000, 2)))
    else:
        path.write_text(content)
    window.grid.logits_model.setData(window.grid.logits_model.index(1, 1), "3.25")
    before = _snapshot(window)
    assert not window.open_path(str(path))
    _assert_same(_snapshot(window), before)
    assert len(dialogs) == 1 and dialogs[0][0] == "warning"
    assert fragment in dialogs[0][2]
    assert fragment in window.statusBar().currentMessage()


def test_open_logits_files_and_drop(qtbot, window: MainWindow, tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=(5, 4))
    np.savez(tmp_path / "run.npz", logits=x, labels=np.array([0, 1, 2, 3, 0]))
    assert window.open_path(str(tmp_path / "run.npz"))
    np.testing.assert_array_equal(window.state.logits, x)
    np.testing.assert_array_equal(window.state.labels, [0, 1, 2, 3, 0])
    qtbot.waitUntil(lambda: report_matches_state(window.report, window.state), timeout=5000)
    assert window.heatmaps.analytic.image_item.image.shape == (5, 4)
    window.controller.stack.undo()  # opening is undoable
    assert window.state.shape == (3, 10)
    np.save(tmp_path / "dropped.npy", x[:2])
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "dropped.npy"))])
    event = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)  # fmt: skip
    window.dropEvent(event)
    np.testing.assert_array_equal(window.state.logits, x[:2])


def test_close_with_unsaved_changes_asks(window: MainWindow, dialogs) -> None:
    window.grid.logits_model.setData(window.grid.logits_model.index(0, 0), "1")
    dialogs.answer = QMessageBox.StandardButton.Cancel
    assert not window.close()
    assert window.isVisible()
    assert dialogs[-1][0] == "question" and "Save the changes" in dialogs[-1][2]
    dialogs.answer = QMessageBox.StandardButton.Discard
    assert window.close()


def test_exports_from_the_window(qtbot, window: MainWindow, tmp_path: Path) -> None:
    qtbot.waitUntil(lambda: window.sweeper.result is not None, timeout=5000)
    for what, suffix in (("dashboard", ".png"), ("error", ".svg"), ("sweep", ".pdf"), ("numeric", ".png")):
        out = tmp_path / f"{what}{suffix}"
        assert window.export_plot(what, str(out))
        assert out.stat().st_size > 1000
    assert QImage(str(tmp_path / "dashboard.png")).width() == 1200
    assert window.export_data(str(tmp_path / "d.csv"))
    _, arrays = read_csv_export(tmp_path / "d.csv")
    np.testing.assert_array_equal(arrays["numeric"], window.report.grad_numeric)
    assert window.export_data(str(tmp_path / "d.npz"))
    window._on_copy_code()
    assert "cross_entropy_numeric_grad" in QGuiApplication.clipboard().text()


def test_export_to_a_bad_place_says_why(window: MainWindow, dialogs, tmp_path: Path) -> None:
    assert not window.export_plot("dashboard", str(tmp_path / "out.bmp"))
    assert not window.export_data(str(tmp_path / "missing-folder" / "d.csv"))
    assert [d[0] for d in dialogs] == ["warning", "warning"]


def test_plot_context_menus_offer_export(window: MainWindow) -> None:
    for view in (
        window.heatmaps.analytic,
        window.heatmaps.numeric,
        window.heatmaps.error,
        window.sweep_panel.plot_widget,
    ):
        assert view.contextMenuPolicy() == Qt.ContextMenuPolicy.ActionsContextMenu
        assert [a.text() for a in view.actions()] == ["Export this plot…", "Copy this plot"]


def test_copy_this_plot_puts_an_image_and_svg_on_the_clipboard(window: MainWindow) -> None:
    from PySide6.QtGui import QGuiApplication

    QGuiApplication.clipboard().clear()
    copy = next(a for a in window.heatmaps.error.actions() if a.text() == "Copy this plot")
    copy.trigger()
    mime = QGuiApplication.clipboard().mimeData()
    assert mime.hasImage() and not mime.imageData().isNull()
    assert bytes(mime.data("image/svg+xml")).startswith(b"<?xml")


def test_copy_as_code_of_a_grid_too_large_for_text_says_so_and_copies_nothing(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QApplication

    QApplication.clipboard().setText("before")
    window.controller.replace(np.zeros((300, 300)), np.zeros(300, dtype=np.int64))
    window.files.on_copy_code()
    assert "Nothing copied" in window.statusBar().currentMessage() and ".npz" in window.statusBar().currentMessage()
    assert QApplication.clipboard().text() == "before"


def test_a_float32_file_is_checked_in_float32_and_undo_restores_the_dtype(qtbot, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A model's float32 logits are not widened to float64 (twice the memory, and another check): the window
    checks them in float32 and says so; undo brings back the previous problem and dtype."""
    path = tmp_path / "lm.npy"
    np.save(path, np.random.default_rng(1).normal(size=(4, 50)).astype(np.float32))
    window.controller.set_settings(dtype="float64")
    assert window.files.open_path(str(path))
    assert window.state.settings.dtype == "float32" and window.state.logits.dtype == np.float32
    assert "checked in float32" in window.statusBar().currentMessage()
    window.undo_action.trigger()
    assert window.state.settings.dtype == "float64" and window.state.shape != (4, 50)


def test_a_file_checked_in_another_dtype_takes_that_dtypes_default_step_unless_one_was_chosen(
    qtbot, window, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    """float64's default 1e-5 in float32 rounds most of the gradient away (the check cannot tell): an open that
    changes the dtype changes a default step with it, says so, and undo restores both; a chosen step stays."""
    from explorer.core import default_eps

    path = tmp_path / "lm.npy"
    np.save(path, np.random.default_rng(1).normal(size=(4, 50)).astype(np.float32))
    window.controller.set_settings(dtype="float64", scheme="central", eps=default_eps("central", "float64"))
    assert window.files.open_path(str(path))
    s = window.state.settings
    assert (s.dtype, s.eps) == ("float32", default_eps("central", "float32")) == ("float32", 0.01)
    assert "checked in float32 with eps 0.01" in window.statusBar().currentMessage()
    window.undo_action.trigger()
    assert (window.state.settings.dtype, window.state.settings.eps) == ("float64", 1e-5)

    window.controller.set_settings(eps=3e-4)  # the user's own step
    assert window.files.open_path(str(path))
    assert (window.state.settings.dtype, window.state.settings.eps) == ("float32", 3e-4)
    assert "checked in float32 with eps 0.0003" in window.statusBar().currentMessage()


def test_while_a_large_file_is_checked_the_maps_of_the_previous_grid_are_dimmed_and_say_so(
    qtbot, window, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    """For a second or two after opening a large file the maps still showed the old grid, unmarked, beside a grid
    and controls already showing the new one."""
    from PySide6.QtGui import QColor

    from explorer.gui.heatmap_view import OUTDATED_OPACITY

    path = tmp_path / "big.npy"
    np.save(path, np.random.default_rng(2).normal(size=(400, 400)))  # over the worker's threshold
    view = window.heatmaps.analytic
    seen: list[tuple[str, float, QImage, QImage]] = []

    def on_busy(busy: bool) -> None:  # (after the window's own slot)
        if busy and not seen:
            dimmed = view.grab().toImage()
            view.set_outdated(False)
            plain = view.grab().toImage()
            view.set_outdated(True)
            seen.append((view.title, view.image_item.opacity(), dimmed, plain))

    window.recomputer.busyChanged.connect(on_busy)
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=20_000):
        assert window.files.open_path(str(path))
    title, opacity, dimmed, plain = seen[0]
    assert title == "Analytic gradient (previous grid)" and opacity == OUTDATED_OPACITY
    # Drawn: over the plot, the old grid's colours are much nearer the background grey when dimmed.
    box = view.plot.getViewBox().sceneBoundingRect().toRect().adjusted(4, 4, -4, -4)

    def colourfulness(image: QImage) -> float:
        pixels = [QColor(image.pixel(x, y)) for x in range(box.left(), box.right(), 3)
                  for y in range(box.top(), box.bottom(), 3)]  # fmt: skip
        return sum(abs(c.red() - 150) + abs(c.green() - 150) + abs(c.blue() - 150) for c in pixels) / len(pixels)

    assert colourfulness(dimmed) < 0.5 * colourfulness(plain)
    assert view.title == "Analytic gradient" and view.image_item.opacity() == 1.0  # the new grid's report


def test_a_large_logits_file_is_read_in_a_worker_and_its_errors_still_say_why(
    qtbot, window, tmp_path, dialogs, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    """Reading and checking 128 MiB took 170 ms on the GUI thread. Here any file counts as large: open_path
    returns at once with the grid unchanged, then the file arrives (undoable); a bad one gets its message."""
    from explorer.gui import file_commands

    monkeypatch.setattr(file_commands, "BACKGROUND_OPEN_BYTES", 0)
    good = tmp_path / "lm.npy"
    np.save(good, np.arange(12, dtype=np.float32).reshape(3, 4))
    before = window.state.shape
    with qtbot.waitSignal(window.files._open_relay.read, timeout=10_000):
        assert window.files.open_path(str(good))
        assert window.state.shape == before  # not yet: it is being read
        assert "Reading lm.npy" in window.statusBar().currentMessage()
    assert window.state.shape == (3, 4) and window.state.logits.dtype == np.float32
    assert "Opened 3 x 4 logits, checked in float32" in window.statusBar().currentMessage()
    window.undo_action.trigger()
    assert window.state.shape == before

    bad = tmp_path / "bad.npy"
    x = np.zeros((2, 3))
    x[1, 2] = np.nan
    np.save(bad, x)
    with qtbot.waitSignal(window.files._open_relay.read, timeout=10_000):
        window.files.open_path(str(bad))
    assert window.state.shape == before
    assert dialogs and "row 1, class 2 is not a finite number" in dialogs[-1][2]

    # A second open while the first is read: the newest wins.
    with qtbot.waitSignals([window.files._open_relay.read] * 2, timeout=10_000):
        window.files.open_path(str(bad))
        window.files.open_path(str(good))
    assert window.state.shape == (3, 4)


@pytest.fixture
def held_read(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Any file counts as large, and its read in the worker waits for ``gate.set()``."""
    import threading

    from explorer.gui import file_commands

    gate = threading.Event()
    original = file_commands.read_logits

    def held(*args, **kwargs):  # type: ignore[no-untyped-def]
        gate.wait(20)
        return original(*args, **kwargs)

    monkeypatch.setattr(file_commands, "BACKGROUND_OPEN_BYTES", 0)
    monkeypatch.setattr(file_commands, "read_logits", held)
    return gate


def test_the_grid_changed_while_a_file_is_read_wins_over_the_file(qtbot, window, tmp_path, held_read, dialogs) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "lm.npy"
    np.save(path, np.ones((5, 7), dtype=np.float32))
    assert window.files.open_path(str(path)) and window.files.reading
    window.controller.resize(3, 3)  # the user goes on working
    assert not window.files.reading and "was dropped" in window.statusBar().currentMessage()
    with qtbot.waitSignal(window.files._open_relay.read, timeout=10_000):
        held_read.set()
    assert window.state.shape == (3, 3) and not dialogs


def test_a_refused_open_leaves_the_file_being_read_and_esc_cancels_it(
    qtbot, window, tmp_path, held_read, dialogs  # type: ignore[no-untyped-def]
) -> None:
    path = tmp_path / "lm.npy"
    np.save(path, np.ones((5, 7), dtype=np.float32))
    before = window.state.shape
    assert window.files.open_path(str(path))
    assert not window.files.open_path(str(tmp_path / "missing.gradexp.json"))  # refused: one message
    assert len(dialogs) == 1 and window.files.reading
    with qtbot.waitSignal(window.files._open_relay.read, timeout=10_000):
        held_read.set()
    assert window.state.shape == (5, 7)  # the first file still arrived

    held_read.clear()
    window.undo_action.trigger()
    assert window.files.open_path(str(path))
    window.cancel_action.trigger()  # Esc
    assert not window.files.reading and "cancelled" in window.statusBar().currentMessage()
    with qtbot.waitSignal(window.files._open_relay.read, timeout=10_000):
        held_read.set()
    assert window.state.shape == before
