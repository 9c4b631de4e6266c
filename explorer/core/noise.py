r"""A verdict that knows its own noise: the expected error of each numeric gradient element.

A finite difference of a correct gradient is off by truncation (the step is not 0), by
the rounding of the step (:math:`\mathrm{fl}(x + h) \ne x + h`), by the rounding of the
values it differences, and by the rounding of the results to the dtype. This module
bounds each of these per element, from the logits, the scheme, the step, the dtype and
the evaluate mode; the "noise" verdict passes an element when
:math:`|g_n - g_a| \le K E + \text{floor}`, with :data:`NOISE_MULTIPLE` :math:`K`.

For a black box (the user's own loss) :func:`estimate_noise` estimates the error from the
evaluations themselves: two steps (Richardson) and the size of the loss values seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ._dtypes import as_float_array, quiet_if_nonfinite, resolve_dtype, round_to, unit_roundoff, work_dtype
from .losses import LossTerms, loss_terms
from .numeric import BLOCK_ELEMENTS, loss_sum_parts
from .schemes import Scheme, get_scheme

__all__ = [
    "NOISE_MULTIPLE",
    "NoiseParts",
    "estimate_noise",
    "expected_error",
    "noise_floor",
    "noise_tolerance",
    "ulp",
]

#: The stated multiple: an element passes when ``|num - ana| <= NOISE_MULTIPLE * expected error + floor``.
#: The expected error adds worst cases of each rounding, so a correct gradient stays well inside it;
#: the multiple covers what the model leaves out (a library ``exp`` or ``log`` off by a few ulp).
NOISE_MULTIPLE = 3.0

#: How many roundings at the size of the loss a black-box loss is assumed to make per evaluation
#: (the sum over rows, the mean, the log-sum-exp); see :func:`estimate_noise`.
BLACK_BOX_ROUNDINGS = 4.0


def _finfo(dtype: np.dtype) -> tuple[int, float]:
    """``(nmant, smallest subnormal)`` of a floating dtype (ml_dtypes included)."""
    try:
        fi = np.finfo(dtype)
    except ValueError:
        import ml_dtypes

        fi = ml_dtypes.finfo(dtype)
    return int(fi.nmant), float(fi.smallest_subnormal)


def ulp(values: ArrayLike, dtype: DTypeLike) -> NDArray:
    r"""The spacing of ``dtype`` at ``|values|`` (one unit in the last place), as float64.

    Works for float16, bfloat16, float32 and float64 from float64 values, also beyond the
    dtype's range (no conversion): :math:`2^{e - 1 - \text{nmant}}` with :math:`|v| = m 2^e`,
    :math:`m \in [1/2, 1)`, at least the smallest subnormal.

    Examples
    --------
    >>> ulp([1.0, 3.0], "float16").tolist()
    [0.0009765625, 0.001953125]
    >>> float(ulp(1.0, "bfloat16"))
    0.0078125
    """
    nmant, tiny = _finfo(resolve_dtype(dtype))  # type: ignore[arg-type]
    v = np.abs(np.asarray(values, dtype=np.float64))
    _, e = np.frexp(v)
    return np.maximum(np.ldexp(1.0, e - 1 - nmant), tiny)


def noise_floor(dtype: DTypeLike) -> float:
    """The small floor added to every noise tolerance: the smallest normal number of the dtype.

    It only matters where the expected error is 0 (both gradients exactly 0, e.g. an ignored row).

    Examples
    --------
    >>> noise_floor("float16")
    6.103515625e-05
    """
    dt = resolve_dtype(dtype)  # type: ignore[arg-type]
    try:
        return float(np.finfo(dt).tiny)
    except ValueError:
        import ml_dtypes

        return float(ml_dtypes.finfo(dt).tiny)


def noise_tolerance(expected: ArrayLike, dtype: DTypeLike, multiple: float = NOISE_MULTIPLE) -> NDArray:
    r"""The per-element tolerance of the "noise" verdict: :math:`K E + \text{floor}` (float64).

    NaN (the element fails) where :math:`E` is not finite.

    Examples
    --------
    >>> noise_tolerance([0.0, 1e-6], "float64").tolist()
    [2.2250738585072014e-308, 3e-06]
    """
    e = np.asarray(expected, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        tol = e * float(multiple) + noise_floor(dtype)
    # An expected error that is not finite (a step beyond all reason) decides nothing: the element fails.
    return np.where(np.isfinite(tol), tol, np.nan)


@dataclass(frozen=True)
class NoiseParts:
    """The expected error of numeric gradient elements, by source (float64 arrays, one shape).

    Attributes
    ----------
    truncation : ndarray
        :math:`c\\, h^p \\max |f^{(p+1)}|` over the stencil's interval (exact derivatives).
    step : ndarray
        From the perturbed points actually taken:
        :math:`\\max|f'| \\sum |w_k| |\\mathrm{fl}(x + o_k h) - x - o_k h| / (d h)`.
    rounding : ndarray
        From rounding the values differenced (row losses, or the whole loss with its sum and
        mean), the quotient's own arithmetic and the analytic gradient's.
    storage : ndarray
        Rounding the numeric and analytic gradients to the dtype (half an ulp each).
    """

    truncation: NDArray
    step: NDArray
    rounding: NDArray
    storage: NDArray

    @property
    def total(self) -> NDArray:
        """The expected error :math:`E` (the sum of the parts)."""
        return self.truncation + self.step + self.rounding + self.storage


@cache
def _p_derivative(order: int) -> tuple[np.polynomial.Polynomial, tuple[float, ...]]:
    """The ``order``-th derivative of ``p = softmax_j`` along its own logit, as a polynomial in p.

    Returns the polynomial and its critical points in (0, 1), where ``|g|`` may peak.
    """
    p = np.polynomial.Polynomial([0.0, 1.0])
    g = p
    for _ in range(order):
        g = g.deriv() * p * (1 - p)  # d/dt g(p) = g'(p) p (1 - p)
    roots = np.asarray(g.deriv().roots(), dtype=np.complex128)
    crit = tuple(float(r.real) for r in roots if abs(r.imag) < 1e-12 and 0.0 < float(r.real) < 1.0)
    return g, crit


def _p_derivative_abs(order: int, p: NDArray) -> NDArray:
    """``|g(p)|`` of :func:`_p_derivative` in a few passes (the factored forms, not Horner's rule)."""
    pq = p * (1.0 - p)
    if order == 1:
        return pq
    if order == 2:
        return np.abs(pq * (1.0 - 2.0 * p))
    if order == 4:
        return np.abs(pq * (1.0 - 2.0 * p) * (1.0 - 12.0 * pq))
    return np.abs(_p_derivative(order)[0](p))


def _truncation_coef(sch: Scheme) -> float:
    """Taylor-remainder constant: ``sum |w| |o|^(p+1) / ((p+1)! divisor)`` (1/6 for the complex step)."""
    if sch.is_complex:
        return 1.0 / 6.0
    p = sch.order
    return sum(abs(w) * abs(o) ** (p + 1) for o, w in sch.stencil) / (math.factorial(p + 1) * sch.divisor)


def noise_block(
    x: NDArray, terms: LossTerms, rows: slice, scheme: str | Scheme, eps: float, whole_sum: float | None = None
) -> NoiseParts:
    r"""The expected error of every element of a block of rows (the one implementation).

    Parameters
    ----------
    x : ndarray (n, C)
        The rows' logits in the check's dtype.
    terms : LossTerms
        Loss terms holding these rows at ``rows`` (the denominator is the batch's).
    rows : slice
    scheme : str or Scheme
    eps : float
    whole_sum : float, optional
        For ``evaluate="loss"``: the sum of all row losses :math:`T` (the whole loss times
        :math:`D`); the values differenced are then whole losses, rounded at its size.

    Returns
    -------
    NoiseParts

    Notes
    -----
    Row-separable: one row alone gives the same bits as in a block. With
    :math:`p_{lo}, p_{hi}` the range of :math:`p_{ij}` while :math:`x_{ij}` moves by up to
    :math:`T = \max|o| h`, :math:`G = \max |A p - a| / D` over that range, the parts are:

    * truncation: :math:`c_t h^p A \max |p^{(p)}| / D`, the maximum over :math:`[p_{lo}, p_{hi}]`
      of the exact polynomial in p (its ends and critical points);
    * step: :math:`G \sum |w_k| |\delta_k| / (d h)` with :math:`\delta_k` the rounding of the point;
    * rounding: :math:`\sum |w_k| \rho / (d h D)`, each row loss off by
      :math:`\rho = u_w (A (1 + 2 |\log S'| + p_{hi} (3 + |z| + T)) + 2 |\ell'| + |a| T)`
      plus half an ulp of the dtype when it is narrower than the working precision; whole
      losses add half an ulp of the sum (and of the mean) in both precisions; plus
      :math:`u_w (4 + \log_2 C) G` for the quotient's own arithmetic;
    * storage: half an ulp of the dtype at :math:`G + E` (the numeric value) and at
      :math:`G` (the analytic value), plus the analytic formula's :math:`u_w (A p (4 + |z|) + |a|) / D`.
    """
    sch = get_scheme(scheme)
    h = float(eps)
    storage = x.dtype
    work = work_dtype(storage)
    narrow = storage != work
    uw = unit_roundoff(work)
    n, c = x.shape
    d = terms.denom
    if d == 0.0 or n == 0:  # every row ignored: both gradients are exactly 0
        zero = np.zeros((n, c))
        return NoiseParts(zero, zero, zero, zero)
    xs = x.astype(np.float64)
    m = np.max(xs, axis=1, keepdims=True)
    z = xs - m
    e = np.exp(z)
    s = np.sum(e, axis=1, keepdims=True)
    big_a = terms.total[rows][:, None].astype(np.float64)
    a = terms.coefficients(rows).astype(np.float64)
    log_s = np.log(s)
    ell = big_a * log_s - np.sum(a * z, axis=1, keepdims=True)
    reach = (max(abs(o) for o in sch.offsets) if sch.offsets else 1.0) * h
    # p(t) = r e^t / (1 + r e^t) with the odds r = e / (S - e) (inf where the row is that one logit).
    grow = math.exp(min(reach, 700.0))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        odds = e / (s - e)
        up, down = odds * grow, odds / grow
        p_hi = np.where(np.isinf(up), 1.0, up / (1.0 + up))
        p_lo = np.where(np.isinf(down), 1.0, down / (1.0 + down))
    slope = np.maximum(np.abs(big_a * p_lo - a), np.abs(big_a * p_hi - a)) / d  # G = max |f'|
    # Truncation: the exact derivative polynomial's largest |value| over [p_lo, p_hi].
    g, crit = _p_derivative(sch.order)
    peak = np.maximum(_p_derivative_abs(sch.order, p_lo), _p_derivative_abs(sch.order, p_hi))
    for cp in crit:
        inside = (p_lo < cp) & (cp < p_hi)
        np.maximum(peak, inside * abs(float(g(cp))), out=peak)
    with np.errstate(over="ignore", invalid="ignore"):  # a huge step: an infinite truncation error
        truncation = _truncation_coef(sch) * np.float64(h) ** sch.order * big_a * peak / d
    # The values differenced.
    moved = np.abs(ell) + reach * slope * d  # |l'| at most
    if sch.is_complex:
        step = np.zeros_like(xs)
        rounding = 3.0 * uw * (big_a * p_hi * (1.0 + np.abs(z)) + np.abs(a)) / d
    else:
        xw = x.astype(work)
        moved_points = np.zeros_like(xs)
        for o, w in sch.stencil:
            if o != 0.0:
                xp = round_to(xw + o * h, storage).astype(np.float64)
                moved_points += abs(w) * np.abs(xp - xs - o * h)
        step = slope * moved_points / (sch.divisor * h)
        rho = uw * (big_a * (1.0 + 2.0 * (np.abs(log_s) + reach) + p_hi * (3.0 + np.abs(z) + reach)))
        rho = rho + uw * (2.0 * moved + np.abs(a) * reach)
        if narrow:
            rho = rho + 0.5 * ulp(moved, storage)
        weights = sum(abs(w) for w in sch.weights)
        # Summing the stencil: differences of +-1-weighted neighbours are exact (Sterbenz); central4's
        # -v + 8 v' rounds once at about 7 |v|.
        formation = 0.0 if all(abs(w) == 1.0 for w in sch.weights) else 0.5 * weights * uw
        if whole_sum is None:
            rho = rho + formation * moved
            rounding = weights * rho / (sch.divisor * h * d)
        else:
            total = abs(float(whole_sum)) + moved  # the sum R + l', rounded in both precisions
            rho = rho + 0.5 * ulp(total, work)
            if narrow:
                rho = rho + 0.5 * ulp(total, storage)
            rho = rho / d
            value = total / d
            if terms.reduction == "mean" and d != 1.0:  # the mean's division, rounded again
                rho = rho + 0.5 * ulp(value, work)
                if narrow:
                    rho = rho + 0.5 * ulp(value, storage)
            rho = rho + formation * value
            rounding = weights * rho / (sch.divisor * h)
    # Gradual underflow: an exp (or e sin h) below the normal range is off by up to the smallest subnormal.
    tiny_w = _finfo(work)[1]
    weights_h = (2.0 if sch.is_complex else sum(abs(w) for w in sch.weights) / sch.divisor) / h
    rounding = rounding + tiny_w * weights_h * big_a / d
    rounding = rounding + uw * (4.0 + math.log2(max(c, 1))) * slope
    rounding = rounding + uw * (big_a * p_hi * (4.0 + np.abs(z)) + np.abs(a)) / d  # the analytic formula
    pre = truncation + step + rounding
    stored = 0.5 * ulp(slope + pre, storage) + 0.5 * ulp(slope, storage)
    return NoiseParts(truncation, step, rounding, stored)


def expected_error(
    logits: ArrayLike,
    labels: ArrayLike,
    scheme: str,
    eps: float,
    *,
    evaluate: str = "row",
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> NDArray:
    r"""The expected error :math:`E` of every element of the numeric gradient, shape (N, C), float64.

    Parameters
    ----------
    logits : array_like, shape (N, C)
        In the check's dtype (its dtype is the dtype of the check).
    labels : array_like
    scheme : str
    eps : float
    evaluate : {"row", "loss"}
        What the quotients difference (see :func:`~explorer.core.cross_entropy_numeric_grad`).
    weight, ignore_index, reduction, label_smoothing
        As in :func:`~explorer.core.cross_entropy`.

    Returns
    -------
    ndarray (N, C)
        Truncation + step + rounding + storage, see :func:`noise_block`; NaN in rows
        holding a non-finite logit.

    Examples
    --------
    >>> x = np.array([[1.0, 2.0, 3.0]])
    >>> e = expected_error(x, np.array([0]), "central", 1e-5)
    >>> bool(np.all(e < 1e-9)), bool(np.all(e > 0))
    (True, True)
    """
    x = as_float_array(logits, "logits")
    terms = loss_terms(x.shape, labels, weight, ignore_index, reduction, label_smoothing)
    with quiet_if_nonfinite(x):
        whole = loss_sum_parts(x, terms)[1] if evaluate == "loss" else None
        return expected_error_map(x, terms, scheme, eps, whole)


def expected_error_map(
    x: NDArray, terms: LossTerms, scheme: str, eps: float, whole_sum: float | None = None
) -> NDArray:
    """:func:`expected_error` from prepared terms, in blocks of rows."""
    n, c = x.shape
    out = np.empty((n, c), dtype=np.float64)
    rows_per_block = max(1, BLOCK_ELEMENTS // max(c, 1))
    for r0 in range(0, n, rows_per_block):
        rows = slice(r0, min(n, r0 + rows_per_block))
        out[rows] = noise_block(x[rows], terms, rows, scheme, eps, whole_sum).total
    return out


def estimate_noise(
    grad_h: ArrayLike,
    grad_2h: ArrayLike,
    eps: float,
    loss_abs: ArrayLike,
    scheme: str = "central",
    dtype: DTypeLike = "float64",
    eps_2: float | None = None,
) -> NDArray:
    r"""Expected error of a black-box numeric gradient, from the evaluations themselves.

    For the user's own loss nothing is known but what it returned: the numeric gradient
    at two steps and the size of the loss values seen.

    Parameters
    ----------
    grad_h : array_like
        The numeric gradient at step ``eps`` (the one checked).
    grad_2h : array_like, same shape
        The numeric gradient at step ``eps_2`` (default ``2 * eps``), same scheme.
    eps : float
    loss_abs : float or array_like broadcasting to the gradient
        The largest ``|loss|`` among the values differenced (per element, or one number).
    scheme : str
    dtype : dtype-like
        The dtype the loss was evaluated in.
    eps_2 : float, optional

    Returns
    -------
    ndarray, float64, shape of ``grad_h``
        :math:`E = |g_h - g_{2h}| / (r^p - 1) + R + \tfrac12 \mathrm{ulp}(|g_h|)`, with
        :math:`r = \text{eps\_2} / \text{eps}`: Richardson's estimate of the truncation at
        ``eps``, plus the rounding of the loss values,
        :math:`R = k \sum |w| u |f| / (d h)` with :math:`k` = :data:`BLACK_BOX_ROUNDINGS`
        (a loss rounds at its own size a few times: the sum, the mean, the log-sum-exp),
        for the complex step :math:`3 u |g_h|`. NaN where an estimate is NaN (the
        element fails). Pass :math:`E` to :func:`noise_tolerance` for the verdict.

    Examples
    --------
    >>> g1, g2 = np.array([1.0 + 1e-10]), np.array([1.0 + 4e-10])   # central: error ~ h^2
    >>> float(estimate_noise(g1, g2, 1e-5, 1.0)[0]) > 1e-10
    True
    """
    sch = get_scheme(scheme)
    h = float(eps)
    h2 = 2.0 * h if eps_2 is None else float(eps_2)
    if not (h > 0 and h2 > 0 and h2 != h and math.isfinite(h) and math.isfinite(h2)):
        raise ValueError(f"two different finite steps > 0 are needed, got {eps!r} and {eps_2!r}")
    dt = resolve_dtype(dtype)  # type: ignore[arg-type]
    u = unit_roundoff(work_dtype(dt))
    g1 = np.asarray(grad_h, dtype=np.float64)
    g2 = np.asarray(grad_2h, dtype=np.float64)
    if g1.shape != g2.shape:
        raise ValueError(f"shapes differ: {g1.shape} vs {g2.shape}")
    ratio = abs((h2 / h) ** sch.order - 1.0)
    with np.errstate(invalid="ignore", over="ignore"):
        truncation = np.abs(g1 - g2) / ratio
        f = np.abs(np.asarray(loss_abs, dtype=np.float64))
        if sch.is_complex:
            rounding = 3.0 * u * np.abs(g1)
        else:
            weights = sum(abs(w) for w in sch.weights)
            per_value = BLACK_BOX_ROUNDINGS * u * f + (0.5 * ulp(f, dt) if dt != work_dtype(dt) else 0.0)
            rounding = weights * per_value / (sch.divisor * h)
        return truncation + rounding + 0.5 * ulp(g1, dt) + np.zeros_like(g1)
