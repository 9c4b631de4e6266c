"""Undo memory: steps hold what changed (not the grid), and the history is bounded by bytes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from explorer.app.edits import UNDO_BUDGET_BYTES, EditController
from explorer.app.state import ExplorerState

MiB = 1024**2


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def controller(qapp) -> EditController:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    return EditController(ExplorerState(rng.normal(size=(3, 10)), np.array([0, 4, 9])))


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_resizing_to_the_largest_grid_and_back_six_times_holds_almost_nothing(controller: EditController) -> None:
    st = controller.state
    x0, y0, s0 = st.snapshot()
    baseline = _resident_bytes()
    held, resident = [], []
    for _ in range(6):
        controller.resize(4096, 4096)  # 16.8M cells, the old largest grid (the case); now under 2**25
        controller.resize(3, 10)
        held.append(controller.undo_bytes)
        resident.append(_resident_bytes() - baseline)
    print(f"undo bytes after each cycle: {held}; resident growth (MiB): {[round(r / MiB) for r in resident]}")
    assert controller.stack.count() == 12
    # Before: each cycle kept two full 4096 x 4096 copies (257 MB, 1.66 GB after six).
    assert held[-1] < 1 * MiB
    assert resident[-1] < 64 * MiB
    np.testing.assert_array_equal(st.logits, x0)
    # Every step still undoes and redoes exactly.
    while controller.stack.canUndo():
        controller.stack.undo()
    np.testing.assert_array_equal(st.logits, x0)
    np.testing.assert_array_equal(st.labels, y0)
    assert st.settings == s0
    controller.stack.redo()
    assert st.shape == (4096, 4096)
    assert not np.any(st.logits[3:, :]) and not np.any(st.logits[:, 10:])
    np.testing.assert_array_equal(st.logits[:3, :10], x0)


def test_a_shrink_keeps_only_the_dropped_cells_and_round_trips_bit_for_bit(controller: EditController) -> None:
    st = controller.state
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 30))
    x[5, 5] = -0.0
    controller.replace(x, rng.integers(0, 30, size=40), weight=tuple(float(k) for k in range(1, 31)))
    big = st.snapshot()
    controller.resize(10, 8)  # drops 40*30 - 10*8 cells, the weights and clipped labels
    step_bytes = controller.undo_bytes
    controller.resize(12, 9)  # grows: the new cells are zeros, held by nothing
    assert controller.undo_bytes - step_bytes < 4096
    small = st.snapshot()
    controller.stack.undo()
    controller.stack.undo()
    x1, y1, s1 = st.snapshot()
    np.testing.assert_array_equal(x1.view(np.int64), big[0].view(np.int64))  # -0.0 kept
    np.testing.assert_array_equal(y1, big[1])
    assert s1 == big[2] and s1.weight is not None
    controller.stack.redo()
    controller.stack.redo()
    x2, y2, s2 = st.snapshot()
    np.testing.assert_array_equal(x2, small[0])
    np.testing.assert_array_equal(y2, small[1])
    assert s2 == small[2]


def test_a_replacement_holds_one_problem_not_two(controller: EditController) -> None:
    grid = np.random.default_rng(2).normal(size=(512, 512))  # 2 MiB
    controller.replace(grid, np.zeros(512, dtype=np.int64))
    assert controller.undo_bytes < 64 * 1024  # the old 3 x 10 problem
    controller.stack.undo()  # now the step holds the 512 x 512 problem, for redo
    assert 2 * MiB <= controller.undo_bytes < 2 * MiB + 64 * 1024
    controller.stack.redo()
    np.testing.assert_array_equal(controller.state.logits, grid)


def test_the_oldest_steps_are_dropped_beyond_the_budget_and_the_rest_still_undo(qtbot, qapp) -> None:
    rng = np.random.default_rng(3)
    start = rng.normal(size=(256, 256))  # one pasted block of this size holds 0.5 MiB
    controller = EditController(ExplorerState(start, np.zeros(256, dtype=np.int64)), budget_bytes=2 * MiB)
    assert 256 * MiB == UNDO_BUDGET_BYTES  # the default
    history = [controller.state.logits.copy()]
    messages: list[str] = []
    controller.historyTrimmed.connect(messages.append)
    for k in range(10):
        controller.set_block(0, 0, rng.normal(size=(256, 256)), text=f"Paste {k}")
        history.append(controller.state.logits.copy())
        if k == 6:
            controller.stack.setClean()
    assert controller.undo_bytes <= 2 * MiB
    kept = controller.stack.count()
    assert 1 <= kept < 10
    assert messages and "oldest undo step" in messages[-1] and "2 MiB" in messages[-1]
    assert controller.stack.text(kept - 1) == "Paste 9"
    # Undo every kept step: each lands exactly on the grid before it; the clean point survived.
    for k in range(kept):
        assert controller.stack.isClean() == (len(history) - 1 - k == 7)
        controller.stack.undo()
        np.testing.assert_array_equal(controller.state.logits, history[-2 - k])
    assert not controller.stack.canUndo()
    while controller.stack.canRedo():
        controller.stack.redo()
    np.testing.assert_array_equal(controller.state.logits, history[-1])


def test_a_step_that_alone_fills_the_budget_is_kept(qtbot, qapp) -> None:
    controller = EditController(ExplorerState(np.zeros((3, 4)), np.zeros(3, dtype=np.int64)), budget_bytes=1024)
    controller.set_logit(0, 0, 1.0)
    controller.set_logit(0, 1, 2.0)
    assert controller.stack.count() == 1
    controller.stack.undo()
    assert controller.state.logits[0, 1] == 0.0 and controller.state.logits[0, 0] == 1.0
