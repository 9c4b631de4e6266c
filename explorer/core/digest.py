"""What a report's summary says about the whole grid, kept per row so an edit updates it in O(rows x C).

The summary and the verdict need whole-grid facts: how many cells are blind and how much of
the gradient they hold, how many gradients are not finite, how many numeric gradients vanished
and why (lost step, underflowed p, noise floor), and the largest finite gradient (the maps'
colour range). Forming the (N, C) masks for them costs several bytes per cell and a pass over
the grid on every redraw. A :class:`RowDigest` holds each row's share of those facts (a few
numbers per row), computed in bounded row blocks; :meth:`RowDigest.totals` gives the grid's in
O(N), and :func:`refresh_rows` recomputes only edited rows.

The numbers are exactly those of the whole-grid masks (:attr:`Report.blind`,
:func:`~explorer.core.diagnose`): the same element-wise operations, on blocks of rows.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ._dtypes import quiet_if_nonfinite
from .diagnose import _rows_flags, min_surviving_eps
from .errors import _abs_err, _rel_err

if TYPE_CHECKING:
    from .report import Report

__all__ = ["RANGED_MAPS", "DigestTotals", "RowDigest", "digest", "refresh_rows"]

#: The maps whose finite value range the digest keeps.
RANGED_MAPS = ("abs_err", "rel_err", "tolerance")

#: Cells per block while a digest is formed (bounds the temporaries to a few MiB).
_BLOCK_ELEMENTS = 1 << 16
#: Key of the digest in a report's ``__dict__`` (like a cached property).
_CACHE_KEY = "_row_digest"


@dataclass(frozen=True)
class DigestTotals:
    """The whole grid's facts for the summary (see :class:`RowDigest`)."""

    blind: int
    blind_abs: float
    abs_total: float
    nonfinite: int
    overflowed_rows: int
    vanished: int
    lost: int
    lost_need: float
    lost_at: float
    underflow: int
    underflow_largest: float
    floor: int
    floor_largest: float
    extent: float
    ranges: dict[str, tuple[float, float]]

    @property
    def blind_share(self) -> float:
        """The share of the total |analytic gradient| held by blind cells (0 when the total is 0)."""
        return self.blind_abs / self.abs_total if self.abs_total > 0 else 0.0


@dataclass
class RowDigest:
    """Per-row facts of a report, each an array of length N.

    Attributes
    ----------
    blind : int array
        Cells whose tolerance is at least ``|analytic| > 0`` (:attr:`Report.blind`).
    blind_abs, abs_total : float arrays
        Sum of finite ``|analytic|`` over the blind cells, and over all cells.
    nonfinite : int array
        Cells with a non-finite analytic or numeric gradient.
    overflowed : bool array
        The row holds a non-finite logit.
    vanished, lost, underflow, floor : int arrays
        Cells whose numeric gradient is exactly 0 while the analytic one is not (finite), and among
        them those whose step was lost, whose p underflowed (step kept), or at the noise floor.
    lost_need, lost_at : float arrays
        Largest smallest-surviving step among the lost cells, and largest ``|x|`` there (0 when none).
    underflow_largest, floor_largest : float arrays
        Largest ``|analytic|`` among those cells (0 when none).
    extent : float array
        Largest finite ``|gradient|`` of either map (the maps' colour range).
    lows, highs : dict of float arrays
        Smallest and largest finite value of each map of :data:`RANGED_MAPS` (``inf`` / ``-inf`` when the row
        has none): the error maps' colour ranges.
    """

    blind: NDArray
    blind_abs: NDArray
    abs_total: NDArray
    nonfinite: NDArray
    overflowed: NDArray
    vanished: NDArray
    lost: NDArray
    lost_need: NDArray
    lost_at: NDArray
    underflow: NDArray
    underflow_largest: NDArray
    floor: NDArray
    floor_largest: NDArray
    extent: NDArray
    lows: dict[str, NDArray]
    highs: dict[str, NDArray]

    @classmethod
    def empty(cls, n: int) -> RowDigest:
        ints = {"blind", "nonfinite", "vanished", "lost", "underflow", "floor"}
        arrays: dict[str, Any] = {
            f.name: np.zeros(n, dtype=np.int64 if f.name in ints else bool if f.name == "overflowed" else np.float64)
            for f in fields(cls)
            if f.name not in ("lows", "highs")
        }
        return cls(**arrays, lows={k: np.full(n, np.inf) for k in RANGED_MAPS},
                   highs={k: np.full(n, -np.inf) for k in RANGED_MAPS})  # fmt: skip

    def copy(self) -> RowDigest:
        copies: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            copies[f.name] = {m: a.copy() for m, a in v.items()} if isinstance(v, dict) else v.copy()
        return RowDigest(**copies)

    def totals(self) -> DigestTotals:
        """The grid's numbers, O(N)."""

        def top(a: NDArray) -> float:
            return float(a.max()) if a.size else 0.0

        return DigestTotals(
            blind=int(self.blind.sum()),
            blind_abs=float(self.blind_abs.sum()),
            abs_total=float(self.abs_total.sum()),
            nonfinite=int(self.nonfinite.sum()),
            overflowed_rows=int(np.count_nonzero(self.overflowed)),
            vanished=int(self.vanished.sum()),
            lost=int(self.lost.sum()),
            lost_need=top(self.lost_need),
            lost_at=top(self.lost_at),
            underflow=int(self.underflow.sum()),
            underflow_largest=top(self.underflow_largest),
            floor=int(self.floor.sum()),
            floor_largest=top(self.floor_largest),
            extent=top(self.extent),
            ranges={k: _range(self.lows[k], self.highs[k]) for k in RANGED_MAPS},
        )


def _range(lows: NDArray, highs: NDArray) -> tuple[float, float]:
    """The smallest and largest finite value over the rows, (NaN, NaN) when there is none."""
    lo, hi = (float(lows.min()), float(highs.max())) if lows.size else (np.inf, -np.inf)
    return (lo, hi) if lo <= hi else (np.nan, np.nan)


def _largest(values: NDArray, mask: NDArray) -> NDArray:
    """Per row, the largest of ``values`` where ``mask`` holds (0 where it holds nowhere)."""
    return np.max(values, axis=1, initial=0.0, where=mask)


def _fill(d: RowDigest, report: Report, rows: slice) -> None:
    """The digest of ``rows`` of ``report`` (one block of rows; column pieces of it at a time, so a row of
    262,144 classes needs a few MiB of temporaries, not tens)."""
    s = report.settings
    x = report.logits[rows]
    with quiet_if_nonfinite(x):
        lost_all, under_all, overflow_all = _rows_flags(x, s.eps, s.scheme)  # row-wise (p needs the whole row)
    d.overflowed[rows] = overflow_all.any(axis=1)
    k = rows.stop - rows.start
    counts = ("blind", "nonfinite", "vanished", "lost", "underflow", "floor")
    acc = {name: np.zeros(k, dtype=np.int64) for name in counts}
    sums = {name: np.zeros(k) for name in ("blind_abs", "abs_total")}
    tops = {name: np.zeros(k) for name in ("lost_need", "lost_at", "underflow_largest", "floor_largest", "extent")}
    lows = {name: np.full(k, np.inf) for name in RANGED_MAPS}
    highs = {name: np.full(k, -np.inf) for name in RANGED_MAPS}
    c = x.shape[1]
    per = max(1, _BLOCK_ELEMENTS // max(k, 1))
    for c0 in range(0, c, per):
        cols = slice(c0, min(c, c0 + per))
        ana = report.grad_analytic[rows, cols].astype(np.float64)
        num = report.grad_numeric[rows, cols].astype(np.float64)
        tol = report.comparison.region("tolerance", rows, cols, report.grad_analytic)
        lost, under, overflow = lost_all[:, cols], under_all[:, cols], overflow_all[:, cols]
        a = np.abs(ana)
        finite_a = np.isfinite(a)
        finite_n = np.isfinite(num)
        all_finite = bool(finite_a.all() and finite_n.all())
        with np.errstate(invalid="ignore"):
            blind = (a > 0) & (tol >= a)
        acc["blind"] += np.count_nonzero(blind, axis=1)
        sums["blind_abs"] += np.sum(a, axis=1, where=blind if all_finite else blind & finite_a)
        sums["abs_total"] += np.sum(a, axis=1) if all_finite else np.sum(a, axis=1, where=finite_a)
        if all_finite:
            extent = np.maximum(np.max(a, axis=1, initial=0.0), np.max(np.abs(num), axis=1, initial=0.0))
        else:
            acc["nonfinite"] += np.count_nonzero(~finite_a | ~finite_n, axis=1)
            extent = np.maximum(np.max(a, axis=1, initial=0.0, where=finite_a),
                                np.max(np.abs(num), axis=1, initial=0.0, where=finite_n))  # fmt: skip
        tops["extent"] = np.maximum(tops["extent"], extent)
        vanished = (num == 0) & (ana != 0)
        if not all_finite:
            vanished &= finite_a & finite_n
        if vanished.any():  # rare: the causes only where a numeric gradient vanished
            acc["vanished"] += np.count_nonzero(vanished, axis=1)
            lost_v = vanished & lost
            acc["lost"] += np.count_nonzero(lost_v, axis=1)
            if lost_v.any():
                xc = x[:, cols]
                tops["lost_need"] = np.maximum(tops["lost_need"], _largest(min_surviving_eps(xc, s.scheme), lost_v))
                tops["lost_at"] = np.maximum(tops["lost_at"], _largest(np.abs(xc.astype(np.float64)), lost_v))
            under_v = vanished & under & ~lost
            acc["underflow"] += np.count_nonzero(under_v, axis=1)
            tops["underflow_largest"] = np.maximum(tops["underflow_largest"], _largest(a, under_v))
            floor_v = vanished & ~lost & ~under & ~overflow
            acc["floor"] += np.count_nonzero(floor_v, axis=1)
            tops["floor_largest"] = np.maximum(tops["floor_largest"], _largest(a, floor_v))
        err = _abs_err(num, ana)
        for name, values in (("abs_err", err), ("rel_err", _rel_err(err, num, ana)), ("tolerance", tol)):
            finite = None if all_finite and name != "tolerance" else np.isfinite(values)
            if finite is None:
                lows[name] = np.minimum(lows[name], np.min(values, axis=1, initial=np.inf))
                highs[name] = np.maximum(highs[name], np.max(values, axis=1, initial=-np.inf))
            else:
                lows[name] = np.minimum(lows[name], np.min(values, axis=1, initial=np.inf, where=finite))
                highs[name] = np.maximum(highs[name], np.max(values, axis=1, initial=-np.inf, where=finite))
    for table in (acc, sums, tops):
        for name, values in table.items():
            getattr(d, name)[rows] = values
    for name in RANGED_MAPS:
        d.lows[name][rows], d.highs[name][rows] = lows[name], highs[name]


def _blocks(rows: slice, c: int) -> list[slice]:
    per = max(1, _BLOCK_ELEMENTS // max(c, 1))
    return [slice(r, min(rows.stop, r + per)) for r in range(rows.start, rows.stop, per)]


def digest(report: Report) -> RowDigest:
    """The per-row digest of ``report``, formed on first use (O(N C), in row blocks) and kept with it.

    Examples
    --------
    >>> from explorer.core import CheckSettings, check_gradient
    >>> r = check_gradient(np.array([[120.0, 0.0, 1.0]]), np.array([1]), CheckSettings(dtype="float16", eps=1e-2))
    >>> digest(r).totals().lost
    1
    """
    cached = report.__dict__.get(_CACHE_KEY)
    if isinstance(cached, RowDigest):
        return cached
    n, c = report.grad_analytic.shape
    d = RowDigest.empty(n)
    for block in _blocks(slice(0, n), c):
        _fill(d, report, block)
    report.__dict__[_CACHE_KEY] = d
    return d


def refresh_rows(report: Report, base: RowDigest, spans: list[slice]) -> RowDigest:
    """A copy of ``base`` (the digest of a report that differs from ``report`` only in ``spans``) with those
    rows recomputed from ``report``, kept with ``report``: O(rows x C)."""
    d = base.copy()
    c = report.grad_analytic.shape[1]
    for span in spans:
        for block in _blocks(span, c):
            _fill(d, report, block)
    report.__dict__[_CACHE_KEY] = d
    return d
