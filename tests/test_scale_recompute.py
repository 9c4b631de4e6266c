"""Issue 15: the Recomputer updates only the edited rows (bit-identical to a full check) and builds overviews."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.app.edits import EditController
from explorer.app.jobs import OVERVIEW_THRESHOLD, Recomputer
from explorer.app.state import ExplorerState
from explorer.core import check_gradient
from explorer.core.overview import Pyramid
from tests.test_scale_partial import assert_same_report

N, C = 16, 20_000  # 320,000 cells: over the worker and overview thresholds


@pytest.fixture
def setup(qapp, qtbot):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    state = ExplorerState(rng.normal(size=(N, C)), rng.integers(0, C, N))
    controller = EditController(state)
    controller.set_settings(dtype="float32", reduction="mean")
    recomputer = Recomputer(state)
    yield state, controller, recomputer, qtbot
    recomputer.shutdown()


def _wait(qtbot, recomputer: Recomputer, trigger) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(recomputer.reportReady, timeout=20_000):
        trigger()
    qtbot.waitUntil(lambda: not recomputer.pending, timeout=20_000)


def _check_overviews(recomputer: Recomputer) -> None:
    ov = recomputer.overviews
    report = recomputer.report
    assert ov is not None and report is not None and ov.report is report
    for pyramid, array, kind in [(ov.analytic, report.grad_analytic, "signed_extreme"),
                                 (ov.numeric, report.grad_numeric, "signed_extreme"),
                                 (ov.abs_err, report.abs_err, "abs_max"),
                                 (ov.rel_err, report.rel_err, "abs_max"),
                                 (ov.tolerance, report.tolerance_map, "abs_max")]:  # fmt: skip
        fresh = Pyramid.build(array, kind)
        for k in range(fresh.depth):
            np.testing.assert_array_equal(pyramid.level(k), fresh.level(k))


def test_edits_are_row_local_bit_identical_and_keep_the_overviews_exact(setup) -> None:  # type: ignore[no-untyped-def]
    state, controller, recomputer, qtbot = setup
    assert N * C > OVERVIEW_THRESHOLD
    recomputer.schedule()
    qtbot.waitUntil(lambda: recomputer.report is not None and not recomputer.pending, timeout=20_000)
    assert recomputer.last_path == "full"
    _check_overviews(recomputer)

    _wait(qtbot, recomputer, lambda: controller.set_logit(3, 12_345, 25.0))
    assert recomputer.last_path == "rows"
    x, y, s = state.snapshot()
    assert_same_report(recomputer.report, check_gradient(x, y, s))  # type: ignore[arg-type]
    _check_overviews(recomputer)
    # The planted large gradient is the extreme of its pixel in the whole-map overview.
    view = recomputer.overviews.numeric.view(out_shape=(N, 400))  # type: ignore[union-attr]
    p, q = view.pixel_of(3, 12_345)  # type: ignore[misc]
    assert recomputer.overviews.numeric.extreme_cell(view, p, q) == (3, 12_345)  # type: ignore[union-attr]

    # A label change that keeps the mean's denominator, and a pasted block over two rows.
    def two_edits() -> None:
        with state.batch():
            controller.set_label(7, 5)
            controller.set_block(10, 100, np.full((2, 3), -4.0))

    _wait(qtbot, recomputer, two_edits)
    assert recomputer.last_path == "rows"
    x, y, s = state.snapshot()
    assert_same_report(recomputer.report, check_gradient(x, y, s))  # type: ignore[arg-type]
    _check_overviews(recomputer)

    # A settings change is a full check.
    _wait(qtbot, recomputer, lambda: controller.set_settings(eps=1e-2))
    assert recomputer.last_path == "full"
    x, y, s = state.snapshot()
    assert_same_report(recomputer.report, check_gradient(x, y, s))  # type: ignore[arg-type]


def test_evaluate_loss_falls_back_to_the_full_check(setup) -> None:  # type: ignore[no-untyped-def]
    state, controller, recomputer, qtbot = setup
    controller.set_settings(evaluate="loss")
    recomputer.schedule()
    qtbot.waitUntil(lambda: recomputer.report is not None and not recomputer.pending, timeout=20_000)
    _wait(qtbot, recomputer, lambda: controller.set_logit(0, 0, 3.0))
    assert recomputer.last_path == "full"
    x, y, s = state.snapshot()
    assert_same_report(recomputer.report, check_gradient(x, y, s))  # type: ignore[arg-type]


def test_an_edit_while_a_row_local_check_runs_drops_it(setup, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The report shares a large grid's array, and a row-local check writes its rows back into it: one that read the
    rows before a newer edit put the older value back over the typed one (the undo stack said it was done)."""
    import threading

    from explorer.app import jobs
    from explorer.app.jobs import report_matches_state

    state, controller, recomputer, qtbot = setup
    recomputer.schedule()
    qtbot.waitUntil(lambda: recomputer.report is not None and not recomputer.pending, timeout=20_000)
    entered, gate = threading.Event(), threading.Event()
    original = jobs.compute_rows

    def held(*args, **kwargs):  # type: ignore[no-untyped-def]
        entered.set()
        gate.wait(20)  # (in the worker) until the second edit is made
        return original(*args, **kwargs)

    monkeypatch.setattr(jobs, "compute_rows", held)
    controller.set_logit(0, 5, 7.5)
    qtbot.waitUntil(entered.is_set, timeout=10_000)
    running = recomputer._generation
    controller.set_logit(0, 6, 7.25)  # the same row, read by the running check without this value
    assert recomputer._generation != running  # its result is dropped, never written over the new value
    gate.set()
    qtbot.waitUntil(lambda: not recomputer.pending and report_matches_state(recomputer.report, state), timeout=20_000)
    assert (state.logits[0, 5], state.logits[0, 6]) == (7.5, 7.25)
    x, y, s = state.snapshot()
    assert_same_report(recomputer.report, check_gradient(x, y, s))  # type: ignore[arg-type]


def test_checks_superseded_while_they_wait_do_no_work(setup, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """An edit storm queued one check per burst behind a running one, and each ran in full before finding it was
    stale: the newest edit waited behind all of them (minutes at 32 x 262,144)."""
    import threading

    from explorer.app import jobs
    from explorer.app.jobs import report_matches_state

    state, controller, recomputer, qtbot = setup
    recomputer.schedule()
    qtbot.waitUntil(lambda: recomputer.report is not None and not recomputer.pending, timeout=20_000)
    gate = threading.Event()
    entered: list[int] = []
    original = jobs.compute_rows

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        entered.append(1)
        if len(entered) == 1:
            gate.wait(20)  # (in the worker) the first check holds the queue until the storm is over
        return original(*args, **kwargs)

    monkeypatch.setattr(jobs, "compute_rows", counted)
    for k in range(5):
        # A new check is submitted once the generation moved past the edit's own bump (none before the first).
        submitted = recomputer._generation + (1 if k == 0 else 2)
        controller.set_logit(k, 7, float(k) + 0.5)
        qtbot.waitUntil(lambda n=submitted: recomputer._generation >= n, timeout=10_000)
    gate.set()
    qtbot.waitUntil(lambda: not recomputer.pending and report_matches_state(recomputer.report, state), timeout=20_000)
    assert len(entered) == 2  # the held one and the newest; the three between returned without computing
    assert [float(state.logits[k, 7]) for k in range(5)] == [0.5, 1.5, 2.5, 3.5, 4.5]
