"""The real MainWindow, offscreen: automation names, typing, undo, paste, resize, schemes, pitfall, worker."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QComboBox, QLineEdit, QTableView

from explorer.app.jobs import report_matches_state
from explorer.core import DTYPE_NAMES, SCHEME_NAMES, CheckSettings, check_gradient
from explorer.files.presets import get_preset
from explorer.gui import MainWindow
from explorer.gui.heatmap_view import HeatmapView


def _expected(w: MainWindow):  # type: ignore[no-untyped-def]
    x, y, s = w.state.snapshot()
    return check_gradient(x, y, s)


def _images(w: MainWindow) -> list[np.ndarray]:
    return [
        w.findChild(HeatmapView, name).image_item.image
        for name in ("analyticHeatmap", "numericHeatmap", "errorHeatmap")
    ]


def _assert_maps_show_state(w: MainWindow) -> None:
    exp = _expected(w)
    ana, num, err = _images(w)
    np.testing.assert_array_equal(ana, exp.grad_analytic.astype(np.float64))
    np.testing.assert_array_equal(num, exp.grad_numeric.astype(np.float64))
    np.testing.assert_array_equal(err, exp.abs_err)


def _edit_cell(qtbot, view: QTableView, row: int, col: int, text: str) -> None:  # type: ignore[no-untyped-def]
    """Real key events: F2 opens the editor, type, Enter commits."""
    view.setFocus()
    view.setCurrentIndex(view.model().index(row, col))
    qtbot.keyClick(view, Qt.Key.Key_F2)
    editor = view.findChild(QLineEdit)
    assert editor is not None and editor.isVisible()
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)


def test_opens_with_the_origin_question_computed(window: MainWindow) -> None:
    origin = get_preset("origin")
    np.testing.assert_array_equal(window.state.logits, origin.logits)
    s = window.state.settings
    assert (s.scheme, s.reduction, s.eps, s.dtype) == ("central", "sum", 1e-5, "float64")
    assert window.report is not None and window.report.ok
    _assert_maps_show_state(window)


def test_automation_names(window: MainWindow) -> None:
    for name in ("logitsTable", "labelsTable"):
        assert isinstance(window.findChild(QTableView, name), QTableView)
    assert isinstance(window.findChild(QLineEdit, "epsEdit"), QLineEdit)
    expected_items = {
        "schemeCombo": list(SCHEME_NAMES),
        "dtypeCombo": list(DTYPE_NAMES),
        "reductionCombo": ["mean", "sum", "none"],
    }
    for name, items in expected_items.items():
        combo = window.findChild(QComboBox, name)
        assert [combo.itemData(i) for i in range(combo.count())] == items
    for name in ("analyticHeatmap", "numericHeatmap", "errorHeatmap"):
        view = window.findChild(HeatmapView, name)
        images = [it for it in view.scene().items() if isinstance(it, pg.ImageItem)]
        assert images == [view.image_item]
        assert view.image_item.axisOrder == "row-major"
        assert view.plot.getViewBox().yInverted()  # row 0 at the top, like the table


def test_typing_into_a_cell_updates_state_and_maps(qtbot, window: MainWindow) -> None:
    view = window.findChild(QTableView, "logitsTable")
    before = [im.copy() for im in _images(window)]
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        _edit_cell(qtbot, view, 0, 0, "-3.5e1")
    assert window.state.logits[0, 0] == -35.0
    _assert_maps_show_state(window)
    assert not np.array_equal(before[0], _images(window)[0])


@pytest.mark.parametrize("text", ["abc", "1,5", "nan"])
def test_bad_text_in_a_cell_is_refused(qtbot, window: MainWindow, text: str) -> None:
    view = window.findChild(QTableView, "logitsTable")
    before = window.state.logits.copy()
    _edit_cell(qtbot, view, 1, 2, text)
    qtbot.waitUntil(lambda: "unchanged" in window.statusBar().currentMessage(), timeout=2000)
    np.testing.assert_array_equal(window.state.logits, before)
    assert window.controller.stack.count() == 0


def test_eps_typed_and_enter(qtbot, window: MainWindow) -> None:
    eps_edit = window.findChild(QLineEdit, "epsEdit")
    eps_edit.setFocus()
    eps_edit.selectAll()
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        qtbot.keyClicks(eps_edit, "1e-4")
        qtbot.keyClick(eps_edit, Qt.Key.Key_Return)
    assert window.state.settings.eps == 1e-4
    assert window.report.settings.eps == 1e-4
    eps_edit.selectAll()
    qtbot.keyClicks(eps_edit, "-1")
    qtbot.keyClick(eps_edit, Qt.Key.Key_Return)
    assert window.state.settings.eps == 1e-4
    assert "eps unchanged" in window.statusBar().currentMessage()


@pytest.mark.parametrize("scheme", SCHEME_NAMES)
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_each_scheme_and_dtype(qtbot, window: MainWindow, scheme: str, dtype: str) -> None:
    combo = window.findChild(QComboBox, "schemeCombo")
    combo.setCurrentIndex(combo.findData(scheme))
    combo = window.findChild(QComboBox, "dtypeCombo")
    combo.setCurrentIndex(combo.findData(dtype))
    assert (window.state.settings.scheme, window.state.settings.dtype) == (scheme, dtype)
    qtbot.waitUntil(lambda: report_matches_state(window.report, window.state), timeout=5000)
    assert window.report.grad_numeric.dtype == np.dtype(dtype)
    _assert_maps_show_state(window)


def test_pitfall_mode_gives_about_zero_and_explains(qtbot, window: MainWindow) -> None:
    combo = window.findChild(QComboBox, "perturbCombo")
    for mode in ("all", "row"):
        with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
            combo.setCurrentIndex(combo.findData(mode))
        assert np.max(np.abs(window.report.grad_numeric)) < 1e-6
        assert "shift-invariant" in window.summary.toPlainText()
        _assert_maps_show_state(window)


def test_undo_redo_round_trip_to_the_exact_arrays(qtbot, window: MainWindow) -> None:
    x0, y0, s0 = window.state.snapshot()
    grid = window.grid
    grid.logits_model.setData(grid.logits_model.index(0, 0), "1.25")
    grid.labels_model.setData(grid.labels_model.index(1, 0), "3")
    grid.select_cell(1, 1)
    grid.paste("7\t8\n9\t10")
    window.findChild(QComboBox, "schemeCombo").setCurrentIndex(3)
    window.findChild(QComboBox, "dtypeCombo").setCurrentIndex(1)
    window.controls.n_spin.setValue(5)
    window.controls.c_spin.setValue(4)
    window.controls.randomize()
    window.controls.load_preset("huge_gaps")
    x1, y1, s1 = window.state.snapshot()
    stack = window.controller.stack
    steps = stack.count()
    assert steps == 9
    while stack.canUndo():
        stack.undo()
    x, y, s = window.state.snapshot()
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    assert s == s0
    while stack.canRedo():
        stack.redo()
    x, y, s = window.state.snapshot()
    np.testing.assert_array_equal(x, x1)
    np.testing.assert_array_equal(y, y1)
    assert s == s1
    qtbot.waitUntil(lambda: report_matches_state(window.report, window.state), timeout=5000)
    _assert_maps_show_state(window)


def test_undo_shortcut(qtbot, window: MainWindow) -> None:
    before = window.state.logits.copy()
    window.grid.logits_model.setData(window.grid.logits_model.index(2, 2), "0.5")
    window.grid.logits_view.setFocus()
    qtbot.keyClick(window.grid.logits_view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(window.state.logits, before)
    qtbot.keyClick(
        window.grid.logits_view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert window.state.logits[2, 2] == 0.5


def test_paste_block_and_refusals(qtbot, window: MainWindow) -> None:
    grid = window.grid
    grid.select_cell(0, 7)
    grid.paste("array([[ 1.5, -2. ],\n       [ 3. ,  4. ]])")
    np.testing.assert_array_equal(window.state.logits[0:2, 7:9], [[1.5, -2.0], [3.0, 4.0]])
    before = window.state.logits.copy()
    for bad in ("1 2\n3", "a b", "1 2 3 4 5"):
        grid.select_cell(0, 8)
        grid.paste(bad)
        assert "Nothing pasted" in window.statusBar().currentMessage()
        np.testing.assert_array_equal(window.state.logits, before)
    grid.copy()
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text() == repr(float(before[0, 8]))


def test_resize_keeps_overlap_and_clips_labels(qtbot, window: MainWindow) -> None:
    x0 = window.state.logits.copy()
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        window.controls.c_spin.setValue(4)
    assert window.state.shape == (3, 4)
    np.testing.assert_array_equal(window.state.logits, x0[:, :4])
    assert np.all(window.state.labels < 4)
    assert window.grid.logits_model.columnCount() == 4
    assert _images(window)[0].shape == (3, 4)


def test_clicking_a_heatmap_cell_selects_it(qtbot, window: MainWindow, inspector) -> None:  # type: ignore[no-untyped-def]
    view = window.findChild(HeatmapView, "numericHeatmap")
    scene_pos = view.plot.getViewBox().mapViewToScene(QPointF(3.5, 2.5))
    pos = view.mapFromScene(scene_pos)
    with qtbot.waitSignal(view.cellClicked) as blocker:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args == [2, 3]
    assert window.grid.current_cell() == (2, 3)
    qtbot.waitUntil(lambda: "Sample 2, class 3" in inspector.toPlainText(), timeout=3000)


def test_worker_path_drops_superseded_results(qtbot, window: MainWindow) -> None:
    rec = window.recomputer
    rec.worker_threshold = 0  # everything goes to the worker thread
    window.controller.replace(np.random.default_rng(0).normal(size=(1024, 1000)), np.zeros(1024, dtype=np.int64))
    qtbot.waitUntil(lambda: report_matches_state(window.report, window.state), timeout=20000)
    published = []
    rec.reportReady.connect(published.append)
    # A full check (a new eps touches every row; a one-cell edit now only recomputes its row, too fast to
    # be overtaken reliably) starts in the worker, and is superseded before it ends.
    with qtbot.waitSignal(rec.busyChanged, timeout=5000):
        window.controller.set_settings(eps=1e-4)
    window.controller.set_logit(0, 1, 6.0)
    qtbot.waitUntil(lambda: not rec.busy and report_matches_state(window.report, window.state), timeout=20000)
    assert len(published) == 1
    assert published[0].logits[0, 1] == 6.0 and published[0].settings.eps == 1e-4
    # Cancel: the maps keep the previous result.
    with qtbot.waitSignal(rec.busyChanged, timeout=5000):
        window.controller.set_logit(0, 2, 7.0)
    window._on_cancel_clicked()
    assert not rec.busy
    qtbot.wait(300)
    assert len(published) == 1


def test_settings_are_remembered(qtbot, window: MainWindow) -> None:
    window.findChild(QComboBox, "schemeCombo").setCurrentIndex(SCHEME_NAMES.index("central4"))
    window.heatmaps.set_error_view("log_abs")
    window.close()
    second = MainWindow()
    qtbot.addWidget(second)
    assert second.state.settings.scheme == "central4"
    assert second.heatmaps.error_view == "log_abs"
    second.recomputer.shutdown()


def test_report_matches_state_helper(window: MainWindow) -> None:
    assert report_matches_state(window.report, window.state)
    other = check_gradient(window.state.logits, window.state.labels, CheckSettings(eps=1e-3))
    assert not report_matches_state(other, window.state)


def test_extreme_numbers_are_refused_or_marked_and_explained(qtbot, window: MainWindow) -> None:
    window.controls.load_preset("float16_overflow")
    qtbot.waitUntil(lambda: report_matches_state(window.report, window.state), timeout=5000)
    before = window.state.logits.copy()
    dtype = window.findChild(QComboBox, "dtypeCombo")
    dtype.setCurrentIndex(dtype.findData("float16"))
    # Values float16 cannot hold are refused, naming the first one, rather than turned into infinity.
    assert window.state.settings.dtype == "float32" and dtype.currentData() == "float32"
    assert "70000" in window.statusBar().currentMessage() and "float16" in window.statusBar().currentMessage()
    np.testing.assert_array_equal(window.state.logits, before)
    window.controls.load_preset("huge_gaps")
    qtbot.waitUntil(lambda: report_matches_state(window.report, window.state), timeout=5000)
    assert "marked ○" in window.summary.toPlainText()
    assert len(window.heatmaps.error._marks["o"].data) > 0


def test_a_lost_step_is_named_with_its_remedy(qtbot, window: MainWindow, shown) -> None:  # type: ignore[no-untyped-def]
    """float16 at |x| ~ 100, eps 0.01: x + eps == x; the note blamed the noise floor, with no remedy (issue 10)."""
    window.controls.load_preset("origin")
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        window.controller.set_settings(dtype="float16", eps=1e-2)
    qtbot.waitUntil(lambda: report_matches_state(window.report, window.state), timeout=5000)
    text = window.summary.toPlainText()
    assert "x + eps rounds back to x in float16" in text and "eps ≥ 0.0625" in text
    assert "noise floor" not in text
    cell = tuple(int(v) for v in np.argwhere(window.report.cell_flags.step_lost)[0])
    window.grid.select_cell(*cell)
    qtbot.waitUntil(lambda: window.display.explanation is not None and window.display.cell == cell, timeout=5000)
    spacing = float(window.report.cell_flags.min_eps[cell])
    assert f"the step is lost. Use eps ≥ {spacing:g}" in shown("inspector").toPlainText()


def test_undo_restores_class_weights_of_another_width(window: MainWindow) -> None:
    # Found by the soak run: undoing a replacement validated the restored weights against the current width.
    window.controls.c_spin.setValue(2)
    window.controller.set_settings(weight=(1.0, 2.0))
    window.controls.load_preset("near_tie")  # 3 classes: the 2 weights no longer fit and are dropped
    assert window.state.settings.weight is None
    window.controller.stack.undo()
    assert window.state.shape == (3, 2) and window.state.settings.weight == (1.0, 2.0)
    window.controller.stack.redo()
    assert window.state.shape == (3, 3) and window.state.settings.weight is None


def test_a_problem_of_another_shape_selects_its_worst_cell(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    """A file opened (or a resize) brings a new problem: the selection moves to its worst cell, not to whatever
    cell of the old grid happens to be in range."""
    window.display.select((0, 0))
    x = np.zeros((6, 40))
    x[4, 33] = 30.0  # a confident row: its cells have the largest errors
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=10_000):
        window.controller.replace(x, np.zeros(6, dtype=np.int64), dtype="float16")
    report = window.display.report
    assert report is not None and report.grad_analytic.shape == (6, 40)
    assert window.display.cell == tuple(int(v) for v in report.worst) != (0, 0)


def test_redo_keys_are_bound_once_each(window) -> None:  # type: ignore[no-untyped-def]
    """Qt runs neither action of a key bound twice ("ambiguous shortcut"): on X11 the platform's redo already is
    Ctrl+Shift+Z, which the window used to add again."""
    from PySide6.QtGui import QKeySequence

    keys = [k.toString() for k in window.redo_action.shortcuts()]
    assert len(keys) == len(set(keys)) and "Ctrl+Shift+Z" in keys and "Ctrl+Y" in keys
    bound = [k.toString() for action in window.findChildren(type(window.redo_action)) for k in action.shortcuts()]
    assert bound.count("Ctrl+Shift+Z") == 1 and bound.count(QKeySequence("Ctrl+Z").toString()) == 1


def test_redo_keys_stay_unique_where_the_platform_redo_is_ctrl_shift_z(qapp, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtGui import QKeySequence

    from explorer.gui import menus

    monkeypatch.setattr(QKeySequence, "keyBindings", staticmethod(lambda _key: [QKeySequence("Ctrl+Shift+Z")]))
    keys = [k.toString() for k in menus.redo_shortcuts()]
    assert keys == ["Ctrl+Shift+Z", "Ctrl+Y"]


def test_a_message_survives_the_background_check_it_starts(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """"Opened … checked in float32 with eps 0.01" was replaced by "Computing in the background…" and then cleared."""
    status = window.status
    bar = window.statusBar()
    status.show("Opened 32 x 262,144 logits")
    window.recomputer.worker_threshold = 0  # any check runs in the worker
    said: list[str] = []
    window.recomputer.busyChanged.connect(lambda busy: said.append(bar.currentMessage()))  # after the status's slot
    window.controller.set_logit(0, 0, 2.5)
    qtbot.waitUntil(lambda: len(said) == 2 and not window.recomputer.pending, timeout=10_000)
    assert said == ["Opened 32 x 262,144 logits · computing in the background…", "Opened 32 x 262,144 logits"]
