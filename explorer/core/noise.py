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
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ._dtypes import as_float_array, quiet_if_nonfinite, resolve_dtype, round_to, unit_roundoff, work_dtype
from .errors import tolerance_from_expected
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


@cache
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


def expected_dtype(dtype: DTypeLike) -> np.dtype:
    """The dtype a map of expected errors is kept in for a check in ``dtype``: float32 below float64.

    The expected error is an estimate good to a few digits; float32 keeps 7 and halves the map of a
    large half- or single-precision grid. Every view and the verdict read the kept values.

    Examples
    --------
    >>> expected_dtype("float16"), expected_dtype("float64")
    (dtype('float32'), dtype('float64'))
    """
    return np.dtype(np.float64) if np.dtype(dtype).itemsize >= 8 else np.dtype(np.float32)


def noise_tolerance(expected: ArrayLike, dtype: DTypeLike, multiple: float = NOISE_MULTIPLE) -> NDArray:
    r"""The per-element tolerance of the "noise" verdict: :math:`K E + \text{floor}` (float64).

    NaN (the element fails) where :math:`E` is not finite.

    Examples
    --------
    >>> noise_tolerance([0.0, 1e-6], "float64").tolist()
    [2.2250738585072014e-308, 3e-06]
    """
    return tolerance_from_expected(np.asarray(expected, dtype=np.float64), float(multiple), noise_floor(dtype))


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


@cache
def _critical_values(order: int) -> list[tuple[float, float]]:
    """``(p, |g(p)|)`` at the critical points of :func:`_p_derivative`'s polynomial, as the literal form has them."""
    g, crit = _p_derivative(order)
    return [(cp, abs(float(g(cp)))) for cp in crit]


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


#: Elements per chunk of the element-wise pass of the error model: its temporaries stay in the CPU cache.
_CHUNK = 16384

_EXP_BITS = np.int64(0x7FF0000000000000)


def _ulp_into(values: NDArray, dtype: np.dtype) -> NDArray:
    """:func:`ulp` of float64 ``values`` (any sign), bit for bit, from their exponent bits.

    A mask, a subtraction and a maximum on the integer view instead of ``frexp`` and
    ``ldexp``; when zeros, subnormals, infinities or NaN (``frexp``'s exponent 0) or
    results below the normal range occur, :func:`ulp` itself.
    """
    nmant, tiny = _finfo(dtype)
    bits = np.bitwise_and(values.view(np.int64), _EXP_BITS)
    if bits.size == 0 or int(bits.min()) < ((nmant + 1) << 52) or int(bits.max()) == int(_EXP_BITS):
        return ulp(values, dtype)
    bits -= np.int64(nmant << 52)
    np.maximum(bits, np.float64(tiny).view(np.int64), out=bits)
    return bits.view(np.float64)


class NoiseRows:
    r"""The error model of a block of rows, prepared once: :func:`noise_block` for any columns.

    Preparing reads the rows once (O(n C): the shift, ``exp``, the row sums and the row
    losses); :meth:`parts` then gives the parts of any columns and :meth:`total_into` the
    expected error of every element, in chunks that stay in the CPU cache. The element-wise
    work is the same sequence of roundings whichever columns are asked for, so one cell
    (the inspector) finds the map's bits.

    Parameters
    ----------
    x : ndarray (n, C)
        The rows' logits in the check's dtype.
    terms : LossTerms
        Loss terms holding these rows at ``rows``.
    rows : slice
    scheme : str or Scheme
    eps : float
    whole_sum : float, optional
        As in :func:`noise_block`.
    """

    def __init__(
        self, x: NDArray, terms: LossTerms, rows: slice, scheme: str | Scheme, eps: float,
        whole_sum: float | None = None,
    ) -> None:  # fmt: skip
        self.sch = sch = get_scheme(scheme)
        self.h = h = float(eps)
        self.x = x
        self.storage = storage = x.dtype
        self.work = work = work_dtype(storage)
        self.narrow = storage != work
        self.uw = unit_roundoff(work)
        self.n, self.c = n, _ = x.shape
        self.terms, self.rows = terms, rows
        self.d = d = terms.denom
        self.whole_sum = whole_sum
        self.empty = d == 0.0 or n == 0  # every row ignored: both gradients are exactly 0
        self.reach = (max(abs(o) for o in sch.offsets) if sch.offsets else 1.0) * h
        self.grow = math.exp(min(self.reach, 700.0))
        self.tiny_w = _finfo(work)[1]
        if self.empty:
            return
        z = x.astype(np.float64)
        self.m = m = np.max(z, axis=1, keepdims=True)
        np.subtract(z, m, out=z)
        self.z = z
        self.e = e = np.exp(z)
        self.s = np.sum(e, axis=1, keepdims=True)
        self.big_a = terms.total[rows][:, None].astype(np.float64)
        self.log_s = np.log(self.s)
        # Class-index targets without smoothing: a is 0 except at the target (one column per row).
        self.sparse = terms.dense is None and not np.any(terms.smooth)
        self.target = terms.target[rows] if self.sparse else None
        self.ell = self.big_a * self.log_s - self._u()

    def _u(self) -> NDArray:
        r""":math:`U_i = \sum_c a_{ic} z_{ic}`, (n, 1), the row sums the error model starts from."""
        terms, rows, z = self.terms, self.rows, self.z
        if not self.sparse:
            return np.sum(terms.coefficients(rows).astype(np.float64) * z, axis=1, keepdims=True)
        # Zeros times finite values add exactly nothing: the sum is the target's term (0 * inf is
        # NaN, so rows holding a non-finite value are summed as written).
        assert self.target is not None
        r = np.arange(self.n)
        a_t = self._a_target(r)
        u = (a_t * z[r, self.target])[:, None]
        bad = np.flatnonzero(~np.isfinite(np.min(z, axis=1)))
        if bad.size:
            block = terms.coefficients(rows)[bad].astype(np.float64)
            u[bad] = np.sum(block * z[bad], axis=1, keepdims=True)
        return u

    def _a_target(self, r: NDArray) -> NDArray:
        """``a`` at each row's target, with the roundings of :meth:`LossTerms.coefficients`."""
        terms, rows = self.terms, self.rows
        assert self.target is not None
        t = self.target[r]
        active, onehot = terms.active[rows][r], terms.onehot[rows][r]
        return (active * terms.smooth[t] + onehot).astype(np.float64)

    def _coefficients(self, cols: slice) -> NDArray:
        """``terms.coefficients(rows)[:, cols]``, bit for bit, without the other columns."""
        terms, rows = self.terms, self.rows
        if terms.dense is not None:
            return terms.dense[rows][:, cols].astype(np.float64)
        a = terms.active[rows][:, None] * terms.smooth[None, cols]
        t = terms.target[rows]
        start = cols.start
        hit = np.flatnonzero((t >= start) & (t < cols.stop))
        a[hit, t[hit] - start] += terms.onehot[rows][hit]
        return a.astype(np.float64)

    def _zero(self, shape: tuple[int, ...]) -> NoiseParts:
        zero = np.zeros(shape)
        return NoiseParts(zero, zero, zero, zero)

    def parts(self, cols: slice) -> NoiseParts:
        """The parts of every element in the columns ``cols`` (a slice with a start and a stop), (n, k)."""
        cols = slice(*cols.indices(self.c)[:2])
        if self.empty:
            return self._zero((self.n, cols.stop - cols.start))
        return self._literal(self.x[:, cols], self.z[:, cols], self.e[:, cols], self._coefficients(cols),
                             self.s, self.big_a, self.log_s, self.ell)  # fmt: skip

    def total_into(self, out: NDArray, progress: Callable[[], None] | None = None) -> NDArray:
        """The expected error of every element (the parts' sum) written into ``out`` (n, C), float64.

        ``progress`` is called after each chunk of columns (it may raise to abandon the work).
        """
        if self.empty:
            out[...] = 0.0
            return out
        width = max(1, _CHUNK // max(self.n, 1))
        fast = (self.sparse and not self.sch.is_complex and self.whole_sum is None and self.d > 0
                and math.isfinite(self.reach) and bool(np.all(self.big_a >= 0)))  # fmt: skip
        consts = self._fast_constants() if fast else None
        for c0 in range(0, self.c, width):
            cols = slice(c0, min(self.c, c0 + width))
            if consts is not None:
                self._fast_total(cols, out[:, cols], consts)
            else:
                out[:, cols] = self.parts(cols).total
            if progress is not None:
                progress()
        if consts is not None:
            self._fix_targets(out)
        return out

    def _literal(
        self, x: NDArray, z: NDArray, e: NDArray, a: NDArray, s: NDArray, big_a: NDArray, log_s: NDArray, ell: NDArray
    ) -> NoiseParts:
        """The parts, element by element, from the elements' values and their rows' (broadcast)."""
        sch, h, d, uw = self.sch, self.h, self.d, self.uw
        storage, work, narrow = self.storage, self.work, self.narrow
        reach = self.reach
        xs = x.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            odds = e / (s - e)
            up, down = odds * self.grow, odds / self.grow
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
                rho = rho + 0.5 * _ulp_into(moved, storage)
            weights = sum(abs(w) for w in sch.weights)
            formation = self._formation()
            if self.whole_sum is None:
                rho = rho + formation * moved
                rounding = weights * rho / (sch.divisor * h * d)
            else:
                total = abs(float(self.whole_sum)) + moved  # the sum R + l', rounded in both precisions
                rho = rho + 0.5 * _ulp_into(total, work)
                if narrow:
                    rho = rho + 0.5 * _ulp_into(total, storage)
                rho = rho / d
                value = total / d
                if self.terms.reduction == "mean" and d != 1.0:  # the mean's division, rounded again
                    rho = rho + 0.5 * _ulp_into(value, work)
                    if narrow:
                        rho = rho + 0.5 * _ulp_into(value, storage)
                rho = rho + formation * value
                rounding = weights * rho / (sch.divisor * h)
        # Gradual underflow: an exp (or e sin h) below the normal range is off by up to the smallest subnormal.
        rounding = rounding + self.tiny_w * self._weights_h() * big_a / d
        rounding = rounding + uw * (4.0 + math.log2(max(self.c, 1))) * slope
        rounding = rounding + uw * (big_a * p_hi * (4.0 + np.abs(z)) + np.abs(a)) / d  # the analytic formula
        pre = truncation + step + rounding
        stored = 0.5 * _ulp_into(slope + pre, storage) + 0.5 * _ulp_into(slope, storage)
        return NoiseParts(truncation, step, rounding, stored)

    def _formation(self) -> float:
        # Summing the stencil: differences of +-1-weighted neighbours are exact (Sterbenz); central4's
        # -v + 8 v' rounds once at about 7 |v|.
        sch = self.sch
        weights = sum(abs(w) for w in sch.weights)
        return 0.0 if all(abs(w) == 1.0 for w in sch.weights) else 0.5 * weights * self.uw

    def _weights_h(self) -> float:
        sch = self.sch
        return (2.0 if sch.is_complex else sum(abs(w) for w in sch.weights) / sch.divisor) / self.h

    def _fast_constants(self) -> dict:
        """The row values and numbers :meth:`_fast_total` uses for every chunk, each formed as :meth:`_literal` does."""
        sch, h, d, uw, reach, big_a = self.sch, self.h, self.d, self.uw, self.reach, self.big_a
        unit = bool(np.all(big_a == 1))
        with np.errstate(over="ignore", invalid="ignore"):
            trunc_row = _truncation_coef(sch) * np.float64(h) ** sch.order * big_a
        size = self.n * min(self.c, max(1, _CHUNK // max(self.n, 1)))  # flat: a chunk's arrays are contiguous views
        scratch = {
            name: np.empty(size)
            for name in ("p_lo", "p_hi", "tmp", "tmp2", "slope", "peak", "moved", "xs", "step", "abs_z", "rho")
        }
        scratch["bits"], scratch["bits2"] = np.empty(size, np.int64), np.empty(size, np.int64)
        scratch["point"] = np.empty(size, self.work)
        return {
            "scratch": scratch, "unit": unit, "one_d": d == 1.0, "trunc_row": trunc_row, "abs_ell": np.abs(self.ell),
            "rho_row": 1.0 + 2.0 * (np.abs(self.log_s) + reach), "formation": self._formation(),
            "weights": sum(abs(w) for w in sch.weights), "per_h_d": sch.divisor * h * d, "per_h": sch.divisor * h,
            "gradual": self.tiny_w * self._weights_h() * big_a / d, "arith": uw * (4.0 + math.log2(max(self.c, 1))),
            "points": [(o * h, abs(w)) for o, w in sch.stencil if o != 0.0],
            "crit": _critical_values(sch.order),
        }  # fmt: skip

    def _fast_total(self, cols: slice, out: NDArray, k: dict) -> None:
        """:meth:`parts`' total with ``a = 0`` (every column but the targets, which :meth:`_fix_targets` writes).

        The same roundings as :meth:`_literal` with ``a = 0``, ``A >= 0``, ``D > 0`` and a finite
        reach, less the operations that are exact there: ``- a`` and ``+ |a| ...`` (adding a zero to
        a value >= +0), ``A *`` for ``A = 1``, ``/ D`` and ``* D`` for ``D = 1``, ``|.|`` of values
        >= 0, the ``isinf`` tests when nothing is infinite, and ``0 *`` the moved value when no
        infinity is in it; half an ulp straight from the exponent bits. Every pass writes into
        scratch arrays of one chunk (no allocation per pass).
        """
        sch, d, uw, reach = self.sch, self.d, self.uw, self.reach
        storage, work = self.storage, self.work
        big_a, s = self.big_a, self.s
        unit, one_d = k["unit"], k["one_d"]
        shape = (self.n, cols.stop - cols.start)
        size = shape[0] * shape[1]
        b = {name: arr[:size].reshape(shape) for name, arr in k["scratch"].items()}
        tmp, tmp2 = b["tmp"], b["tmp2"]
        x, z, e = self.x[:, cols], self.z[:, cols], self.e[:, cols]
        p_lo, p_hi = b["p_lo"], b["p_hi"]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            np.subtract(s, e, out=p_lo)
            np.divide(e, p_lo, out=p_lo)  # the odds
            top = float(np.max(p_lo)) if p_lo.size else 0.0
            finite = top * self.grow < math.inf  # False for a NaN as well
            np.multiply(p_lo, self.grow, out=p_hi)
            np.divide(p_lo, self.grow, out=p_lo)
            _odds_to_p(p_hi, tmp, finite)
            _odds_to_p(p_lo, tmp, finite)
        # slope = max(A p_lo, A p_hi) / D (both >= 0)
        slope = b["slope"]
        if unit:
            np.maximum(p_lo, p_hi, out=slope)
        else:
            np.multiply(big_a, p_lo, out=tmp)
            np.multiply(big_a, p_hi, out=slope)
            np.maximum(tmp, slope, out=slope)
        if not one_d:
            slope /= d
        peak = b["peak"]
        _pda_into(sch.order, p_lo, peak, tmp)
        _pda_into(sch.order, p_hi, tmp2, tmp)
        np.maximum(peak, tmp2, out=peak)
        if k["crit"]:
            hi_top = float(np.max(p_hi)) if p_hi.size else 0.0
            for cp, value in k["crit"]:
                if hi_top > cp or hi_top != hi_top:  # else no interval reaches the critical point
                    inside = (p_lo < cp) & (cp < p_hi)
                    np.maximum(peak, inside * value, out=peak)
        with np.errstate(over="ignore", invalid="ignore"):
            truncation = np.multiply(k["trunc_row"], peak, out=peak)
            if not one_d:
                truncation /= d
        moved = np.multiply(slope, reach, out=b["moved"])
        if not one_d:
            moved *= d
        moved += k["abs_ell"]
        # The perturbed points' rounding.
        xs = b["xs"]
        xs[...] = x
        step = b["step"]
        first = True
        for oh, w in k["points"]:
            dev = step if first else tmp
            if storage == np.float64:
                np.add(x, oh, out=dev)
            elif storage == work:
                dev[...] = np.add(x, oh, out=b["point"])
            else:
                dev[...] = round_to(x.astype(work) + oh, storage)
            dev -= xs
            dev -= oh
            np.abs(dev, out=dev)
            if w != 1.0:
                dev *= w
            if not first:
                step += dev
            first = False
        step *= slope
        step /= k["per_h"]
        # Rounding of the values differenced.
        abs_z = np.abs(z, out=b["abs_z"])
        rho = np.add(abs_z, 3.0, out=b["rho"])
        rho += reach
        rho *= p_hi
        rho += k["rho_row"]
        if not unit:
            rho *= big_a
        rho *= uw
        np.multiply(moved, 2.0, out=tmp)
        tmp *= uw
        rho += tmp
        if self.narrow:
            rho += _half_ulp(moved, storage, b["bits"])
        formation = k["formation"]
        if formation == 0.0:
            if not float(np.max(moved)) < math.inf:  # 0 * inf is NaN (a NaN moved value made rho NaN already)
                rho[np.isinf(moved)] = np.nan
        else:
            np.multiply(moved, formation, out=tmp)
            rho += tmp
        rounding = np.multiply(rho, k["weights"], out=rho)
        rounding /= k["per_h_d"]
        rounding += k["gradual"]
        np.multiply(slope, k["arith"], out=tmp)
        rounding += tmp
        np.add(abs_z, 4.0, out=abs_z)
        if unit:
            abs_z *= p_hi
        else:
            np.multiply(big_a, p_hi, out=tmp)  # (A p) (4 + |z|)
            abs_z *= tmp
        abs_z *= uw
        if not one_d:
            abs_z /= d
        rounding += abs_z
        total = np.add(truncation, step, out=truncation)
        total += rounding
        np.add(total, slope, out=tmp)
        np.add(_half_ulp(tmp, storage, b["bits"]), _half_ulp(slope, storage, b["bits2"]), out=tmp2)
        np.add(total, tmp2, out=out)

    def _fix_targets(self, out: NDArray) -> None:
        """Write the literal total at the elements whose coefficient is not 0 (each row's target)."""
        assert self.target is not None
        r = np.arange(self.n)
        j = self.target
        rr, jj = r[:, None], j[:, None]
        a = self._a_target(r)[:, None]
        p = self._literal(self.x[rr, jj], self.z[rr, jj], self.e[rr, jj], a, self.s, self.big_a, self.log_s, self.ell)
        out[r, j] = p.total[:, 0]


def _odds_to_p(odds: NDArray, tmp: NDArray, finite: bool) -> None:
    """``p = r / (1 + r)`` in place of the odds ``r`` (1 where ``r`` is infinite); ``finite``: no inf in ``r``."""
    inf = None if finite else np.isinf(odds)
    np.add(odds, 1.0, out=tmp)
    np.divide(odds, tmp, out=odds)
    if inf is not None:
        odds[inf] = 1.0


def _pda_into(order: int, p: NDArray, out: NDArray, tmp: NDArray) -> None:
    """:func:`_p_derivative_abs` written into ``out`` (``tmp`` a scratch array of the same shape)."""
    if order not in (1, 2, 4):
        out[...] = _p_derivative_abs(order, p)
        return
    np.subtract(1.0, p, out=out)
    np.multiply(p, out, out=out)  # pq = p (1 - p)
    if order == 1:
        return
    if order == 4:
        pq = out.copy()
    np.multiply(p, 2.0, out=tmp)
    np.subtract(1.0, tmp, out=tmp)
    np.multiply(out, tmp, out=out)  # pq (1 - 2p)
    if order == 4:
        np.multiply(pq, 12.0, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        out *= tmp  # pq (1 - 2p) (1 - 12 pq)
    np.abs(out, out=out)


def _half_ulp(values: NDArray, dtype: np.dtype, bits: NDArray | None = None) -> NDArray:
    """``0.5 * ulp(values, dtype)`` bit for bit: from the exponent bits when the halves are normal numbers.

    ``bits``: an int64 scratch array shaped like ``values`` (the result may be a view of it).
    """
    nmant, tiny = _finfo(dtype)
    bits = np.bitwise_and(values.view(np.int64), _EXP_BITS, out=bits)
    # frexp's exponent e = E - 1022: ulp = 2^(E - 1023 - nmant) when that is >= tiny; its half a normal number.
    lowest = max(nmant + 2, 1023 + nmant + math.frexp(tiny)[1] - 1) << 52
    if bits.size == 0 or int(bits.min()) < lowest or int(bits.max()) == int(_EXP_BITS):
        return 0.5 * ulp(values, dtype)
    bits -= np.int64((nmant + 1) << 52)
    return bits.view(np.float64)


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

    :class:`NoiseRows` prepares the rows once and gives the parts of any columns (one cell in O(C)).
    """
    return NoiseRows(x, terms, rows, scheme, eps, whole_sum).parts(slice(None))


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
    x: NDArray,
    terms: LossTerms,
    scheme: str,
    eps: float,
    whole_sum: float | None = None,
    progress: Callable[[float], None] | None = None,
) -> NDArray:
    """:func:`expected_error` from prepared terms, in blocks of rows (each prepared once, then in chunks).

    ``progress`` is called with the fraction done (0..1) after each block; it may raise to abandon the work.
    """
    n, c = x.shape
    out = np.empty((n, c), dtype=expected_dtype(x.dtype))
    rows_per_block = max(1, BLOCK_ELEMENTS // max(c, 1))
    for r0 in range(0, n, rows_per_block):
        rows = slice(r0, min(n, r0 + rows_per_block))
        NoiseRows(x[rows], terms, rows, scheme, eps, whole_sum).total_into(out[rows])
        if progress is not None:
            progress(rows.stop / n)
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
