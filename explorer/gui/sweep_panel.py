"""Error versus eps: the V-curves of every scheme for a cell or the grid maximum, with the textbook model."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from explorer.app.display import Display, DisplayChange
from explorer.app.state import Change, ExplorerState
from explorer.core import EPS_MAX, EPS_MIN, Sweep
from explorer.core.sweep import SweepResult
from explorer.gui.ticks import apply_tick_format

__all__ = ["SCHEME_COLORS", "SweepArtist", "SweepPanel", "y_range"]

#: One colour per scheme (colour-blind safe, Okabe-Ito).
SCHEME_COLORS = {
    "forward": (230, 159, 0),
    "backward": (86, 180, 233),
    "central": (0, 114, 178),
    "central4": (0, 158, 115),
    "complex": (204, 121, 167),
}
DTYPE_STYLES = {"float16": Qt.PenStyle.DotLine, "float32": Qt.PenStyle.DashLine, "float64": Qt.PenStyle.SolidLine}
#: Lowest error drawn when a sweep has no positive error at all (every value an exact zero).
EMPTY_FLOOR = 1e-20


def y_range(result: SweepResult, scheme: str) -> tuple[float, float]:
    """The plotted error range ``(lo, hi)``: a decade below the smallest positive error (and the predicted
    best error) to a decade above the largest. Exact zeros are drawn at ``lo``, below every real error."""
    values = [e for sw in result.sweeps.values() for e in sw.errors.values()]
    measured = np.concatenate(values) if values else np.zeros(0)
    extra = []
    main = result.sweeps.get(result.dtype)
    if main is not None and scheme in main.models:
        extra.append(main.models[scheme].best_err)
    allv = np.concatenate([measured, np.asarray(extra, dtype=np.float64)])
    positive = allv[np.isfinite(allv) & (allv > 0)]
    if not positive.size:
        return EMPTY_FLOOR, 1.0
    return float(positive.min()) / 10, float(positive.max()) * 10


class SweepPanel(QWidget):
    """The error-versus-eps plot (``sweepPlot``), its options, and eps picking.

    Signals
    -------
    epsPicked(float)
        The user clicked the plot or dragged the eps line.
    modeChanged(str), overlayChanged(bool)
    """

    epsPicked = Signal(float)
    modeChanged = Signal(str)
    overlayChanged = Signal(bool)

    def __init__(self, state: ExplorerState, display: Display, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.display = display
        self.mode_combo = QComboBox(objectName="sweepModeCombo")
        self.mode_combo.addItem("Selected cell", "cell")
        self.mode_combo.addItem("Maximum over the grid", "grid")
        self.mode_combo.setToolTip(
            "Sweep one element, or the largest error over the whole grid (computed in the background)"
        )
        self.mode_combo.currentIndexChanged.connect(self._on_mode_combo_changed)
        self.overlay_check = QCheckBox("Compare dtypes", objectName="dtypeOverlayCheck")
        self.overlay_check.setToolTip("The current scheme in float16, float32 and float64 together")
        self.overlay_check.toggled.connect(self.overlayChanged)
        self.model_check = QCheckBox("Textbook model", objectName="modelCheck", checked=True)
        self.model_check.setToolTip("Truncation (slope p) and rounding (slope −1) lines, predicted best eps (★)")
        self.model_check.toggled.connect(self._redraw)
        self.caption = QLabel(objectName="sweepCaption")
        self.caption.setWordWrap(True)

        self.plot_widget = pg.PlotWidget(background="w")
        self.plot_widget.setObjectName("sweepPlot")  # PlotWidget passes keyword arguments to its PlotItem
        self.plot_widget.setToolTip("Click or drag the vertical line to set eps everywhere")
        plot = self.plot_widget.getPlotItem()
        plot.setLogMode(x=True, y=True)
        plot.setLabel("bottom", "eps")
        plot.setLabel("left", "|numeric − analytic|")
        plot.setMenuEnabled(False)
        plot.getViewBox().setMouseEnabled(x=False, y=False)
        for axis in ("left", "bottom"):
            apply_tick_format(plot.getAxis(axis))  # one tick format on screen and in exports; no SI prefix
        self.plot = plot
        self.eps_line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen((200, 30, 30), width=2))
        self.eps_line.setToolTip("Current eps: drag to change it")
        self.eps_line.setBounds((math.log10(EPS_MIN), math.log10(EPS_MAX)))
        self.eps_line.sigPositionChangeFinished.connect(self._on_eps_line_moved)
        self.plot_widget.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self.artist = SweepArtist(plot)

        options = QHBoxLayout()
        options.addWidget(self.mode_combo)
        options.addWidget(self.overlay_check)
        options.addWidget(self.model_check)
        options.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(options)
        layout.addWidget(self.plot_widget, 1)
        layout.addWidget(self.caption)
        state.changed.connect(self._on_state_changed)
        display.changed.connect(self._on_display_changed)

    @property
    def result(self) -> SweepResult | None:
        """The curves on show: the display model's sweep."""
        return self.display.sweep

    # ----------------------------------------------------------------- input
    @property
    def mode(self) -> str:
        return str(self.mode_combo.currentData())

    def _on_mode_combo_changed(self, _index: int) -> None:
        self.modeChanged.emit(self.mode)

    def _on_state_changed(self, change: Change) -> None:
        if change.settings & {"eps", "scheme"}:
            self._redraw()

    def _on_display_changed(self, change: DisplayChange) -> None:
        if change.sweep or change.source:
            self._redraw()

    def _pick(self, log_eps: float) -> None:
        eps = 10.0 ** min(max(log_eps, math.log10(EPS_MIN)), math.log10(EPS_MAX))
        self.epsPicked.emit(float(f"{eps:.3g}"))

    def _on_eps_line_moved(self, line: pg.InfiniteLine) -> None:
        self._pick(float(line.value()))

    def _on_scene_clicked(self, event: object) -> None:
        if getattr(event, "button", lambda: None)() != Qt.MouseButton.LeftButton:
            return
        pos: QPointF = event.scenePos()  # type: ignore[attr-defined]
        vb = self.plot.getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            return
        self._pick(vb.mapSceneToView(pos).x())

    # ------------------------------------------------------------------ draw
    def _redraw(self) -> None:
        if self.eps_line.scene() is None:
            self.plot.addItem(self.eps_line, ignoreBounds=True)
        settings = self.state.settings
        self.eps_line.setValue(math.log10(settings.eps))
        result = self.result
        if result is None:
            self.artist.clear()
            return
        # The textbook lines belong to the built-in loss; they are not drawn over the user's own curves.
        self.artist.draw(result, settings.scheme, self.model_check.isChecked() and not result.user)
        self.caption.setText(self._caption(result, result.sweeps[result.dtype]))

    def _caption(self, result: SweepResult, main: Sweep) -> str:
        settings = self.state.settings
        where = (
            "maximum over the grid"
            if result.mode == "grid" or result.cell is None
            else (f"sample {result.cell[0]}, class {result.cell[1]}")
        )
        if result.user:
            where = f"{self.display.source_name}, {where}"
        names = " ".join(
            f"<b style='color:rgb{SCHEME_COLORS[n]}'>{'▶' if n == settings.scheme else ''}{n}</b>" for n in main.errors
        )
        styles = {"float16": "dotted", "float32": "dashed", "float64": "solid"}
        overlay = (
            " Other dtypes: " + ", ".join(f"{d} {styles.get(d, '')}" for d in result.sweeps if d != result.dtype) + "."
            if len(result.sweeps) > 1
            else ""
        )
        scheme = settings.scheme if settings.scheme in main.errors else next(iter(main.errors))
        measured = main.measured_best_eps[scheme]
        zeros = " ▼ marks an exact zero (drawn at the bottom edge)." if np.any(main.errors[scheme] == 0) else ""
        if result.user:
            best = f"{scheme}: measured best eps {measured:.1e} (●)."
        else:
            model = main.models[scheme]
            best = (
                f"{scheme}: predicted best eps {model.best_eps:.1e} (★, error {model.best_err:.1e}), "
                f"measured {measured:.1e} (●)."
            )
        return f"{names}<br>{where}, {result.dtype}.{overlay} {best}{zeros}"


class SweepArtist:
    """Draws a sweep on a log-log PlotItem, reusing its items between results (creating pyqtgraph
    items is what costs time, so a redraw only updates data and hides what is not needed).

    Data are clipped to the visible range here, not only by the view, because vector
    exporters (Qt's SVG generator) do not honour the view's clipping.
    """

    def __init__(self, plot: pg.PlotItem):
        self.plot = plot
        self._items: dict[tuple, object] = {}
        self._used: set[tuple] = set()

    def _get(self, key: tuple, factory: object) -> object:
        item = self._items.get(key)
        if item is None:
            item = factory()  # type: ignore[operator]
            self.plot.addItem(item)
            self._items[key] = item
        item.setVisible(True)  # type: ignore[attr-defined]
        self._used.add(key)
        return item

    def _line(self, key: tuple, x: np.ndarray, y: np.ndarray, pen: object, connect: str = "all") -> None:
        item = self._get(key, pg.PlotDataItem)
        item.setData(x, y, pen=pen, connect=connect)  # type: ignore[attr-defined]

    def _point(self, key: tuple, x: float, y: float, name: str = "", **style: object) -> None:
        """A marker at data coordinates (eps, error). Scatter items ignore the plot's log mode, so the
        position is given in log10 units, where the axes draw it."""
        item = self._get(key, pg.ScatterPlotItem)
        if name:
            item.setObjectName(name)  # type: ignore[attr-defined]
        item.setData([math.log10(x)], [math.log10(y)], **style)  # type: ignore[attr-defined]

    def _points(self, key: tuple, x: np.ndarray, y: np.ndarray, **style: object) -> None:
        item = self._get(key, pg.ScatterPlotItem)
        item.setData(np.log10(x), np.log10(y), **style)  # type: ignore[attr-defined]

    def item(self, key: tuple) -> object | None:
        """A drawn item by key (tests), or None."""
        return self._items.get(key)

    def clear(self) -> None:
        for item in self._items.values():
            item.setVisible(False)  # type: ignore[attr-defined]

    def draw(self, result: SweepResult, scheme: str, show_model: bool = True) -> None:
        self._used = set()
        main = result.sweeps[result.dtype]
        lo, hi = y_range(result, scheme)
        x_lo, x_hi = float(main.eps.min()), float(main.eps.max())

        def curve(values: np.ndarray) -> np.ndarray:
            return np.clip(np.where(values > 0, values, lo), lo, hi)

        def model_line(values: np.ndarray) -> np.ndarray:
            return np.where((values >= lo) & (values <= hi), values, np.nan)

        def inside(x: float, y: float) -> bool:
            return bool(np.isfinite(x) and np.isfinite(y) and x_lo <= x <= x_hi and lo <= y <= hi)

        current_name = scheme if scheme in main.errors else next(iter(main.errors))
        for name, errs in main.errors.items():
            current = name == current_name
            color = SCHEME_COLORS[name]
            pen = pg.mkPen(color, width=3 if current else 1.5)
            self._line(("curve", result.dtype, name), main.eps, curve(errs), pen)
            best = main.measured_best_eps[name], main.measured_best_err[name]
            key, label = (("measuredBest",), "measuredBest") if current else (("best", name), "")
            if inside(*best):
                self._point(key, best[0], best[1], label, symbol="o", size=10, brush=pg.mkBrush(color),
                            pen=pg.mkPen("k", width=1))  # fmt: skip
            if current and np.any(errs == 0):
                zero_eps = main.eps[errs == 0]
                self._points(("zeros", name), zero_eps, np.full(zero_eps.shape, lo), symbol="t", size=9,
                             brush=pg.mkBrush(color), pen=None)  # fmt: skip
            if show_model and current and name in main.models:
                model = main.models[name]
                faint = pg.mkPen((*color, 110), width=1, style=Qt.PenStyle.DashLine)
                self._line(("trunc", name), main.eps, model_line(model.truncation(main.eps)), faint, "finite")
                self._line(("round", name), main.eps, model_line(model.rounding(main.eps)), faint, "finite")
                if inside(model.best_eps, model.best_err):
                    self._point(("predictedBest",), model.best_eps, model.best_err, "predictedBest", symbol="star",
                                size=16, brush=pg.mkBrush(255, 255, 255, 0), pen=pg.mkPen(color, width=2))  # fmt: skip
        for dtype, sweep in result.sweeps.items():
            if dtype == result.dtype:
                continue
            for name, errs in sweep.errors.items():
                pen = pg.mkPen(SCHEME_COLORS[name], width=2, style=DTYPE_STYLES.get(dtype, Qt.PenStyle.DashDotLine))
                self._line(("curve", dtype, name), sweep.eps, curve(errs), pen)
        if show_model and scheme in main.models:
            # Left of the V rounding dominates, right of it truncation: say so at the two top corners.
            y = math.log10(hi) - 0.3
            left, right = math.log10(x_lo), math.log10(x_hi)
            for hint, text, anchor, x in (("hint-left", "← rounding dominates", (0, 0), left + 0.3),
                                          ("hint-right", "truncation dominates →", (1, 0), right - 0.1)):  # fmt: skip
                item = self._get((hint,), lambda t=text, a=anchor: pg.TextItem(t, color=(90, 90, 90), anchor=a))
                item.setPos(x, y)  # type: ignore[attr-defined]
        for key, item in self._items.items():
            if key not in self._used:
                item.setVisible(False)  # type: ignore[attr-defined]
        self.plot.setYRange(math.log10(lo), math.log10(hi), padding=0.02)
        self.plot.setXRange(math.log10(x_lo), math.log10(x_hi), padding=0.01)


def draw_sweep(plot: pg.PlotItem, result: SweepResult, scheme: str, show_model: bool = True) -> SweepArtist:
    """Draw a sweep on a plot once (figures for export)."""
    artist = SweepArtist(plot)
    artist.draw(result, scheme, show_model)
    return artist
