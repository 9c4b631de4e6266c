"""Why a numeric gradient element is off: the step was lost, p underflowed, or the row overflowed.

The app phrases these; the core only classifies, element by element, with the same
roundings the finite differences make.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._dtypes import as_float_array, quiet_if_nonfinite, round_to, work_dtype
from .schemes import get_scheme

if TYPE_CHECKING:
    from .report import Report

__all__ = ["CellFlags", "cell_flags", "diagnose", "min_surviving_eps"]

#: Rows per block when classifying a large grid, so temporaries stay a few MiB.
_BLOCK_ELEMENTS = 1 << 20


@dataclass(frozen=True)
class CellFlags:
    r"""Per-element causes of a numeric gradient that is 0 or NaN, as boolean masks (N, C).

    Attributes
    ----------
    step_lost : ndarray of bool
        The scheme's perturbed points all round to the same value in the dtype, so the
        difference is exactly 0: :math:`\mathrm{fl}(x + h) = x` (forward),
        :math:`\mathrm{fl}(x - h) = x` (backward), :math:`\mathrm{fl}(x + h) = \mathrm{fl}(x - h)`
        (central), :math:`\mathrm{fl}(x + 2h) = \mathrm{fl}(x - 2h)` (central4); for the
        complex step, ``h`` itself is 0 in the working precision. Finite logits only.
    p_underflow : ndarray of bool
        :math:`p_{ij}` (``exp(x - m) / S`` in working precision) rounds to 0 in the
        dtype, in a finite row: the change of the loss is lost whatever the step.
    row_overflow : ndarray of bool
        The row holds an infinite or NaN logit (a value beyond float16's range becomes
        inf): its gradients are NaN.
    noise_floor : ndarray of bool
        The numeric gradient is exactly 0 where the analytic one is not, for none of the
        reasons above: the loss change is below the rounding of the loss (the noise floor).
        All False when the maps were not given.
    min_eps : ndarray of float64
        The remedy: the spacing of the dtype at :math:`|x|` (one unit in the last place),
        the smallest step certain to survive rounding at that logit in either direction;
        for the complex step, the smallest positive step the working precision holds.
    """

    step_lost: NDArray
    p_underflow: NDArray
    row_overflow: NDArray
    noise_floor: NDArray
    min_eps: NDArray

    def at(self, cell: tuple[int, int]) -> dict[str, bool | float]:
        """The flags of one element as plain Python values."""
        i, j = cell
        return {
            "step_lost": bool(self.step_lost[i, j]),
            "p_underflow": bool(self.p_underflow[i, j]),
            "row_overflow": bool(self.row_overflow[i, j]),
            "noise_floor": bool(self.noise_floor[i, j]),
            "min_eps": float(self.min_eps[i, j]),
        }


def min_surviving_eps(logits: ArrayLike, scheme: str = "central") -> NDArray:
    r"""The smallest step that is certain to survive rounding at each logit.

    Parameters
    ----------
    logits : array_like, shape (...)
        In the dtype of the check (float16, bfloat16, float32, float64).
    scheme : str
        For ``"complex"`` the step is never added to ``x``; the answer is the smallest
        positive number of the working precision (the imaginary part must not be 0).

    Returns
    -------
    ndarray of float64, shape of ``logits``
        :math:`\mathrm{spacing}(|x|)` in the dtype (NaN for non-finite logits).

    Notes
    -----
    Both neighbours of :math:`x` lie within :math:`\mathrm{spacing}(|x|)`, so
    :math:`\mathrm{fl}(x \pm h) \ne x` for every :math:`h \ge \mathrm{spacing}(|x|)`.

    Examples
    --------
    >>> min_surviving_eps(np.array([120.0, 1.0], dtype=np.float16))
    array([0.0625    , 0.00097656])
    """
    x = as_float_array(logits, "logits")
    if get_scheme(scheme).is_complex:
        tiny = np.finfo(work_dtype(x.dtype)).smallest_subnormal
        return np.full(x.shape, float(tiny))
    with np.errstate(invalid="ignore", over="ignore"):  # the largest finite value: its spacing overflows
        return np.abs(np.spacing(np.abs(x))).astype(np.float64)


def _rows_flags(x: NDArray, eps: float, scheme: str) -> tuple[NDArray, NDArray, NDArray]:
    """``(step_lost, p_underflow, row_overflow)`` for a block of rows in the storage dtype."""
    sch = get_scheme(scheme)
    storage = x.dtype
    work = work_dtype(storage)
    xw = x.astype(work)
    finite = np.isfinite(xw)
    row_overflow = np.broadcast_to(~np.all(finite, axis=1, keepdims=True), x.shape)

    def moved(offset: float) -> NDArray:
        # As the finite difference forms the point: x + o h in working precision, rounded to the dtype.
        if offset == 0.0:
            return xw
        return round_to(xw + offset * eps, storage)

    if sch.is_complex:
        lost = np.full(x.shape, bool(np.asarray(eps, dtype=np.float64).astype(work) == 0))
    else:
        lost = moved(max(sch.offsets)) == moved(min(sch.offsets))
    step_lost = lost & finite
    m = np.max(xw, axis=1, keepdims=True)
    e = np.exp(xw - m)
    p = e / np.sum(e, axis=1, keepdims=True)
    p_underflow = (p.astype(storage) == 0) & ~row_overflow
    return step_lost, p_underflow, np.array(row_overflow)


def cell_flags(
    logits: ArrayLike,
    eps: float,
    scheme: str,
    grad_numeric: ArrayLike | None = None,
    grad_analytic: ArrayLike | None = None,
) -> CellFlags:
    r"""Classify every element of a check: lost step, underflowed p, overflowed row, noise floor.

    Parameters
    ----------
    logits : array_like, shape (N, C)
        In the dtype of the check.
    eps : float
    scheme : str
    grad_numeric, grad_analytic : array_like, shape (N, C), optional
        The check's maps, for :attr:`CellFlags.noise_floor`.

    Returns
    -------
    CellFlags

    Notes
    -----
    Rows are classified independently (O(C) per row, in blocks). A numeric gradient of
    exactly 0 with a non-zero analytic one has one of three causes: the step was lost
    (:math:`x + h` rounds to :math:`x`; remedy: a step of at least
    :attr:`CellFlags.min_eps`), :math:`p_{ij}` underflowed (no step helps), or the
    change :math:`\approx A_i p_{ij} h` is below the loss's rounding (the noise floor).

    Examples
    --------
    >>> f = cell_flags(np.array([[120.0, 0.0]], dtype=np.float16), 1e-3, "central")
    >>> f.step_lost.tolist(), f.p_underflow.tolist(), f.min_eps[0, 0]
    ([[True, False]], [[False, True]], np.float64(0.0625))
    """
    x = as_float_array(logits, "logits")
    if x.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got shape {x.shape}")
    n, c = x.shape
    step_lost = np.zeros((n, c), dtype=bool)
    p_underflow = np.zeros((n, c), dtype=bool)
    row_overflow = np.zeros((n, c), dtype=bool)
    rows_per_block = max(1, _BLOCK_ELEMENTS // max(c, 1))
    with quiet_if_nonfinite(x):
        for r0 in range(0, n, rows_per_block):
            rows = slice(r0, min(n, r0 + rows_per_block))
            step_lost[rows], p_underflow[rows], row_overflow[rows] = _rows_flags(x[rows], eps, scheme)
    if grad_numeric is None or grad_analytic is None:
        noise_floor = np.zeros((n, c), dtype=bool)
    else:
        num, ana = np.asarray(grad_numeric), np.asarray(grad_analytic)
        noise_floor = (num == 0) & (ana != 0) & ~step_lost & ~p_underflow & ~row_overflow
    return CellFlags(step_lost, p_underflow, row_overflow, noise_floor, min_surviving_eps(x, scheme))


def diagnose(report: Report) -> CellFlags:
    """:func:`cell_flags` of a report (its logits, settings and maps); also :attr:`Report.cell_flags`.

    Examples
    --------
    >>> from explorer.core import CheckSettings, check_gradient
    >>> r = check_gradient(np.array([[120.0, 0.0, 1.0]]), np.array([1]), CheckSettings(dtype="float16", eps=1e-2))
    >>> diagnose(r).step_lost[0].tolist()
    [True, False, False]
    """
    s = report.settings
    return cell_flags(report.logits, s.eps, s.scheme, report.grad_numeric, report.grad_analytic)
