"""Issue 15: a large grid is held once. The check reads the state's own logits (a change drops the run), the
maps are formed region by region, and the app's memory for a grid stays within 6x its logits."""

from __future__ import annotations

import tracemalloc

import numpy as np

from explorer.app.edits import EditController
from explorer.app.jobs import Recomputer
from explorer.app.state import ExplorerState
from explorer.core import check_gradient
from tests.test_scale_partial import assert_same_report

N, C = 32, 100_000  # 3.2M cells: over the worker and overview thresholds, large enough that fixed costs fade


def test_the_check_shares_the_states_logits_and_a_change_during_it_wins(qapp, qtbot) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    state = ExplorerState(rng.normal(size=(N, C)), rng.integers(0, C, N))
    controller = EditController(state)
    recomputer = Recomputer(state)
    try:
        controller.set_settings(dtype="float32")
        recomputer.schedule()
        qtbot.waitUntil(lambda: recomputer.busy, timeout=10_000)
        controller.set_logit(7, 123, 30.0)  # while the worker reads the very array this writes into
        qtbot.waitUntil(lambda: recomputer.report is not None and not recomputer.pending, timeout=30_000)
        report = recomputer.report
        assert report is not None
        assert np.shares_memory(report.logits, state.logits)  # one array, not a copy per report
        x, y, s = state.snapshot()
        assert float(report.logits[7, 123]) == 30.0
        assert_same_report(report, check_gradient(x, y, s))
    finally:
        recomputer.shutdown()


def test_the_app_layer_holds_a_float32_grid_in_under_6x_its_bytes(qapp, qtbot) -> None:  # type: ignore[no-untyped-def]
    """Memory is deterministic (unlike time): tracemalloc counts NumPy's buffers."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(N, C)).astype(np.float32)
    y = rng.integers(0, C, N)
    state = ExplorerState(np.zeros((2, 3)), np.zeros(2, dtype=np.int64))
    controller = EditController(state)
    controller.set_settings(dtype="float32")
    recomputer = Recomputer(state)
    try:
        tracemalloc.start()
        controller.replace(x, y)
        del x
        qtbot.waitUntil(lambda: recomputer.report is not None and recomputer.report.logits.shape == (N, C)
                        and not recomputer.pending, timeout=30_000)  # fmt: skip
        for k in range(3):  # row-local edits: written in place, nothing of the grid's size kept per edit
            with qtbot.waitSignal(recomputer.reportReady, timeout=30_000):
                controller.set_logit(k, 1000 * k, 9.0)
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        recomputer.shutdown()
    grid = N * C * 4
    assert recomputer.overviews is not None and recomputer.last_path == "rows"
    assert held <= 5.2 * grid, held / grid  # logits, two gradients, expected error, verdict (1/4), pyramids (0.6)
    assert peak <= 6 * grid, peak / grid
