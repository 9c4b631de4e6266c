"""One tick-label format for every axis, on screen and in exports.

The rule, per axis (so labels side by side never mix styles):

* plain decimals with a common number of places when every tick lies in
  ``[1e-3, 1e4)`` in magnitude (or is 0): ``-1.0  -0.5  0.0  0.5  1.0``;
* otherwise every tick in Python's ``%g`` scientific form, mantissa trimmed:
  ``1e-20  1e-15  1e-10  1e-05  1e+00`` or ``0  5e-11  1e-10  1.5e-10``.

Log axes (pyqtgraph passes log10 of the value) follow the same rule on the values
themselves, so ``10⁻⁶`` and ``0.0001`` never share an axis. Use :func:`apply_tick_format`
on an existing axis, or :class:`TickAxis` where an axis is created.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import pyqtgraph as pg

__all__ = ["DECIMAL_RANGE", "TickAxis", "apply_tick_format", "format_ticks"]

#: Magnitudes written as plain decimals; an axis with any tick outside goes scientific.
DECIMAL_RANGE = (1e-3, 1e4)


def _sci(value: float, decimals: int) -> str:
    text = f"{value:.{max(0, decimals)}e}"
    mantissa, exponent = text.split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{exponent}"


def _spacing_digits(spacing: float) -> tuple[int, int]:
    """Exponent of ``spacing`` and the decimals its mantissa needs (2.5e-11 -> (-11, 1))."""
    exp = math.floor(math.log10(spacing))
    mantissa = spacing / 10.0**exp
    extra = 0
    while extra < 3 and abs(round(mantissa, extra) - mantissa) > 1e-9 * mantissa:
        extra += 1
    return exp, extra


def format_ticks(values: Sequence[float], spacing: float | None = None, log: bool = False) -> list[str]:
    """Tick labels for ``values`` in the one format (see the module docstring).

    Parameters
    ----------
    values : sequence of float
        Tick positions; on a log axis their log10 (as pyqtgraph passes them).
    spacing : float, optional
        Distance between ticks (in the same units as ``values``); guessed from them if omitted.
    log : bool
        The values are log10 of the labelled numbers.

    Returns
    -------
    list of str

    Examples
    --------
    >>> format_ticks([-1.0, -0.5, 0.0, 0.5, 1.0], 0.5)
    ['-1.0', '-0.5', '0.0', '0.5', '1.0']
    >>> format_ticks([-20, -15, -10, -5, 0], 5, log=True)
    ['1e-20', '1e-15', '1e-10', '1e-05', '1e+00']
    >>> format_ticks([-3, -2, -1, 0], 1, log=True)
    ['0.001', '0.01', '0.1', '1']
    >>> format_ticks([0.0, 5e-11, 1e-10, 1.5e-10], 5e-11)
    ['0', '5e-11', '1e-10', '1.5e-10']
    """
    vals = [float(v) for v in values]
    if not vals:
        return []
    if log:
        numbers = [10.0**v if math.isfinite(v) else math.nan for v in vals]
        finite = [v for v in numbers if math.isfinite(v) and v > 0]
        decimal = bool(finite) and all(DECIMAL_RANGE[0] <= v < DECIMAL_RANGE[1] for v in finite)
        out = []
        for v in numbers:
            if not math.isfinite(v):
                out.append("")
            elif decimal:
                places = max(0, -math.floor(math.log10(v) + 1e-9))
                out.append(f"{v:.{places}f}")
            else:
                out.append(_sci(v, 3 if abs(round(math.log10(v)) - math.log10(v)) > 1e-9 else 0))
        return out
    if spacing is None or not (math.isfinite(spacing) and spacing > 0):
        diffs = sorted({abs(b - a) for a, b in itertools.pairwise(vals) if b != a})
        spacing = diffs[0] if diffs else (abs(vals[0]) or 1.0)
    nonzero = [abs(v) for v in vals if v != 0 and math.isfinite(v)]
    decimal = all(DECIMAL_RANGE[0] <= v < DECIMAL_RANGE[1] for v in nonzero) and spacing >= DECIMAL_RANGE[0] / 10
    if decimal:
        places = max(0, math.ceil(-math.log10(spacing) - 1e-9))
        return [f"{v:.{places}f}" if math.isfinite(v) else "" for v in vals]
    sp_exp, sp_extra = _spacing_digits(spacing)
    out = []
    for v in vals:
        if not math.isfinite(v):
            out.append("")
        elif abs(v) < spacing * 1e-6:
            out.append("0")
        else:
            out.append(_sci(v, math.floor(math.log10(abs(v))) - sp_exp + sp_extra))
    return out


def _tick_strings(axis: pg.AxisItem, values: list[float], scale: float, spacing: float) -> list[str]:
    if axis.logMode:
        return format_ticks(values, spacing, log=True)
    # pyqtgraph 0.14 passes an SI-prefix factor in ``scale`` even with the prefix off and no units
    # to show it in; the labels carry the magnitude themselves, so only the axis's own scale counts.
    own = float(getattr(axis, "scale", 1.0) or 1.0)
    return format_ticks([v * own for v in values], spacing * own)


def apply_tick_format(axis: pg.AxisItem) -> pg.AxisItem:
    """Give an existing axis the one tick format (its SI prefix is turned off: the labels carry the scale)."""
    axis.enableAutoSIPrefix(False)
    axis.tickStrings = lambda values, scale, spacing: _tick_strings(axis, values, scale, spacing)  # type: ignore[method-assign]
    axis.picture = None
    axis.update()
    return axis


class TickAxis(pg.AxisItem):
    """A pyqtgraph axis with the one tick format (pass it in ``axisItems=`` when a plot is created)."""

    def __init__(self, orientation: str, **kwargs: object) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return _tick_strings(self, values, scale, spacing)
