"""Finite-difference gradients: a black-box version and a fast, row-separable one for cross-entropy."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._dtypes import as_float_array, complex_dtype, round_to, work_dtype
from .losses import LossTerms, _reduce, _row_losses, _shifted, loss_terms, tile_terms
from .schemes import EVALUATE_MODES, PERTURB_MODES, Scheme, get_scheme

__all__ = [
    "check_eps",
    "cross_entropy_numeric_grad",
    "loss_sum_parts",
    "numeric_grad",
    "rest_of_loss",
    "row_loss_values",
]

#: Target number of elements per block in the fast path: small enough for the
#: temporaries to stay in cache, large enough to amortise NumPy's call overhead.
BLOCK_ELEMENTS = 16384


def check_eps(eps: float) -> float:
    """Validate a step: a finite number > 0. Returns it as a float.

    Raises
    ------
    ValueError
        If ``eps`` is not a finite positive number; the message names it.

    Examples
    --------
    >>> check_eps(1e-6)
    1e-06
    """
    try:
        h = float(eps)
    except (TypeError, ValueError):
        raise ValueError(f"eps must be a number, got {eps!r}") from None
    if not math.isfinite(h) or h <= 0.0:
        raise ValueError(f"eps must be finite and > 0, got {eps!r}")
    return h


def _check_perturb(perturb: str) -> str:
    if perturb not in PERTURB_MODES:
        raise ValueError(f"unknown perturb mode {perturb!r}; expected one of {', '.join(PERTURB_MODES)}")
    return perturb


def _as_scalar(value: object) -> complex:
    arr = np.asarray(value)
    if arr.ndim:
        arr = arr.sum()  # a per-row loss vector is summed, as in the origin question
    return complex(arr)


def numeric_grad(
    f: Callable[[NDArray], object],
    x: ArrayLike,
    eps: float,
    scheme: str = "central",
    perturb: str = "element",
) -> NDArray:
    r"""Finite-difference gradient of a black-box scalar function.

    Parameters
    ----------
    f : callable
        Maps an array shaped like ``x`` to a scalar (a per-row vector is summed).
        For ``scheme="complex"`` it receives a complex array and must be analytic.
    x : array_like, shape (...)
        The point. Integers are treated as float64, never truncated.
    eps : float
        The step ``h`` (> 0, finite).
    scheme : {"forward", "backward", "central", "central4", "complex"}
    perturb : {"element", "row", "all"}
        "element" perturbs each element on its own (the gradient). "row" shifts
        a whole row (axis 0 index) at once and "all" the whole array at once:
        the origin question's mistake, the derivative along a direction of ones.

    Returns
    -------
    ndarray, shape and float dtype of ``x``
        For "row" and "all" every element of the row (or array) holds the same
        directional difference quotient.

    Notes
    -----
    With :math:`e_k` the k-th unit vector and :math:`h` = ``eps``:

    .. math::
        \text{forward: } \frac{f(x + h e_k) - f(x)}{h}, \quad
        \text{central: } \frac{f(x + h e_k) - f(x - h e_k)}{2h}, \quad
        \text{complex: } \frac{\operatorname{Im} f(x + i h e_k)}{h}

    and central4 :math:`\frac{-f_{+2} + 8 f_{+1} - 8 f_{-1} + f_{-2}}{12 h}`
    (each stencil is summed with its integer weights, then divided once).
    The perturbed point is rounded to the dtype of ``x`` before ``f`` sees it,
    and the quotient divides by the nominal ``h``: where ``x + h == x`` the
    difference is exactly 0. ``f`` is called once per element and stencil point.

    Examples
    --------
    >>> g = numeric_grad(lambda v: np.sum(v ** 3), np.array([1.0, 2.0]), 1e-20, "complex")
    >>> g
    array([ 3., 12.])
    """
    sch = get_scheme(scheme)
    h = check_eps(eps)
    _check_perturb(perturb)
    xf = as_float_array(x, "x")
    storage = xf.dtype
    work = work_dtype(storage)
    base = xf.astype(complex_dtype(storage) if sch.is_complex else storage)
    out = np.empty(xf.shape, dtype=storage)
    f0 = None
    if 0.0 in sch.offsets:
        f0 = _as_scalar(f(base.copy()))

    def quotient(mask: tuple | NDArray | slice) -> float:
        if sch.is_complex:
            xp = base.copy()
            xp[mask] = base[mask] + 1j * h
            return _as_scalar(f(xp)).imag / h
        total = 0.0
        for o, wgt in sch.stencil:
            if o == 0.0 and f0 is not None:
                fv = f0
            else:
                xp = base.copy()
                xp[mask] = (base[mask].astype(work) + o * h).astype(storage)
                fv = _as_scalar(f(xp))
            total += wgt * fv.real
        return total / (sch.divisor * h)

    if perturb == "all":
        out[...] = quotient(slice(None)) if xf.ndim else quotient(())
    elif perturb == "row" and xf.ndim:
        for i in range(xf.shape[0]):
            out[i] = quotient((i,))
    else:
        for idx in np.ndindex(*xf.shape):
            out[idx] = quotient(idx)
    return out


def cross_entropy_numeric_grad(
    input: ArrayLike,
    target: ArrayLike,
    eps: float,
    scheme: str = "central",
    perturb: str = "element",
    *,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    progress: Callable[[float], None] | None = None,
    evaluate: str = "row",
) -> NDArray:
    r"""Finite-difference gradient of :func:`cross_entropy`, every element, fast.

    Parameters
    ----------
    input : array_like, shape (N, C)
        Logits; integers are treated as float64.
    target, weight, ignore_index, reduction, label_smoothing
        As in :func:`cross_entropy`.
    eps : float
        The step ``h``.
    scheme : {"forward", "backward", "central", "central4", "complex"}
    perturb : {"element", "row", "all"}
        As in :func:`numeric_grad`; "row" and "all" reproduce the shift-invariance
        pitfall and give about 0.
    progress : callable, optional
        Called with the fraction done (0..1) after each block of rows; it may
        raise to abandon the computation (the exception propagates).
    evaluate : {"row", "loss"}
        What each quotient differences (with ``perturb="element"``; the pitfall modes
        ignore it). "row": row i's loss divided by the batch denominator, the origin
        question's way. "loss": the whole reduced loss, as ``torch.autograd.gradcheck``
        and most hand-written checks re-evaluate it, with the rounding that brings: the
        sum over rows is rounded at the size of the whole loss, and the mean divides
        that rounded sum by :math:`D` and rounds again.

    Returns
    -------
    ndarray, shape (N, C), dtype of ``input``
        The same quotients :func:`numeric_grad` forms on ``cross_entropy`` (on row i's
        loss for "row", on the reduced loss for "loss").

    Notes
    -----
    Perturbing :math:`x_{ij}` changes only row i's loss, so the quotient is formed
    from row losses, :math:`\partial L / \partial x_{ij} \approx
    \frac{1}{D} \sum_k w_k\, \ell_i(x_i + o_k h e_j) / h`, which also keeps the
    round-off of a large batch mean out of it. Each perturbed row loss is really
    evaluated from the perturbed logit :math:`x'_{ij} = \mathrm{fl}(x_{ij} + o_k h)`,
    using the row's unperturbed sums:

    .. math::
        \ell_i' = A_i \log\Big(S_i + e^{x'_{ij} - m_i} - e^{x_{ij} - m_i}\Big)
                  - \Big(U_i + a_{ij} (x'_{ij} - x_{ij})\Big)

    with :math:`S_i = \sum_c e^{x_{ic} - m_i}`, :math:`U_i = \sum_c a_{ic}(x_{ic} - m_i)`
    and :math:`A_i = \sum_c a_{ic}`; each :math:`\ell'` is rounded to the input's
    dtype before differencing, as a plain re-evaluation would be. With ``evaluate="loss"``
    each perturbed value is the whole loss, formed from row i's loss and the sum of the
    other rows' losses :math:`R_i = \sum_{k \ne i} \ell_k` (exactly summed once, O(N C)):

    .. math:: L' = \mathrm{fl}\big(\mathrm{fl}(R_i + \ell_i') / D\big)

    rounded in the working precision and to the input's dtype at each step, as a whole
    re-evaluation rounds them (the division only for "mean"). The rounding of the sum is
    then relative to the whole loss, which grows with N. The complex step
    evaluates the same expression at :math:`x_{ij} + i h` with complex arithmetic
    written out in real and imaginary parts. Work runs in row blocks, so extra
    memory stays a small multiple of one block.

    Examples
    --------
    >>> x = np.array([[1.0, 2.0, 3.0]])
    >>> cross_entropy_numeric_grad(x, np.array([0]), 1e-6).round(6)
    array([[-0.909969,  0.244728,  0.665241]])
    """
    sch = get_scheme(scheme)
    h = check_eps(eps)
    _check_perturb(perturb)
    _check_evaluate(evaluate)
    x = as_float_array(input)
    terms = loss_terms(x.shape, target, weight, ignore_index, reduction, label_smoothing)
    if perturb != "element":
        return _shifted_quotient(x, terms, h, sch, perturb)
    n, c = x.shape
    out = np.empty((n, c), dtype=x.dtype)
    rest = None
    share = 0.0
    if evaluate == "loss" and not sch.is_complex:  # the imaginary part of a whole loss is that of row i's
        share = 0.25
        rest = rest_of_loss(x, terms, None if progress is None else (lambda f: progress(share * f)))
    rows_per_block = max(1, BLOCK_ELEMENTS // max(c, 1))
    for r0 in range(0, n, rows_per_block):
        rows = slice(r0, min(n, r0 + rows_per_block))
        out[rows] = RowBlock(x[rows], terms, rows, None if rest is None else rest[rows]).quotient(sch, h)
        if progress is not None:
            progress(share + (1.0 - share) * rows.stop / n)
    return out


def _check_evaluate(evaluate: str) -> str:
    if evaluate not in EVALUATE_MODES:
        raise ValueError(f"unknown evaluate mode {evaluate!r}; expected one of {', '.join(EVALUATE_MODES)}")
    return evaluate


def row_loss_values(x: NDArray, terms: LossTerms, progress: Callable[[float], None] | None = None) -> NDArray:
    """Each row's loss as :class:`RowBlock` evaluates it (rounded to the dtype), shape (N,), float64.

    Row-separable: a row gives the same bits alone as in any block.
    """
    n, c = x.shape
    out = np.empty(n, dtype=np.float64)
    rows_per_block = max(1, BLOCK_ELEMENTS // max(c, 1))
    for r0 in range(0, n, rows_per_block):
        rows = slice(r0, min(n, r0 + rows_per_block))
        out[rows] = RowBlock(x[rows], terms, rows).l0[:, 0]
        if progress is not None:
            progress(rows.stop / n)
    return out


def rest_of_loss(x: NDArray, terms: LossTerms, progress: Callable[[float], None] | None = None) -> NDArray:
    r"""For each row i, the sum of the *other* rows' losses, :math:`R_i = \sum_k \ell_k - \ell_i`, float64 (N,).

    The row losses are those :class:`RowBlock` evaluates; their sum is formed exactly
    (``math.fsum``), so :math:`R_i` does not depend on how the rows are blocked, and
    one cell's inspector finds the map's value bit for bit. Cost O(N C).
    """
    return loss_sum_parts(x, terms, progress)[0]


def loss_sum_parts(
    x: NDArray, terms: LossTerms, progress: Callable[[float], None] | None = None
) -> tuple[NDArray, float]:
    """``(R, T)``: :func:`rest_of_loss` and the exact sum ``T`` of the row losses it starts from."""
    losses = row_loss_values(x, terms, progress)
    with np.errstate(invalid="ignore"):
        finite = bool(np.all(np.isfinite(losses)))
        total = math.fsum(losses.tolist()) if finite else float(np.sum(losses))
        return total - losses, total


class RowBlock:
    """A block of rows prepared once for many difference quotients (any steps, any schemes).

    Holds the row sums every perturbed evaluation starts from: the shift ``m``,
    ``z = x - m``, ``e = exp(z)``, ``S``, ``S - e``, the coefficients and ``U``.
    ``terms`` holds the loss terms of the rows ``rows`` (the full terms with a slice,
    or terms built for the block with ``rows=slice(0, n)``).

    The map, the cell inspector and the cell sweep all evaluate through this class,
    so they agree bit for bit: :meth:`column` gives one element's evaluation at many
    steps with exactly the operations the whole block uses at one step.
    """

    def __init__(self, xb: NDArray, terms: LossTerms, rows: slice, rest: NDArray | None = None):
        self.denom = terms.denom
        self.mean = terms.reduction == "mean"
        self.storage = xb.dtype
        self.work = work = work_dtype(self.storage)
        self.xw = xw = xb if xb.dtype == work else xb.astype(work)
        self.m = np.max(xw, axis=1, keepdims=True)
        self.z = z = xw - self.m
        self.e = np.exp(z)
        self.s = np.sum(self.e, axis=1, keepdims=True)
        self.s_minus_e = self.s - self.e
        self.big_a = terms.total[rows, None].astype(work)
        self.unit_a = bool(np.all(self.big_a == 1))
        self.sparse = terms.dense is None and not np.any(terms.smooth)
        n = xw.shape[0]
        self.r_idx = np.arange(n)
        if self.sparse:
            self.cols = terms.target[rows]
            self.a_sparse = terms.onehot[rows].astype(work)
            self.a: NDArray | None = None
            self.u = (self.a_sparse * z[self.r_idx, self.cols])[:, None]
        else:
            self.a = terms.coefficients(rows).astype(work)
            self.u = np.sum(self.a * z, axis=1, keepdims=True)
        self.l0 = round_to(_scaled_log(self.s, self.big_a, self.unit_a) - self.u, self.storage)
        # evaluate="loss": the other rows' losses (n, 1) in working precision; None for "row".
        self.rest = None if rest is None else np.asarray(rest, dtype=np.float64).reshape(-1, 1).astype(work)
        self.f0 = self.l0 if self.rest is None else self._whole(self.l0.copy())

    def _whole(self, lp: NDArray) -> NDArray:
        """The whole reduced loss from row losses ``lp`` (modified in place): ``fl(fl(R + lp) / D)``.

        Rounded to the storage dtype after the sum and after the mean's division, as a whole
        re-evaluation returns them.
        """
        assert self.rest is not None
        np.add(lp, self.rest, out=lp)
        lp = round_to(lp, self.storage)
        if self.mean and self.denom not in (0.0, 1.0):
            lp /= self.denom
            lp = round_to(lp, self.storage)
        return lp

    def column(self, r: int, j: int, k: int) -> RowBlock:
        """Element ``(r, j)`` of this block repeated in ``k`` columns of one row.

        Pass a vector of ``k`` steps to :meth:`losses` or :meth:`quotient` of the result:
        column ``q`` then holds the element's value at step ``q``, formed by the same
        operations, in the same order and precision, as the block forms it at that step.
        """
        col = object.__new__(RowBlock)
        work = self.work

        def rep(v: NDArray) -> NDArray:
            return np.full((1, k), v, dtype=work)

        col.denom, col.storage, col.work, col.unit_a = self.denom, self.storage, work, self.unit_a
        col.mean = self.mean
        col.xw, col.z, col.e, col.s_minus_e = (
            rep(self.xw[r, j]),
            rep(self.z[r, j]),
            rep(self.e[r, j]),
            rep(self.s_minus_e[r, j]),
        )
        col.m, col.s, col.big_a, col.u, col.l0, col.f0 = (
            v[r : r + 1] for v in (self.m, self.s, self.big_a, self.u, self.l0, self.f0)
        )
        col.rest = None if self.rest is None else self.rest[r : r + 1]
        col.sparse = self.sparse
        if self.a is None:
            # Only the label column carries the linear term; elsewhere nothing is subtracted.
            hit = int(self.cols[r]) == j
            col.r_idx = np.zeros(k if hit else 0, dtype=np.intp)
            col.cols = np.arange(k if hit else 0)
            col.a_sparse = np.full(k if hit else 0, self.a_sparse[r], dtype=work)
            col.a = None
        else:
            col.r_idx = np.zeros(1, dtype=np.intp)
            col.a = rep(self.a[r, j])
        return col

    def _steps(self, step: float | NDArray) -> float | NDArray:
        """A step (or a vector of steps, one per column) as the evaluation adds it: in working precision."""
        if np.ndim(step):
            return np.asarray(step, dtype=np.float64).astype(self.work)
        return step  # a Python float is converted to the working precision by the addition itself

    def losses(self, step: float | NDArray) -> NDArray:
        r"""Row losses with each element moved by ``step`` on its own, rounded to the storage dtype.

        With ``rest`` given (``evaluate="loss"``) the whole reduced loss instead (see :meth:`_whole`).

        ``step`` is a number, or a vector with one step per column (see :meth:`column`):
        :math:`A \log(e^{x' - m} + (S - e)) - U - a (x' - x)` with :math:`x' = \mathrm{fl}(x + \text{step})`.
        The only implementation of this evaluation: the map, the inspector and the sweep call it.
        """
        buf = self.xw + self._steps(step)
        if self.storage != self.work:
            buf = round_to(buf, self.storage)
        np.subtract(buf, self.m, out=buf)  # zp = x' - m, the perturbed shifted logit
        lp = np.exp(buf)
        lp += self.s_minus_e
        np.log(lp, out=lp)
        if not self.unit_a:
            lp *= self.big_a
        lp -= self.u
        if self.a is None:
            r, c = self.r_idx, self.cols
            lp[r, c] -= self.a_sparse * (buf[r, c] - self.z[r, c])
        else:
            np.subtract(buf, self.z, out=buf)
            buf *= self.a
            lp -= buf
        lp = round_to(lp, self.storage)
        return lp if self.rest is None else self._whole(lp)

    def _divide(self, acc: NDArray, by: float | NDArray) -> NDArray:
        """``acc / by`` in working precision (a vector divisor is rounded to it first, as a number is)."""
        if np.ndim(by):
            by = np.asarray(by, dtype=np.float64).astype(acc.dtype)
        acc /= by
        return acc

    def quotient(self, sch: Scheme, h: float | NDArray, cache: dict[float, NDArray] | None = None) -> NDArray:
        """Difference quotients of the reduced loss for a scheme and step, in working precision.

        The stencil is summed with its integer weights and divided once by
        ``divisor * h * D`` (``divisor * h`` when the values are whole losses, already divided).
        ``h`` is a number, or one step per column (see :meth:`column`).
        ``cache`` maps a step actually added (``offset * h``, numbers only) to its perturbed
        row losses, so schemes that evaluate the same point share it.
        """
        denom = self.denom
        if denom == 0.0:  # every row ignored: the loss is constant (PyTorch gives 0 too)
            return np.zeros_like(self.xw)
        vector = bool(np.ndim(h))
        if vector:
            cache = None
            h = np.asarray(h, dtype=np.float64)
        if sch.is_complex:
            num = complex_step_row_loss_imag(h, self.e, self.s, self._coefficients_or_sparse(), self.big_a, self.unit_a)
            return self._divide(num, h * denom)
        terms: list[tuple[float, NDArray]] = []
        for o, wgt in sch.stencil:
            step = o * h
            if o == 0.0:
                lp = self.f0  # (n, 1): broadcast over the columns
            elif cache is not None and isinstance(step, float) and step in cache:
                lp = cache[step]
            else:
                lp = self.losses(step)
                if cache is not None and isinstance(step, float):
                    cache[step] = lp
            terms.append((wgt, lp))
        (w0, t0), rest = terms[0], terms[1:]
        if rest and w0 == 1.0 and rest[0][0] == -1.0:
            acc = np.subtract(t0, rest[0][1])  # f(x + o1 h) - f(x + o2 h) in one pass
            rest = rest[1:]
        else:
            acc = np.multiply(t0, w0) if t0.shape == self.xw.shape else np.broadcast_to(t0 * w0, self.xw.shape).copy()
        tmp = None
        for wgt, lp in rest:
            if wgt == 1.0:
                acc += lp
            elif wgt == -1.0:
                acc -= lp
            else:
                tmp = np.multiply(lp, wgt, out=tmp)
                acc += tmp
        return self._divide(acc, sch.divisor * h * (denom if self.rest is None else 1.0))

    def _coefficients_or_sparse(self) -> NDArray | tuple[NDArray, NDArray, NDArray]:
        if self.a is not None:
            return self.a
        return self.r_idx, self.cols, self.a_sparse


def element_block(xb: NDArray, terms: LossTerms, rows: slice, h: float, sch: Scheme) -> NDArray:
    """Difference quotients of the reduced loss for a block of rows, in working precision.

    Each stencil point costs one ``exp`` and one ``log`` per element and a handful of
    in-place passes: ``S - e`` is shared by all points, the linear term ``a (x' - x)``
    touches only the label column when the coefficients are one-hot, and the factor
    ``A`` is skipped when it is 1 (multiplying by 1 is exact, so the values do not change).
    """
    return RowBlock(xb, terms, rows).quotient(sch, h)


def _scaled_log(s: NDArray, big_a: NDArray, unit_a: bool) -> NDArray:
    out = np.log(s)
    return out if unit_a else out * big_a


def complex_step_row_loss_imag(
    h: float | NDArray,
    e: NDArray,
    s: NDArray,
    a: NDArray | tuple[NDArray, NDArray, NDArray],
    big_a: NDArray,
    unit_a: bool = False,
) -> NDArray:
    """``Im`` of the row loss after one logit moved by ``i h``.

    ``e = exp(z)`` (z shifted by the row's unperturbed maximum), ``S`` the row sums and
    ``A`` the coefficient totals of :class:`RowBlock`; all arguments broadcast.

    ``exp(z + ih) = e cos h + i e sin h``, so
    ``Im l' = A arg(S - e + e cos h + i e sin h) - a h``. ``a`` is dense, or
    ``(rows, cols, values)`` when only the label column has a coefficient. ``h`` is a
    number or one step per column. Where ``cos h`` is exactly 1 the real part is
    exactly ``S`` and is not recomputed (``S + (e - e)`` is ``S`` as well).
    """
    h64 = np.asarray(h, dtype=np.float64)
    cos_h, sin_h, h_w = (v.astype(e.dtype) for v in (np.cos(h64), np.sin(h64), h64))  # in e's precision
    im = e * sin_h
    if cos_h.ndim == 0 and cos_h == 1:
        re = np.broadcast_to(s, e.shape)  # S + (e cos h - e) == S exactly
    else:
        re = s + (e * cos_h - e)
    out = np.arctan2(im, re)
    if not unit_a:
        out *= big_a
    if isinstance(a, tuple):
        rows, cols, values = a
        out[rows, cols] -= values * (h_w if h_w.ndim == 0 else h_w[cols])
    else:
        out -= a * h_w
    return out


class ShiftEvaluator:
    r"""The pitfall's evaluations: the loss after shifting a whole row (or every logit) at once.

    Parameters
    ----------
    x : ndarray (n, C)
        Logits in the storage dtype: the whole grid for ``perturb="all"``; for
        ``perturb="row"`` any block of rows (one row for one cell: O(C) work).
    terms : LossTerms
        The terms of exactly these rows (denominator of the whole batch).
    perturb : {"row", "all"}

    Notes
    -----
    With :math:`\mathbf 1` a row (or the matrix) of ones, the quotient is the stencil of
    :math:`f(x + o h \mathbf 1)` where :math:`f` is row i's loss (rounded to the dtype)
    for "row", divided by :math:`D` for "mean", and for "all" the reduced loss itself,
    as the origin question's code has it (the mean, or the sum for "sum" and "none").
    Every evaluation is row-separable except the final sum of "all", so a row's
    quotient does not depend on the other rows; "all" needs every row, O(N C) per step.
    Steps come as a vector: ``K`` steps for one row are evaluated at once (K x C), and
    a step's value does not depend on the other steps.
    """

    def __init__(
        self, x: NDArray, terms: LossTerms, perturb: str, on_evaluate: Callable[[], None] | None = None
    ) -> None:
        self.x, self.terms, self.perturb = x, terms, perturb
        self.storage = x.dtype
        self.work = work_dtype(self.storage)
        self.on_evaluate = on_evaluate  # called after each whole-grid evaluation of "all" (it may raise)
        self._cache: dict[tuple[float, bytes], NDArray] = {}

    def _losses(self, xp: NDArray, terms: LossTerms) -> NDArray:
        z = _shifted(xp, 1)
        lse = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        return _row_losses(z, lse, terms)

    def _evaluate(self, xp: NDArray, k: int) -> NDArray:
        """Values at ``k`` shifted copies stacked in ``xp`` (k n x C): (k, n) for "row", (k,) for "all"."""
        n = self.x.shape[0]
        if self.perturb == "row":
            return self._losses(xp, tile_terms(self.terms, k)).reshape(k, n)
        rows = self._losses(xp, self.terms)
        value = np.asarray(_reduce(rows, self.terms) if self.terms.reduction == "mean" else rows.sum())[None]
        if self.on_evaluate is not None:
            self.on_evaluate()
        return value

    def _stacked(self, shifted: Callable[[int], NDArray], k: int) -> NDArray:
        # "row": the k copies side by side in one evaluation; "all": one copy (the whole grid) at a time.
        if self.perturb == "row":
            return self._evaluate(np.concatenate([shifted(q) for q in range(k)]) if k > 1 else shifted(0), k)
        return np.concatenate([self._evaluate(shifted(q), 1) for q in range(k)])

    def values(self, offset: float, hs: NDArray) -> NDArray:
        """The evaluated values at the steps ``offset * hs``, rounded to the storage dtype (working precision).

        Returns (K, n) for "row" and (K,) for "all". Values are cached per offset and steps,
        so schemes that evaluate the same points share them.
        """
        key = (float(offset), np.asarray(hs, dtype=np.float64).tobytes())
        if key in self._cache:
            return self._cache[key]
        xw = self.x.astype(self.work)
        if offset == 0.0:
            base = self._evaluate(xw, 1)
            out = np.broadcast_to(round_to(np.asarray(base, dtype=self.work), self.storage), (hs.size, *base.shape[1:]))
        else:
            steps = (offset * hs).astype(self.work)
            out = round_to(
                np.asarray(self._stacked(lambda q: round_to(xw + steps[q], self.storage), hs.size), dtype=self.work),
                self.storage,
            )
        self._cache[key] = out
        return out

    def complex_values(self, hs: NDArray) -> NDArray:
        """``Im`` of the values at ``x + i h`` for each step (not rounded), shape as :meth:`values`."""
        cdt = complex_dtype(self.storage)
        xc = self.x.astype(cdt)
        steps = (1j * hs).astype(cdt)
        return np.asarray(self._stacked(lambda q: xc + steps[q], hs.size)).imag

    def quotients(self, sch: Scheme, hs: NDArray) -> NDArray:
        """Difference quotients at each step in ``hs``, in working precision: (K, n) for "row", (K,) for "all"."""
        hs = np.asarray(hs, dtype=np.float64)
        terms = self.terms
        shape = (hs.size, self.x.shape[0]) if self.perturb == "row" else (hs.size,)
        if terms.reduction == "mean" and terms.denom == 0.0:
            return np.zeros(shape, dtype=self.work)
        per_step = (slice(None), None) if self.perturb == "row" else (slice(None),)
        if sch.is_complex:
            im = self.complex_values(hs)
            q = im / hs.astype(im.dtype)[per_step]
        else:
            acc: NDArray | int = 0
            for o, wgt in sch.stencil:
                acc = acc + wgt * self.values(o, hs)
            q = np.asarray(acc) / (sch.divisor * hs).astype(self.work)[per_step]
        if self.perturb == "row" and terms.reduction == "mean":
            q = q / terms.denom
        return np.broadcast_to(q, shape)


def _shifted_quotient(x: NDArray, terms: LossTerms, h: float, sch: Scheme, perturb: str) -> NDArray:
    """The pitfall: difference quotients along a whole row (or the whole matrix) of ones."""
    q = ShiftEvaluator(x, terms, perturb).quotients(sch, np.array([h]))[0]
    out = np.empty(x.shape, dtype=x.dtype)
    out[...] = q[:, None] if perturb == "row" else q
    return out
