"""The error-versus-eps panel in the real window: follows edits, picks eps by clicking, modes, dtype overlay."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QLineEdit

from explorer.app.jobs import report_matches_state
from explorer.core import DTYPE_NAMES, SCHEME_NAMES, check_gradient
from explorer.gui import MainWindow


def _wait_sweep(qtbot, w: MainWindow, predicate=lambda r: True) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(
        lambda: w.sweeper.result is not None and not w.sweeper.busy and predicate(w.sweeper.result), timeout=20000
    )


def test_sweep_plot_shows_every_scheme_for_the_selected_cell(qtbot, window: MainWindow) -> None:
    plot = window.findChild(pg.PlotWidget, "sweepPlot")
    assert plot is not None
    window.grid.select_cell(1, 4)
    _wait_sweep(qtbot, window, lambda r: r.cell == (1, 4))
    result = window.sweeper.result
    assert set(result.sweeps[result.dtype].errors) == set(SCHEME_NAMES)
    assert len(result.sweeps[result.dtype].eps) >= 60
    curves = [it for it in plot.getPlotItem().items if isinstance(it, pg.PlotDataItem)]
    assert len(curves) >= len(SCHEME_NAMES)


def test_clicking_the_plot_sets_eps_and_the_heatmaps_follow(qtbot, window: MainWindow) -> None:
    _wait_sweep(qtbot, window)
    plot = window.findChild(pg.PlotWidget, "sweepPlot")
    vb = plot.getPlotItem().getViewBox()
    y_mid = sum(vb.viewRange()[1]) / 2
    pos = plot.mapFromScene(vb.mapViewToScene(QPointF(-3.0, y_mid)))
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    eps = window.state.settings.eps
    assert math.log10(eps) == pytest.approx(-3.0, abs=0.05)
    assert window.findChild(QLineEdit, "epsEdit").text() == f"{eps:g}"
    assert window.report.settings.eps == eps
    expected = check_gradient(*window.state.snapshot())
    np.testing.assert_array_equal(window.heatmaps.numeric.image_item.image, expected.grad_numeric)
    assert window.controller.stack.canUndo()  # picking eps is undoable like any edit


def test_sweep_follows_edits(qtbot, window: MainWindow) -> None:
    window.grid.select_cell(0, 0)
    _wait_sweep(qtbot, window, lambda r: r.cell == (0, 0))
    before = window.sweeper.result.sweeps["float64"].errors["central"].copy()
    window.grid.logits_model.setData(window.grid.logits_model.index(0, 0), "97.5")
    _wait_sweep(qtbot, window, lambda r: not np.array_equal(r.sweeps["float64"].errors["central"], before))


def test_grid_mode_runs_in_the_worker_and_overlay_shows_every_dtype(qtbot, window: MainWindow) -> None:
    panel = window.sweep_panel
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("grid"))
    _wait_sweep(qtbot, window, lambda r: r.mode == "grid")
    assert window.sweeper.result.cell is None
    panel.overlay_check.setChecked(True)
    _wait_sweep(qtbot, window, lambda r: r.overlay and set(r.sweeps) == set(DTYPE_NAMES))
    result = window.sweeper.result
    assert list(result.sweeps["float16"].errors) == [window.state.settings.scheme]
    assert "float16" in panel.caption.text()


def test_a_new_eps_moves_the_line_and_puts_the_step_on_the_cell_curve(qtbot, window: MainWindow) -> None:
    _wait_sweep(qtbot, window)
    window.controller.set_settings(eps=3.7e-4)
    qtbot.waitUntil(lambda: report_matches_state(window.report, window.state), timeout=5000)
    _wait_sweep(qtbot, window, lambda r: r.eps == 3.7e-4)
    assert window.sweep_panel.eps_line.value() == pytest.approx(np.log10(3.7e-4))
    sweep = window.sweeper.result.sweeps["float64"]
    assert 3.7e-4 in sweep.eps  # the current step is on the grid, so the curve passes through the map's value


def test_in_grid_mode_a_new_eps_only_moves_the_line(qtbot, window: MainWindow) -> None:
    window.sweep_panel.mode_combo.setCurrentIndex(window.sweep_panel.mode_combo.findData("grid"))
    _wait_sweep(qtbot, window, lambda r: r.mode == "grid")
    first = window.sweeper.result
    window.controller.set_settings(eps=1e-3)
    qtbot.waitUntil(lambda: report_matches_state(window.report, window.state), timeout=5000)
    qtbot.waitUntil(lambda: not window.sweeper.pending, timeout=5000)
    assert window.sweeper.result is first
    assert window.sweep_panel.eps_line.value() == pytest.approx(-3.0)
