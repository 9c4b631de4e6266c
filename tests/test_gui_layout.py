"""Fits every screen: geometry from the screen, a grid sized to its numbers, clean axes and bars, the guide."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, QRectF, Qt
from PySide6.QtGui import QFontMetrics, QImage, QKeySequence, QPainter

from explorer.gui import MainWindow
from explorer.gui.heatmap_view import bar_ticks
from explorer.gui.sweep_panel import log_ticks
from explorer.gui.table_models import REFUSED_FLASH_MS
from explorer.gui.theme import LIGHT
from explorer.gui.window_settings import fit_to_screen, initial_size


def test_first_size_is_a_share_of_the_screen() -> None:
    for w, h in ((1024, 600), (1280, 720), (1366, 768)):
        size = initial_size(QRect(0, 0, w, h))
        assert (size.width(), size.height()) == (w, h)  # a small screen: all of it
    size = initial_size(QRect(0, 0, 3840, 2160))
    assert (size.width(), size.height()) == (3072, 1728)


def test_the_window_fits_1024x600_and_960x540(window: MainWindow) -> None:
    """960 x 540 is 1920 x 1080 at 200 %: the smallest logical screen the window supports."""
    minimum = window.minimumSizeHint()
    assert minimum.width() <= 960 and minimum.height() <= 540, minimum


def test_the_controls_fit_their_dock_at_1024_px_without_sideways_scrolling(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """At 1024 x 600 the Controls dock got about 290 px and its content needed 343 (a long group title and a row of
    three fields): the right-hand column was cut off behind a horizontal scroll bar."""
    from PySide6.QtWidgets import QWidget

    window.resize(1024, 600)
    window.share_width()
    controls = window.controls
    viewport = controls.parentWidget()
    area = viewport.parentWidget()
    qtbot.waitUntil(lambda: abs(window.layout_docks.controls.width() - 291) < 60, timeout=3000)
    qtbot.waitUntil(lambda: controls.width() <= viewport.width(), timeout=3000)
    assert not area.horizontalScrollBar().isVisible()
    right = viewport.width()
    for child in controls.findChildren(QWidget):  # every field is drawn inside the dock
        if child.isVisibleTo(controls) and child.width() > 0:
            assert child.mapTo(viewport, child.rect().topRight()).x() <= right, child.objectName() or child


def test_a_restored_size_larger_than_the_screen_is_clamped(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    area = window.screen().availableGeometry()
    window.resize(area.width() + 900, area.height() + 700)
    window.move(area.right() - 50, area.bottom() - 50)
    fit_to_screen(window)
    frame = window.frameGeometry()
    minimum = window.minimumSizeHint()  # the offscreen screen (800 x 800) is narrower than the window's minimum
    slack = 8  # the layout's own margins over its size hint
    assert frame.width() <= max(area.width(), minimum.width() + slack)
    assert frame.height() <= max(area.height(), minimum.height() + slack)
    assert area.contains(frame.topLeft())


def _text_fits(view, row: int, col: int) -> bool:  # type: ignore[no-untyped-def]
    index = view.model().index(row, col)
    text = index.data()
    font = view.font()
    font.setBold(True)  # the label cells are bold: the widest case
    return QFontMetrics(font).horizontalAdvance(text) + 6 <= view.columnWidth(col)


def test_columns_fit_their_numbers_at_every_precision(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(0).normal(size=(4, 12)) * np.logspace(-3, 4, 12)
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        window.controller.replace(x, np.zeros(4, dtype=np.int64))
    view = window.grid.logits_view
    qtbot.waitUntil(lambda: all(_text_fits(view, i, j) for i in range(4) for j in range(12)), timeout=3000)
    wide = view.columnWidth(0)
    window.precision_actions["3"].trigger()
    assert window.grid.precision == 3 and "…" not in str(view.model().index(0, 0).data())
    assert all(_text_fits(view, i, j) for i in range(4) for j in range(12))
    assert view.columnWidth(0) < wide
    window.precision_actions["17"].trigger()
    assert all(_text_fits(view, i, j) for i in range(4) for j in range(12))
    labels = window.grid.labels_view
    assert labels.width() < 110  # "as narrow as its numbers"


def test_about_ten_columns_show_at_the_default_size(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.resize(1280, 720)
    window.share_width()  # as at start on a 1280 x 720 screen
    view = window.grid.logits_view
    qtbot.waitUntil(lambda: view.columnViewportPosition(9) + view.columnWidth(9) <= view.viewport().width(),
                    timeout=3000)  # fmt: skip


def test_current_cell_stays_in_view_after_a_load_and_a_label_change(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    view = window.grid.logits_view
    x = np.random.default_rng(2).normal(size=(6, 60))
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        window.controller.replace(x, np.zeros(6, dtype=np.int64))

    def visible(i: int, j: int) -> bool:
        rect = view.visualRect(view.model().index(i, j))
        return view.viewport().rect().intersects(rect) and rect.width() > 0

    qtbot.waitUntil(lambda: window.grid.current_cell() is not None and visible(*window.grid.current_cell()),
                    timeout=3000)  # fmt: skip
    window.grid.select_cell(2, 0)
    window.grid.labels_view.setCurrentIndex(window.grid.labels_model.index(2, 0))
    assert window.grid.labels_model.setData(window.grid.labels_model.index(2, 0), "57")
    qtbot.waitUntil(lambda: visible(2, 57), timeout=3000)


def test_a_refused_edit_marks_its_cell_briefly(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    model = window.grid.logits_model
    index = model.index(1, 2)
    messages: list[str] = []
    window.grid.message.connect(messages.append)
    assert not model.setData(index, "1,5")
    assert messages and "unchanged" in messages[-1]
    assert model.refused_cell == (1, 2)
    assert model.data(index, Qt.ItemDataRole.BackgroundRole).color() == LIGHT.refused_cell
    qtbot.waitUntil(lambda: model.refused_cell is None, timeout=REFUSED_FLASH_MS + 3000)
    assert model.data(index, Qt.ItemDataRole.BackgroundRole) is None
    labels = window.grid.labels_model
    assert not labels.setData(labels.index(0, 0), "two")
    assert labels.refused_cell == (0, 0)


def test_f1_opens_a_searchable_user_guide(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    assert window.guide_action.shortcut() == QKeySequence("F1")
    window.guide_action.trigger()
    guide = window.views._guide
    assert guide is not None and guide.isVisible()
    text = guide.browser.toPlainText()
    for needle in ("V", "truncation dominates", "shift-invariant", "What did I do wrong?", "Ctrl+G", "Worst cells"):
        assert needle in text, needle
    guide.find_edit.setText("rounding dominates")
    assert guide.browser.textCursor().selectedText() == "rounding dominates"
    assert guide.find_text("no such phrase anywhere") is False
    assert "not in the guide" in guide.status.text()
    guide.close()


def test_log_ticks_label_the_lowest_decade_and_read_on_short_axes() -> None:
    majors, minors = log_ticks(-20.0, -1.0, 5)
    assert majors[0] == (-20.0, "1e-20") and len(majors) <= 5
    assert all(text == "" for _, text in minors)
    majors, _ = log_ticks(math.log10(2e-4), math.log10(3e-3), 8)  # under two decades: 2x and 5x labelled
    assert [t for _, t in majors] == ["2e-04", "5e-04", "1e-03", "2e-03"]
    assert len({round(v, 9) for v, _ in majors}) == len(majors)


def test_bar_ticks_label_both_ends() -> None:
    for lo, hi in ((-1.0, 1.0), (0.0, 1.25e-9), (-20.0, -3.0), (0.0, 4e-10)):
        ticks = bar_ticks(lo, hi)
        assert ticks[0][0] == lo and ticks[-1][0] == hi and 2 <= len(ticks) <= 7
        assert len({t for _, t in ticks}) == len(ticks)


def _specs(axis: pg.AxisItem) -> list[tuple[QRectF, str]]:
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(axis.mapRectToScene(r), t) for r, _f, t in specs[2] if t]


def test_colour_bar_ticks_show_both_ends_and_clear_the_title(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.resize(1280, 720)
    for view in window.heatmaps.views:
        axis = view.colorbar.getAxis("right")
        qtbot.waitUntil(lambda a=axis: len(_specs(a)) >= 2, timeout=3000)
        rects = _specs(axis)
        lo, hi = view.colorbar.levels
        texts = [t for _, t in rects]
        assert texts[0] == bar_ticks(lo, hi)[0][1] or texts[-1] == bar_ticks(lo, hi)[-1][1]
        title = axis.label.sceneBoundingRect()
        shown = view.mapToScene(view.viewport().rect()).boundingRect()
        for k, (r, t) in enumerate(rects):
            assert not r.intersects(title.adjusted(2, 2, -2, -2)), (view.objectName(), t)
            assert shown.contains(r), (view.objectName(), t, "clipped")
            assert all(not r.intersects(r2) for r2, _ in rects[k + 1 :])


def test_sweep_has_a_legend_and_hints_clear_of_curves_and_the_eps_line(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.resize(1600, 1000)
    window.resizeDocks([window.layout_docks.sweep], [700], Qt.Orientation.Horizontal)
    panel = window.sweep_panel
    qtbot.waitUntil(lambda: panel.result is not None, timeout=10000)
    artist = panel.artist
    legend = artist.legend
    qtbot.waitUntil(lambda: legend is not None and legend.isVisible(), timeout=3000)
    names = [label.text for _, label in legend.items]
    assert any("central" in n for n in names) and "forward" in names and "model" in names
    plot = panel.plot
    vb = plot.getViewBox()
    line_x = vb.mapViewToScene(pg.Point(math.log10(window.state.settings.eps), 0)).x()
    shown = 0
    for key in ("hint-left", "hint-right"):
        rect = artist.hint_rect(key)
        if rect is None:
            continue
        shown += 1
        assert not (rect.left() <= line_x <= rect.right()), key
        assert not rect.intersects(legend.sceneBoundingRect()), key
        for item_key, item in artist._items.items():
            if isinstance(item, pg.PlotDataItem) and item.isVisible():
                xs, ys = item.getData()
                for x, y in zip(xs, ys, strict=True):
                    if np.isfinite(x) and np.isfinite(y):
                        assert not rect.contains(vb.mapViewToScene(pg.Point(x, y))), (key, item_key)
    assert shown >= 1


def test_a_large_grid_is_measured_in_a_worker_and_its_columns_fit_their_widest_number(
    qtbot, window: MainWindow, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    """One pass over the extremes of 2^25 cells took 60-130 ms on the GUI thread after every open and dtype change."""
    from explorer.gui import grid_panel

    monkeypatch.setattr(grid_panel, "WIDTH_WORKER_CELLS", 100)  # this 20 x 30 grid counts as large
    x = np.zeros((20, 30))
    x[13, 27] = -1.2345678e-300  # the widest text, found only by the pass over the extremes
    view = window.grid.logits_view
    with qtbot.waitSignal(window.grid._paste_relay.measured, timeout=5000):
        window.controller.replace(x, np.zeros(20, dtype=np.int64))
    qtbot.waitUntil(lambda: _text_fits(view, 13, 27), timeout=3000)
    assert all(_text_fits(view, i, j) for i in range(20) for j in range(30))


def test_a_change_of_precision_measures_the_kept_widest_values_and_what_was_typed_since(
    qtbot, window: MainWindow, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    from explorer.gui import grid_panel

    monkeypatch.setattr(grid_panel, "WIDTH_WORKER_CELLS", 100)
    view = window.grid.logits_view
    with qtbot.waitSignal(window.grid._paste_relay.measured, timeout=5000):
        window.controller.replace(np.full((20, 30), 0.5), np.zeros(20, dtype=np.int64))
    window.controller.set_logit(4, 9, -1.2345678901234567e-300)  # typed after the measurement
    window.precision_actions["17"].trigger()  # no pass over the grid: the kept values and the typed one
    assert window.grid._width_sample is not None
    assert _text_fits(view, 4, 9) and _text_fits(view, 0, 0)


def test_a_value_typed_while_the_width_is_measured_is_shown_and_kept(qtbot, window: MainWindow, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import threading

    from explorer.gui import grid_panel

    gate = threading.Event()
    original = grid_panel.width_sample

    def held(values):  # type: ignore[no-untyped-def]
        if np.asarray(values).size > 100:  # the worker's pass (a typed cell is measured at once)
            gate.wait(20)
        return original(values)

    monkeypatch.setattr(grid_panel, "WIDTH_WORKER_CELLS", 100)
    monkeypatch.setattr(grid_panel, "width_sample", held)
    view = window.grid.logits_view
    window.controller.replace(np.full((20, 30), 0.5), np.zeros(20, dtype=np.int64))
    qtbot.waitUntil(lambda: window.grid._measuring, timeout=3000)
    window.controller.set_logit(4, 9, -1.2345678e-300)  # while the worker measures the grid without it
    assert _text_fits(view, 4, 9)  # shown at once
    with qtbot.waitSignal(window.grid._paste_relay.measured, timeout=10_000):
        gate.set()
    assert _text_fits(view, 4, 9)  # and kept when the worker's (narrower) measurement arrives


def test_a_wheel_over_an_unfocused_control_scrolls_the_dock_and_changes_nothing(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """At 1024 x 600 the Controls dock scrolls: a wheel turned over the Perturb box switched the check to the
    pitfall mode, and one over the samples box cut the grid to one row."""
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    window.resize(1024, 600)
    window.share_width()
    bar = window.controls.parentWidget().parentWidget().verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=3000)
    combo, spin = window.controls.perturb_combo, window.controls.n_spin
    settings, shape, scrolled = window.state.settings, window.state.shape, bar.value()
    for field in (combo, spin):
        centre = QPointF(field.rect().center())
        event = QWheelEvent(centre, QPointF(field.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, -120),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                            False)  # fmt: skip
        QApplication.sendEvent(field, event)
    assert window.state.settings == settings and window.state.shape == shape
    assert bar.value() > scrolled  # the dock scrolled instead
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=3000)
    centre = QPointF(spin.rect().center())
    QApplication.sendEvent(spin, QWheelEvent(centre, QPointF(spin.mapToGlobal(centre.toPoint())), QPoint(0, 0),
                                             QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                                             Qt.ScrollPhase.NoScrollPhase, False))  # fmt: skip
    assert window.state.shape[0] == shape[0] + 1  # a clicked (focused) field still takes the wheel
