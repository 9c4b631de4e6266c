"""Error versus step: the textbook truncation-plus-rounding model, default steps, and measured sweeps."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ._dtypes import as_float_array, quiet_if_nonfinite, round_to, unit_roundoff, work_dtype
from .losses import LossTerms, cross_entropy_grad, loss_terms
from .numeric import BLOCK_ELEMENTS, RowBlock, complex_step_row_loss_imag, perturbed_row_loss
from .schemes import SCHEME_NAMES, get_scheme

__all__ = [
    "EPS_MAX",
    "EPS_MIN",
    "ErrorModel",
    "Sweep",
    "SweepResult",
    "cell_derivatives",
    "cell_error_model",
    "default_eps",
    "eps_grid",
    "eps_sweep",
    "error_model",
    "measured_best",
    "row_noise_scale",
]

#: The range of steps the app offers and sweeps over.
EPS_MIN = 1e-20
EPS_MAX = 1e-1


def eps_grid(n: int = 61, lo: float = EPS_MIN, hi: float = EPS_MAX) -> NDArray:
    """``n`` steps evenly spaced in log10 from ``lo`` to ``hi`` (ascending).

    The default grid is decimal on purpose: on a power-of-two ladder (h, 2h, 4h, ...)
    the rounding errors at successive steps are correlated and the measured curve
    is not representative of the steps people use.

    Examples
    --------
    >>> eps_grid(3, 1e-4, 1e-2)
    array([0.0001, 0.001 , 0.01  ])
    """
    return np.logspace(math.log10(lo), math.log10(hi), int(n))


@dataclass(frozen=True)
class ErrorModel:
    r"""Textbook error model of one scheme for one function and dtype.

    .. math:: E(h) = c_t\, h^p\, |f^{(p+1)}| + c_r\, u\, F / h

    with :math:`F = |f| + |x|\,|f'|` (rounding of the two loss values and of
    :math:`x + h`). For the complex step there is no cancellation and the
    rounding term is the constant :math:`c_r u |f'|`.

    Attributes
    ----------
    scheme : str
    order : int
    truncation_scale : float
        :math:`c_t |f^{(p+1)}|`.
    rounding_scale : float
        :math:`c_r u F` (or :math:`u |f'|` for the complex step).
    best_eps, best_err : float
        Minimiser and minimum of :math:`E` (for the complex step: the step below
        which truncation drops under rounding, and the rounding floor).
    """

    scheme: str
    order: int
    truncation_scale: float
    rounding_scale: float
    best_eps: float
    best_err: float

    @property
    def is_complex(self) -> bool:
        return get_scheme(self.scheme).is_complex

    def truncation(self, eps: ArrayLike) -> NDArray:
        """Truncation term at each step."""
        return self.truncation_scale * np.asarray(eps, dtype=np.float64) ** self.order

    def rounding(self, eps: ArrayLike) -> NDArray:
        """Rounding term at each step."""
        h = np.asarray(eps, dtype=np.float64)
        if self.is_complex:
            return np.full_like(h, self.rounding_scale)
        return self.rounding_scale / h

    def total(self, eps: ArrayLike) -> NDArray:
        """The model's error at each step."""
        return self.truncation(eps) + self.rounding(eps)


def error_model(
    scheme: str,
    dtype: DTypeLike,
    f_abs: float = 1.0,
    deriv_abs: float = 1.0,
    grad_abs: float = 1.0,
    x_abs: float = 0.0,
    expected: bool = False,
) -> ErrorModel:
    r"""Build the textbook error model and its optimal step.

    Parameters
    ----------
    scheme : str
    dtype : dtype-like
        The storage dtype; sets the unit roundoff :math:`u`.
    f_abs : float
        :math:`|f(x)|`, the magnitude of the function value that rounds.
    deriv_abs : float
        :math:`|f^{(p+1)}(x)|`, the derivative in the leading truncation term.
    grad_abs : float
        :math:`|f'(x)|`.
    x_abs : float
        :math:`|x|`, whose rounding in :math:`x + h` adds :math:`u |x| |f'|`.
    expected : bool
        False: the textbook worst case, :math:`c_r = \sum |w| / \mathrm{divisor}`.
        True: the expected size, each value off by a uniform error (standard
        deviation :math:`u F / \sqrt 3`) combined in quadrature; see
        :attr:`~explorer.core.schemes.Scheme.expected_rounding_coef`.

    Returns
    -------
    ErrorModel

    Notes
    -----
    Minimising :math:`E(h)` gives

    .. math:: h^* = \left(\frac{c_r u F}{p\, c_t |f^{(p+1)}|}\right)^{1/(p+1)}

    so :math:`h^* \sim u^{1/2}` (forward), :math:`u^{1/3}` (central) and
    :math:`u^{1/5}` (central4). A vanishing derivative is floored at
    :math:`10^{-300}` and :math:`h^*` clipped to [1e-20, 1].

    Examples
    --------
    >>> m = error_model("central", "float64")
    >>> f"{m.best_eps:.1e}"
    '6.9e-06'
    """
    sch = get_scheme(scheme)
    u = unit_roundoff(np.dtype(dtype))
    c_r = sch.expected_rounding_coef if expected else sch.rounding_coef
    trunc = sch.truncation_coef * max(float(deriv_abs), 1e-300)
    if sch.is_complex:
        rnd = c_r * u * max(float(grad_abs), 1e-300)
        best = min(1.0, max(EPS_MIN, math.sqrt(rnd / trunc)))
        return ErrorModel(sch.name, sch.order, trunc, rnd, best, rnd)
    p = sch.order
    rnd = c_r * u * (abs(float(f_abs)) + abs(float(x_abs)) * abs(float(grad_abs)))
    rnd = max(rnd, 1e-300)
    best = (rnd / (p * trunc)) ** (1.0 / (p + 1))
    best = min(1.0, max(EPS_MIN, best))
    err = trunc * best**p + rnd / best
    return ErrorModel(sch.name, p, trunc, rnd, best, err)


def default_eps(scheme: str, dtype: DTypeLike = "float64") -> float:
    """A sensible step for a scheme and dtype: the model's optimum for O(1) values, as a power of ten.

    Parameters
    ----------
    scheme : str
    dtype : dtype-like

    Returns
    -------
    float

    Examples
    --------
    >>> [default_eps(s) for s in ("forward", "central", "central4", "complex")]
    [1e-08, 1e-05, 0.001, 1e-20]
    >>> default_eps("central", "float32")
    0.01
    """
    sch = get_scheme(scheme)
    dt = np.dtype(dtype)
    if sch.is_complex:
        return 1e-20 if work_dtype(dt) == np.float64 else 1e-10
    best = error_model(sch.name, dt).best_eps
    return float(min(EPS_MAX, 10.0 ** round(math.log10(best))))


def _p_derivatives(p: float, count: int) -> list[float]:
    """Derivatives of ``p = softmax_j`` with respect to its own logit, orders 0..count-1."""
    q = 1.0 - p
    derivs = [p, p * q, p * q * (1 - 2 * p), p * q * (1 - 6 * p + 6 * p * p)]
    derivs.append(p * q * (1 - 2 * p) * (1 - 12 * p + 12 * p * p))
    return derivs[:count]


def cell_derivatives(input: ArrayLike, target: ArrayLike, cell: tuple[int, int], **loss_kwargs: object) -> NDArray:
    r"""The reduced loss and its derivatives of orders 1..5 with respect to one logit.

    Parameters
    ----------
    input : array_like, shape (N, C)
    target : array_like
    cell : (i, j)
    **loss_kwargs
        ``weight``, ``ignore_index``, ``reduction``, ``label_smoothing``.

    Returns
    -------
    ndarray, shape (6,)
        :math:`[\ell_i/D,\ f',\ f'',\ \dots,\ f^{(5)}]` where
        :math:`f(t) = \ell_i(x_i + t e_j)/D`.

    Notes
    -----
    With :math:`p = p_{ij}`, :math:`f' = (A_i p - a_{ij})/D` and
    :math:`f^{(k)} = A_i\, p^{(k-1)}/D` for :math:`k \ge 2`, where
    :math:`p' = p(1-p)`, :math:`p'' = p(1-p)(1-2p)`, and so on.

    Examples
    --------
    >>> cell_derivatives(np.zeros((1, 2)), np.array([0]), (0, 0)).round(4)
    array([ 0.6931, -0.5   ,  0.25  ,  0.    , -0.125 ,  0.    ])
    """
    x = as_float_array(input).astype(np.float64)
    terms = loss_terms(x.shape, target, **loss_kwargs)  # type: ignore[arg-type]
    i, j = cell
    row = x[i]
    z = row - row.max()
    e = np.exp(z)
    s = e.sum()
    p = e[j] / s
    a = terms.coefficients(slice(i, i + 1))[0]
    big_a = float(terms.total[i])
    loss = big_a * math.log(s) - float(a @ z)
    d = 1.0 if terms.reduction != "mean" else (terms.denom or math.inf)
    derivs = [loss / d, (big_a * p - a[j]) / d] + [big_a * v / d for v in _p_derivatives(p, 5)[1:]]
    return np.array(derivs[:6])


def row_noise_scale(
    rows: ArrayLike, target: ArrayLike | None, terms: LossTerms | None = None, first_row: int = 0, **loss_kwargs: object
) -> NDArray:
    r"""Absolute rounding scale of each evaluated row loss, in units of ``u``.

    An evaluated row loss :math:`\ell_i = A_i \log S_i - U_i` rounds :math:`S_i \ge 1`
    (to relative :math:`u`, so :math:`\log S_i` to absolute :math:`u`),
    :math:`A_i \log S_i`, :math:`U_i` and :math:`\ell_i`; its error is about
    :math:`u (A_i (1 + \log S_i) + |U_i| + |\ell_i|)`, which can be far more than
    :math:`u |\ell_i|` when the loss is a small difference of large terms.

    Parameters
    ----------
    rows : array_like, shape (n, C)
        Logits of the rows.
    target : array_like
        Their targets (ignored when ``terms`` is given).
    terms : LossTerms, optional
        Precomputed terms of the whole problem; ``first_row`` is the index of ``rows[0]`` in it.
    **loss_kwargs
        Loss options, when ``terms`` is not given.

    Returns
    -------
    ndarray, shape (n,)

    Examples
    --------
    >>> row_noise_scale(np.array([[0.0, 0.0]]), np.array([0])).round(3)
    array([2.386])
    """
    x = as_float_array(rows).astype(np.float64)
    if terms is None:
        terms = loss_terms(x.shape, target, **loss_kwargs)  # type: ignore[arg-type]
    sel = slice(first_row, first_row + x.shape[0])
    z = x - x.max(axis=1, keepdims=True)
    a = terms.coefficients(sel)
    big_a = terms.total[sel]
    u_sum = np.sum(a * z, axis=1)
    log_s = np.log(np.exp(z).sum(axis=1))
    loss = big_a * log_s - u_sum
    return big_a * (1.0 + log_s) + np.abs(u_sum) + np.abs(loss)


def cell_error_model(
    input: ArrayLike,
    target: ArrayLike,
    cell: tuple[int, int],
    scheme: str,
    dtype: DTypeLike | None = None,
    bound: bool = False,
    **loss_kwargs: object,
) -> ErrorModel:
    r"""The textbook error model of one element of the cross-entropy gradient.

    Parameters
    ----------
    input : array_like, shape (N, C)
    target : array_like
    cell : (i, j)
    scheme : str
    dtype : dtype-like, optional
        Defaults to the dtype of ``input``.
    bound : bool
        False (default): the *expected* error, each loss value off by a uniform
        error of up to :math:`u |f|`, combined in quadrature; its optimum is the
        best eps to expect. True: a conservative *bound*, the worst case of every
        rounding the evaluation makes (for tests of error bounds; its rounding
        line lies well above a measured curve).
    **loss_kwargs
        As in :func:`~explorer.core.cross_entropy`.

    Returns
    -------
    ErrorModel

    Notes
    -----
    Uses the exact derivatives from :func:`cell_derivatives`. The estimate's
    :math:`|f|` is :math:`|\ell_i| / D`; the bound's is the row's rounding scale
    :func:`row_noise_scale` plus :math:`A_i p_{ij}` (the rounding of
    :math:`e^{x'_{ij} - m_i}` itself), divided by :math:`D`.

    Examples
    --------
    >>> m = cell_error_model(np.zeros((1, 3)), np.array([0]), (0, 1), "forward")
    >>> f"{m.best_eps:.0e}"
    '3e-08'
    >>> f"{cell_error_model(np.zeros((1, 3)), np.array([0]), (0, 1), 'forward', bound=True).best_eps:.0e}"
    '8e-08'
    """
    x = as_float_array(input)
    i, j = int(cell[0]), int(cell[1])
    d = cell_derivatives(x, target, (i, j), **loss_kwargs)
    terms = loss_terms(x.shape, target, **loss_kwargs)  # type: ignore[arg-type]
    scale = 1.0 if terms.reduction != "mean" else (terms.denom or math.inf)
    row = x[i].astype(np.float64)
    z = row - row.max()
    big_a = float(terms.total[i])
    p = float(np.exp(z[j]) / np.exp(z).sum())
    if bound:
        # The row's rounding scale, plus exp of the moved logit itself (up to A p relative to S).
        noise = (float(row_noise_scale(x[i : i + 1], None, terms, i)[0]) + big_a * p) / scale
    else:
        noise = abs(float(d[0]))
    sch = get_scheme(scheme)
    dt = x.dtype if dtype is None else dtype
    grad_abs = abs(float(d[1]))
    if sch.is_complex and bound:
        # Im l' / h = A p - a is formed by a subtraction, so its rounding is relative to
        # A p + a; and exp(x_ij - m_i) carries the rounding of its argument, u |x_ij - m_i|.
        a_ij = float(terms.coefficients(slice(i, i + 1))[0, j])
        grad_abs += (big_a * p * (1.0 + abs(float(z[j]))) + a_ij) / scale
    return error_model(
        sch.name, dt, noise, abs(float(d[sch.order + 1])), grad_abs, abs(float(x[i, j])), expected=not bound
    )


@dataclass(frozen=True)
class Sweep:
    """Measured error versus step per scheme, with the textbook model of each.

    Attributes
    ----------
    eps : ndarray (K,)
    errors : dict of str to ndarray (K,)
        ``|numeric - analytic|`` at the cell (or the grid maximum) per scheme,
        against the exact (float64) gradient at the logits as rounded to the dtype.
    models : dict of str to ErrorModel
    measured_best_eps, measured_best_err : dict of str to float
    cell : (i, j) or None
        None for the maximum over the whole grid.
    dtype : str
    """

    eps: NDArray
    errors: dict[str, NDArray]
    models: dict[str, ErrorModel]
    measured_best_eps: dict[str, float]
    measured_best_err: dict[str, float]
    cell: tuple[int, int] | None
    dtype: str


def eps_sweep(
    input: ArrayLike,
    target: ArrayLike,
    cell: tuple[int, int] | None = None,
    eps: ArrayLike | None = None,
    schemes: Sequence[str] = SCHEME_NAMES,
    progress: Callable[[float], None] | None = None,
    **loss_kwargs: object,
) -> Sweep:
    r"""Error of each scheme against the analytic gradient over a range of steps.

    Parameters
    ----------
    input : array_like, shape (N, C)
        Logits, in the dtype to study.
    target : array_like
    cell : (i, j), optional
        The element to study; None takes the maximum error over the grid.
    eps : array_like, shape (K,), optional
        Steps; default :func:`eps_grid` (61 steps from 1e-20 to 1e-1).
    schemes : sequence of str
    progress : callable, optional
        For the grid maximum: called with the fraction done; it may raise to abandon.
    **loss_kwargs
        As in :func:`~explorer.core.cross_entropy`.

    Returns
    -------
    Sweep

    Notes
    -----
    For one cell the quotients for all K steps are formed at once from the row's
    sums (the same evaluation as :func:`cross_entropy_numeric_grad`), so the cost
    is O(C + K) per scheme. For the grid maximum every row block is prepared once
    and the schemes at each step share their stencil points (central, central4,
    forward and backward all use x ± h). The model uses :func:`cell_derivatives` of that cell;
    for the grid maximum, of the cell with the largest analytic gradient.

    Examples
    --------
    >>> sw = eps_sweep(np.array([[1.0, 2.0, 3.0]]), np.array([0]), (0, 1), schemes=["central"])
    >>> bool(sw.measured_best_err["central"] < 1e-9)
    True
    """
    x = as_float_array(input)
    with quiet_if_nonfinite(x):
        return _eps_sweep(x, target, cell, eps, schemes, progress, loss_kwargs)


def _eps_sweep(
    x: NDArray,
    target: ArrayLike,
    cell: tuple[int, int] | None,
    eps: ArrayLike | None,
    schemes: Sequence[str],
    progress: Callable[[float], None] | None,
    loss_kwargs: dict,
) -> Sweep:
    hs = eps_grid() if eps is None else np.asarray(eps, dtype=np.float64)
    if hs.ndim != 1 or not np.all(np.isfinite(hs)) or np.any(hs <= 0):
        raise ValueError("eps must be a 1-D array of finite steps > 0")
    names = [get_scheme(s).name for s in schemes]
    # The reference is the exact (float64) gradient at the logits as rounded to their dtype.
    grad = cross_entropy_grad(x.astype(np.float64), target, **loss_kwargs)  # type: ignore[arg-type]
    errors: dict[str, NDArray] = {}
    if cell is None:
        errors = _grid_max_errors(x, target, hs, names, grad, loss_kwargs, progress)
        model_cell = np.unravel_index(int(np.argmax(np.abs(grad))), grad.shape) if grad.size else (0, 0)
    else:
        i, j = int(cell[0]), int(cell[1])
        if not (0 <= i < x.shape[0] and 0 <= j < x.shape[1]):
            raise ValueError(f"cell {cell} is outside the grid of shape {x.shape}")
        for name in names:
            num = _cell_quotients(x, target, (i, j), hs, name, loss_kwargs)
            errors[name] = np.abs(num - grad[i, j])
        model_cell = (i, j)
    mc = (int(model_cell[0]), int(model_cell[1]))
    models = {name: cell_error_model(x, target, mc, name, None, False, **loss_kwargs) for name in names}
    best_eps, best_err = {}, {}
    for name, errs in errors.items():
        best_eps[name], best_err[name] = measured_best(hs, errs)
    return Sweep(
        hs, errors, models, best_eps, best_err, None if cell is None else (int(cell[0]), int(cell[1])), x.dtype.name
    )


#: Window (in grid points) of the running median that locates a curve's measured best step.
BEST_WINDOW = 5


def measured_best(eps: NDArray, errors: NDArray, window: int = BEST_WINDOW) -> tuple[float, float]:
    """Step and error at the bottom of a measured error curve.

    Rounding noise makes single points jitter, and one step can land on a lucky
    cancellation (even an error of exactly 0), so the curve is first smoothed by a
    running geometric mean of ``window`` neighbouring points (about a decade on the
    default grid), ignoring exact zeros unless the whole window is exact.

    Examples
    --------
    >>> measured_best(np.array([1e-3, 1e-2, 1e-1]), np.array([1e-6, 1e-8, 1e-4]), window=1)
    (0.01, 1e-08)
    """
    errs = np.asarray(errors, dtype=np.float64)
    if errs.size == 0:
        return math.nan, math.nan
    half = max(0, min(int(window), errs.size) // 2)
    padded = np.pad(errs, half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    usable = np.isfinite(windows) & (windows > 0)
    logs = np.log10(np.where(usable, windows, 1.0))
    counts = usable.sum(axis=1)
    # Geometric mean of the usable (finite, non-zero) errors of each window; a lucky exact 0
    # is ignored, a window of nothing but exact zeros is exact (-inf), one of NaN/inf is unusable.
    sums = np.where(usable, logs, 0.0).sum(axis=1)
    smooth = np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)
    all_zero = np.all(windows == 0, axis=1)
    smooth = np.where(all_zero, -np.inf, smooth)
    k = int(np.argmin(smooth))
    return float(eps[k]), float(10.0 ** smooth[k]) if np.isfinite(smooth[k]) else (0.0 if all_zero[k] else math.inf)


def _grid_max_errors(
    x: NDArray,
    target: ArrayLike,
    hs: NDArray,
    names: list[str],
    grad: NDArray,
    loss_kwargs: dict,
    progress: Callable[[float], None] | None,
) -> dict[str, NDArray]:
    """Max over the grid of |numeric - analytic| for each scheme and step (NaN if any is NaN).

    Perturbed row losses are cached by the step actually added, so the schemes
    share their points at each step (x ± h for four of them).
    """
    terms = loss_terms(x.shape, target, **loss_kwargs)
    n, c = x.shape
    rows_per_block = max(1, BLOCK_ELEMENTS // max(c, 1))
    schemes = [get_scheme(name) for name in names]
    errors = np.zeros((len(schemes), hs.size))
    order = np.argsort(hs)[::-1]  # largest step first, so 2h is computed before it is h
    for r0 in range(0, n, rows_per_block):
        rows = slice(r0, min(n, r0 + rows_per_block))
        block = RowBlock(x[rows], terms, rows)
        exact = grad[rows]
        cache: dict[float, NDArray] = {}
        for k in order:
            h = float(hs[k])
            for s_idx, sch in enumerate(schemes):
                q = block.quotient(sch, h, cache)
                if q.dtype != x.dtype:
                    q = q.astype(x.dtype)
                if q.dtype != exact.dtype:
                    q = q.astype(exact.dtype)
                np.subtract(q, exact, out=q)
                np.abs(q, out=q)
                worst = np.max(q) if q.size else 0.0
                errors[s_idx, k] = max(errors[s_idx, k], worst) if not np.isnan(worst) else np.nan
            cache.clear()
        if progress is not None:
            progress(rows.stop / n)
    return {name: errors[s_idx] for s_idx, name in enumerate(names)}


def _cell_quotients(
    x: NDArray, target: ArrayLike, cell: tuple[int, int], hs: NDArray, scheme: str, loss_kwargs: dict
) -> NDArray:
    """Difference quotients of one element for every step in ``hs`` at once."""
    sch = get_scheme(scheme)
    terms = loss_terms(x.shape, target, **loss_kwargs)
    i, j = cell
    storage = x.dtype
    xw = x[i].astype(work_dtype(storage))
    m = xw.max()
    z = xw - m
    e = np.exp(z)
    s = e.sum()
    a = terms.coefficients(slice(i, i + 1))[0].astype(xw.dtype)
    big_a = xw.dtype.type(terms.total[i])
    u = (a * z).sum()
    scale = 1.0 if terms.reduction != "mean" else terms.denom
    if scale == 0.0:
        return np.zeros(hs.shape)
    # Divide once, as the block path does: by (divisor * h * D), in working precision.
    if sch.is_complex:
        num = complex_step_row_loss_imag(hs, e[j], s, a[j], big_a) / (hs * scale).astype(xw.dtype)
        return num.astype(storage).astype(np.float64)
    l0 = round_to(np.asarray(big_a * np.log(s) - u), storage)
    acc = np.zeros(hs.shape, dtype=xw.dtype)
    for o, wgt in sch.stencil:
        if o == 0.0:
            acc += wgt * l0
            continue
        xp = round_to(xw[j] + o * hs.astype(xw.dtype), storage)
        lp = round_to(perturbed_row_loss(xp - m, z[j], e[j], s, a[j], big_a, u), storage)
        acc += wgt * lp
    return (acc / (sch.divisor * hs * scale).astype(xw.dtype)).astype(storage).astype(np.float64)


@dataclass(frozen=True)
class SweepResult:
    """Error-versus-eps curves as the window shows them.

    Attributes
    ----------
    mode : str
        "cell" or "grid".
    cell : (i, j) or None
    sweeps : dict of str to Sweep
        Keyed by dtype name: the current dtype (all schemes), plus the other
        dtypes (current scheme only) when ``overlay`` is on.
    dtype, scheme : str
        The current dtype and scheme.
    eps : float
        The current step.
    overlay : bool
    user : bool
        The curves come from the user's own loss and gradient.
    """

    mode: str
    cell: tuple[int, int] | None
    sweeps: dict[str, Sweep]
    dtype: str
    scheme: str
    eps: float
    overlay: bool
    user: bool = False
