"""Issue 15: the grid editor at 32 x 262,144: virtual columns, go-to-cell and Ctrl+G that show the cell."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import QHeaderView, QTableView

from explorer.app.edits import EditController
from explorer.app.state import ExplorerState
from explorer.gui.grid_panel import GridPanel

N, C = 32, 262_144


def _wide_logits(seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(N, C)) * 2).astype(np.float32)


@pytest.fixture
def panel(qtbot):  # type: ignore[no-untyped-def]
    state = ExplorerState()
    controller = EditController(state)
    controller.set_settings(dtype="float32")
    controller.replace(_wide_logits(), np.arange(N) * 1000)
    grid = GridPanel(controller)
    qtbot.addWidget(grid)
    grid.resize(900, 400)
    grid.show()
    qtbot.waitExposed(grid)
    qtbot.waitUntil(lambda: not grid._width_timer.isActive() and grid._width_sample is not None)  # measured (worker)
    return grid


def _shows(view: QTableView, cell: tuple[int, int]) -> bool:
    rect = view.visualRect(view.model().index(*cell))
    return not rect.isEmpty() and view.viewport().rect().contains(rect)


def test_go_to_cell_shows_the_cell_at_every_height(panel: GridPanel) -> None:
    # The labels' table has no horizontal scroll bar, so its viewport is taller and its own scroll range shorter:
    # at about half of all heights it clamped the logits back by one row and the last row stayed out of view.
    for height in range(300, 480, 7):
        panel.resize(900, height)
        panel.layout().activate()
        for cell in [(N - 1, C - 1), (0, 0), (N - 1, 3), (N // 2, C // 2), (N - 2, C - 2)]:
            panel.select_cell(*cell)
            assert _shows(panel.logits_view, cell), (height, cell)
            labels = panel.labels_view  # the labels' rows stay beside the logits' rows
            assert labels.verticalScrollBar().value() == panel.logits_view.verticalScrollBar().value()
            assert labels.visualRect(labels.model().index(cell[0], 0)).y() == \
                panel.logits_view.visualRect(panel.logits_view.model().index(*cell)).y()  # fmt: skip


def test_columns_are_one_fixed_size_not_sized_one_by_one(panel: GridPanel, monkeypatch: pytest.MonkeyPatch) -> None:
    header = panel.logits_view.horizontalHeader()
    calls = {"n": 0}

    def counted(name: str):  # type: ignore[no-untyped-def]
        original = getattr(header, name)

        def call(*args: object) -> object:
            calls["n"] += 1
            return original(*args)

        return call

    for name in ("sectionSize", "resizeSection", "sectionSizeHint"):
        monkeypatch.setattr(header, name, counted(name))
    panel.set_precision(12)  # wider text: every column must widen
    panel.controller.set_logit(5, 7, -1.234567890123e-30)  # a wider value: widens again
    assert calls["n"] == 0
    assert header.sectionResizeMode(C - 1) == QHeaderView.ResizeMode.Fixed
    width = header.defaultSectionSize()
    assert width > 36
    assert header.length() == C * width  # every column took the new width (Qt's total, no loop here)
    assert panel.logits_view.columnWidth(C - 1) == width


def test_the_edited_cell_is_drawn_far_right(qtbot, panel: GridPanel) -> None:  # type: ignore[no-untyped-def]
    view = panel.logits_view
    cell = (N - 1, C - 1)
    panel.select_cell(*cell)
    assert _shows(view, cell)
    rect = view.visualRect(view.model().index(*cell))
    before = view.viewport().grab(rect).toImage()
    assert panel.logits_model.setData(panel.logits_model.index(*cell), "-777.125")
    view.viewport().repaint()
    after = view.viewport().grab(rect).toImage()
    assert panel.logits_model.data(panel.logits_model.index(*cell)) == "-777.125"
    assert after != before  # the new text is on screen in that cell
    pixels = {after.pixel(x, y) for x in range(after.width()) for y in range(after.height())}
    assert len(pixels) > 2  # text, not a blank cell


def test_a_whole_row_is_copied_from_the_selection_ranges(qtbot, panel: GridPanel, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    selection = panel.logits_view.selectionModel()

    def per_cell() -> None:
        raise AssertionError("one index per selected cell: 262,144 objects for a row")

    monkeypatch.setattr(selection, "selectedIndexes", per_cell)
    flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
    selection.select(panel.logits_model.index(3, 0), flags)
    with qtbot.waitSignal(panel.message) as blocker:
        panel.copy()
    assert blocker.args == [f"Copied 1 x {C} values"]


def test_ctrl_g_brings_a_worst_cell_in_the_last_row_into_the_grid(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    x = _wide_logits(1)
    labels = np.full(N, -100)
    labels[-1] = C - 9  # only the last row counts, so the worst cell is in it
    window.controller.set_settings(dtype="float32")
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=30_000):
        window.controller.replace(x, labels)
    qtbot.waitUntil(lambda: not window.recomputer.pending, timeout=30_000)
    worst = tuple(int(v) for v in window.report.worst_cells(1)[0])
    assert worst[0] == N - 1
    view = window.grid.logits_view
    window.worst_cell_action.trigger()
    assert window.display.cell == worst
    missed = []
    for height in range(400, 720, 10):
        window.resize(1280, height)
        window.layout().activate()
        view.verticalScrollBar().setValue(0)  # the user scrolls the grid away; the worst cell stays selected
        view.horizontalScrollBar().setValue(0)
        assert not _shows(view, worst)
        window.worst_cell_action.trigger()
        if not _shows(view, worst):
            missed.append(height)
    assert not missed, f"Ctrl+G left the grid short of {worst} at window heights {missed}"
