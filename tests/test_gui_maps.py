"""The maps read at any size: overview that keeps hot cells, linked zoom, crosshair, reset, worst cell, table."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QKeySequence
from PySide6.QtWidgets import QTabBar

from explorer.gui import MainWindow
from explorer.gui.heatmap_view import DIVERGING, DIVERGING_MAPS, HeatmapView
from explorer.gui.map_overview import BlockOverview, PyramidOverview, block_extreme


def _brute(a: np.ndarray, fy: int, fx: int, how: str) -> np.ndarray:
    out = np.empty((-(-a.shape[0] // fy), -(-a.shape[1] // fx)))
    for p in range(out.shape[0]):
        for q in range(out.shape[1]):
            block = a[p * fy : (p + 1) * fy, q * fx : (q + 1) * fx].ravel()
            if np.isnan(block).any():
                out[p, q] = np.nan
            elif how == "max":
                out[p, q] = block.max()
            else:
                hi, lo = block.max(), block.min()
                out[p, q] = lo if abs(lo) > abs(hi) else hi
    return out


@pytest.mark.parametrize("how", ["max", "magnitude"])
def test_block_extreme_is_the_extreme_of_every_block(how: str) -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(37, 53))
    a[5, 7] = np.nan
    for fy in (1, 2, 5, 37):
        for fx in (1, 3, 7, 60):
            np.testing.assert_array_equal(block_extreme(a, fy, fx, how), _brute(a, fy, fx, how))  # type: ignore[arg-type]


@pytest.mark.parametrize("source", [BlockOverview, PyramidOverview])
def test_no_hot_cell_vanishes_in_the_overview(source: type) -> None:
    a = np.zeros((128, 1000))
    a[77, 513] = -3e-4  # one bad cell among 128,000
    region = source(a, "magnitude").region(0, 128, 0, 1000, 300, 150)
    assert region.image.shape[1] <= 150 and region.factors[1] > 1
    assert region.image.min() == -3e-4
    p, q = np.unravel_index(np.argmin(region.image), region.image.shape)
    fy, fx = region.factors
    assert region.row0 + p * fy <= 77 < region.row0 + (p + 1) * fy
    assert region.col0 + q * fx <= 513 < region.col0 + (q + 1) * fx


def _shown_view(qtbot, width: int, height: int, title: str = "Analytic gradient") -> HeatmapView:  # type: ignore[no-untyped-def]
    """A diverging map view of its own, shown at ``width x height``."""
    view = HeatmapView(title, DIVERGING, "∂L/∂x")
    qtbot.addWidget(view)
    view.resize(width, height)
    view.show()
    qtbot.waitExposed(view)
    return view


@pytest.mark.parametrize("selected", [False, True], ids=["unselected", "selected"])
def test_a_single_hot_cell_is_drawn_on_a_narrow_map(qtbot, selected: bool) -> None:  # type: ignore[no-untyped-def]
    """128 x 1000 in ~250 px: the map shows an overview, and the one hot cell's colour is on screen
    where the cell is, also when it is selected (a cell smaller than the outline gets a hollow ring around
    it, not an outline over it)."""
    view = _shown_view(qtbot, 360, 300, "Analytic gradient")
    data = np.zeros((128, 1000))
    data[77, 513] = 1.0
    view.set_image(data, (-1.0, 1.0))
    qtbot.waitUntil(lambda: view.overview_factors != (1, 1), timeout=3000)
    assert view.data is data and view.image_item.image.shape[1] < 1000
    if selected:
        view.set_selected((77, 513))
    grabbed = view.grab().toImage()
    hot = QColor(178, 24, 43)
    ratio = view.devicePixelRatioF()
    centre = view.mapFromScene(view.plot.getViewBox().mapViewToScene(QPointF(513.5, 77.5)))
    box = view.mapFromScene(view.plot.getViewBox().sceneBoundingRect()).boundingRect()  # the map, not its bar
    found = [
        (x, y)
        for x in range(int(box.left() * ratio), int(box.right() * ratio))
        for y in range(int(box.top() * ratio), int(box.bottom() * ratio))
        if abs(QColor(grabbed.pixel(x, y)).red() - hot.red()) < 20
        and abs(QColor(grabbed.pixel(x, y)).green() - hot.green()) < 20
        and abs(QColor(grabbed.pixel(x, y)).blue() - hot.blue()) < 20
    ]
    assert found, "the hot cell vanished"
    xs, ys = zip(*found, strict=True)
    assert abs(np.mean(xs) / ratio - centre.x()) <= 4 and abs(np.mean(ys) / ratio - centre.y()) <= 4


def test_maps_zoom_and_pan_together_and_reset(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    maps = window.heatmaps
    maps.numeric.plot.getViewBox().setRange(xRange=(2, 5), yRange=(0, 2), padding=0)
    for view in maps.views:
        (x0, x1), (y0, y1) = view.plot.getViewBox().viewRange()
        assert (round(x0, 6), round(x1, 6), round(y0, 6), round(y1, 6)) == (2, 5, 0, 2), view.objectName()
    assert window.reset_view_action.shortcut() == QKeySequence("Ctrl+0")
    assert maps.reset_button.isVisible()
    window.reset_view_action.trigger()
    n, c = window.state.shape
    for view in maps.views:
        (x0, x1), (y0, y1) = view.plot.getViewBox().viewRange()
        assert (round(x0, 6), round(x1, 6), round(y0, 6), round(y1, 6)) == (0, c, 0, n)


def test_hovering_one_map_shows_a_crosshair_on_all_three(qtbot) -> None:  # type: ignore[no-untyped-def]
    # The panel alone: the window also shows a tooltip, which the offscreen platform warns about.
    from explorer.core import CheckSettings, check_gradient
    from explorer.files.presets import get_preset
    from explorer.gui.maps_panel import HeatmapPanel

    origin = get_preset("origin")
    panel = HeatmapPanel()
    qtbot.addWidget(panel)
    panel.resize(500, 700)
    panel.show()
    qtbot.waitExposed(panel)
    panel.show_report(check_gradient(origin.logits, origin.labels, CheckSettings(**origin.settings)))
    view = panel.error
    scene_pos = view.plot.getViewBox().mapViewToScene(QPointF(6.5, 1.5))
    with qtbot.waitSignal(panel.cellHovered) as hovered:
        qtbot.mouseMove(view.viewport(), view.mapFromScene(scene_pos))
    assert hovered.args == [1, 6]
    for v in panel.views:
        assert all(line.isVisible() for line in v.crosshair)
        assert (v.crosshair[0].value(), v.crosshair[1].value()) == (6.5, 1.5)
    panel.set_crosshair(None)
    assert not any(line.isVisible() for v in panel.views for line in v.crosshair)


def test_go_to_worst_cell_selects_it_everywhere(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(1).normal(size=(40, 200))
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=10000):
        window.controller.replace(x, np.zeros(40, dtype=np.int64), dtype="float32")
    window.heatmaps.analytic.plot.getViewBox().setRange(xRange=(0, 10), yRange=(0, 5), padding=0)
    window.grid.select_cell(0, 0)
    assert window.worst_cell_action.shortcut() == QKeySequence("Ctrl+G")
    window.worst_cell_action.trigger()
    worst = tuple(int(v) for v in window.display.report.worst_cells(1)[0])
    assert window.display.cell == worst and window.grid.current_cell() == worst
    for view in window.heatmaps.views:
        (x0, x1), (y0, y1) = view.plot.getViewBox().viewRange()
        assert x0 <= worst[1] < x1 and y0 <= worst[0] < y1
        assert view._marker.isVisible() and view._marker.rect().topLeft() == QPointF(worst[1], worst[0])


def test_worst_cells_table_sorts_and_a_click_selects(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    table = window.worst_cells.table
    report = window.display.report
    model = window.worst_cells.model
    # A hidden tab lists nothing until it is brought forward (an edit then costs it nothing).
    window.layout_docks.worst.raise_()
    qtbot.waitUntil(lambda: model.rowCount() > 0 and model.report is window.display.report, timeout=5000)
    assert model.rowCount() == min(200, report.grad_analytic.size)
    ranked = [tuple(int(v) for v in c) for c in report.worst_cells(model.rowCount())]
    assert [model.cell(r) for r in range(model.rowCount())] == ranked
    table.sortByColumn(5, Qt.SortOrder.DescendingOrder)  # |error|, largest first
    proxy = window.worst_cells.proxy
    errors = [proxy.data(proxy.index(r, 5), Qt.ItemDataRole.UserRole) for r in range(proxy.rowCount())]
    assert errors == sorted(errors, reverse=True)
    index = proxy.index(3, 0)
    cell = model.cell(proxy.mapToSource(index).row())
    rect = table.visualRect(index)
    for bar in window.findChildren(QTabBar):  # bring the Worst cells tab to the front, as a click on it does
        for k in range(bar.count()):
            if bar.tabText(k) == "Worst cells":
                bar.setCurrentIndex(k)
    qtbot.waitUntil(table.isVisible, timeout=3000)
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: window.display.cell == cell, timeout=3000)
    assert window.grid.current_cell() == cell


def test_colour_map_choice_repaints_maps_and_bars(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    name = "Purple – orange (PuOr)"
    before = window.heatmaps.analytic.image_item.lut
    window.gradient_cmap_actions[name].trigger()
    assert window.heatmaps.gradient_cmap == name
    for view in (window.heatmaps.analytic, window.heatmaps.numeric):
        assert view.cmap is DIVERGING_MAPS[name]
        assert not np.array_equal(view.image_item.lut, before)
    stops = window.heatmaps.analytic.colorbar.rect_item.brush().gradient().stops()
    assert stops[0][1] == DIVERGING_MAPS[name].mapToQColor(0.0)


def test_plots_hide_pyqtgraphs_tiny_auto_button(window: MainWindow) -> None:
    for view in window.heatmaps.views:
        assert not view.plot.autoBtn.isVisible()
    assert isinstance(window.sweep_panel.plot, pg.PlotItem) and not window.sweep_panel.plot.autoBtn.isVisible()


def test_large_maps_draw_from_the_recomputers_pyramids(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """A grid the recomputer builds overviews for: the maps cut their pictures from those pyramids (built in
    the worker with the report), and the log view's pixels are log10 of the error pyramid's maxima."""
    from explorer.app import jobs

    n, c = 64, jobs.OVERVIEW_THRESHOLD // 64 + 64
    x = np.random.default_rng(4).normal(size=(n, c))
    window.resize(1280, 720)
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=30000):
        window.controller.replace(x, np.zeros(n, dtype=np.int64), dtype="float32")
    overviews = window.recomputer.overviews
    assert overviews is not None and overviews.report is window.display.report
    maps = window.heatmaps
    qtbot.waitUntil(lambda: all(v.overview_factors != (1, 1) for v in maps.views), timeout=5000)
    assert maps.analytic._overview._pyramid is overviews.analytic
    assert maps.error._overview._pyramid is overviews.abs_err
    maps.set_error_view("log_abs")
    qtbot.waitUntil(lambda: maps.error.image_item.image.max() <= 0, timeout=5000)  # log10 of errors < 1
    assert maps.error._overview._pyramid is overviews.abs_err
    worst = float(np.log10(np.nanmax(window.display.report.abs_err)))
    assert np.isclose(np.nanmax(maps.error.image_item.image), worst)


def test_hover_and_click_name_the_cell_a_pixel_shows(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Where a pixel covers many cells, pointing anywhere in it names the cell whose value it shows (user
    review: the tooltip named the block's first cell, a near-zero one, beside a red pixel)."""
    view = _shown_view(qtbot, 360, 300, "Analytic gradient")
    data = np.zeros((128, 1000))
    data[77, 513] = -1.0
    view.set_image(data, (-1.0, 1.0))
    qtbot.waitUntil(lambda: view.overview_factors != (1, 1), timeout=3000)
    _fy, fx = view.overview_factors
    assert fx > 3
    vb = view.plot.getViewBox()
    start = (513 // fx) * fx  # the first cell of the hot cell's pixel
    for j in {start, start + fx - 1, 513}:
        assert view.cell_at(vb.mapViewToScene(QPointF(j + 0.5, 77.5))) == (77, 513)
    other = (start + fx + 1) % 1000  # a cell of another pixel: itself (all zeros there: the block's first cell)
    assert view.cell_at(vb.mapViewToScene(QPointF(other + 0.5, 77.5)))[1] != 513


def test_row_labels_of_a_short_map_do_not_overlap(qtbot) -> None:  # type: ignore[no-untyped-def]
    """32 rows in ~150 px: every k-th row is labelled, k chosen so the labels keep a line apart (user review:
    the 32 sample labels overlapped into a smear)."""
    from PySide6.QtGui import QFontMetricsF

    view = _shown_view(qtbot, 420, 220, "Analytic gradient")
    view.set_image(np.zeros((32, 100)), (-1.0, 1.0))
    qtbot.waitUntil(lambda: view.plot.getViewBox().height() > 0, timeout=3000)
    view._on_overview_timer_timeout()  # what the view does once laid out
    axis = view.plot.getAxis("left")
    values = [v for v, _text in axis._tickLevels[0]]
    px_per_row = view.plot.getViewBox().height() / 32
    spacing = (values[1] - values[0]) * px_per_row
    assert values[1] - values[0] > 1 and spacing >= QFontMetricsF(view.font()).height()
    assert values[0] == 0.5  # row 0 is labelled at its centre


def test_the_first_column_is_not_covered_by_tick_marks(qtbot) -> None:  # type: ignore[no-untyped-def]
    """A label column at class 0 (the cells that fail first) must show along the map's left edge (user review:
    the left axis' inward ticks, one per row, hid it)."""
    view = _shown_view(qtbot, 360, 300, "Error")
    data = np.zeros((32, 600))
    data[:, 0] = 1.0
    view.set_image(data, (-1.0, 1.0))
    qtbot.waitUntil(lambda: view.overview_factors != (1, 1), timeout=3000)
    grabbed = view.grab().toImage()
    ratio = view.devicePixelRatioF()
    box = view.mapFromScene(view.plot.getViewBox().sceneBoundingRect()).boundingRect()
    x = int(box.left() * ratio)  # the first pixel column of the data area
    ys = range(int((box.top() + 2) * ratio), int((box.bottom() - 2) * ratio))
    hot = [y for y in ys if QColor(grabbed.pixel(x, y)).red() > 150 and QColor(grabbed.pixel(x, y)).blue() < 90]
    assert len(hot) >= 0.99 * len(ys), (len(hot), len(ys))  # no tick mark over it


def test_a_hidden_worst_cells_tab_is_listed_when_brought_forward(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.layout_docks.summary.raise_()  # the worst-cells tab behind it
    model = window.worst_cells.model
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        window.controller.set_logit(1, 2, 9.5)
    assert model.report is not window.display.report  # not listed behind the summary tab
    window.layout_docks.worst.raise_()
    qtbot.waitUntil(lambda: model.report is window.display.report, timeout=5000)
    ranked = [tuple(int(v) for v in c) for c in window.display.report.worst_cells(model.rowCount())]
    assert [model.cell(r) for r in range(model.rowCount())] == ranked


def test_the_worst_cells_say_the_summarys_verdict_and_mark_the_cells_it_cannot_tell(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """float16 at eps 1e-5: the summary said CANNOT TELL while the table said "Every element passes" and "pass" on
    cells whose numeric gradient is 0 against an analytic 1."""
    from explorer.app.report_text import cell_tooltip, verdict_of
    from explorer.gui.worst_cells import VERDICTS

    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        window.controller.set_settings(dtype="float16", eps=1e-5)
    report = window.display.report
    verdict = verdict_of(report)
    assert verdict.word == "CANNOT TELL"
    window.layout_docks.worst.raise_()
    model = window.worst_cells.model
    qtbot.waitUntil(lambda: model.report is report, timeout=5000)
    assert window.worst_cells.caption.text().startswith("CANNOT TELL: ")
    words = [model.index(r, 7).data() for r in range(model.rowCount())]
    assert "blind" in words and set(words) <= set(VERDICTS)
    r = words.index("blind")
    i, j = model.cell(r)
    values = window.display.values_at((i, j))
    assert values.passed and 0 < abs(values.analytic) <= values.tolerance  # what "blind" means
    assert "cannot tell" in cell_tooltip(values)  # the hover says the same of that cell
    assert "cannot tell" in model.index(r, 7).data(Qt.ItemDataRole.ToolTipRole)


def test_the_maps_are_dimmed_exactly_while_they_show_a_grid_of_another_shape(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """A shape change while a check already ran left the old grid undimmed; an undo and a cancel left the current
    grid dimmed."""
    view = window.heatmaps.analytic
    window.layout_docks.worst.raise_()  # the list in front (the summary's text is read behind it)
    qtbot.waitUntil(lambda: window.worst_cells.model.report is window.display.report, timeout=5000)
    window.recomputer.worker_threshold = 0  # every check in the worker
    with qtbot.waitSignal(window.recomputer.busyChanged, timeout=5000):
        window.controller.set_settings(eps=1e-3)  # a check is running...
    window.controller.resize(5, 6)  # ...when the shape changes
    assert view.title.endswith("(previous grid)") and view.image_item.opacity() < 1
    assert window.summary.toPlainText().startswith("The previous grid")  # the summary and the list say so too
    assert window.worst_cells.caption.text().startswith("The previous grid")
    qtbot.waitUntil(lambda: not window.recomputer.pending, timeout=10_000)
    assert view.title == "Analytic gradient" and view.image_item.opacity() == 1.0
    assert "previous grid" not in window.summary.toPlainText() + window.worst_cells.caption.text()
    with qtbot.waitSignal(window.recomputer.busyChanged, timeout=5000):
        window.controller.resize(4, 4)
    assert view.image_item.opacity() < 1
    window.undo_action.trigger()  # back to the shape on show...
    window.cancel_action.trigger()  # ...and the check cancelled
    assert window.state.shape == window.display.report.grad_analytic.shape
    assert view.title == "Analytic gradient" and view.image_item.opacity() == 1.0
