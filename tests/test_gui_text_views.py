"""The summary and the inspector: refreshed while on screen, only where they changed, and never stale when shown;
the selected cell's explanation kept across edits of other rows is the one a fresh computation gives."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.app.jobs import report_matches_state
from explorer.core import explain_cell
from explorer.gui import MainWindow
from explorer.gui.shown_refresh import on_screen


def _same(a: object, b: object) -> bool:
    """Field by field, NaN equal to NaN (an explanation of a non-finite cell holds NaNs)."""
    ta, tb = dataclasses.astuple(a), dataclasses.astuple(b)  # type: ignore[call-overload]

    def eq(x: object, y: object) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            return x == y or (math.isnan(x) and math.isnan(y))
        if isinstance(x, tuple) and isinstance(y, tuple):
            return len(x) == len(y) and all(eq(u, v) for u, v in zip(x, y, strict=True))
        if isinstance(x, complex) and isinstance(y, complex):
            return eq(x.real, y.real) and eq(x.imag, y.imag)
        return x == y

    return eq(ta, tb)


def test_a_hidden_inspector_is_not_rebuilt_and_shows_the_current_cell_when_brought_forward(
    qtbot, window: MainWindow  # type: ignore[no-untyped-def]
) -> None:
    window.layout_docks.summary.raise_()  # the inspector's tab behind the summary's
    qtbot.waitUntil(lambda: not on_screen(window.inspector) and on_screen(window.summary), timeout=3000)
    before = window.inspector.toPlainText()
    cell = window.display.cell
    assert cell is not None
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        window.controller.set_logit(cell[0], cell[1], 7.25)  # the selected cell's own value: a new explanation
    qtbot.waitUntil(lambda: window.display.explanation is not None and window.display.explanation.logit == 7.25,
                    timeout=5000)  # fmt: skip
    assert window.inspector.toPlainText() == before  # behind a tab: nothing laid out for nobody
    window.layout_docks.inspector.raise_()
    qtbot.waitUntil(lambda: "7.25" in window.inspector.toPlainText(), timeout=3000)
    assert f"{window.display.explanation.numeric:.17g}" in window.inspector.toPlainText()


def test_a_summary_behind_another_tab_shows_the_new_numbers_when_brought_forward(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """The summary's labels cover its scroll area's viewport when they need scrolling (a 1024 x 600 screen), and the
    viewport then never paints: the summary stayed stale for good."""
    window.resize(1024, 600)
    qtbot.waitUntil(lambda: window.summary.widget().height() > window.summary.viewport().height(), timeout=3000)
    window.layout_docks.inspector.raise_()
    qtbot.waitUntil(lambda: not on_screen(window.summary), timeout=3000)
    old = window.summary.toPlainText()
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        window.controller.set_logit(0, int(window.state.labels[0]), -40.0)
    loss = f"Loss: {window.display.report.loss:.10g}"
    assert loss not in old
    window.layout_docks.summary.raise_()
    qtbot.waitUntil(lambda: loss in window.summary.toPlainText(), timeout=3000)
    assert window.summary._rows["Loss"].isVisible()


def test_the_summary_shows_the_reports_numbers_in_its_rows(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    summary = window.summary
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        window.controller.set_logit(0, 1, -3.5)
    report = window.display.report
    loss = summary._rows["Loss"]
    assert loss.text().startswith(f"{report.loss:.10g} ")
    # Drawn: the row is inside the summary's viewport and its label has room for its text.
    top_left = loss.mapTo(summary.viewport(), loss.rect().topLeft())
    assert summary.viewport().rect().contains(top_left)
    assert loss.width() > 20 and loss.height() >= loss.fontMetrics().height()
    assert f"Loss: {report.loss:.10g}" in summary.toPlainText()


def test_an_unchanged_summary_row_is_not_set_again(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """An edit sets the values it changed: the "Check" row (the settings) keeps its text object untouched."""
    summary = window.summary
    check = summary._rows["Check"]
    calls: list[str] = []
    original = check.setText
    check.setText = lambda text: (calls.append(text), original(text))  # type: ignore[method-assign]
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        window.controller.set_logit(1, 1, 2.0)
    qtbot.waitUntil(lambda: report_matches_state(window.report, window.state), timeout=5000)
    assert calls == []


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(
    data=st.data(),
    dtype=st.sampled_from(["float64", "float32", "float16"]),
    scheme=st.sampled_from(["central", "forward", "central4", "complex"]),
    reduction=st.sampled_from(["mean", "sum"]),
)
def test_the_kept_explanation_is_the_fresh_one(qtbot, window: MainWindow, data, dtype, scheme, reduction) -> None:  # type: ignore[no-untyped-def]
    """After every edit (a logit or a label, of the selected cell's row or another) the recomputer's explanation
    equals explain_cell's on the new report, field by field."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    n, c = data.draw(st.integers(2, 6)), data.draw(st.integers(2, 9))
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        window.controller.replace(rng.normal(size=(n, c)) * 2, rng.integers(0, c, n), text="property",
                                  dtype=dtype, scheme=scheme, reduction=reduction, eps=0.01)  # fmt: skip
    cell = (data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, c - 1)))
    window.display.select(cell)
    qtbot.waitUntil(lambda: window.display.explanation is not None and window.display.explanation.cell == cell,
                    timeout=5000)  # fmt: skip
    for _ in range(3):
        i = data.draw(st.integers(0, n - 1))
        j = data.draw(st.integers(0, c - 1))
        with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
            if data.draw(st.booleans()):
                window.controller.set_logit(i, j, float(rng.normal() * 3))
            else:  # a new label: the row is recomputed though no logit of it changed
                window.controller.set_label(i, (int(window.state.labels[i]) + 1) % c)
        qtbot.waitUntil(lambda: report_matches_state(window.report, window.state), timeout=5000)
        qtbot.waitUntil(lambda: window.recomputer.explanation is not None, timeout=5000)
        report = window.report
        fresh = explain_cell(report.logits, report.labels, cell, report.settings)
        assert _same(window.recomputer.explanation, fresh), (i, j, cell)
        assert window.display.explanation is window.recomputer.explanation


def test_a_scroll_area_whose_content_alone_paints_is_refreshed(qtbot) -> None:  # type: ignore[no-untyped-def]
    """On X11 a raised tab repaints the summary's content widget only (it covers the viewport and fills its
    background), so that paint must be enough to refresh a stale view."""
    from PySide6.QtWidgets import QLabel, QScrollArea

    from explorer.gui.shown_refresh import RefreshWhenShown

    area = QScrollArea()
    area.setWidget(QLabel("\n".join(["a line"] * 60)))
    qtbot.addWidget(area)
    area.resize(200, 100)
    area.show()
    qtbot.waitExposed(area)
    calls: list[int] = []
    shown = RefreshWhenShown(area, lambda: calls.append(1))
    shown.stale = True
    area.widget().repaint()  # the content paints; the viewport behind it does not
    qtbot.waitUntil(lambda: calls == [1] and not shown.stale, timeout=3000)


def test_copy_summary_is_reached_by_a_right_click_on_its_text(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """Every value label is selectable, and its own Copy/Select All menu hid "Copy summary" but in the gaps."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication, QLabel

    summary = window.summary
    labels = summary.widget().findChildren(QLabel)
    assert labels and all(lb.contextMenuPolicy() == Qt.ContextMenuPolicy.NoContextMenu for lb in labels)
    assert summary.contextMenuPolicy() == Qt.ContextMenuPolicy.ActionsContextMenu
    (copy,) = [a for a in summary.actions() if a.text() == "Copy summary"]
    copy.trigger()
    assert QApplication.clipboard().text() == summary.toPlainText() and "Verdict: " in summary.toPlainText()
