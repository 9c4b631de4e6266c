"""Stable softmax, log-softmax and PyTorch-compatible cross-entropy with its closed-form gradient."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._dtypes import as_float_array, work_dtype

__all__ = [
    "REDUCTIONS",
    "LossTerms",
    "cross_entropy",
    "cross_entropy_grad",
    "log_softmax",
    "loss_terms",
    "reduction_denominator",
    "softmax",
    "tile_terms",
]

#: Reductions understood by :func:`cross_entropy`, as in PyTorch.
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")


def _shifted(x: NDArray, axis: int) -> NDArray:
    """``x - max(x)`` along ``axis`` in working precision (max of the real part for complex)."""
    xw = x.astype(work_dtype(x.dtype), copy=False)
    m = np.max(xw.real, axis=axis, keepdims=True)
    # A row of -inf (or +inf) has no finite max; shift by 0 there so the inf stays visible
    # instead of turning into inf - inf.
    if not np.all(np.isfinite(m)):
        m = np.where(np.isfinite(m), m, 0)
    return xw - m


def log_softmax(x: ArrayLike, axis: int = -1) -> NDArray:
    r"""Logarithm of the softmax, computed directly and stably.

    Parameters
    ----------
    x : array_like, shape (..., C, ...)
        Logits, float16, float32, float64 or complex (for the complex step);
        integers are treated as float64.
    axis : int
        The class axis.

    Returns
    -------
    ndarray, same shape and dtype as ``x``

    Notes
    -----
    With :math:`m = \max_c x_c` (of the real part),

    .. math:: \log \mathrm{softmax}(x)_c = (x_c - m) - \log \sum_k e^{x_k - m}

    so no exponential overflows and every finite input gives finite output.
    Half precision is computed in float32 and rounded back.

    Examples
    --------
    >>> log_softmax(np.array([1000.0, -1000.0]))
    array([    0., -2000.])
    """
    x = as_float_array(x, "x")
    z = _shifted(x, axis)
    out = z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
    return out.astype(x.dtype, copy=False)


def softmax(x: ArrayLike, axis: int = -1) -> NDArray:
    r"""Softmax along ``axis``, shifted by the maximum so it never overflows.

    Parameters
    ----------
    x : array_like, shape (..., C, ...)
        Logits; integers are treated as float64.
    axis : int
        The class axis.

    Returns
    -------
    ndarray, same shape and dtype as ``x``
        Probabilities that sum to 1 along ``axis``.

    Notes
    -----
    .. math:: \mathrm{softmax}(x)_c = \frac{e^{x_c - m}}{\sum_k e^{x_k - m}}, \quad m = \max_k x_k

    Examples
    --------
    >>> softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]])).round(3)
    array([[0.5 , 0.5 ],
           [0.25, 0.75]])
    """
    x = as_float_array(x, "x")
    e = np.exp(_shifted(x, axis))
    e /= np.sum(e, axis=axis, keepdims=True)
    return e.astype(x.dtype, copy=False)


@dataclass(frozen=True)
class LossTerms:
    r"""Cross-entropy written as per-element coefficients of the log-probabilities.

    Every variant of :func:`cross_entropy` has the form

    .. math:: \ell_i = -\sum_c a_{ic} \log p_{ic}, \qquad L = \frac{1}{D}\sum_i \ell_i

    with non-negative coefficients ``a`` built from the target, the class weights
    and label smoothing, and a denominator ``D`` set by the reduction. Class-index
    targets keep ``a`` sparse: ``onehot[i]`` at column ``target[i]`` plus
    ``active[i] * smooth[c]`` in every column.

    Attributes
    ----------
    n_classes : int
        C.
    dense : ndarray (N, C) or None
        ``a`` itself, for probability targets.
    target : ndarray (N,) of int
        Target class per row (0 for ignored rows), for class-index targets.
    onehot : ndarray (N,)
        ``(1 - s) * w[target]`` for kept rows, 0 for ignored rows.
    active : ndarray (N,)
        1.0 for kept rows, 0.0 for rows whose target is ``ignore_index``.
    smooth : ndarray (C,)
        ``s / C * w`` (label smoothing ``s``, class weights ``w``).
    total : ndarray (N,)
        Row sums of ``a``.
    denom : float
        ``D`` from :func:`reduction_denominator`: 1 for "sum" and "none", the mean's
        denominator for "mean" (0 when every row is ignored). Always that of the whole
        batch, also when the arrays above hold only some rows (see ``rows`` in :func:`loss_terms`).
    reduction : str
    """

    n_classes: int
    dense: NDArray | None
    target: NDArray
    onehot: NDArray
    active: NDArray
    smooth: NDArray
    total: NDArray
    denom: float
    reduction: str

    def coefficient(self, row: int, j: int) -> float:
        """``coefficients()[row, j]`` bit for bit, in O(1)."""
        if self.dense is not None:
            return float(self.dense[row, j])
        a = self.active[row] * self.smooth[j]
        if int(self.target[row]) == j:
            a = a + self.onehot[row]
        return float(a)

    def coefficients(self, rows: slice = slice(None)) -> NDArray:
        """Dense ``a`` for a block of rows, shape (n, C)."""
        if self.dense is not None:
            return self.dense[rows]
        active = self.active[rows]
        a = active[:, None] * self.smooth[None, :]
        n = a.shape[0]
        a[np.arange(n), self.target[rows]] += self.onehot[rows]
        return a


def reduction_denominator(reduction: str, row_weights: ArrayLike) -> float:
    r"""The denominator ``D`` of a reduced cross-entropy: the one place it is computed.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}
    row_weights : array_like, shape (N,)
        Each row's weight in the mean: the class weight of its label for kept rows,
        0 for rows whose label is ``ignore_index``; 1 per row for probability targets.

    Returns
    -------
    float
        :math:`D = \sum_i r_i` for "mean" (0 when every row is ignored: the loss is then
        NaN and the gradient 0, as in PyTorch), 1 for "sum" and "none".

    Notes
    -----
    The cost is O(N) on the labels only; no logit is read. Every division by the
    reduction in the core (the loss, the analytic and numeric gradients, the cell
    inspector, the sweep and the error model) uses this value via :attr:`LossTerms.denom`.

    Examples
    --------
    >>> reduction_denominator("mean", [2.0, 0.0, 0.5])
    2.5
    >>> reduction_denominator("sum", [2.0, 0.0, 0.5])
    1.0
    """
    if reduction != "mean":
        return 1.0
    return float(np.sum(np.asarray(row_weights, dtype=np.float64)))


def loss_terms(
    shape: tuple[int, ...],
    target: ArrayLike,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    rows: slice | None = None,
) -> LossTerms:
    """Validate the loss options and turn them into :class:`LossTerms`.

    Parameters
    ----------
    shape : tuple of int
        Shape (N, C) of the logits.
    target, weight, ignore_index, reduction, label_smoothing
        As in :func:`cross_entropy`.
    rows : slice, optional
        Keep the per-row arrays of these rows only (for one-cell work: O(C) memory and
        time for the logits' side); the denominator is still that of the whole batch,
        O(N) on the labels. The values equal the slice of the full terms exactly.

    Returns
    -------
    LossTerms

    Raises
    ------
    ValueError
        For a shape mismatch, a label out of range, an unknown reduction, a
        smoothing outside [0, 1] or bad weights; the message names the bad value.

    Examples
    --------
    >>> t = loss_terms((2, 3), np.array([0, 2]), reduction="sum")
    >>> t.coefficients()
    array([[1., 0., 0.],
           [0., 0., 1.]])
    """
    if len(shape) != 2:
        raise ValueError(f"input must have shape (N, C), got shape {tuple(shape)}")
    n, c = shape
    if c < 1:
        raise ValueError("input needs at least one class")
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {', '.join(REDUCTIONS)}")
    s = float(label_smoothing)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    if weight is None:
        w = np.ones(c)
    else:
        w = np.asarray(weight, dtype=np.float64)
        if w.shape != (c,):
            raise ValueError(f"weight must have shape ({c},), got shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError("weight must be finite")
    t = np.asarray(target)
    if t.ndim == 2:
        if t.shape != (n, c):
            raise ValueError(f"probability target must have shape {(n, c)}, got shape {t.shape}")
        if t.dtype.kind not in "fiu":
            raise ValueError(f"probability target must be real numbers, got dtype {t.dtype}")
        denom = reduction_denominator(reduction, np.ones(n))
        sel = slice(None) if rows is None else rows
        q = t[sel].astype(np.float64)
        if s > 0:
            q = q * (1.0 - s) + s / c
        dense = q * w
        total = dense.sum(axis=1)
        k = dense.shape[0]
        zeros = np.zeros(k)
        return LossTerms(c, dense, np.zeros(k, dtype=np.intp), zeros, np.ones(k), zeros[:0], total, denom, reduction)
    if t.ndim != 1:
        raise ValueError(f"target must have shape ({n},) or ({n}, {c}), got shape {t.shape}")
    if t.shape[0] != n:
        raise ValueError(f"target has {t.shape[0]} labels but input has {n} rows")
    if t.dtype.kind not in "iu":
        if t.dtype.kind == "f" and np.all(np.isfinite(t)) and np.all(t == np.round(t)):
            t = t.astype(np.int64)
        else:
            raise ValueError(f"class-index target must be integers, got dtype {t.dtype}")
    keep = t != ignore_index
    bad = keep & ((t < 0) | (t >= c))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"label {int(t[i])} in row {i} is out of range for {c} classes (0..{c - 1})")
    target_idx = np.where(keep, t, 0).astype(np.intp)
    active = keep.astype(np.float64)
    denom = reduction_denominator(reduction, w[target_idx] * active)
    if rows is not None:
        target_idx, active = target_idx[rows], active[rows]
    onehot = (1.0 - s) * w[target_idx] * active
    smooth = (s / c) * w
    total = onehot + active * smooth.sum()
    return LossTerms(c, None, target_idx, onehot, active, smooth, total, denom, reduction)


def tile_terms(terms: LossTerms, k: int) -> LossTerms:
    """The terms of ``terms``' rows repeated ``k`` times (row ``r`` of copy ``q`` at ``q * n + r``)."""
    if k == 1:
        return terms
    dense = None if terms.dense is None else np.tile(terms.dense, (k, 1))
    return LossTerms(
        terms.n_classes, dense, np.tile(terms.target, k), np.tile(terms.onehot, k), np.tile(terms.active, k),
        terms.smooth, np.tile(terms.total, k), terms.denom, terms.reduction,
    )  # fmt: skip


def _row_losses(z: NDArray, lse: NDArray, terms: LossTerms) -> NDArray:
    """Per-row ``-sum_c a_ic (z_ic - lse_i)`` for shifted logits ``z`` and ``lse = log sum exp z``.

    Row-separable by construction (no matrix product, whose blocking may depend on the
    number of rows): one row evaluated alone gives the same bits as in a block.
    """
    logp = z - lse
    if terms.dense is not None:
        return -np.sum(terms.dense * logp, axis=1)
    picked = np.take_along_axis(logp, terms.target[:, None], axis=1)[:, 0]
    out = -(terms.onehot * picked)
    if np.any(terms.smooth):
        out = out - terms.active * np.sum(logp * terms.smooth, axis=1)
    return out


def _reduce(rows: NDArray, terms: LossTerms) -> NDArray:
    if terms.reduction == "none":
        return rows
    total = rows.sum()
    if terms.reduction == "sum":
        return total
    # Every row ignored: 0 / 0 is NaN, as in PyTorch.
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / terms.denom


def cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> NDArray:
    r"""Cross-entropy between logits and targets, with PyTorch's semantics.

    Parameters
    ----------
    input : array_like, shape (N, C)
        Logits (float16, float32, float64, or complex for the complex step).
    target : array_like, shape (N,) of int, or (N, C) of float
        Class indices (``ignore_index`` allowed) or class probabilities.
    weight : array_like, shape (C,), optional
        Per-class weights.
    ignore_index : int
        Rows whose class-index target equals it contribute nothing.
    reduction : {"mean", "sum", "none"}
    label_smoothing : float in [0, 1]
        Mixes the target with the uniform distribution over the C classes.

    Returns
    -------
    ndarray
        Shape (N,) for "none", else a 0-d array; dtype of ``input``.

    Notes
    -----
    With :math:`\log p = \mathrm{log\_softmax}(x)`, class weights :math:`w`,
    smoothing :math:`s` and a class-index target :math:`y_i`,

    .. math::
        \ell_i = (1 - s)\, w_{y_i} (-\log p_{i y_i})
                 + \frac{s}{C} \sum_c w_c (-\log p_{ic})

    (0 for ignored rows). "mean" divides :math:`\sum_i \ell_i` by
    :math:`\sum_{i \text{ kept}} w_{y_i}`. For probability targets :math:`q`,
    :math:`\ell_i = -\sum_c w_c \tilde q_{ic} \log p_{ic}` with
    :math:`\tilde q = (1-s) q + s/C`, and "mean" divides by N.

    Examples
    --------
    >>> float(cross_entropy(np.zeros((2, 4)), np.array([1, 3])))  # log 4
    1.3862943611198906
    """
    x = as_float_array(input)
    terms = loss_terms(x.shape, target, weight, ignore_index, reduction, label_smoothing)
    z = _shifted(x, 1)
    lse = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    out = _reduce(_row_losses(z, lse, terms), terms)
    return np.asarray(out).astype(x.dtype, copy=False)


def cross_entropy_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> NDArray:
    r"""Closed-form gradient of :func:`cross_entropy` with respect to ``input``.

    Parameters
    ----------
    input, target, weight, ignore_index, reduction, label_smoothing
        As in :func:`cross_entropy`. For ``reduction="none"`` the gradient is
        that of the sum of the per-row losses.

    Returns
    -------
    ndarray, shape (N, C), dtype of ``input``

    Notes
    -----
    With :math:`\ell_i = -\sum_c a_{ic} \log p_{ic}` (see :class:`LossTerms`)
    and :math:`A_i = \sum_c a_{ic}`,

    .. math:: \frac{\partial L}{\partial x_{ij}} = \frac{A_i\, p_{ij} - a_{ij}}{D}

    which is :math:`(p - \mathrm{onehot}) / N` in the plain case. Each row sums to 0.
    When every row is ignored the gradient is 0 (PyTorch's convention).

    Examples
    --------
    >>> cross_entropy_grad(np.zeros((1, 4)), np.array([2]))
    array([[ 0.25,  0.25, -0.75,  0.25]])
    """
    x = as_float_array(input)
    terms = loss_terms(x.shape, target, weight, ignore_index, reduction, label_smoothing)
    return grad_rows(x, terms)


def grad_rows(x: NDArray, terms: LossTerms) -> NDArray:
    """The body of :func:`cross_entropy_grad` for a block of rows whose terms are ``terms``.

    Row-separable: the rows of one cell give the same bits as in the whole grid.
    """
    p = np.exp(_shifted(x, 1))
    p *= (terms.total / np.sum(p, axis=1))[:, None]
    if terms.dense is not None:
        p -= terms.dense
    else:
        if np.any(terms.smooth):
            p -= terms.active[:, None] * terms.smooth
        p[np.arange(x.shape[0]), terms.target] -= terms.onehot
    if terms.denom != 1.0:
        if terms.denom == 0.0:
            p[...] = 0.0
        else:
            p /= terms.denom
    return p.astype(x.dtype, copy=False)
