"""Error versus step: the textbook truncation-plus-rounding model, default steps, and measured sweeps."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ._dtypes import as_float_array, quiet_if_nonfinite, resolve_dtype, unit_roundoff, work_dtype
from .losses import LossTerms, cross_entropy_grad, grad_rows, loss_terms
from .numeric import BLOCK_ELEMENTS, RowBlock, ShiftEvaluator, loss_sum_parts
from .schemes import EVALUATE_MODES, PERTURB_MODES, SCHEME_NAMES, get_scheme

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
    u = unit_roundoff(resolve_dtype(dtype))  # type: ignore[arg-type]
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
    dt = resolve_dtype(dtype)  # type: ignore[arg-type]
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
    arr = np.asarray(input)
    i, j = int(cell[0]), int(cell[1])
    row = as_float_array(arr[i], "input").astype(np.float64)
    terms = loss_terms(arr.shape, target, rows=slice(i, i + 1), **loss_kwargs)  # type: ignore[arg-type]
    return _row_derivatives(row, terms, j)


def _row_derivatives(row: NDArray, terms: LossTerms, j: int) -> NDArray:
    """:func:`cell_derivatives` from row i's float64 logits and its terms (O(C))."""
    z = row - row.max()
    e = np.exp(z)
    s = e.sum()
    p = e[j] / s
    big_a = float(terms.total[0])
    if terms.dense is None and not np.any(terms.smooth) and big_a >= 0 and math.isfinite(float(np.min(z))):
        # One coefficient is not 0 (the target's): the dot product is that one product, exactly.
        t = int(terms.target[0])
        u = float(terms.coefficient(0, t) * z[t])
    else:
        u = float(terms.coefficients()[0] @ z)
    loss = big_a * math.log(s) - u
    d = terms.denom or math.inf  # every row ignored: the loss is constant
    derivs = [loss / d, (big_a * p - terms.coefficient(0, j)) / d] + [big_a * v / d for v in _p_derivatives(p, 5)[1:]]
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
    *,
    evaluate: str = "row",
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
    evaluate : {"row", "loss"}
        What the quotient differences: row i's loss, or the whole reduced loss (whose
        rounding is relative to the whole loss :math:`L`, so the best eps grows with N).
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
    :math:`e^{x'_{ij} - m_i}` itself), divided by :math:`D`. With ``evaluate="loss"``
    the rounding of the sum (and of the mean) adds :math:`|L|` to :math:`|f|` (O(N C): every
    row's loss is evaluated).

    Examples
    --------
    >>> m = cell_error_model(np.zeros((1, 3)), np.array([0]), (0, 1), "forward")
    >>> f"{m.best_eps:.0e}"
    '3e-08'
    >>> f"{cell_error_model(np.zeros((1, 3)), np.array([0]), (0, 1), 'forward', bound=True).best_eps:.0e}"
    '8e-08'
    """
    arr = np.asarray(input)
    i, j = int(cell[0]), int(cell[1])
    x_row = as_float_array(arr[i : i + 1], "input")
    terms = loss_terms(arr.shape, target, rows=slice(i, i + 1), **loss_kwargs)  # type: ignore[arg-type]
    loss_abs = None
    if evaluate == "loss":
        x = as_float_array(arr, "input")
        loss_abs = whole_loss_abs(x, loss_terms(arr.shape, target, **loss_kwargs))  # type: ignore[arg-type]
    return _row_error_model(x_row, terms, j, scheme, x_row.dtype if dtype is None else dtype, bound, loss_abs)


def whole_loss_abs(x: NDArray, terms: LossTerms) -> float:
    """``|L|``, the reduced loss as the whole-loss evaluation sums it (``T / D``), for the error model."""
    with quiet_if_nonfinite(x):
        total = loss_sum_parts(x, terms)[1]
    return abs(total / terms.denom) if terms.reduction == "mean" and terms.denom else abs(total)


def _row_error_model(
    x_row: NDArray,
    terms: LossTerms,
    j: int,
    scheme: str,
    dtype: DTypeLike,
    bound: bool,
    loss_abs: float | None = None,
    derivs: NDArray | None = None,
) -> ErrorModel:
    """:func:`cell_error_model` from row i (shape (1, C)) and its terms: O(C); ``loss_abs`` for "loss".

    ``derivs``: :func:`_row_derivatives` of the row when known (they do not depend on the scheme),
    so the models of several schemes read the row once.
    """
    d = _row_derivatives(x_row[0].astype(np.float64), terms, j) if derivs is None else derivs
    scale = terms.denom or math.inf
    big_a = float(terms.total[0])
    x_abs = abs(float(np.asarray(x_row[0, j], dtype=np.float64)))
    if bound:
        row = x_row[0].astype(np.float64)
        z = row - row.max()
        p = float(np.exp(z[j]) / np.exp(z).sum())
        # The row's rounding scale, plus exp of the moved logit itself (up to A p relative to S).
        noise = (float(row_noise_scale(x_row, None, terms, 0)[0]) + big_a * p) / scale
    else:
        noise = abs(float(d[0]))
    if loss_abs is not None and math.isfinite(loss_abs):
        noise += loss_abs  # the whole loss is rounded after the sum (and after the mean)
    sch = get_scheme(scheme)
    grad_abs = abs(float(d[1]))
    if sch.is_complex and bound:
        # Im l' / h = A p - a is formed by a subtraction, so its rounding is relative to
        # A p + a; and exp(x_ij - m_i) carries the rounding of its argument, u |x_ij - m_i|.
        a_ij = float(terms.coefficients()[0, j])
        grad_abs += (big_a * p * (1.0 + abs(float(z[j]))) + a_ij) / scale
    deriv = abs(float(d[sch.order + 1]))
    return error_model(sch.name, dtype, noise, deriv, grad_abs, x_abs, expected=not bound)


@dataclass(frozen=True)
class Sweep:
    """Measured error versus step per scheme, with the textbook model of each.

    Attributes
    ----------
    eps : ndarray (K,)
        The steps, ascending (with any ``include_eps`` inserted exactly).
    errors : dict of str to ndarray (K,)
        ``|numeric - analytic|`` at the cell (or the grid maximum) per scheme, with the
        check's own numbers: the numeric value as the numeric map holds it (rounded to
        the dtype) against the analytic map's value (the closed form in the dtype). At a
        step equal to a check's eps the value equals that check's ``abs_err`` at the cell
        (or its ``max_abs_err``), bit for bit. An exact agreement is an error of exactly
        ``0.0``, kept as such (never replaced by a small constant): see :meth:`exact_zeros`.
        NaN where a gradient is NaN (overflowed rows).
    models : dict of str to ErrorModel
    measured_best_eps, measured_best_err : dict of str to float
    cell : (i, j) or None
        None for the maximum over the whole grid.
    dtype : str
    numeric : dict of str to ndarray (K,)
        The numeric gradient at the cell per scheme and step, as the map holds it (float64
        of the dtype's value); empty for the grid maximum.
    analytic : float
        The analytic gradient at the cell (the map's value); NaN for the grid maximum.
    perturb : str
        "element", or the pitfall modes "row" and "all" (what the pitfall check measures).
    evaluate : str
        "row" or "loss": what the element quotients difference.
    """

    eps: NDArray
    errors: dict[str, NDArray]
    models: dict[str, ErrorModel]
    measured_best_eps: dict[str, float]
    measured_best_err: dict[str, float]
    cell: tuple[int, int] | None
    dtype: str
    numeric: dict[str, NDArray] = field(default_factory=dict)
    analytic: float = math.nan
    perturb: str = "element"
    evaluate: str = "row"

    def exact_zeros(self, scheme: str) -> NDArray:
        """Boolean mask over :attr:`eps`: where the scheme's error is exactly 0 (numeric equals analytic).

        A log-scale plot cannot place these; draw them at the axis floor with their own marker.
        """
        return np.asarray(self.errors[scheme]) == 0.0

    def index_of(self, eps: float) -> int | None:
        """Index of a step in :attr:`eps` (exact match), or None."""
        hits = np.flatnonzero(self.eps == float(eps))
        return int(hits[0]) if hits.size else None


def eps_sweep(
    input: ArrayLike,
    target: ArrayLike,
    cell: tuple[int, int] | None = None,
    eps: ArrayLike | None = None,
    schemes: Sequence[str] = SCHEME_NAMES,
    progress: Callable[[float], None] | None = None,
    *,
    perturb: str = "element",
    include_eps: float | Sequence[float] | None = None,
    evaluate: str = "row",
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
        Called with the fraction done (grid maximum, or whole-grid evaluations of
        ``perturb="all"``); it may raise to abandon.
    perturb : {"element", "row", "all"}
        As in :func:`~explorer.core.cross_entropy_numeric_grad`: the pitfall modes show
        what the pitfall check measures at each step.
    include_eps : float or sequence of float, optional
        Steps inserted into the grid exactly (sorted, without duplicates), e.g. the
        current settings' eps, so the curve passes through the map's value there.
    evaluate : {"row", "loss"}
        As in :func:`~explorer.core.cross_entropy_numeric_grad` (for ``perturb="element"``):
        "loss" differences the whole loss, reads every row (O(N C) once) and its model's
        rounding line is relative to the whole loss, so the predicted best eps moves with N.
    **loss_kwargs
        As in :func:`~explorer.core.cross_entropy`.

    Returns
    -------
    Sweep

    Notes
    -----
    The numeric values come from the evaluation the maps use (:class:`RowBlock`,
    :class:`ShiftEvaluator`), with all K steps at once, so at a step equal to a check's
    eps they equal the check's maps bit for bit. Cost for one cell: "element",
    O(C + K) per scheme after preparing row i; "row", O(K C) per stencil point; both
    read only row i of the logits and O(N) of the labels (the mean's denominator).
    "all" is a difference of the whole loss: O(K N C) (every row enters the sum).
    For the grid maximum every row block is prepared once and the schemes at each step
    share their stencil points. The model uses :func:`cell_derivatives` of that cell;
    for the grid maximum, of the cell with the largest analytic gradient.

    Examples
    --------
    >>> sw = eps_sweep(np.array([[1.0, 2.0, 3.0]]), np.array([0]), (0, 1), schemes=["central"])
    >>> bool(sw.measured_best_err["central"] < 1e-9)
    True
    >>> sw = eps_sweep(np.array([[1.0, 2.0, 3.0]]), np.array([0]), (0, 1), eps=[1e-3], include_eps=3e-5)
    >>> sw.eps.tolist(), sw.index_of(3e-5)
    ([3e-05, 0.001], 0)
    """
    if perturb not in PERTURB_MODES:
        raise ValueError(f"unknown perturb mode {perturb!r}; expected one of {', '.join(PERTURB_MODES)}")
    if evaluate not in EVALUATE_MODES:
        raise ValueError(f"unknown evaluate mode {evaluate!r}; expected one of {', '.join(EVALUATE_MODES)}")
    whole = evaluate == "loss" and perturb == "element"
    hs = _steps(eps, include_eps)
    names = [get_scheme(s).name for s in schemes]
    arr = np.asarray(input)
    if arr.ndim != 2:
        raise ValueError(f"input must have shape (N, C), got shape {arr.shape}")
    if cell is None:
        x = as_float_array(arr)
        with quiet_if_nonfinite(x):
            return _grid_sweep(x, target, hs, names, perturb, progress, loss_kwargs, whole)
    i, j = int(cell[0]), int(cell[1])
    if not (0 <= i < arr.shape[0] and 0 <= j < arr.shape[1]):
        raise ValueError(f"cell {cell} is outside the grid of shape {arr.shape}")
    x_row = as_float_array(arr[i : i + 1])
    x_all = as_float_array(arr) if perturb == "all" or whole else x_row
    with quiet_if_nonfinite(x_all):
        return _cell_sweep(x_row, x_all, arr.shape, target, (i, j), hs, names, perturb, progress, loss_kwargs, whole)


def _steps(eps: ArrayLike | None, include_eps: float | Sequence[float] | None) -> NDArray:
    hs = eps_grid() if eps is None else np.asarray(eps, dtype=np.float64)
    extra = None if include_eps is None else np.atleast_1d(np.asarray(include_eps, dtype=np.float64))
    for steps in (hs, extra):
        if steps is not None and (steps.ndim != 1 or not np.all(np.isfinite(steps)) or np.any(steps <= 0)):
            raise ValueError("eps must be a 1-D array of finite steps > 0")
    return hs if extra is None else np.union1d(hs, extra)


def _cell_sweep(
    x_row: NDArray,
    x_all: NDArray,
    shape: tuple[int, ...],
    target: ArrayLike,
    cell: tuple[int, int],
    hs: NDArray,
    names: list[str],
    perturb: str,
    progress: Callable[[float], None] | None,
    loss_kwargs: dict,
    whole: bool = False,
) -> Sweep:
    """One cell: only row i of the logits is read, except for "all" and whole-loss evaluation."""
    i, j = cell
    storage = x_row.dtype
    row_terms = loss_terms(shape, target, rows=slice(i, i + 1), **loss_kwargs)
    analytic = float(grad_rows(x_row, row_terms)[0, j])  # the analytic map's value, in the dtype
    numeric: dict[str, NDArray] = {}
    rest, loss_abs = None, None
    if whole:
        all_terms = loss_terms(shape, target, **loss_kwargs)
        rest_all, total = loss_sum_parts(x_all, all_terms)
        rest = rest_all[i : i + 1]
        loss_abs = abs(total / all_terms.denom) if all_terms.reduction == "mean" and all_terms.denom else abs(total)
    if perturb == "element":
        column = RowBlock(x_row, row_terms, slice(0, 1), rest).column(0, j, hs.size)
        for name in names:
            numeric[name] = column.quotient(get_scheme(name), hs)[0].astype(storage).astype(np.float64)
    else:
        if perturb == "row":
            ev = ShiftEvaluator(x_row, row_terms, "row")
        else:
            schemes = [get_scheme(n) for n in names]
            planned = hs.size * (len({o for s in schemes for o in s.offsets}) + any(s.is_complex for s in schemes))
            done = [0]

            def tick() -> None:
                done[0] += 1
                if progress is not None:
                    progress(min(1.0, done[0] / max(planned, 1)))

            ev = ShiftEvaluator(x_all, loss_terms(shape, target, **loss_kwargs), "all", tick)
        for name in names:
            q = ev.quotients(get_scheme(name), hs)
            numeric[name] = np.asarray(q[:, 0] if perturb == "row" else q).astype(storage).astype(np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf in overflowed rows: NaN, as in the map
        errors = {name: np.abs(num - analytic) for name, num in numeric.items()}
    derivs = _row_derivatives(x_row[0].astype(np.float64), row_terms, j)  # once for every scheme
    models = {name: _row_error_model(x_row, row_terms, j, name, storage, False, loss_abs, derivs) for name in names}
    best = {name: measured_best(hs, errs) for name, errs in errors.items()}
    return Sweep(
        hs, errors, models, {k: v[0] for k, v in best.items()}, {k: v[1] for k, v in best.items()}, (i, j),
        storage.name, numeric, analytic, perturb, "loss" if whole else "row",
    )  # fmt: skip


def _grid_sweep(
    x: NDArray,
    target: ArrayLike,
    hs: NDArray,
    names: list[str],
    perturb: str,
    progress: Callable[[float], None] | None,
    loss_kwargs: dict,
    whole: bool = False,
) -> Sweep:
    """The maximum over the grid of each scheme's error at each step."""
    grad = cross_entropy_grad(x, target, **loss_kwargs)  # the analytic map, in the dtype
    if perturb == "element":
        errors = _grid_max_errors(x, target, hs, names, grad, loss_kwargs, progress, whole)
    else:
        errors = _grid_max_shift_errors(x, target, hs, names, grad, perturb, loss_kwargs, progress)
    model_cell = np.unravel_index(int(np.argmax(np.abs(grad))), grad.shape) if grad.size else (0, 0)
    mc = (int(model_cell[0]), int(model_cell[1]))
    loss_abs = whole_loss_abs(x, loss_terms(x.shape, target, **loss_kwargs)) if whole else None
    mc_terms = loss_terms(x.shape, target, rows=slice(mc[0], mc[0] + 1), **loss_kwargs)
    derivs = _row_derivatives(x[mc[0]].astype(np.float64), mc_terms, mc[1])
    models = {name: _row_error_model(x[mc[0] : mc[0] + 1], mc_terms, mc[1], name, x.dtype, False, loss_abs, derivs)
              for name in names}  # fmt: skip
    best = {name: measured_best(hs, errs) for name, errs in errors.items()}
    return Sweep(
        hs, errors, models, {k: v[0] for k, v in best.items()}, {k: v[1] for k, v in best.items()}, None,
        x.dtype.name, {}, math.nan, perturb, "loss" if whole else "row",
    )  # fmt: skip


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
    whole: bool = False,
) -> dict[str, NDArray]:
    """Max over the grid of |numeric - analytic| for each scheme and step (NaN if any is NaN).

    Perturbed row losses are cached by the step actually added, so the schemes
    share their points at each step (x ± h for four of them).
    """
    terms = loss_terms(x.shape, target, **loss_kwargs)
    rest = loss_sum_parts(x, terms)[0] if whole else None
    n, c = x.shape
    rows_per_block = max(1, BLOCK_ELEMENTS // max(c, 1))
    schemes = [get_scheme(name) for name in names]
    errors = np.zeros((len(schemes), hs.size))
    order = np.argsort(hs)[::-1]  # largest step first, so 2h is computed before it is h
    for r0 in range(0, n, rows_per_block):
        rows = slice(r0, min(n, r0 + rows_per_block))
        block = RowBlock(x[rows], terms, rows, None if rest is None else rest[rows])
        exact = grad[rows].astype(np.float64)
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


def _grid_max_shift_errors(
    x: NDArray,
    target: ArrayLike,
    hs: NDArray,
    names: list[str],
    grad: NDArray,
    perturb: str,
    loss_kwargs: dict,
    progress: Callable[[float], None] | None,
) -> dict[str, NDArray]:
    """The pitfall modes' grid maximum: every element of a row (or the grid) holds the same quotient."""
    terms = loss_terms(x.shape, target, **loss_kwargs)
    exact = grad.astype(np.float64)
    schemes = [get_scheme(name) for name in names]
    errors = np.zeros((len(schemes), hs.size))
    n, c = x.shape

    def worst_against(q: NDArray, ref_hi: NDArray, ref_lo: NDArray) -> NDArray:
        # max_j |q - g_j| = max(|q - max g|, |q - min g|); NaN when any g is NaN.
        with np.errstate(invalid="ignore"):
            return np.maximum(np.abs(q - ref_hi), np.abs(q - ref_lo))

    if perturb == "all":
        ev = ShiftEvaluator(x, terms, "all")
        hi, lo = (np.max(exact), np.min(exact)) if exact.size else (0.0, 0.0)
        for s_idx, sch in enumerate(schemes):
            q = np.asarray(ev.quotients(sch, hs)).astype(x.dtype).astype(np.float64)
            errors[s_idx] = worst_against(q, np.asarray(hi), np.asarray(lo))
            if progress is not None:
                progress((s_idx + 1) / len(schemes))
        return {name: errors[s_idx] for s_idx, name in enumerate(names)}
    rows_per_block = max(1, BLOCK_ELEMENTS // max(c * hs.size, 1))
    for r0 in range(0, n, rows_per_block):
        rows = slice(r0, min(n, r0 + rows_per_block))
        ev = ShiftEvaluator(x[rows], loss_terms(x.shape, target, rows=rows, **loss_kwargs), "row")
        hi, lo = np.max(exact[rows], axis=1), np.min(exact[rows], axis=1)  # (n,)
        for s_idx, sch in enumerate(schemes):
            q = np.asarray(ev.quotients(sch, hs)).astype(x.dtype).astype(np.float64)  # (K, n)
            block_worst = worst_against(q, hi[None, :], lo[None, :]).max(axis=1)
            errors[s_idx] = np.where(np.isnan(block_worst) | np.isnan(errors[s_idx]), np.nan,
                                     np.maximum(errors[s_idx], block_worst))  # fmt: skip
        if progress is not None:
            progress(rows.stop / n)
    return {name: errors[s_idx] for s_idx, name in enumerate(names)}


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
