"""Finite-difference gradients: a black-box version and a fast, row-separable one for cross-entropy."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._dtypes import as_float_array, complex_dtype, round_to, work_dtype
from .losses import LossTerms, _reduce, _row_losses, _shifted, loss_terms
from .schemes import PERTURB_MODES, Scheme, get_scheme

__all__ = ["check_eps", "cross_entropy_numeric_grad", "numeric_grad"]

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

    and central4 :math:`\frac{-f_{+2} + 8 f_{+1} - 8 f_{-1} + f_{-2}}{12 h}`.
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
        return total / h

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

    Returns
    -------
    ndarray, shape (N, C), dtype of ``input``
        The same quotients :func:`numeric_grad` forms on ``cross_entropy``.

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
    dtype before differencing, as a plain re-evaluation would be. The complex step
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
    x = as_float_array(input)
    terms = loss_terms(x.shape, target, weight, ignore_index, reduction, label_smoothing)
    if perturb != "element":
        return _shifted_quotient(x, terms, h, sch, perturb)
    n, c = x.shape
    out = np.empty((n, c), dtype=x.dtype)
    rows_per_block = max(1, BLOCK_ELEMENTS // max(c, 1))
    for r0 in range(0, n, rows_per_block):
        rows = slice(r0, min(n, r0 + rows_per_block))
        out[rows] = element_block(x[rows], terms, rows, h, sch)
        if progress is not None:
            progress(rows.stop / n)
    return apply_denominator(out, terms)


def apply_denominator(out: NDArray, terms: LossTerms) -> NDArray:
    """Divide row-loss quotients by the mean's denominator ``D``, in place, in their dtype (0 if ``D`` is 0)."""
    if terms.reduction == "mean":
        if terms.denom == 0.0:
            out[...] = 0.0
        else:
            out /= out.dtype.type(terms.denom)
    return out


def element_block(xb: NDArray, terms: LossTerms, rows: slice, h: float, sch: Scheme) -> NDArray:
    """Unscaled row-loss difference quotients for a block of rows, in working precision.

    Each stencil point costs one ``exp`` and one ``log`` per element and a handful of
    in-place passes: ``S - e`` is shared by all points, the linear term ``a (x' - x)``
    touches only the label column when the coefficients are one-hot, and the factor
    ``A`` is skipped when it is 1 (multiplying by 1 is exact, so the values do not change).
    """
    storage = xb.dtype
    work = work_dtype(storage)
    xw = xb if xb.dtype == work else xb.astype(work)
    m = np.max(xw, axis=1, keepdims=True)
    z = xw - m
    e = np.exp(z)
    s = np.sum(e, axis=1, keepdims=True)
    big_a = terms.total[rows, None].astype(work)
    unit_a = bool(np.all(big_a == 1))
    sparse = terms.dense is None and not np.any(terms.smooth)
    n = xw.shape[0]
    r_idx = np.arange(n)
    if sparse:
        cols = terms.target[rows]
        a_sparse = terms.onehot[rows].astype(work)
        a = None
        u = (a_sparse * z[r_idx, cols])[:, None]
    else:
        a = terms.coefficients(rows).astype(work)
        u = np.sum(a * z, axis=1, keepdims=True)
    if sch.is_complex:
        a_full = a if a is not None else _one_hot(n, xw.shape[1], cols, a_sparse, work)
        num = complex_step_row_loss_imag(h, e, s, a_full, big_a)
        num /= h
        return num
    s_minus_e = s - e
    l0 = round_to(_scaled_log(s, big_a, unit_a) - u, storage)
    acc = np.zeros_like(xw)
    buf = np.empty_like(xw)
    for o, wgt in sch.stencil:
        if o == 0.0:
            acc += wgt * l0  # broadcast over the columns
            continue
        np.add(xw, o * h, out=buf)
        if storage != work:
            buf = round_to(buf, storage)
        np.subtract(buf, m, out=buf)  # zp = x' - m, the perturbed shifted logit
        lp = np.exp(buf)
        lp += s_minus_e
        np.log(lp, out=lp)
        if not unit_a:
            lp *= big_a
        lp -= u
        if sparse:
            dz = buf[r_idx, cols] - z[r_idx, cols]
            lp[r_idx, cols] -= a_sparse * dz
        else:
            np.subtract(buf, z, out=buf)
            buf *= a
            lp -= buf
        lp = round_to(lp, storage)
        if wgt == 1.0:
            acc += lp
        elif wgt == -1.0:
            acc -= lp
        else:
            lp *= wgt
            acc += lp
    acc /= h
    return acc


def _scaled_log(s: NDArray, big_a: NDArray, unit_a: bool) -> NDArray:
    out = np.log(s)
    return out if unit_a else out * big_a


def _one_hot(n: int, c: int, cols: NDArray, values: NDArray, dtype: np.dtype) -> NDArray:
    a = np.zeros((n, c), dtype=dtype)
    a[np.arange(n), cols] = values
    return a


def perturbed_row_loss(
    zp: NDArray, z: NDArray, e: NDArray, s: NDArray, a: NDArray, big_a: NDArray, u: NDArray
) -> NDArray:
    """Row loss after one logit moved: ``A log(exp(zp) + (S - e)) - U - a (zp - z)``.

    The same operations, in the same order, as :func:`element_block`; all arguments
    broadcast. ``zp`` and ``z`` are shifted by the row's unperturbed maximum,
    ``e = exp(z)``, ``S`` and ``U`` are the row's unperturbed sums.
    """
    lp = np.exp(zp) + (s - e)
    lp = np.log(lp) * big_a
    lp = lp - u
    return lp - a * (zp - z)


def complex_step_row_loss_imag(h: float | NDArray, e: NDArray, s: NDArray, a: NDArray, big_a: NDArray) -> NDArray:
    """``Im`` of the row loss after one logit moved by ``i h`` (arguments as in :func:`perturbed_row_loss`).

    ``exp(z + ih) = e cos h + i e sin h``, so
    ``Im l' = A arg(S - e + e cos h + i e sin h) - a h``.
    """
    re = s + (e * np.cos(h) - e)
    im = e * np.sin(h)
    return big_a * np.arctan2(im, re) - a * h


def _shifted_quotient(x: NDArray, terms: LossTerms, h: float, sch: Scheme, perturb: str) -> NDArray:
    """The pitfall: difference quotients along a whole row (or the whole matrix) of ones."""
    storage = x.dtype
    work = work_dtype(storage)

    def row_losses(offset: complex) -> NDArray:
        if isinstance(offset, complex):
            xp = x.astype(complex_dtype(storage)) + offset
        else:
            xp = round_to(x.astype(work) + offset, storage) if offset else x.astype(work)
        z = _shifted(xp, 1)
        lse = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        return _row_losses(z, lse, terms)

    def evaluate(offset: complex) -> NDArray:
        rows = row_losses(offset)
        if perturb == "row":
            value = rows
        elif terms.reduction == "mean":
            value = _reduce(rows, terms)  # the reduced loss itself, as the origin question's code has it
        else:
            value = rows.sum()
        if isinstance(offset, complex):
            return np.asarray(value).imag
        return round_to(np.asarray(value, dtype=work), storage)

    if terms.reduction == "mean" and terms.denom == 0.0:
        return np.zeros(x.shape, dtype=storage)
    if sch.is_complex:
        q = evaluate(1j * h) / h
    else:
        q = np.asarray(sum(wgt * evaluate(o * h) for o, wgt in sch.stencil)) / h
    if perturb == "row" and terms.reduction == "mean":
        q = q / terms.denom
    out = np.empty(x.shape, dtype=storage)
    out[...] = np.asarray(q)[:, None] if perturb == "row" else q
    return out
