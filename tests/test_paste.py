"""Paste: the size is checked before parsing, large text is read off the GUI thread, one value rule."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from explorer.app.edits import EditController
from explorer.app.state import ExplorerState
from explorer.files.numbers import format_block
from explorer.gui import grid_panel as grid_panel_module
from explorer.gui.grid_panel import ASYNC_PASTE_CELLS, GridPanel


@pytest.fixture
def grid(qtbot) -> GridPanel:  # type: ignore[no-untyped-def]
    controller = EditController(ExplorerState(np.zeros((3, 10)), np.zeros(3, dtype=np.int64)))
    panel = GridPanel(controller)
    qtbot.addWidget(panel)
    yield panel
    panel.shutdown()


def _big_grid(grid: GridPanel, n: int, c: int) -> None:
    grid.controller.replace(np.zeros((n, c)), np.zeros(n, dtype=np.int64))
    grid.controller.stack.clear()


def _messages(grid: GridPanel) -> list[str]:
    out: list[str] = []
    grid.message.connect(out.append)
    return out


def test_a_5000_by_5000_paste_is_refused_before_any_parsing(grid: GridPanel, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def must_not_parse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("parsed a block that cannot fit")

    monkeypatch.setattr(grid_panel_module, "parse_block", must_not_parse)
    messages = _messages(grid)
    text = ("0\t" * 4999 + "0\n") * 5000  # 50 MB of text
    before = grid.controller.state.logits.copy()
    grid.paste(text)
    assert not grid.paste_pending
    assert len(messages) == 1 and messages[0].startswith("Nothing pasted")
    assert "5000 rows" in messages[0] and "resize the grid first" in messages[0]
    np.testing.assert_array_equal(grid.controller.state.logits, before)
    assert grid.controller.stack.count() == 0


def test_a_block_that_does_not_fit_from_the_selected_cell_is_refused_unparsed(grid: GridPanel, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(grid_panel_module, "parse_block", lambda *a, **k: pytest.fail("parsed"))
    messages = _messages(grid)
    grid.select_cell(2, 8)
    grid.paste("1 2 3\n4 5 6")
    assert "only 1 x 2 fit the 3 x 10 grid" in messages[-1]
    assert "resize the grid first" in messages[-1]


def test_blank_lines_do_not_count_as_rows(grid: GridPanel) -> None:
    grid.select_cell(1, 0)
    grid.paste("\n\n1 2\r\n\r\n3 4\n\n\n\n")
    np.testing.assert_array_equal(grid.controller.state.logits[1:3, 0:2], [[1, 2], [3, 4]])


def test_float16_70000_is_refused_pasted_as_typed(qtbot, grid: GridPanel) -> None:
    grid.controller.set_settings(dtype="float16")
    grid.controller.stack.clear()
    messages = _messages(grid)
    grid.select_cell(0, 0)
    grid.paste("70000")
    assert messages[-1].startswith("Nothing pasted: 70000")
    assert "overflows float16 (largest finite 65504)" in messages[-1]
    grid.paste("1 2\n3 -70000")
    assert "-70000 at row 1, column 1 of the pasted block overflows float16" in messages[-1]
    assert not grid.controller.state.logits.any()
    assert grid.controller.stack.count() == 0
    # Typing follows the same rule, with the same words.
    model = grid.logits_model
    with qtbot.waitSignal(model.rejected) as blocker:
        assert not model.setData(model.index(0, 0), "70000")
    assert "70000 overflows float16 (largest finite 65504)" in blocker.args[0]
    grid.paste("65504")
    assert grid.controller.state.logits[0, 0] == 65504.0


def test_one_value_fills_the_selection_within_the_rule(grid: GridPanel) -> None:
    grid.logits_view.selectAll()
    grid.paste("2.5")
    assert np.all(grid.controller.state.logits == 2.5)
    assert grid.controller.stack.count() == 1


def test_a_large_paste_is_read_in_the_background_and_lands_as_one_step(qtbot, grid: GridPanel) -> None:
    n = 400  # 160,000 values: over the threshold for a background read
    assert n * n > ASYNC_PASTE_CELLS
    _big_grid(grid, n, n)
    block = np.random.default_rng(0).normal(size=(n, n))
    text = format_block(block)
    ticks: list[bool] = []
    timer = QTimer()
    timer.setInterval(1)
    timer.timeout.connect(lambda: ticks.append(grid.paste_pending))
    timer.start()
    grid.select_cell(0, 0)
    grid.paste(text)
    assert grid.paste_pending  # paste() returned before the text was read
    assert not grid.controller.state.logits.any()
    with qtbot.waitSignal(grid.pasteFinished, timeout=60_000) as blocker:
        pass
    timer.stop()
    assert blocker.args == [True]
    assert any(ticks), "the event loop did not run while the text was read"
    np.testing.assert_array_equal(grid.controller.state.logits, block)
    assert grid.controller.stack.count() == 1
    grid.controller.stack.undo()
    assert not grid.controller.state.logits.any()


def test_an_edit_supersedes_a_paste_being_read(qtbot, grid: GridPanel) -> None:
    _big_grid(grid, 400, 400)
    messages = _messages(grid)
    delivered: list[int] = []
    grid._paste_relay.parsed.connect(lambda generation, *_: delivered.append(generation))
    grid.select_cell(0, 0)
    with qtbot.waitSignal(grid.pasteFinished, timeout=60_000) as blocker:
        grid.paste(format_block(np.ones((400, 400))))
        assert grid.paste_pending
        future = grid._paste_future
        assert future is not None
        assert grid.logits_model.setData(grid.logits_model.index(5, 5), "3")
    assert blocker.args == [False]
    assert "the grid changed" in messages[-1]
    qtbot.waitUntil(future.done, timeout=60_000)  # the worker stops at its next piece and delivers nothing
    assert future.exception() is None
    assert delivered == []
    x = grid.controller.state.logits
    assert x[5, 5] == 3.0 and np.count_nonzero(x) == 1
    assert grid.controller.stack.count() == 1


def test_pieces_parse_like_the_whole_and_number_lines_from_the_top() -> None:
    block = np.random.default_rng(4).normal(size=(3000, 20))
    text = format_block(block)
    assert len(text) > 2 * grid_panel_module.PASTE_CHUNK_CHARS
    seen: list[float] = []
    np.testing.assert_array_equal(grid_panel_module.parse_block_in_chunks(text, 10**6, progress=seen.append), block)
    assert seen and seen[-1] == 1.0
    lines = text.split("\n")
    lines[2500] = lines[2500].replace("\t", "\tx\t", 1)
    with pytest.raises(ValueError, match=r"^line 2501: "):
        grid_panel_module.parse_block_in_chunks("\n".join(lines), 10**6)
    second_piece = text[: text.find("\n", grid_panel_module.PASTE_CHUNK_CHARS) + 1].count("\n")
    lines = [line + "\t1.0" if k >= second_piece else line for k, line in enumerate(text.split("\n"))]
    with pytest.raises(ValueError, match=r"different lengths \(20, 21\)"):
        grid_panel_module.parse_block_in_chunks("\n".join(lines), 10**6)
    assert grid_panel_module.parse_block_in_chunks(text, 10**6, cancelled=lambda: True) is None


def test_a_newer_paste_supersedes_an_older_one(qtbot, grid: GridPanel) -> None:
    _big_grid(grid, 400, 400)
    grid.select_cell(0, 0)
    grid.paste(format_block(np.ones((400, 400))))
    finished: list[bool] = []
    grid.pasteFinished.connect(finished.append)
    grid.paste(format_block(np.full((400, 400), 2.0)))
    assert finished == [False]  # the first one is dropped at once
    qtbot.waitUntil(lambda: finished == [False, True], timeout=60_000)
    assert np.all(grid.controller.state.logits == 2.0)
    assert grid.controller.stack.count() == 1


def test_a_bad_large_paste_reports_one_message_and_changes_nothing(qtbot, grid: GridPanel) -> None:
    _big_grid(grid, 400, 400)
    text = format_block(np.ones((400, 400))).replace("1.0", "x", 1)
    messages = _messages(grid)
    with qtbot.waitSignal(grid.pasteFinished, timeout=60_000) as blocker:
        grid.paste(text)
    assert blocker.args == [False]
    assert messages[-1].startswith("Nothing pasted: line 1")
    assert not grid.controller.state.logits.any()
