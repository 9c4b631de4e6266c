"""Error versus eps: the V-curves of every scheme for a cell or the grid maximum, with the textbook model."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QCheckBox, QComboBox, QGridLayout, QLabel, QVBoxLayout, QWidget

from explorer.app.display import Display, DisplayChange
from explorer.app.state import Change, ExplorerState
from explorer.core import EPS_MAX, EPS_MIN, Sweep
from explorer.core.sweep import SweepResult
from explorer.gui.theme import LIGHT, Colors, readable, theme_manager
from explorer.gui.ticks import apply_tick_format, format_ticks

__all__ = ["SCHEME_COLORS", "SweepArtist", "SweepPanel", "free_spot", "log_ticks", "y_range"]

#: One colour per scheme (colour-blind safe, Okabe-Ito).
SCHEME_COLORS = {
    "forward": (230, 159, 0),
    "backward": (86, 180, 233),
    "central": (0, 114, 178),
    "central4": (0, 158, 115),
    "complex": (204, 121, 167),
}
DTYPE_STYLES = {"float16": Qt.PenStyle.DotLine, "bfloat16": Qt.PenStyle.DashDotLine, "float32": Qt.PenStyle.DashLine,
                "float64": Qt.PenStyle.SolidLine}  # fmt: skip
#: Lowest error drawn when a sweep has no positive error at all (every value an exact zero).
EMPTY_FLOOR = 1e-20
#: Pixels per tick label along a log axis (label width plus a gap), horizontal and vertical.
X_LABEL_PX, Y_LABEL_PX = 64, 28
#: Share of the data's range (log units) added at the ends of the axes.
RANGE_PAD = 0.02
#: Width of one legend entry (sample and name, px): the legend takes as many columns as fit.
LEGEND_ENTRY_PX = 112
#: Size assumed for a plot that is not laid out yet (exports draw before their layout runs).
FALLBACK_PLOT_PX = (420.0, 260.0)


def log_ticks(lo: float, hi: float, max_labels: int) -> list[list[tuple[float, str]]]:
    """Ticks of a log axis from ``lo`` to ``hi`` (log10 units): labelled decades, unlabelled minors.

    The lowest decade in range is always labelled (so 1e-20 is), then every ``k``-th decade with ``k``
    in 1, 2, 3, 5, 10 so at most ``max_labels`` labels show. Up to six decades also get unlabelled
    minor ticks at 2…9. A range under two decades labels 2× and 5× as well (1, 2, 5, 10, 20, …), and
    one under a decade labels every integer multiple, so a short axis still reads.

    Returns
    -------
    list
        ``[majors, minors]`` for :meth:`pyqtgraph.AxisItem.setTicks`, each a list of ``(log10 value, text)``.

    Examples
    --------
    >>> [t for _, t in log_ticks(-20.2, -0.9, 6)[0]]
    ['1e-20', '1e-15', '1e-10', '1e-05']
    >>> [t for _, t in log_ticks(-3.1, -1.6, 8)[0]]
    ['0.001', '0.002', '0.005', '0.01', '0.02']
    """
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        return [[], []]
    max_labels = max(2, max_labels)
    first, last = math.ceil(lo - 1e-9), math.floor(hi + 1e-9)
    decades = list(range(first, last + 1))
    span = hi - lo
    majors: list[float] = []
    minors: list[float] = []
    if span < 2:
        multiples = (1, 2, 5) if span >= 1 else (1, 2, 3, 4, 5, 6, 7, 8, 9)
        for d in range(math.floor(lo), math.ceil(hi) + 1):
            for m in range(1, 10):
                v = d + math.log10(m)
                if lo - 1e-9 <= v <= hi + 1e-9:
                    (majors if m in multiples else minors).append(v)
        if len(majors) > max_labels:  # a very short axis: decades and 5x only
            majors, extra = [v for v in majors if round(10 ** (v % 1)) in (1, 5)], majors
            minors += [v for v in extra if v not in majors]
    else:
        step = next((k for k in (1, 2, 3, 5, 10, 20, 50) if len(decades[::k]) <= max_labels), 100)
        majors = [float(d) for d in decades[::step]]
        minors = [float(d) for d in decades if float(d) not in majors]
        if span <= 6:
            for d in range(math.floor(lo), math.ceil(hi) + 1):
                minors += [d + math.log10(m) for m in range(2, 10) if lo <= d + math.log10(m) <= hi]
    labels = format_ticks(majors, log=True)
    return [list(zip(majors, labels, strict=True)), [(v, "") for v in sorted(minors)]]


def free_spot(size: tuple[float, float], candidates: list[tuple[float, float]], curves: list[tuple[np.ndarray,
              np.ndarray]], blocked: list[QRectF]) -> QRectF | None:  # fmt: skip
    """The first candidate top-left (pixels) where a box of ``size`` crosses no curve and no blocked rectangle.

    ``curves`` are polylines in pixels (x ascending; NaN breaks a line); a curve crosses the box when it
    passes between its top and bottom anywhere across its width (checked every pixel, with the curve
    interpolated between its points), so a steep segment through the box is caught too.
    """
    w, h = size
    for x, y in candidates:
        box = QRectF(x, y, w, h)
        if any(box.intersects(r) for r in blocked):
            continue
        xs = np.linspace(x - 1, x + w + 1, max(4, int(w) + 3))
        hit = False
        for cx, cy in curves:
            ok = np.isfinite(cx) & np.isfinite(cy)
            if ok.sum() < 2:
                continue
            px, py = cx[ok], cy[ok]
            inside_x = (xs >= px.min()) & (xs <= px.max())
            if not inside_x.any():
                continue
            ys = np.interp(xs[inside_x], px, py)
            # a gap (NaN) in the line: no segment is drawn there
            gaps = np.interp(xs[inside_x], cx[np.isfinite(cx)], np.where(ok, 0.0, 1.0)[np.isfinite(cx)]) > 0
            ys = ys[~gaps]
            if np.any((ys >= y - 1) & (ys <= y + h + 1)):
                hit = True
                break
            # a vertical jump between samples (a step from above the box to below it)
            if ys.size > 1 and np.any((np.minimum(ys[:-1], ys[1:]) < y) & (np.maximum(ys[:-1], ys[1:]) > y + h)):
                hit = True
                break
        if not hit:
            return box
    return None


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

        self.plot_widget = pg.PlotWidget(background=LIGHT.plot_background)
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
            # The end decades are labelled (1e-20 included); the layout margins leave room for them.
            plot.getAxis(axis).setStyle(hideOverlappingLabels=40)  # px a label may reach past its axis
        self.plot = plot
        plot.hideButtons()
        plot.layout.setContentsMargins(2, 8, 20, 2)  # room for the end tick labels of both axes
        self.eps_line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen(LIGHT.eps_line, width=2))
        self.eps_line.setToolTip("Current eps: drag to change it")
        self.eps_line.setBounds((math.log10(EPS_MIN), math.log10(EPS_MAX)))
        self.eps_line.sigPositionChangeFinished.connect(self._on_eps_line_moved)
        self.plot_widget.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self.artist = SweepArtist(plot)
        plot.getViewBox().sigResized.connect(self._on_view_box_resized)

        # Two rows, so the panel stays narrow on small screens.
        options = QGridLayout()
        options.setContentsMargins(0, 0, 0, 0)
        options.addWidget(self.mode_combo, 0, 0, 1, 2)
        options.addWidget(self.overlay_check, 1, 0)
        options.addWidget(self.model_check, 1, 1)
        options.setColumnStretch(2, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(options)
        layout.addWidget(self.plot_widget, 1)
        layout.addWidget(self.caption)
        state.changed.connect(self._on_state_changed)
        display.changed.connect(self._on_display_changed)
        manager = theme_manager()
        manager.changed.connect(self.apply_colors)
        self.apply_colors(manager.colors)

    def apply_colors(self, colors: Colors) -> None:
        """Restyle the plot for a colour scheme."""
        self.plot_widget.setBackground(colors.plot_background)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(colors.plot_foreground)
            axis.setTextPen(colors.plot_foreground)
        self.eps_line.setPen(pg.mkPen(colors.eps_line, width=2))
        self.artist.apply_colors(colors)
        if self.result is not None:
            self._redraw()

    def _on_view_box_resized(self, *_args: object) -> None:
        self.artist.relayout()

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
        shown = self.display.sweep
        if change.sweep or change.source or (change.cell and shown is not None and shown.user):
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
        here = math.log10(settings.eps)  # an eps beyond the usual range moves the line's range with it
        self.eps_line.setBounds((min(math.log10(EPS_MIN), here), max(math.log10(EPS_MAX), here)))
        self.eps_line.setValue(here)
        result = self.result
        if result is None:
            self.artist.clear()
            return
        # The textbook lines belong to the built-in loss; they are not drawn over the user's own curves.
        self.artist.draw(result, settings.scheme, self.model_check.isChecked() and not result.user, eps=settings.eps)
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
            selected = self.display.cell
            if selected is not None and result.cell is not None and tuple(selected) != tuple(result.cell):
                where += (f" (your code was swept at this cell when you checked it; press Check my code again "
                          f"to sweep sample {selected[0]}, class {selected[1]})")  # fmt: skip
        background = self.caption.palette().color(self.caption.backgroundRole())
        colors = {n: readable(SCHEME_COLORS[n], background).name() for n in main.errors}
        names = " ".join(
            f"<b style='color:{colors[n]}'>{'▶' if n == settings.scheme else ''}{n}</b>" for n in main.errors
        )
        styles = {"float16": "dotted", "bfloat16": "dash-dotted", "float32": "dashed", "float64": "solid"}
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

    The axes get decade ticks (:func:`log_ticks`), a legend sits in a band kept free above the
    curves, and the two hints ("rounding dominates", "truncation dominates") go where no curve, no
    model line and no eps line crosses them (:func:`free_spot`), or are left out.
    """

    def __init__(self, plot: pg.PlotItem, colors: Colors = LIGHT, legend: bool = True):
        self.plot = plot
        self.colors = colors
        self.show_legend = legend
        self._items: dict[tuple, object] = {}
        self._used: set[tuple] = set()
        self.legend: pg.LegendItem | None = None
        self._layout_args: tuple | None = None
        self._proxies: dict[tuple, object] = {}

    def apply_colors(self, colors: Colors) -> None:
        self.colors = colors
        for key in (("hint-left",), ("hint-right",)):
            item = self._items.get(key)
            if item is not None:
                item.setColor(colors.hint)  # type: ignore[attr-defined]
        if self.legend is not None:
            self.legend.setLabelTextColor(colors.plot_foreground)
            self.legend.setBrush(_with_alpha(colors.plot_background, 220))
            self.legend.setPen(_with_alpha(colors.plot_foreground, 90))

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
        if self.legend is not None:
            self.legend.clear()
            self.legend.setVisible(False)
        self._layout_args = None

    def _entry(self, name: str, *, pen: object = None, symbol: str | None = None, **style: object) -> None:
        """A legend entry drawn by a stand-in item (never added to the plot), so the legend neither
        shows nor toggles the plot's own items."""
        key = (name, symbol)
        proxy = self._proxies.get(key)
        if proxy is None:
            proxy = pg.PlotDataItem()
            self._proxies[key] = proxy
        if symbol is None:
            proxy.setData([], [], pen=pen)  # type: ignore[attr-defined]
        else:
            proxy.setData([], [], pen=None, symbol=symbol, **style)  # type: ignore[attr-defined]
        assert self.legend is not None
        self.legend.addItem(proxy, name)

    def _legend(self) -> pg.LegendItem:
        if self.legend is None:
            if not self.show_legend:  # a figure with its own key: an unparented legend that is never shown
                self.legend = pg.LegendItem()
                return self.legend
            self.legend = pg.LegendItem(offset=(4, 2), colCount=4, labelTextSize="8pt", horSpacing=6, verSpacing=-4)
            self.legend.setParentItem(self.plot.getViewBox())
            self.legend.setObjectName("sweepLegend")  # type: ignore[attr-defined]
            self.legend.setZValue(20)
            self.apply_colors(self.colors)
        return self.legend

    def draw(self, result: SweepResult, scheme: str, show_model: bool = True, eps: float | None = None) -> None:
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

        legend = self._legend()
        legend.clear()
        legend.setVisible(self.show_legend)
        current_name = scheme if scheme in main.errors else next(iter(main.errors))
        for name, errs in main.errors.items():
            current = name == current_name
            color = SCHEME_COLORS[name]
            pen = pg.mkPen(color, width=3 if current else 1.5)
            self._line(("curve", result.dtype, name), main.eps, curve(errs), pen)
            self._entry(f"▶ {name}" if current else name, pen=pen)
            best = main.measured_best_eps[name], main.measured_best_err[name]
            key, label = (("measuredBest",), "measuredBest") if current else (("best", name), "")
            if inside(*best):
                self._point(key, best[0], best[1], label, symbol="o", size=10, brush=pg.mkBrush(color),
                            pen=pg.mkPen(self.colors.plot_foreground, width=1))  # fmt: skip
            if current and np.any(errs == 0):
                zero_eps = main.eps[errs == 0]
                self._points(("zeros", name), zero_eps, np.full(zero_eps.shape, lo), symbol="t", size=9,
                             brush=pg.mkBrush(color), pen=None)  # fmt: skip
            if show_model and current and name in main.models:
                model = main.models[name]
                faint = pg.mkPen((*color, 150), width=1, style=Qt.PenStyle.DashLine)
                self._line(("trunc", name), main.eps, model_line(model.truncation(main.eps)), faint, "finite")
                self._line(("round", name), main.eps, model_line(model.rounding(main.eps)), faint, "finite")
                self._entry("model", pen=faint)
                if inside(model.best_eps, model.best_err):
                    self._point(("predictedBest",), model.best_eps, model.best_err, "predictedBest", symbol="star",
                                size=16, brush=pg.mkBrush(255, 255, 255, 0), pen=pg.mkPen(color, width=2))  # fmt: skip
                    self._entry("predicted best", symbol="star", symbolSize=12, symbolBrush=None,
                                symbolPen=pg.mkPen(color, width=2))  # fmt: skip
            if current and ("measuredBest",) in self._used:
                self._entry("measured best", symbol="o", symbolSize=9, symbolBrush=pg.mkBrush(color),
                            symbolPen=pg.mkPen(self.colors.plot_foreground, width=1))  # fmt: skip
        for dtype, sweep in result.sweeps.items():
            if dtype == result.dtype:
                continue
            for name, errs in sweep.errors.items():
                pen = pg.mkPen(SCHEME_COLORS[name], width=2, style=DTYPE_STYLES.get(dtype, Qt.PenStyle.DashDotLine))
                self._line(("curve", dtype, name), sweep.eps, curve(errs), pen)
                self._entry(f"{name} {dtype}", pen=pen)
        hints = show_model and scheme in main.models
        if hints:
            for hint, text in (("hint-left", "← rounding dominates"), ("hint-right", "truncation dominates →")):
                self._get((hint,), lambda t=text: pg.TextItem(t, color=self.colors.hint, anchor=(0, 0)))
        for key, item in self._items.items():
            if key not in self._used:
                item.setVisible(False)  # type: ignore[attr-defined]
        self._layout_args = (math.log10(x_lo), math.log10(x_hi), math.log10(lo), math.log10(hi), eps, hints)
        self.relayout()

    def _plot_px(self) -> tuple[float, float]:
        vb = self.plot.getViewBox()
        w, h = vb.width(), vb.height()
        if w < 50 or h < 50:
            return FALLBACK_PLOT_PX
        return w, h

    def relayout(self) -> None:
        """Ranges, ticks, the legend band and the hints for the plot's current size (after a resize too)."""
        if self._layout_args is None:
            return
        x0, x1, y0, y1, eps, hints = self._layout_args
        # A margin around the data, so markers at the ends (★ near the largest eps, ▼ at the floor) show whole.
        x_pad, y_pad = (x1 - x0) * RANGE_PAD, (y1 - y0) * RANGE_PAD
        x0, x1, y0 = x0 - x_pad, x1 + x_pad, y0 - y_pad
        width, height = self._plot_px()
        band = 0.0
        legend = self.legend
        if legend is not None and self.show_legend:
            entries = len(legend.items)
            columns = max(1, min(entries, int((width - 8) // LEGEND_ENTRY_PX)))
            if columns != legend.columnCount:
                legend.setColumnCount(columns)
            legend.updateSize()
            band = legend.boundingRect().height() + 4
            # A plot too short for its legend and its curves shows the curves (the caption names the schemes).
            legend.setVisible(band <= height * 0.4)
            band = band if legend.isVisible() else 0.0
        y_top = y1 + (y1 - y0) * band / max(height - band, 1.0)
        self.plot.setYRange(y0, y_top, padding=0)
        self.plot.setXRange(x0, x1, padding=0)
        self.plot.getAxis("bottom").setTicks(log_ticks(x0, x1, int(width // X_LABEL_PX)))
        # Errors are labelled where the curves can be, not in the legend's band above them.
        self.plot.getAxis("left").setTicks(log_ticks(y0, y1, int((height - band) // Y_LABEL_PX)))
        if hints:
            self._place_hints(x0, x1, y0, y_top, width, height, band, eps)

    def _place_hints(self, x0: float, x1: float, y0: float, y1: float, width: float, height: float, band: float,
                     eps: float | None) -> None:  # fmt: skip
        def to_px(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return (x - x0) / (x1 - x0) * width, (y1 - y) / (y1 - y0) * height

        curves = []
        for key, item in self._items.items():
            if key in self._used and isinstance(item, pg.PlotDataItem):
                xd, yd = item.getData()  # log10 units (the plot is in log mode)
                if xd is not None and yd is not None and len(xd):
                    order = np.argsort(xd)
                    curves.append(to_px(np.asarray(xd, float)[order], np.asarray(yd, float)[order]))
        for key, item in self._items.items():
            if key in self._used and isinstance(item, pg.ScatterPlotItem):
                xd, yd = item.getData()
                for xp, yp in zip(*to_px(np.asarray(xd, float), np.asarray(yd, float)), strict=True):
                    curves.append((np.array([xp - 8, xp + 8]), np.array([yp, yp])))
        blocked = [QRectF(0, 0, width, band)]  # the legend's band
        if eps is not None and eps > 0:
            ex = (math.log10(eps) - x0) / (x1 - x0) * width
            blocked.append(QRectF(ex - 3, 0, 6, height))
        rows = [band + 2 + k * 14.0 for k in range(int(max(0.0, height - band - 40) // 14) + 1)]
        placed: list[QRectF] = []
        for key, from_left in ((("hint-left",), True), (("hint-right",), False)):
            item = self._items[key]
            size = _text_size(item)  # type: ignore[arg-type]
            xs = [4 + k * 12.0 for k in range(int(max(0.0, width - size[0] - 8) // 12) + 1)]
            if not from_left:
                xs = [width - size[0] - x + 4 for x in xs]
            xs = xs[: max(1, len(xs) // 2)]  # each hint in its own half: it names the side it is on
            spot = free_spot(size, [(x, y) for y in rows for x in xs], curves, blocked + placed)
            item.setVisible(spot is not None)  # type: ignore[attr-defined]
            if spot is not None:
                placed.append(spot)
                lx = x0 + spot.x() / width * (x1 - x0)
                ly = y1 - spot.y() / height * (y1 - y0)
                item.setPos(lx, ly)  # type: ignore[attr-defined]

    def hint_rect(self, key: str) -> QRectF | None:
        """Scene rectangle of a hint ("hint-left" or "hint-right") when it is shown (tests)."""
        item = self._items.get((key,))
        if item is None or not item.isVisible():  # type: ignore[attr-defined]
            return None
        return item.sceneBoundingRect()  # type: ignore[attr-defined]


def _text_size(item: pg.TextItem) -> tuple[float, float]:
    rect = item.textItem.boundingRect()
    if rect.width() > 0:
        return rect.width(), rect.height()
    metrics = QFontMetricsF(item.textItem.font())
    return metrics.horizontalAdvance(item.toPlainText()) + 8, metrics.height() + 4


def _with_alpha(color: object, alpha: int) -> object:
    c = pg.mkColor(color)
    c.setAlpha(alpha)
    return c


def draw_sweep(plot: pg.PlotItem, result: SweepResult, scheme: str, show_model: bool = True) -> SweepArtist:
    """Draw a sweep on a plot once (figures for export: they carry their own key below the plot)."""
    artist = SweepArtist(plot, legend=False)
    artist.draw(result, scheme, show_model)
    return artist
